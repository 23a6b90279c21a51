package httpapi

import (
	"encoding/json"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// windowProvider is the part of a provider view that the window and today
// tests read.
type windowProvider struct {
	Status              sb.Status `json:"status"`
	Uptime              float64   `json:"uptime"`
	ErrorRate           float64   `json:"errorRate"`
	ConsecutiveFailures int       `json:"consecutiveFailures"`
	ClientFailures      int64     `json:"clientFailures"`
	TotalChecks         int64     `json:"totalChecks"`
	TotalRequests       int64     `json:"totalRequests"`
	FailedRequests      int64     `json:"failedRequests"`
	HealthCheck         struct {
		Window string `json:"window"`
	} `json:"healthCheck"`
	Lifetime struct {
		Uptime           float64 `json:"uptime"`
		ErrorRate        float64 `json:"errorRate"`
		TotalChecks      int64   `json:"totalChecks"`
		SuccessfulChecks int64   `json:"successfulChecks"`
		TotalRequests    int64   `json:"totalRequests"`
		FailedRequests   int64   `json:"failedRequests"`
	} `json:"lifetime"`
	Today todayView `json:"today"`
}

func (e *testEnv) windowView(name string) windowProvider {
	e.t.Helper()
	var v windowProvider
	e.mustDo("GET", "/api/streaming/providers/"+name, e.tokens[sb.RoleAdmin], nil, 200, &v)
	return v
}

// TestHealthWindowAndToday runs against a real server: the window is set and
// validated through the API, client-reported failures show in the window and
// in today's block, and today starts at zero at UTC midnight while the window
// keeps what is inside it.
func TestHealthWindowAndToday(t *testing.T) {
	e := newTestEnv(t)
	midnight := time.Date(2026, 3, 11, 0, 0, 0, 0, time.UTC)
	e.clock.Set(midnight.Add(-30 * time.Minute))
	admin, client := e.tokens[sb.RoleAdmin], e.tokens[sb.RoleClient]

	p := e.agoraProvider("agora", 1)
	p["healthCheck"] = map[string]any{"window": "1h"}
	e.createProvider(p)
	e.createProvider(e.zegoProvider("zegocloud", 2))
	if v := e.windowView("zegocloud"); v.HealthCheck.Window != "24h0m0s" {
		t.Errorf("default window %q, want 24h0m0s", v.HealthCheck.Window)
	}
	for _, bad := range []string{"31d", "721h", "999ms", "0s", "soon"} {
		code, body := e.do("PUT", "/api/streaming/providers/zegocloud", admin, map[string]any{"healthCheck": map[string]any{"window": bad}})
		var er struct {
			Error struct {
				Field string `json:"field"`
			} `json:"error"`
		}
		_ = json.Unmarshal(body, &er)
		if code != 400 || er.Error.Field != "healthCheck.window" {
			t.Errorf("window %q: %d %s, want 400 naming healthCheck.window", bad, code, body)
		}
	}
	var upd windowProvider
	e.mustDo("PUT", "/api/streaming/providers/zegocloud", admin, map[string]any{"healthCheck": map[string]any{"window": "30d"}}, 200, &upd)
	if upd.HealthCheck.Window != "720h0m0s" {
		t.Errorf("window 30d reads back %q", upd.HealthCheck.Window)
	}

	e.mustDo("POST", "/api/streaming/providers/agora/health-check", admin, nil, 200, nil)
	e.mustDo("POST", "/api/streaming/providers/zegocloud/health-check", admin, nil, 200, nil)
	a := e.start(client, streamBody("room1", "u1"))
	if a.Provider.Name != "agora" {
		t.Fatalf("the stream went to %s", a.Provider.Name)
	}
	e.clock.Advance(10 * time.Minute) // 23:40
	e.mustDo("POST", "/api/streams/"+a.ID+"/failures", client, map[string]any{"provider": "agora", "stage": "connect", "code": "CONNECTION_LOST", "message": "lost"}, 202, nil)
	waitFor(t, func() bool { return e.windowView("agora").ClientFailures == 1 }, "the client failure in agora's window")
	e.clock.Advance(5 * time.Minute) // 23:45
	e.mustDo("POST", "/api/streams/"+a.ID+"/migrate", client, map[string]any{"reason": "media error"}, 200, nil)

	v := e.windowView("agora")
	want := todayView{Since: midnight.Add(-24 * time.Hour), StreamsStarted: 1, FailoversOut: 1, ClientFailures: 1, StreamMinutes: 15}
	if v.Today != want {
		t.Errorf("agora today = %+v, want %+v", v.Today, want)
	}
	if v.ClientFailures != 1 || v.TotalRequests != v.TotalChecks+1 || v.FailedRequests < 1 || v.ErrorRate <= 0 {
		t.Errorf("agora window: %+v", v)
	}
	if v.Lifetime.TotalRequests != v.Lifetime.TotalChecks+1 || v.Lifetime.TotalChecks < 1 || v.Lifetime.FailedRequests < 1 {
		t.Errorf("agora lifetime: %+v", v.Lifetime)
	}
	if z := e.windowView("zegocloud").Today; z.FailoversIn != 1 || z.StreamsStarted != 0 {
		t.Errorf("zegocloud today = %+v", z)
	}

	// Past midnight today starts at zero; yesterday keeps its counts.
	e.clock.Set(midnight.Add(10 * time.Minute))
	v = e.windowView("agora")
	if want := (todayView{Since: midnight}); v.Today != want {
		t.Errorf("agora today after midnight = %+v, want zeros since %v", v.Today, midnight)
	}
	act, err := e.store.Activity(t.Context(), midnight.Add(-24*time.Hour), midnight)
	if err != nil || act["agora"].ClientFailures != 1 || act["agora"].StreamsStarted != 1 {
		t.Errorf("yesterday's activity = %+v, %v", act["agora"], err)
	}
	// At 00:10 the 1 h window still holds the report of 23:40; at 00:45 it
	// does not.
	var chk windowProvider
	e.mustDo("POST", "/api/streaming/providers/agora/health-check", admin, nil, 200, nil)
	chk = e.windowView("agora")
	if chk.ClientFailures != 1 {
		t.Errorf("at 00:10 the window has %d client failures, want 1", chk.ClientFailures)
	}
	e.clock.Set(midnight.Add(45 * time.Minute))
	e.mustDo("POST", "/api/streaming/providers/agora/health-check", admin, nil, 200, nil)
	chk = e.windowView("agora")
	if chk.ClientFailures != 0 || chk.ErrorRate != 0 || chk.Uptime != 100 || chk.Lifetime.ErrorRate == 0 {
		t.Errorf("at 00:45 the window is %+v; want no failure in it, and the lifetime keeps it", chk)
	}

	// The public health and the admin health view count the window too.
	var pub struct {
		Uptime    float64 `json:"uptime"`
		ErrorRate float64 `json:"errorRate"`
		Window    string  `json:"window"`
	}
	e.mustDo("GET", "/api/streaming/providers/agora/health", "", nil, 200, &pub)
	if pub.Uptime != 100 || pub.ErrorRate != 0 || pub.Window != "1h0m0s" {
		t.Errorf("public health = %+v", pub)
	}
	var all struct {
		Providers []struct {
			Name           string  `json:"name"`
			ErrorRate      float64 `json:"errorRate"`
			ClientFailures int64   `json:"clientFailures"`
			Window         *string `json:"window"`
		} `json:"providers"`
	}
	e.mustDo("GET", "/api/streaming/providers/health-check-all", admin, nil, 200, &all)
	for _, h := range all.Providers {
		if h.Name == "agora" && (h.ErrorRate != 0 || h.ClientFailures != 0 || h.Window == nil || *h.Window != "1h0m0s") {
			t.Errorf("agora health view = %+v", h)
		}
	}
}
