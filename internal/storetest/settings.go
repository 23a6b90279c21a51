package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
)

// testSettings checks the settings: unset until set, a partial change sets
// only what it changes, the audit entry holds the values before and after
// (defaults filled in), and a refused change writes nothing.
func testSettings(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	defaults := switchboard.DefaultSettings()
	got, err := s.GetSettings(ctx)
	if err != nil || got != (switchboard.Settings{}) {
		t.Fatalf("GetSettings of a new store = %+v, %v; want none set", got, err)
	}

	before, after, err := s.UpdateSettings(ctx, defaults, func(cur switchboard.Settings) (switchboard.Settings, error) {
		cur.MaxRetries, cur.RetryBackoff = 5, switchboard.Duration(250*time.Millisecond)
		return cur, nil
	}, audit(""))
	if err != nil {
		t.Fatalf("UpdateSettings: %v", err)
	}
	want := defaults
	if before != want {
		t.Errorf("before = %+v, want the defaults %+v", before, want)
	}
	want.MaxRetries, want.RetryBackoff = 5, switchboard.Duration(250*time.Millisecond)
	if after != want {
		t.Errorf("after = %+v, want %+v", after, want)
	}
	got, err = s.GetSettings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if wantSet := (switchboard.Settings{MaxRetries: 5, RetryBackoff: switchboard.Duration(250 * time.Millisecond)}); got != wantSet {
		t.Errorf("GetSettings = %+v, want only the changed ones set: %+v", got, wantSet)
	}
	entries := mustAudit(t, s)
	if len(entries) != 1 {
		t.Fatalf("%d audit entries, want 1", len(entries))
	}
	e := entries[0]
	if e.Action != "settings.update" || e.Target != "settings" || e.Actor != actor {
		t.Errorf("audit entry = %+v", e)
	}
	if !jsonEqual(e.Before, `{"maxRetries":3,"maxFailures":3,"healthCheckInterval":"30s","retryBackoff":"100ms","retryBudget":0.2,"leaderLease":"10s","preemptive":"new-streams","maxPreemptiveMigrationsPerMinute":30}`) ||
		!jsonEqual(e.After, `{"maxRetries":5,"maxFailures":3,"healthCheckInterval":"30s","retryBackoff":"250ms","retryBudget":0.2,"leaderLease":"10s","preemptive":"new-streams","maxPreemptiveMigrationsPerMinute":30}`) {
		t.Errorf("audit before %s after %s, want every value before and after", e.Before, e.After)
	}

	// Other defaults (another replica's flags) fill the settings not set.
	other := defaults
	other.LeaderLease = switchboard.Duration(20 * time.Second)
	before, _, err = s.UpdateSettings(ctx, other, func(cur switchboard.Settings) (switchboard.Settings, error) { return cur, nil }, audit(""))
	if err != nil || before.LeaderLease != other.LeaderLease || before.MaxRetries != 5 {
		t.Errorf("before with other defaults = %+v, %v", before, err)
	}
	if n := len(mustAudit(t, s)); n != 1 {
		t.Errorf("a change that changes nothing wrote an audit entry: %d entries", n)
	}

	// Refused changes: fn's error, or a value out of range.
	boom := errors.New("boom")
	if _, _, err := s.UpdateSettings(ctx, defaults, func(cur switchboard.Settings) (switchboard.Settings, error) {
		cur.MaxFailures = 7
		return cur, boom
	}, audit("")); !errors.Is(err, boom) {
		t.Errorf("UpdateSettings with fn failing = %v, want fn's error", err)
	}
	_, _, err = s.UpdateSettings(ctx, defaults, func(cur switchboard.Settings) (switchboard.Settings, error) {
		cur.MaxFailures, cur.RetryBudget = 7, 2
		return cur, nil
	}, audit(""))
	wantCode(t, err, switchboard.EInvalid)
	var se *switchboard.Error
	if !errors.As(err, &se) || se.Field != "retryBudget" {
		t.Errorf("error %v, want one naming retryBudget", err)
	}
	got, _ = s.GetSettings(ctx)
	if got.MaxFailures != 0 || got.RetryBudget != 0 || len(mustAudit(t, s)) != 1 {
		t.Errorf("a refused change was written: %+v", got)
	}
}

// testConcurrentSettings changes different settings at once: none is lost.
func testConcurrentSettings(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	defaults := switchboard.DefaultSettings()
	sets := []func(*switchboard.Settings){
		func(v *switchboard.Settings) { v.MaxRetries = 7 },
		func(v *switchboard.Settings) { v.MaxFailures = 8 },
		func(v *switchboard.Settings) { v.RetryBudget = 0.5 },
		func(v *switchboard.Settings) { v.LeaderLease = switchboard.Duration(30 * time.Second) },
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(sets))
	for _, set := range sets {
		wg.Go(func() {
			_, _, err := s.UpdateSettings(ctx, defaults, func(cur switchboard.Settings) (switchboard.Settings, error) {
				set(&cur)
				return cur, nil
			}, audit(""))
			errs <- err
		})
	}
	if failed := waitErrs(&wg, errs); len(failed) > 0 {
		t.Fatalf("UpdateSettings: %v", failed)
	}
	got, err := s.GetSettings(ctx)
	want := switchboard.Settings{MaxRetries: 7, MaxFailures: 8, RetryBudget: 0.5, LeaderLease: switchboard.Duration(30 * time.Second)}
	if err != nil || got != want {
		t.Errorf("GetSettings = %+v, %v; want %+v", got, err, want)
	}
	if n := len(mustAudit(t, s)); n != len(sets) {
		t.Errorf("%d audit entries, want %d", n, len(sets))
	}
}
