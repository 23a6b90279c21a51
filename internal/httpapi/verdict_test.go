package httpapi

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/health"
	"github.com/switchboardhq/switchboard/internal/streams"
)

// probeTarget is a loopback HTTP endpoint for an http provider: it answers
// 204, or, while hang is set, holds each request until the prober gives up.
type probeTarget struct {
	srv  *httptest.Server
	hits atomic.Int64
	hang atomic.Bool
}

func newProbeTarget(t *testing.T) *probeTarget {
	pt := &probeTarget{}
	pt.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pt.hits.Add(1)
		if pt.hang.Load() {
			<-r.Context().Done() // the probe's timeout ends it
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(pt.srv.Close)
	return pt
}

// closedURL is a loopback URL nothing listens on: a probe of it fails at
// once, with no outside network involved.
func closedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr + "/health"
}

func httpProvider(name string, priority int, url string) map[string]any {
	return map[string]any{"name": name, "kind": "http", "priority": priority,
		"config":      map[string]any{"url": url, "expectStatus": []int{204}},
		"healthCheck": map[string]any{"interval": "1h", "timeout": "200ms", "failureThreshold": 3, "successThreshold": 2}}
}

// TestVerdict: a provider is checked at once when created or when its config
// changes; it is UNKNOWN, and takes no stream, until a check succeeds; the
// answer of a check says whether this probe succeeded apart from whether the
// provider is usable; status is the badge and state the coarse state in every
// answer.
func TestVerdict(t *testing.T) {
	e := newTestEnv(t)
	su, admin, client := e.tokens[sb.RoleSuperadmin], e.tokens[sb.RoleAdmin], e.tokens[sb.RoleClient]
	good := newProbeTarget(t)

	// Created: checked before the answer.
	var created providerView
	e.mustDo("POST", "/api/streaming/providers", su, httpProvider("good", 2, good.srv.URL), 201, &created)
	if good.hits.Load() != 1 || created.TotalChecks != 1 || created.Status != sb.StatusExcellent ||
		created.State != sb.StateActive || !created.Usable || created.LastCheck == nil {
		t.Fatalf("created: hits %d, %+v; want checked at once, EXCELLENT, usable", good.hits.Load(), created)
	}

	// Created with a probe that fails: not verified, so UNKNOWN and not usable
	// although it has the highest priority.
	var late providerView
	e.mustDo("POST", "/api/streaming/providers", su, httpProvider("late", 1, closedURL(t)), 201, &late)
	if late.TotalChecks != 1 || late.ConsecutiveFailures != 1 || late.Status != sb.StatusUnknown ||
		late.State != sb.StateUnknown || late.Usable || late.LastError == nil {
		t.Fatalf("created unreachable: %+v; want one failed check, UNKNOWN, not usable", late)
	}
	var cfg struct {
		Providers []configProvider `json:"providers"`
	}
	e.mustDo("GET", "/api/streaming/config", client, nil, 200, &cfg)
	usable := map[string]bool{}
	for _, p := range cfg.Providers {
		usable[p.Name] = p.Usable
		if p.Healthy != p.Usable || p.State != health.StateOf(p.Status) {
			t.Errorf("config entry %s: %+v", p.Name, p)
		}
	}
	if !usable["good"] || usable["late"] || len(usable) != 2 {
		t.Fatalf("config usable = %v", usable)
	}
	var a streams.Assignment
	e.mustDo("POST", "/api/streams", client, map[string]any{"room": "r1", "userId": "u1", "role": "publisher"}, 201, &a)
	if a.Provider.Name != "good" || a.Standby != nil && a.Standby.Provider.Name == "late" {
		t.Fatalf("stream on %s (standby %+v), want good: an unverified provider takes no stream", a.Provider.Name, a.Standby)
	}

	// A probe that times out: healthy false for this probe, while the
	// provider, verified before, stays usable (WARNING).
	good.hang.Store(true)
	var r checkResult
	e.mustDo("POST", "/api/streaming/providers/good/health-check", admin, nil, 200, &r)
	if r.Healthy || !r.Probed || r.Stage != sb.StageTimeout || r.Status != sb.StatusWarning ||
		r.State != sb.StateDegraded || !r.Usable {
		t.Fatalf("timed-out probe: %+v; want healthy false, stage timeout, WARNING, degraded, usable", r)
	}
	// Uptime and error rate are the window's: 1 of 2 checks.
	if r.Uptime != 50 || r.ErrorRate != 50 {
		t.Errorf("check answer uptime %v error rate %v, want the window's 50 and 50", r.Uptime, r.ErrorRate)
	}
	good.hang.Store(false)
	var all struct{ Results []checkResult }
	e.mustDo("POST", "/api/streaming/providers/health-check-all", admin, nil, 200, &all)
	for _, x := range all.Results {
		if x.Name == "good" && (!x.Healthy || !x.Usable || x.Status != sb.StatusWarning) {
			t.Errorf("check all, good: %+v", x)
		}
		if x.Name == "late" && (x.Healthy || x.Usable || x.Status != sb.StatusUnknown || x.State != sb.StateUnknown) {
			t.Errorf("check all, late: %+v", x)
		}
	}

	// The badge is status and the coarse state is state, everywhere.
	var overview struct{ Providers []map[string]any }
	e.mustDo("GET", "/api/streaming/providers/health-check-all", admin, nil, 200, &overview)
	for _, p := range overview.Providers {
		if _, ok := p["badge"]; ok {
			t.Errorf("health overview still has badge: %v", p)
		}
		if p["name"] == "late" && (p["status"] != "UNKNOWN" || p["state"] != "unknown" || p["usable"] != false) {
			t.Errorf("health overview, late: %v", p)
		}
	}
	var pub publicHealth
	e.mustDo("GET", "/api/streaming/providers/late/health", "", nil, 200, &pub)
	if pub.Status != sb.StatusUnknown || pub.State != sb.StateUnknown || pub.Usable || pub.Healthy {
		t.Errorf("public health of late: %+v", pub)
	}

	// Its config changes to a reachable URL: checked at once, verified.
	var upd providerView
	e.mustDo("PUT", "/api/streaming/providers/late", admin, map[string]any{"config": map[string]any{"url": good.srv.URL, "expectStatus": []int{204}}}, 200, &upd)
	if !upd.Usable || upd.ConsecutiveFailures != 0 || upd.Status == sb.StatusUnknown {
		t.Fatalf("after a config change: %+v; want checked at once and usable", upd)
	}
	// A change that does not touch what the probe uses does not probe.
	before := good.hits.Load()
	e.mustDo("PUT", "/api/streaming/providers/late", admin, map[string]any{"displayName": "Late"}, 200, nil)
	if good.hits.Load() != before {
		t.Errorf("a display name change probed the provider")
	}
	// Enabling probes at once.
	e.mustDo("PUT", "/api/streaming/providers/late", admin, map[string]any{"enabled": false}, 200, nil)
	e.mustDo("PUT", "/api/streaming/providers/late", admin, map[string]any{"enabled": true}, 200, &upd)
	if good.hits.Load() != before+1 || !upd.Usable {
		t.Errorf("enable: %d probes, usable %v; want one probe at once", good.hits.Load()-before, upd.Usable)
	}
}

// TestVerdictAllUnverified: on a fresh install where no provider has passed a
// check, a stream still starts, on the highest-priority unverified provider,
// and its trail says the choice was unverified.
func TestVerdictAllUnverified(t *testing.T) {
	e := newTestEnv(t)
	su, admin, client := e.tokens[sb.RoleSuperadmin], e.tokens[sb.RoleAdmin], e.tokens[sb.RoleClient]
	e.mustDo("POST", "/api/streaming/providers", su, httpProvider("second", 2, closedURL(t)), 201, nil)
	e.mustDo("POST", "/api/streaming/providers", su, httpProvider("first", 1, closedURL(t)), 201, nil)
	var a streams.Assignment
	e.mustDo("POST", "/api/streams", client, map[string]any{"room": "r1", "userId": "u1", "role": "publisher"}, 201, &a)
	if a.Provider.Name != "first" || a.Standby != nil {
		t.Fatalf("all unverified: stream on %s, standby %+v; want first, no standby", a.Provider.Name, a.Standby)
	}
	var got struct {
		Trail []sb.TrailEntry
	}
	e.mustDo("GET", "/api/streams/"+a.ID, admin, nil, 200, &got)
	if len(got.Trail) == 0 || !strings.HasPrefix(got.Trail[0].Reason, "unverified:") || got.Trail[0].Statuses["first"] != sb.StatusUnknown {
		t.Fatalf("trail: %+v; want the assignment marked unverified", got.Trail)
	}
}
