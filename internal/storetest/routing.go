package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
)

// testRouting checks the routing configuration: the default until set, a
// change is kept and audited with the configuration before and after, an
// invalid one writes nothing, and an unchanged one writes no audit entry.
func testRouting(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	got, err := s.GetRouting(ctx)
	if err != nil || !got.Equal(switchboard.DefaultRoutingConfig()) {
		t.Fatalf("GetRouting of a new store = %+v, %v; want the default", got, err)
	}
	set := func(c switchboard.RoutingConfig) (switchboard.RoutingConfig, error) {
		c.Policy = switchboard.PolicyCommit
		c.Shares = map[string]float64{"agora-main": 0.35, "zego-main": 0.65}
		m := 12.5
		c.Regions["eu-west"] = switchboard.RegionRouting{Policy: switchboard.PolicyOptimized, Margin: &m}
		return c, nil
	}
	before, after, err := s.UpdateRouting(ctx, set, audit(""))
	if err != nil {
		t.Fatalf("UpdateRouting: %v", err)
	}
	if before.Policy != switchboard.PolicyPriority || after.Policy != switchboard.PolicyCommit || *after.Regions["eu-west"].Margin != 12.5 {
		t.Fatalf("before %+v after %+v", before, after)
	}
	got, err = s.GetRouting(ctx)
	if err != nil || !got.Equal(after) {
		t.Fatalf("GetRouting = %+v, %v; want %+v", got, err, after)
	}
	entries := mustAudit(t, s)
	if len(entries) != 1 || entries[0].Action != "routing.update" || entries[0].Target != "routing" ||
		!jsonEqual(entries[0].After, string(mustJSON(t, after))) || !jsonEqual(entries[0].Before, string(mustJSON(t, before))) {
		t.Fatalf("audit entries = %+v", entries)
	}
	// The same again writes nothing.
	if _, _, err := s.UpdateRouting(ctx, set, audit("")); err != nil {
		t.Fatal(err)
	}
	if n := len(mustAudit(t, s)); n != 1 {
		t.Fatalf("%d audit entries after an unchanged update, want 1", n)
	}
	// An invalid configuration is refused, naming the field, and writes nothing.
	_, _, err = s.UpdateRouting(ctx, func(c switchboard.RoutingConfig) (switchboard.RoutingConfig, error) {
		c.Shares = map[string]float64{"agora-main": 0.5}
		return c, nil
	}, audit(""))
	if e, ok := err.(*switchboard.Error); !ok || e.Code != switchboard.EInvalid || e.Field != "shares" {
		t.Fatalf("invalid shares: %v", err)
	}
	if got, _ := s.GetRouting(ctx); !got.Equal(after) {
		t.Fatalf("a refused update changed the configuration: %+v", got)
	}
}

// testRoutingStarts checks the starts counted for commit: by scope and
// provider, from the hour of since on, and buckets older than a day before
// since are deleted.
func testRoutingStarts(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 30, 0, 0, time.UTC)
	count := func(scope, provider string, at time.Time, n int) {
		t.Helper()
		for range n {
			if err := s.CountRoutingStart(ctx, scope, provider, at); err != nil {
				t.Fatal(err)
			}
		}
	}
	count("", "a", now, 3)
	count("", "b", now.Add(-time.Hour), 2)
	count("eu-west", "a", now.Add(-23*time.Hour), 1)
	count("", "a", now.Add(-30*time.Hour), 5) // outside the day
	count("", "b", now.Add(-50*time.Hour), 7) // deleted
	got, err := s.RoutingStarts(ctx, now.Add(-switchboard.CommitWindow))
	if err != nil {
		t.Fatal(err)
	}
	if got[""]["a"] != 3 || got[""]["b"] != 2 || got["eu-west"]["a"] != 1 || len(got) != 2 {
		t.Fatalf("RoutingStarts = %v", got)
	}
	// A wider window still sees the 30 h old bucket but no longer the 50 h
	// old one, deleted as older than a day before the previous since.
	got, err = s.RoutingStarts(ctx, now.Add(-60*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if got[""]["a"] != 8 || got[""]["b"] != 2 {
		t.Fatalf("RoutingStarts over 60 h = %v", got)
	}
}
