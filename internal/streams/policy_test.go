package streams

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

func healthy(t *testing.T, st sb.Store, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, _, err := st.UpdateHealth(context.Background(), n, time.Time{}, func(h sb.Health) sb.Health {
			h.Status = sb.StatusHealthy
			return h
		}); err != nil {
			t.Fatal(err)
		}
	}
}

func setRouting(t *testing.T, st sb.Store, body string) {
	t.Helper()
	var in sb.RoutingInput
	if err := json.Unmarshal([]byte(body), &in); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.UpdateRouting(context.Background(), in.ApplyTo, sb.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
}

// The start path applies the routing configuration in the store: commit
// holds its shares from the counts it keeps there, its decision is in the
// trail, and a change is seen once the service is told.
func TestStartRoutingPolicy(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "sb.db"))
	s := newService(t, st)
	s.routes = st
	healthy(t, st, "a", "b")
	setRouting(t, st, `{"policy":"commit","shares":{"a":0.25,"b":0.75}}`)
	got := map[string]int{}
	var first Assignment
	for i := range 40 {
		a := start(t, s, "r")
		if i == 0 {
			first = a
		}
		got[a.Provider.Name]++
	}
	if got["a"] != 10 || got["b"] != 30 {
		t.Fatalf("commit 0.25/0.75 over 40 starts: %v", got)
	}
	trail, err := st.StreamTrail(ctx, first.ID)
	if err != nil || len(trail) == 0 || !strings.Contains(trail[0].Reason, "policy commit") || !strings.Contains(trail[0].Reason, "scores:") {
		t.Fatalf("trail %+v, %v", trail, err)
	}
	counts, err := st.RoutingStarts(ctx, time.Now().Add(-sb.CommitWindow))
	if err != nil || counts[""]["a"] != 10 || counts[""]["b"] != 30 {
		t.Fatalf("starts in the store: %v, %v", counts, err)
	}

	// cost: b is cheaper for hd; a stays a fallback.
	if _, _, err := st.UpdateProvider(ctx, "b", func(p sb.Provider) (sb.Provider, error) {
		p.Pricing.PerThousandMinutes = map[sb.Quality]float64{sb.QualityHD: 1}
		return p, nil
	}, sb.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
	setRouting(t, st, `{"policy":"cost"}`)
	s.RoutingChanged()
	a, _, err := s.Start(ctx, "o", StartRequest{Room: "c", UserID: "u", Role: "publisher", Quality: sb.QualityHD})
	if err != nil || a.Provider.Name != "b" || len(a.Fallbacks) != 1 || a.Fallbacks[0] != "a" {
		t.Fatalf("cost: %+v, %v", a, err)
	}
}

// A region's override applies to that region's streams only, and commit
// counts its starts under the region's scope.
func TestStartRoutingRegionOverride(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "sb.db"))
	s := newService(t, st)
	s.routes = st
	healthy(t, st, "a", "b")
	setRouting(t, st, `{"regions":{"eu-west":{"policy":"commit","shares":{"a":0.5,"b":0.5}}}}`)
	got := map[string]map[string]int{"eu-west": {}, "us-east": {}}
	for i := range 10 {
		for _, region := range []string{"eu-west", "us-east"} {
			a, _, err := s.Start(ctx, "o", StartRequest{Room: "r", UserID: "u", Role: "publisher", Region: region})
			if err != nil {
				t.Fatalf("start %d in %s: %v", i, region, err)
			}
			got[region][a.Provider.Name]++
		}
	}
	if got["eu-west"]["a"] != 5 || got["eu-west"]["b"] != 5 || got["us-east"]["a"] != 10 {
		t.Fatalf("starts by region: %v", got)
	}
	counts, err := st.RoutingStarts(ctx, time.Now().Add(-sb.CommitWindow))
	if err != nil || counts["eu-west"]["a"] != 5 || counts[""]["a"] != 10 {
		t.Fatalf("counts by scope: %v, %v", counts, err)
	}
}

// With a flush period the starts counted for commit are written in batches:
// none is in the store before the flush, the service's own reads of the
// counts still see them, the flush writes each once, and Run writes what is
// left when it stops.
func TestStartRoutingCountsInBatches(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "sb.db"))
	newService(t, st) // the providers
	s := New(Config{Store: st, Checker: fakeChecker{}, Minters: map[sb.Kind]sb.TokenMinter{sb.KindAgora: fakeMinter{}},
		Routing: st, HeartbeatFlush: time.Hour})
	if s.startRec == nil {
		t.Fatal("the store takes counted starts in batches, but the service writes them one by one")
	}
	healthy(t, st, "a", "b")
	setRouting(t, st, `{"policy":"commit","shares":{"a":0.5,"b":0.5}}`)
	stored := func() sb.RoutingStarts {
		t.Helper()
		c, err := st.RoutingStarts(ctx, time.Now().Add(-sb.CommitWindow))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for range 4 {
		start(t, s, "r")
	}
	if c := stored(); c[""]["a"]+c[""]["b"] != 0 {
		t.Fatalf("counts in the store before a flush: %v", c)
	}
	// A read of the counts from the store adds the ones not written yet.
	s.pol.mu.Lock()
	s.pol.startsAt = time.Time{}
	s.pol.mu.Unlock()
	if in := s.policyInput(ctx, "", ""); in.Starts["a"] != 2 || in.Starts["b"] != 2 {
		t.Fatalf("counts the policy reads before a flush: %v", in.Starts)
	}
	if err := s.flushStarts(ctx); err != nil {
		t.Fatal(err)
	}
	if c := stored(); c[""]["a"] != 2 || c[""]["b"] != 2 {
		t.Fatalf("counts in the store after a flush: %v", c)
	}
	if err := s.flushStarts(ctx); err != nil {
		t.Fatal(err)
	}
	if c := stored(); c[""]["a"] != 2 || c[""]["b"] != 2 {
		t.Fatalf("counts after a second flush with nothing new: %v", c)
	}
	s.pol.mu.Lock()
	s.pol.startsAt = time.Time{}
	s.pol.mu.Unlock()
	if in := s.policyInput(ctx, "", ""); in.Starts["a"] != 2 || in.Starts["b"] != 2 {
		t.Fatalf("counts the policy reads after a flush: %v", in.Starts)
	}

	// Run writes the last ones as it stops.
	start(t, s, "r")
	start(t, s, "r")
	runAndStop(t, s)
	if c := stored(); c[""]["a"]+c[""]["b"] != 6 {
		t.Fatalf("counts after Run stopped: %v", c)
	}
}
