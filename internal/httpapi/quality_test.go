package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/pgtest"
)

// qualityBody is a report of n video samples 10 s apart up to at.
func qualityBody(at time.Time, n int) map[string]any {
	samples := make([]map[string]any, n)
	for i := range samples {
		samples[i] = map[string]any{
			"at": at.Add(-time.Duration(n-1-i) * 10 * time.Second).Format(time.RFC3339Nano), "rttMs": 40 + i, "packetLoss": 0.002,
			"jitterMs": 4, "bitrateKbps": 1200, "fps": 30, "freezeCount": 0, "freezeMs": 0,
		}
	}
	return map[string]any{"samples": samples}
}

type qualityAnswer struct {
	Providers map[string]map[string]struct {
		M5    sb.QualityStats `json:"5m"`
		H1    sb.QualityStats `json:"1h"`
		H24   sb.QualityStats `json:"24h"`
		Score *float64        `json:"score"`
	} `json:"providers"`
}

// TestQualityTelemetry sends quality samples through the API on each store
// and reads them back as aggregates, in the provider view and in /metrics;
// bad samples are 400 naming the field.
func TestQualityTelemetry(t *testing.T) {
	for _, store := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"postgres", func(t *testing.T) string { return pgtest.DSN(t) }},
	} {
		t.Run(store.name, func(t *testing.T) {
			e := newTestEnvOn(t, store.dsn(t))
			e.createProvider(e.agoraProvider("agora", 1))
			e.createProvider(e.zegoProvider("zegocloud", 2))
			client, admin := e.tokens[sb.RoleClient], e.tokens[sb.RoleAdmin]
			body := streamBody("room", "u")
			body["region"] = "eu-west"
			a := e.start(client, body)
			path := "/api/streams/" + a.ID + "/quality"
			now := e.clock.Now()

			e.mustDo("POST", path, client, qualityBody(now, 6), 202, nil)
			e.mustDo("POST", path, client, qualityBody(now, 3), 202, nil)

			var q qualityAnswer
			e.mustDo("GET", "/api/streaming/quality", admin, nil, 200, &q)
			got, ok := q.Providers["agora"]["eu-west"]
			if !ok {
				t.Fatalf("no agora/eu-west quality: %+v", q)
			}
			for name, st := range map[string]sb.QualityStats{"5m": got.M5, "1h": got.H1, "24h": got.H24} {
				if st.Samples != 9 || st.Streams != 1 || st.RTTMs.P50 != 42 || st.RTTMs.P95 != 45 || st.PacketLoss.P50 != 0.002 ||
					st.JitterMs.P95 != 4 || st.FPS != 30 || st.BitrateKbps != 1200 || st.Score == nil {
					t.Errorf("%s: %+v", name, st)
				}
			}
			if got.Score == nil || got.H1.Score == nil || *got.Score != *got.H1.Score || *got.Score < 90 || *got.Score > 100 {
				t.Errorf("score %v, want the last hour's, above 90", got.Score)
			}

			// The provider view carries the same.
			var view struct {
				Quality map[string]struct {
					Score *float64 `json:"score"`
				} `json:"quality"`
			}
			e.mustDo("GET", "/api/streaming/providers/agora", admin, nil, 200, &view)
			if s := view.Quality["eu-west"].Score; s == nil || *s != *got.Score {
				t.Errorf("provider view quality %+v, want score %v", view.Quality, *got.Score)
			}
			view.Quality = nil
			e.mustDo("GET", "/api/streaming/providers/zegocloud", admin, nil, 200, &view)
			if len(view.Quality) != 0 {
				t.Errorf("zegocloud has no samples, its view has %+v", view.Quality)
			}

			// /metrics has the score gauge.
			resp, err := http.Get(e.srv.URL + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			metrics, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			want := fmt.Sprintf(`switchboard_provider_quality_score{provider="agora",region="eu-west"} %v`, *got.Score)
			if !strings.Contains(string(metrics), want) {
				t.Errorf("/metrics lacks %s", want)
			}

			// Samples measured on a provider the stream was never on are refused;
			// on one it has left, they count for that one.
			e.mustDo("POST", path, client, map[string]any{"provider": "zegocloud", "samples": qualityBody(now, 1)["samples"]}, 400, nil)
			e.mustDo("POST", "/api/streams/"+a.ID+"/migrate", client, map[string]any{"reason": "test", "to": "zegocloud"}, 200, nil)
			e.mustDo("POST", path, client, map[string]any{"provider": "agora", "samples": qualityBody(now, 1)["samples"]}, 202, nil)
			e.mustDo("POST", path, client, qualityBody(now, 2), 202, nil) // on zegocloud now
			e.mustDo("GET", "/api/streaming/quality", admin, nil, 200, &q)
			if n, z := q.Providers["agora"]["eu-west"].M5.Samples, q.Providers["zegocloud"]["eu-west"].M5.Samples; n != 10 || z != 2 {
				t.Errorf("after the move: agora %d samples, zegocloud %d; want 10, 2", n, z)
			}

			// Another client's stream is not found; an ended one is a conflict.
			var other struct{ Token string }
			e.mustDo("POST", "/api/auth/tokens", bootstrapToken, map[string]string{"name": uniq("other"), "role": "client"}, 201, &other)
			e.mustDo("POST", path, other.Token, qualityBody(now, 1), 404, nil)
			b := e.start(client, streamBody("room-2", "u"))
			e.mustDo("POST", "/api/streams/"+b.ID+"/end", client, nil, 200, nil)
			e.mustDo("POST", "/api/streams/"+b.ID+"/quality", client, qualityBody(now, 1), 409, nil)
		})
	}
}

// TestQualityBadInput wants a 400 naming the field for every sample that
// breaks a rule.
func TestQualityBadInput(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	client := e.tokens[sb.RoleClient]
	a := e.start(client, streamBody("room", "u"))
	path := "/api/streams/" + a.ID + "/quality"
	now := e.clock.Now()
	with := func(field string, v any) map[string]any {
		b := qualityBody(now, 2)
		b["samples"].([]map[string]any)[1][field] = v
		return b
	}
	for _, c := range []struct {
		name  string
		body  any
		field string
	}{
		{"no samples", map[string]any{"samples": []any{}}, "samples"},
		{"samples missing", map[string]any{}, "samples"},
		{"too many", qualityBody(now, 61), "samples"},
		{"loss above 1", with("packetLoss", 1.5), "samples[1].packetLoss"},
		{"negative rtt", with("rttMs", -1), "samples[1].rttMs"},
		{"huge jitter", with("jitterMs", 1e9), "samples[1].jitterMs"},
		{"negative bitrate", with("bitrateKbps", -3), "samples[1].bitrateKbps"},
		{"fps", with("fps", 1000), "samples[1].fps"},
		{"freezes", with("freezeCount", -1), "samples[1].freezeCount"},
		{"frozen too long", with("freezeMs", 3_600_000), "samples[1].freezeMs"},
		{"old", with("at", now.Add(-25*time.Hour).Format(time.RFC3339)), "samples[1].at"},
		{"future", with("at", now.Add(time.Hour).Format(time.RFC3339)), "samples[1].at"},
		{"no time", with("at", nil), "samples[1].at"},
		{"provider", map[string]any{"provider": "Not A Name", "samples": qualityBody(now, 1)["samples"]}, "provider"},
		{"unknown field", with("mos", 4), "samples[1].mos"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			st, b := e.do("POST", path, client, c.body)
			var eb errorBody
			if err := json.Unmarshal(b, &eb); err != nil {
				t.Fatalf("status %d, not a JSON error: %s", st, b)
			}
			if st != 400 || eb.Error.Field != c.field {
				t.Fatalf("got %d field %q, want 400 field %q: %s", st, eb.Error.Field, c.field, b)
			}
		})
	}
}

// TestQualityRateLimit: past its budget a stream's reports are 429 with
// Retry-After, and another stream's budget is its own.
func TestQualityRateLimit(t *testing.T) {
	e := newTestEnv(t)
	e.api.qualityOnce.Do(func() { e.api.qualityLim = newLimiterSet(time.Hour, 3) })
	e.createProvider(e.agoraProvider("agora", 1))
	client := e.tokens[sb.RoleClient]
	a := e.start(client, streamBody("room", "u"))
	b := e.start(client, streamBody("room", "v"))
	now := e.clock.Now()
	for range 3 {
		e.mustDo("POST", "/api/streams/"+a.ID+"/quality", client, qualityBody(now, 1), 202, nil)
	}
	js, _ := json.Marshal(qualityBody(now, 1))
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/streams/"+a.ID+"/quality", strings.NewReader(string(js)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", bearer(client))
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	st, h := resp.StatusCode, resp.Header
	if st != 429 || h.Get("Retry-After") == "" {
		t.Fatalf("fourth report: %d, Retry-After %q; want 429 with Retry-After", st, h.Get("Retry-After"))
	}
	e.mustDo("POST", "/api/streams/"+b.ID+"/quality", client, qualityBody(now, 1), 202, nil)
	// Someone else's reports do not use up the stream's budget.
	var other struct{ Token string }
	e.mustDo("POST", "/api/auth/tokens", bootstrapToken, map[string]string{"name": "other", "role": "client"}, 201, &other)
	for range 5 {
		e.mustDo("POST", "/api/streams/"+b.ID+"/quality", other.Token, qualityBody(now, 1), 404, nil)
	}
	e.mustDo("POST", "/api/streams/"+b.ID+"/quality", client, qualityBody(now, 1), 202, nil)
}
