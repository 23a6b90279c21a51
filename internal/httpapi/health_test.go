package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/providers/fault"
	"github.com/switchboardhq/switchboard/internal/providers/livekit/livekitfake"
)

// TestHealthLifecycle drives each provider kind against its fake through the
// API: checked at once when created (usable) → failing (each check answers
// healthy false for its probe while the provider stays usable, CRITICAL after
// three failures, public healthy false) → recovered (one success is a healthy
// probe but not enough to be usable again, two are).
func TestHealthLifecycle(t *testing.T) {
	e := newTestEnv(t)
	lk, err := livekitfake.New(livekitfake.Config{APIKey: "lk-key", APISecret: secretLiveKit})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lk.Close() })
	var hits int
	hf, err := fault.Start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fault.AuthRejected(r) || r.Header.Get("Authorization") != secretHeader {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		hits++
		w.WriteHeader(http.StatusNoContent)
	}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hf.Close() })

	e.createProvider(e.agoraProvider("agora", 1))
	e.createProvider(e.zegoProvider("zegocloud", 2))
	e.createProvider(map[string]any{"name": "livekit", "kind": "livekit", "priority": 3,
		"config": map[string]any{"url": lk.URL()}, "credentials": map[string]any{"apiKey": "lk-key", "apiSecret": secretLiveKit}})
	e.createProvider(map[string]any{"name": "cdn", "kind": "http", "priority": 4,
		"config":      map[string]any{"url": hf.URL() + "/status", "expectStatus": []int{204}},
		"credentials": map[string]any{"headers": map[string]string{"Authorization": secretHeader}}})

	faults := map[string]*fault.Server{"agora": e.agora.Faults(), "zegocloud": e.zego.Faults(), "livekit": lk.Faults(), "cdn": hf}
	admin := e.tokens[sb.RoleAdmin]
	check := func(name string) checkResult {
		t.Helper()
		var r checkResult
		e.mustDo("POST", "/api/streaming/providers/"+name+"/health-check", admin, nil, 200, &r)
		return r
	}
	public := func(name string) publicHealth {
		t.Helper()
		var h publicHealth
		e.mustDo("GET", "/api/streaming/providers/"+name+"/health", "", nil, 200, &h)
		return h
	}
	for name, fs := range faults {
		t.Run(name, func(t *testing.T) {
			e.t = t
			if h := public(name); h.Status != sb.StatusExcellent || h.State != sb.StateActive || !h.Usable || !h.Healthy || h.LastCheck == nil {
				t.Fatalf("created: not checked at once: %+v", h)
			}
			r := check(name)
			if !r.Healthy || !r.Usable || r.Status != sb.StatusExcellent || r.State != sb.StateActive || r.Stage != "" {
				t.Fatalf("healthy check: %+v", r)
			}
			if err := fs.Set(fault.RejectAuth); err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 3; i++ {
				r = check(name)
				// healthy is this probe's outcome; usable is the provider's
				// verdict, which holds until the third failure.
				if r.Healthy || r.Usable != (i < 3) {
					t.Fatalf("after %d failures: healthy=%v usable=%v (%s)", i, r.Healthy, r.Usable, r.Status)
				}
				if r.Stage != sb.StageAuth {
					t.Fatalf("rejected credentials failed at stage %q (%s), want auth", r.Stage, r.Error)
				}
			}
			if r.Status != sb.StatusCritical || r.State != sb.StateDown {
				t.Fatalf("after 3 failures: %+v", r)
			}
			if h := public(name); h.Healthy || h.Status != sb.StatusCritical {
				t.Fatalf("public after 3 failures: %+v", h)
			}
			if err := fs.Set(fault.OK); err != nil {
				t.Fatal(err)
			}
			if r = check(name); r.Status != sb.StatusCritical || r.Usable || !r.Healthy {
				t.Fatalf("one success must not be enough: %+v", r)
			}
			if r = check(name); r.Status == sb.StatusCritical || !r.Usable || !r.Healthy {
				t.Fatalf("two successes must recover: %+v", r)
			}
			if h := public(name); !h.Healthy {
				t.Fatalf("public after recovery: %+v", h)
			}
			var hist struct {
				Points      []historyPoint
				Transitions []sb.Transition
			}
			e.mustDo("GET", "/api/streaming/providers/"+name+"/history?window=24h", admin, nil, 200, &hist)
			if len(hist.Points) != 1 || hist.Points[0].Checks != 7 {
				t.Fatalf("history: %+v", hist.Points)
			}
			if len(hist.Transitions) < 3 || hist.Transitions[0].From != sb.StatusCritical {
				t.Fatalf("transitions: %+v", hist.Transitions)
			}
		})
	}
	e.t = t
	if hits == 0 {
		t.Fatal("the http provider was never reached with its secret header")
	}
	// Check all answers every enabled provider.
	var all struct{ Results []checkResult }
	e.mustDo("POST", "/api/streaming/providers/health-check-all", admin, nil, 200, &all)
	if len(all.Results) != 4 {
		t.Fatalf("check all: %+v", all.Results)
	}
	// Status events reached the bus, without secrets.
	var transitions int
	for _, ev := range e.events.Events() {
		if ev.Type == sb.EventProviderStatus {
			transitions++
		}
	}
	if transitions < 12 {
		t.Fatalf("%d status events, want at least 12", transitions)
	}
	// Prometheus shows probe counters by stage.
	_, metrics := e.do("GET", "/metrics", "", nil)
	for _, want := range []string{`switchboard_probes_total{provider="agora",result="failure",stage="auth"} 3`, `switchboard_provider_up{provider="agora"} 1`, "switchboard_probe_duration_seconds_bucket"} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

func TestDisableShowsDisabledAndSkipsProbe(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	admin := e.tokens[sb.RoleAdmin]
	e.mustDo("PUT", "/api/streaming/providers/agora", admin, map[string]any{"enabled": false}, 200, nil)
	var h publicHealth
	e.mustDo("GET", "/api/streaming/providers/agora/health", "", nil, 200, &h)
	if h.Status != sb.StatusDisabled || h.Healthy {
		t.Fatalf("disabled: %+v", h)
	}
	before := e.agora.Faults().Requests()
	var r checkResult
	e.mustDo("POST", "/api/streaming/providers/agora/health-check", admin, nil, 200, &r)
	if r.Probed || r.Healthy || r.Usable || r.Status != sb.StatusDisabled || r.State != sb.StateDown || e.agora.Faults().Requests() != before {
		t.Fatalf("a disabled provider was probed: %+v", r)
	}
}

func TestPublicHealthCachingAndRateLimit(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	e.api.public = newLimiterSet(time.Hour, 3)
	req := func(etag string) *http.Response {
		r, _ := http.NewRequest("GET", e.srv.URL+"/api/streaming/providers/agora/health", nil)
		if etag != "" {
			r.Header.Set("If-None-Match", etag)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	first := req("")
	if first.StatusCode != 200 || !strings.Contains(first.Header.Get("Cache-Control"), "max-age=") || first.Header.Get("ETag") == "" {
		t.Fatalf("first: %d %v", first.StatusCode, first.Header)
	}
	if second := req(first.Header.Get("ETag")); second.StatusCode != http.StatusNotModified {
		t.Fatalf("conditional: %d", second.StatusCode)
	}
	req("")
	limited := req("")
	if limited.StatusCode != http.StatusTooManyRequests || limited.Header.Get("Retry-After") == "" {
		t.Fatalf("4th request: %d %v", limited.StatusCode, limited.Header)
	}
	// Unknown provider: 404 in the JSON envelope (with a fresh limiter).
	e.api.public = nil
	st, b := e.do("GET", "/api/streaming/providers/nope/health", "", nil)
	var eb errorBody
	if st != 404 || json.Unmarshal(b, &eb) != nil {
		t.Fatalf("unknown: %d %s", st, b)
	}
	// The public body has exactly the documented keys.
	_, b = e.do("GET", "/api/streaming/providers/agora/health", "", nil)
	var keys map[string]any
	_ = json.Unmarshal(b, &keys)
	for _, k := range []string{"name", "usable", "healthy", "status", "state", "latency", "uptime", "errorRate", "lastCheck", "window"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("missing %s", k)
		}
	}
	if len(keys) != 10 {
		t.Errorf("public health has %d keys: %s", len(keys), b)
	}
}

func TestDeletedProviderLeavesMetrics(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	e.mustDo("POST", "/api/streaming/providers/agora/health-check", e.tokens[sb.RoleAdmin], nil, 200, nil)
	_, m := e.do("GET", "/metrics", "", nil)
	if !strings.Contains(string(m), `switchboard_probes_total{provider="agora"`) {
		t.Fatal("no probe series before delete")
	}
	e.mustDo("DELETE", "/api/streaming/providers/agora", e.tokens[sb.RoleSuperadmin], nil, 204, nil)
	_, m = e.do("GET", "/metrics", "", nil)
	if strings.Contains(string(m), `provider="agora"`) {
		t.Fatal("series of a deleted provider remain in /metrics")
	}
}

// TestPublicHealthLimitPerIPv6Prefix: the public health's limit was kept per
// address, so a client with an IPv6 /64 (one host's usual share) met a fresh
// bucket with every address it chose and was never limited. Now IPv6
// addresses share their /64's bucket, as login attempts do; another /64 and
// IPv4 addresses keep buckets of their own.
func TestPublicHealthLimitPerIPv6Prefix(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	e.api.public = newLimiterSet(time.Hour, 3)
	proxies, err := ParseTrustedProxies("127.0.0.0/8, ::1")
	if err != nil {
		t.Fatal(err)
	}
	e.api.proxies = proxies
	get := func(from string) int {
		r, _ := http.NewRequest("GET", e.srv.URL+"/api/streaming/providers/agora/health", nil)
		r.Header.Set("X-Forwarded-For", from)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var got []int
	for i := range 6 {
		got = append(got, get(fmt.Sprintf("2001:db8:1:2::%x", i+1)))
	}
	if want := []int{200, 200, 200, 429, 429, 429}; !slices.Equal(got, want) {
		t.Fatalf("six addresses of one /64: %v, want %v", got, want)
	}
	if st := get("2001:db8:1:3::1"); st != 200 {
		t.Fatalf("another /64: %d, want 200", st)
	}
	for i := range 3 {
		if st := get(fmt.Sprintf("192.0.2.%d", i+1)); st != 200 {
			t.Fatalf("IPv4 address %d: %d, want 200 (a bucket each)", i+1, st)
		}
	}
}

// TestLimiterSetForgetsIdleKeysWhenFull: past maxLimiterKeys buckets the
// idle ones are forgotten after a second rather than a minute.
func TestLimiterSetForgetsIdleKeysWhenFull(t *testing.T) {
	l := newLimiterSet(time.Millisecond, 1)
	l.last = time.Now() // the minute's sweep is not due
	for i := range maxLimiterKeys {
		l.allow(strconv.Itoa(i))
	}
	if n := len(l.m); n != maxLimiterKeys {
		t.Fatalf("%d buckets, want %d", n, maxLimiterKeys)
	}
	l.mu.Lock()
	l.last = time.Now().Add(-2 * time.Second)
	for _, en := range l.m {
		en.seen = en.seen.Add(-time.Second) // idle for longer than burst × every
	}
	l.mu.Unlock()
	l.allow("new")
	if n := len(l.m); n != 1 {
		t.Fatalf("%d buckets after the sweep, want 1 (the new key's)", n)
	}
}
