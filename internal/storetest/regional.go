package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
)

// regionalFold counts one successful check at at, as a fold of the health
// rules would, without depending on them.
func regionalFold(at time.Time, latency int64) func(switchboard.Health) switchboard.Health {
	return func(h switchboard.Health) switchboard.Health {
		h.TotalChecks++
		h.SuccessfulChecks++
		h.TotalRequests++
		h.ConsecutiveSuccesses++
		h.LastCheck, h.LastSuccess = &at, &at
		h.LatencyMs = latency
		h.Status = switchboard.StatusHealthy
		h.Down = h.TotalChecks == 1 // a field outside Health's JSON survives the round trip
		h.Window = switchboard.HealthWindow{Span: time.Hour, At: at, Checks: h.TotalChecks, SuccessfulChecks: h.SuccessfulChecks}
		return h
	}
}

// testRegionalHealth records checks of two providers from two regions and
// reads them back, and shows that a deleted provider's records go with it.
func testRegionalHealth(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustCreate(t, s, AgoraProvider(t, "agora"))
	mustCreate(t, s, HTTPProvider(t, "web", "https://status.example/health"))

	before, after, err := s.RecordRegionalCheck(ctx, "agora", "eu-west", "agent:fra-1", regionalFold(s0, 40))
	if err != nil {
		t.Fatal(err)
	}
	if before.TotalChecks != 0 || after.TotalChecks != 1 || !after.Down {
		t.Fatalf("first check: before %+v, after %+v", before, after)
	}
	before, after, err = s.RecordRegionalCheck(ctx, "agora", "eu-west", "agent:fra-2", regionalFold(s0.Add(time.Minute), 50))
	if err != nil {
		t.Fatal(err)
	}
	if before.TotalChecks != 1 || !before.Down || before.LastCheck == nil || !before.LastCheck.Equal(s0) || after.TotalChecks != 2 {
		t.Fatalf("second check: before %+v, after %+v", before, after)
	}
	if _, _, err := s.RecordRegionalCheck(ctx, "agora", "ap-east", switchboard.SourceServer, regionalFold(s0, 200)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RecordRegionalCheck(ctx, "web", "eu-west", switchboard.SourceServer, regionalFold(s0, 10)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.RecordRegionalCheck(ctx, "nope", "eu-west", switchboard.SourceServer, regionalFold(s0, 10)); !switchboard.IsCode(err, switchboard.ENotFound) {
		t.Errorf("unknown provider: %v; want ENotFound", err)
	}
	if _, _, err := s.RecordRegionalCheck(ctx, "web", "EU West", switchboard.SourceServer, regionalFold(s0, 10)); !switchboard.IsCode(err, switchboard.EInvalid) {
		t.Errorf("bad region: %v; want EInvalid", err)
	}

	got, err := s.ListRegionalHealth(ctx)
	if err != nil {
		t.Fatal(err)
	}
	type key struct{ provider, region, source string }
	var keys []key
	for _, rh := range got {
		keys = append(keys, key{rh.Provider, rh.Region, rh.Source})
	}
	want := []key{{"agora", "ap-east", "server"}, {"agora", "eu-west", "agent:fra-2"}, {"web", "eu-west", "server"}}
	if len(keys) != len(want) {
		t.Fatalf("ListRegionalHealth = %v; want %v", keys, want)
	}
	for i := range want {
		if keys[i] != want[i] {
			t.Fatalf("ListRegionalHealth = %v; want %v", keys, want)
		}
	}
	eu := got[1].Health
	if eu.TotalChecks != 2 || eu.LatencyMs != 50 || eu.Status != switchboard.StatusHealthy || eu.Down ||
		eu.LastCheck == nil || !eu.LastCheck.Equal(s0.Add(time.Minute)) || eu.Window.Span != time.Hour || eu.Window.Checks != 2 {
		t.Errorf("agora in eu-west = %+v", eu)
	}

	if err := s.DeleteProvider(ctx, "agora", audit("provider.delete")); err != nil {
		t.Fatal(err)
	}
	got, err = s.ListRegionalHealth(ctx)
	if err != nil || len(got) != 1 || got[0].Provider != "web" {
		t.Errorf("after deleting agora: %+v, %v; want web only", got, err)
	}
}

// testConcurrentRegionalHealth records checks of one provider and region from
// several goroutines at once: none is lost.
func testConcurrentRegionalHealth(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustCreate(t, s, AgoraProvider(t, "agora"))
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if _, _, err := s.RecordRegionalCheck(ctx, "agora", "eu-west", "agent:a", regionalFold(s0.Add(time.Duration(i)*time.Second), 1)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	got, err := s.ListRegionalHealth(ctx)
	if err != nil || len(got) != 1 || got[0].Health.TotalChecks != n {
		t.Fatalf("after %d concurrent checks: %+v, %v", n, got, err)
	}
}
