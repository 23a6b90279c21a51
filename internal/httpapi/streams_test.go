package httpapi

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/providers/agora"
	"github.com/switchboardhq/switchboard/internal/providers/fault"
	"github.com/switchboardhq/switchboard/internal/providers/zegocloud"
	"github.com/switchboardhq/switchboard/internal/streams"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

type statsBody struct {
	Providers []streams.ProviderStats
}

func (e *testEnv) stats() map[string]streams.ProviderStats {
	e.t.Helper()
	var b statsBody
	e.mustDo("GET", "/api/streaming/stats", e.tokens[sb.RoleAdmin], nil, 200, &b)
	out := map[string]streams.ProviderStats{}
	for _, p := range b.Providers {
		out[p.Name] = p
	}
	return out
}

func (e *testEnv) start(token string, body map[string]any) streams.Assignment {
	e.t.Helper()
	var a streams.Assignment
	e.mustDo("POST", "/api/streams", token, body, 201, &a)
	return a
}

func streamBody(room, user string) map[string]any {
	return map[string]any{"room": room, "userId": user, "role": "publisher", "quality": "hd"}
}

// TestOriginalAcceptance runs the acceptance tests of the system Switchboard
// replaces against a running server with fake providers.
func TestOriginalAcceptance(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	e.createProvider(e.zegoProvider("zegocloud", 2))
	client, admin := e.tokens[sb.RoleClient], e.tokens[sb.RoleAdmin]

	a := e.start(client, streamBody("room1", "u1"))
	if a.Provider.Name != "agora" || a.Token == "" || a.TokenExpiresAt == nil || len(a.Fallbacks) != 1 || a.Fallbacks[0] != "zegocloud" {
		t.Fatalf("first stream: %+v", a)
	}
	// The join token is a real Agora AccessToken2 for the room.
	tok, err := agora.Parse(a.Token)
	if err != nil {
		t.Fatalf("agora token: %v", err)
	}
	if err := tok.Verify(secretCertificate); err != nil {
		t.Fatalf("agora token signature: %v", err)
	}

	t.Run("disable agora", func(t *testing.T) {
		e.t = t
		before := e.stats()["zegocloud"].ActiveStreams
		e.mustDo("PUT", "/api/streaming/providers/agora", admin, map[string]any{"enabled": false}, 200, nil)
		b := e.start(client, streamBody("room2", "u2"))
		if b.Provider.Name != "zegocloud" {
			t.Fatalf("with agora disabled the stream went to %s", b.Provider.Name)
		}
		claims, err := zegocloud.Decrypt04(b.Token, secretZego)
		if err != nil || claims.UserID != "u2" {
			t.Fatalf("zego token: %+v %v", claims, err)
		}
		if after := e.stats()["zegocloud"].ActiveStreams; after != before+1 {
			t.Fatalf("zegocloud active %d → %d", before, after)
		}
		e.mustDo("PUT", "/api/streaming/providers/agora", admin, map[string]any{"enabled": true}, 200, nil)
	})

	t.Run("swap priorities", func(t *testing.T) {
		e.t = t
		e.mustDo("PUT", "/api/streaming/providers/priorities", admin, map[string]any{"order": []string{"zegocloud", "agora"}}, 200, nil)
		if b := e.start(client, streamBody("room3", "u3")); b.Provider.Name != "zegocloud" {
			t.Fatalf("after the swap: %s", b.Provider.Name)
		}
		e.mustDo("PUT", "/api/streaming/providers/priorities", admin, map[string]any{"order": []string{"agora", "zegocloud"}}, 200, nil)
		if b := e.start(client, streamBody("room4", "u4")); b.Provider.Name != "agora" {
			t.Fatalf("after swapping back: %s", b.Provider.Name)
		}
	})

	t.Run("failure burst triggers a re-check", func(t *testing.T) {
		e.t = t
		if err := e.agora.Faults().Set(fault.ServerErr); err != nil {
			t.Fatal(err)
		}
		defer e.agora.Faults().Set(fault.OK)
		// Each burst of reports triggers one immediate check; three failed
		// checks make the provider CRITICAL.
		for burst := 0; burst < 3; burst++ {
			before := e.agora.Faults().Requests()
			for i := 0; i < 5; i++ {
				e.mustDo("POST", "/api/streams/"+a.ID+"/failures", client, map[string]any{"provider": "agora", "stage": "connect", "code": "CONNECTION_LOST", "message": "lost"}, 202, nil)
			}
			waitFor(t, func() bool { return e.agora.Faults().Requests() > before }, "an immediate check of agora")
			waitFor(t, func() bool {
				rec, _ := e.store.GetProvider(t.Context(), "agora")
				return rec.Health.ConsecutiveFailures >= burst+1
			}, "the check to be recorded")
		}
		rec, _ := e.store.GetProvider(t.Context(), "agora")
		if rec.Health.Status != sb.StatusCritical {
			t.Fatalf("agora status %s after three failed checks", rec.Health.Status)
		}
		if b := e.start(client, streamBody("room5", "u5")); b.Provider.Name != "zegocloud" {
			z, _ := e.store.GetProvider(t.Context(), "zegocloud")
			a, _ := e.store.GetProvider(t.Context(), "agora")
			t.Fatalf("a new stream went to CRITICAL %s (least bad %v, fallbacks %v); store: agora %s, zegocloud %s (%s)",
				b.Provider.Name, b.LeastBad, b.Fallbacks, a.Health.Status, z.Health.Status, z.Health.StatusReason)
		}
		// The failures count toward agora's error rate.
		if st := e.stats()["agora"]; st.ErrorRate <= 0 {
			t.Fatalf("agora error rate %v", st.ErrorRate)
		}
	})

	t.Run("migrate and trail", func(t *testing.T) {
		e.t = t
		var m streams.Assignment
		e.mustDo("POST", "/api/streams/"+a.ID+"/migrate", client, map[string]any{"reason": "media error"}, 200, &m)
		if m.Provider.Name != "zegocloud" || m.ID != a.ID {
			t.Fatalf("migrate: %+v", m)
		}
		e.clock.Advance(time.Second)
		var got struct {
			sb.Stream
			Trail []sb.TrailEntry
		}
		e.mustDo("GET", "/api/streams/"+a.ID, admin, nil, 200, &got)
		kinds := ""
		for _, tr := range got.Trail {
			kinds += tr.Kind + ","
		}
		if got.Provider != "zegocloud" || got.Migrations != 1 || kinds != "assign,"+strings.Repeat("failure,", 15)+"migrate," {
			t.Fatalf("stream %+v trail %s", got.Stream, kinds)
		}
		last := got.Trail[len(got.Trail)-1]
		if last.From != "agora" || last.Statuses["agora"] != sb.StatusCritical {
			t.Fatalf("migration entry: %+v", last)
		}
		st := e.stats()
		if st["agora"].FailoversOut != 1 || st["zegocloud"].FailoversIn != 1 {
			t.Fatalf("failovers: %+v %+v", st["agora"], st["zegocloud"])
		}
	})
}

// waitFor polls cond until it holds (testutil.Eventually).
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	testutil.Eventually(t, what, cond)
}

func TestStreamsOwnershipIdempotencyAndErrors(t *testing.T) {
	e := newTestEnv(t)
	client := e.tokens[sb.RoleClient]
	var other struct{ Token string }
	e.mustDo("POST", "/api/auth/tokens", bootstrapToken, map[string]string{"name": "other-app", "role": "client"}, 201, &other)

	// No provider: 503 with a JSON error.
	st, b := e.do("POST", "/api/streams", client, streamBody("r", "u"))
	if st != 503 {
		t.Fatalf("no provider: %d %s", st, b)
	}
	e.createProvider(e.agoraProvider("agora", 1))
	e.createProvider(e.zegoProvider("zegocloud", 2))

	body := streamBody("r", "u")
	body["idempotencyKey"] = "start-1"
	first := e.start(client, body)
	var again streams.Assignment
	e.mustDo("POST", "/api/streams", client, body, 200, &again)
	if again.ID != first.ID {
		t.Fatalf("retried start made a second stream: %s vs %s", again.ID, first.ID)
	}
	// The same key from another client is another stream.
	var theirs streams.Assignment
	e.mustDo("POST", "/api/streams", other.Token, body, 201, &theirs)
	if theirs.ID == first.ID {
		t.Fatal("idempotency keys leak across clients")
	}
	// A client may act only on its own streams.
	for _, path := range []string{"/heartbeat", "/end"} {
		if st, _ := e.do("POST", "/api/streams/"+first.ID+path, other.Token, "{}"); st != 404 {
			t.Fatalf("other client %s: %d", path, st)
		}
	}
	e.mustDo("POST", "/api/streams/"+first.ID+"/heartbeat", client, nil, 200, nil)
	bad := []struct {
		path string
		body any
		want int
	}{
		{"/api/streams", map[string]any{"room": "", "userId": "u", "role": "publisher"}, 400},
		{"/api/streams", map[string]any{"room": "r", "userId": "u", "role": "host"}, 400},
		{"/api/streams", map[string]any{"room": "r", "userId": "u", "role": "publisher", "quality": "8k"}, 400},
		{"/api/streams", map[string]any{"room": "r", "userId": "u", "role": "publisher", "exclude": []string{"Bad"}}, 400},
		{"/api/streams", map[string]any{"room": "r", "userId": "u", "role": "publisher", "extra": 1}, 400},
		{"/api/streams/" + first.ID + "/failures", map[string]any{"provider": "agora", "stage": "boom"}, 400},
		{"/api/streams/" + first.ID + "/failures", map[string]any{"provider": "ghost", "stage": "connect"}, 400},
		{"/api/streams/" + first.ID + "/failures", map[string]any{"provider": "zegocloud", "stage": "connect"}, 400}, // never on it
		{"/api/streams/" + first.ID + "/migrate", map[string]any{"reason": ""}, 400},
		{"/api/streams/" + first.ID + "/migrate", map[string]any{"reason": "x", "to": "agora"}, 400},
		{"/api/streams/" + first.ID + "/migrate", map[string]any{"reason": "x"}, 200}, // to zegocloud
		{"/api/streams/st_000000000000000000000000/end", nil, 404},
		{"/api/streams/nonsense/end", nil, 404},
	}
	for _, c := range bad {
		if st, b := e.do("POST", c.path, client, c.body); st != c.want {
			t.Errorf("POST %s %v: %d, want %d: %s", c.path, c.body, st, c.want, b)
		}
	}
	// With agora disabled there is nowhere else to go.
	e.mustDo("PUT", "/api/streaming/providers/agora", e.tokens[sb.RoleAdmin], map[string]any{"enabled": false}, 200, nil)
	if st, b := e.do("POST", "/api/streams/"+first.ID+"/migrate", client, map[string]any{"reason": "x"}); st != 503 {
		t.Fatalf("migrate with no other provider: %d %s", st, b)
	}
	// With no provider usable at all, a retried start still answers its stream.
	e.mustDo("PUT", "/api/streaming/providers/zegocloud", e.tokens[sb.RoleAdmin], map[string]any{"enabled": false}, 200, nil)
	var retried streams.Assignment
	e.mustDo("POST", "/api/streams", client, body, 200, &retried)
	if retried.ID != first.ID || retried.Token == "" {
		t.Fatalf("retry with every provider disabled: %+v", retried)
	}
	e.mustDo("POST", "/api/streams/"+first.ID+"/end", client, nil, 200, nil)
	e.mustDo("POST", "/api/streams/"+first.ID+"/end", client, nil, 200, nil) // idempotent
	var started, ended int
	for _, ev := range e.events.Events() {
		switch ev.Type {
		case sb.EventStreamStarted:
			started++
		case sb.EventStreamEnded:
			ended++
			if ev.Audience != sb.RoleAdmin {
				t.Fatalf("stream.ended is for admins, got audience %v", ev.Audience)
			}
		}
	}
	if started != 2 || ended != 1 {
		t.Fatalf("lifecycle events: %d started (want 2: a retried start is not new), %d ended (want 1)", started, ended)
	}
	if st, _ := e.do("POST", "/api/streams/"+first.ID+"/heartbeat", client, nil); st != 409 {
		t.Fatalf("heartbeat after end: %d", st)
	}
	var list struct {
		Streams    []sb.Stream
		NextCursor string
	}
	e.mustDo("GET", "/api/streams?status=ended&limit=1", e.tokens[sb.RoleAdmin], nil, 200, &list)
	if len(list.Streams) != 1 || list.Streams[0].ID != first.ID {
		t.Fatalf("ended streams: %+v", list)
	}
}

func TestConfigETag(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	e.createProvider(e.zegoProvider("zegocloud", 2))
	client := e.tokens[sb.RoleClient]
	var cfg struct {
		Providers           []streams.ProviderInfo
		MaxRetries          int
		MaxFailures         int
		HealthCheckInterval string
	}
	e.mustDo("GET", "/api/streaming/config", client, nil, 200, &cfg)
	if len(cfg.Providers) != 2 || cfg.Providers[0].Name != "agora" || cfg.Providers[0].AppID != agoraAppID || cfg.MaxRetries != 3 || cfg.MaxFailures != 3 || cfg.HealthCheckInterval != "30s" {
		t.Fatalf("config: %+v", cfg)
	}
	get := func(inm string) (int, string) {
		r, _ := newReq("GET", e.srv.URL+"/api/streaming/config", client, inm)
		resp, err := e.srv.Client().Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("ETag")
	}
	_, tag1 := get("")
	if st, _ := get(tag1); st != 304 {
		t.Fatalf("unchanged config: %d", st)
	}
	// A status change changes the ETag: the providers were checked when
	// created (EXCELLENT); a failed probe makes agora WARNING.
	if err := e.agora.Faults().Set(fault.RejectAuth); err != nil {
		t.Fatal(err)
	}
	var r checkResult
	e.mustDo("POST", "/api/streaming/providers/agora/health-check", e.tokens[sb.RoleAdmin], nil, 200, &r)
	if r.Healthy || r.Status != sb.StatusWarning {
		t.Fatalf("failed probe: %+v", r)
	}
	if err := e.agora.Faults().Set(fault.OK); err != nil {
		t.Fatal(err)
	}
	st, tag2 := get(tag1)
	if st != 200 || tag2 == tag1 {
		t.Fatalf("after a status change: %d %s %s", st, tag1, tag2)
	}
	// A config change changes it too.
	e.mustDo("PUT", "/api/streaming/providers/priorities", e.tokens[sb.RoleAdmin], map[string]any{"order": []string{"zegocloud", "agora"}}, 200, nil)
	if st, tag3 := get(tag2); st != 200 || tag3 == tag2 {
		t.Fatalf("after a reorder: %d", st)
	}
}

// TestConcurrentStartsAndEnds starts and ends 1,000 streams at once and checks
// that the counters are exact.
func TestConcurrentStartsAndEnds(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	e.createProvider(e.zegoProvider("zegocloud", 1)) // same priority: weighted spread
	client := e.tokens[sb.RoleClient]
	const n = 1000
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			st, b := e.doQuiet("POST", "/api/streams", client, streamBody(fmt.Sprintf("room-%d", i), fmt.Sprintf("u%d", i)))
			if st != 201 {
				errs <- fmt.Errorf("start %d: %d %s", i, st, b)
				return
			}
			ids[i] = idOf(b)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := e.stats()
	if got := st["agora"].ActiveStreams + st["zegocloud"].ActiveStreams; got != n {
		t.Fatalf("active streams %d, want %d", got, n)
	}
	if st["agora"].ActiveStreams == 0 || st["zegocloud"].ActiveStreams == 0 {
		t.Fatalf("equal priorities were not shared: %+v", st)
	}
	errs = make(chan error, n)
	for i := range n / 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if st, b := e.doQuiet("POST", "/api/streams/"+ids[i]+"/end", client, nil); st != 200 {
				errs <- fmt.Errorf("end %d: %d %s", i, st, b)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st = e.stats()
	if active, total := st["agora"].ActiveStreams+st["zegocloud"].ActiveStreams, st["agora"].TotalStreams+st["zegocloud"].TotalStreams; active != n/2 || total != n {
		t.Fatalf("after ending half: active %d total %d", active, total)
	}
}

// TestCostMatchesHandCalculation prices known minutes.
func TestCostMatchesHandCalculation(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	e.mustDo("PUT", "/api/streaming/providers/agora", e.tokens[sb.RoleAdmin], map[string]any{"monthlyBudget": 10}, 200, nil)
	client := e.tokens[sb.RoleClient]
	// Keep the streams inside one month whatever today is.
	now := e.clock.Now()
	e.clock.Advance(time.Date(now.Year(), now.Month(), 1, 1, 0, 0, 0, time.UTC).AddDate(0, 1, 0).Sub(now))
	hd := e.start(client, streamBody("hd", "u1"))
	audio := e.start(client, map[string]any{"room": "audio", "userId": "u2", "role": "subscriber", "quality": "audio"})
	full := e.start(client, map[string]any{"room": "full", "userId": "u3", "role": "publisher", "quality": "fullhd"})
	e.clock.Advance(90 * time.Minute)
	e.mustDo("POST", "/api/streams/"+audio.ID+"/end", client, nil, 200, nil)
	e.mustDo("POST", "/api/streams/"+full.ID+"/end", client, nil, 200, nil)
	e.clock.Advance(30 * time.Minute)
	e.mustDo("POST", "/api/streams/"+hd.ID+"/end", client, nil, 200, nil)
	// hd: 120 min × $3.99/1000 = $0.4788; audio: 90 × 0.99/1000 = $0.0891;
	// fullhd: 90 × 8.99/1000 = $0.8091. Total $1.377 → $1.38.
	st := e.stats()["agora"]
	if st.MinutesThisMonth != 300 || st.MonthlyCost != 1.38 || st.BudgetUsedPercent == nil || *st.BudgetUsedPercent != 13.8 {
		t.Fatalf("stats: minutes %v cost %v budget %v", st.MinutesThisMonth, st.MonthlyCost, st.BudgetUsedPercent)
	}
}
