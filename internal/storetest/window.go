package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/health"
)

// windowed returns a provider named name whose healthCheck.window is w.
func windowed(t *testing.T, name string, w time.Duration) switchboard.Provider {
	p := AgoraProvider(t, name)
	p.HealthCheck = policy
	p.HealthCheck.Interval, p.HealthCheck.Timeout = switchboard.Duration(time.Minute), switchboard.Duration(time.Second)
	p.HealthCheck.Window = switchboard.Duration(w)
	return p
}

// reportFailure records one client-reported failure of name at at, as the
// health checker does.
func reportFailure(t *testing.T, s switchboard.Store, name string, at time.Time) switchboard.Health {
	t.Helper()
	_, after, err := s.UpdateHealth(context.Background(), name, at, func(h switchboard.Health) switchboard.Health {
		return health.ObserveClientFailure(h, at, policy, true)
	})
	if err != nil {
		t.Fatalf("UpdateHealth(%s, client failure at %v): %v", name, at, err)
	}
	return after
}

func wantWindow(t *testing.T, what string, got switchboard.HealthWindow, span time.Duration, at time.Time, checks, ok, failures int64) {
	t.Helper()
	if got.Span != span || !got.At.Equal(at) || got.Checks != checks || got.SuccessfulChecks != ok || got.ClientFailures != failures {
		t.Errorf("%s: window = %+v, want span %v at %v with %d checks, %d successful, %d client failures",
			what, got, span, at, checks, ok, failures)
	}
}

// testHealthWindow: the window counts the checks and client-reported
// failures in [at-window, at], across its partial first hour and whole hours,
// after compaction too, and GetHealth and ListProviders read it.
func testHealthWindow(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustCreate(t, s, windowed(t, "p", 90*time.Minute))
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }

	record(t, s, "p", at(10), false, 5) // 00:10, falls out at 01:40
	record(t, s, "p", at(50), true, 5)  // 00:50
	reportFailure(t, s, "p", at(55))    // 00:55
	record(t, s, "p", at(70), true, 5)  // 01:10
	_, h := record(t, s, "p", at(95), true, 5)
	wantWindow(t, "at 01:35", h.Window, 90*time.Minute, at(95), 4, 3, 1)
	if h.Status != switchboard.StatusWarning {
		t.Errorf("at 01:35 status = %s (%s), want WARNING: 3 of 4 checks in the window", h.Status, h.StatusReason)
	}
	// At 01:45 the failed check of 00:10 is out of the window: its raw row
	// tells, though its hour's rollup still holds it.
	_, h = record(t, s, "p", at(105), true, 5)
	wantWindow(t, "at 01:45", h.Window, 90*time.Minute, at(105), 4, 4, 1)
	if h.Status != switchboard.StatusWarning || h.StatusReason != "error rate 20.0% > 10%" {
		t.Errorf("at 01:45 status = %s (%s), want WARNING for the error rate alone: every check in the window passed", h.Status, h.StatusReason)
	}
	got, err := s.GetHealth(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	wantWindow(t, "GetHealth", got.Window, 90*time.Minute, at(105), 4, 4, 1)
	recs, err := s.ListProviders(ctx)
	if err != nil || len(recs) != 1 {
		t.Fatalf("ListProviders = %d, %v", len(recs), err)
	}
	wantWindow(t, "ListProviders", recs[0].Health.Window, 90*time.Minute, at(105), 4, 4, 1)
	if got.TotalChecks != 5 || got.TotalRequests != 6 || got.FailedRequests != 2 {
		t.Errorf("lifetime = %d checks, %d requests, %d failed; want 5, 6, 2", got.TotalChecks, got.TotalRequests, got.FailedRequests)
	}

	// Once the raw rows are compacted away, the window starts at its first
	// whole hour: 01:00, so at 02:05 (window from 00:35) it holds the
	// checks of 01:10, 01:35 and 01:45 and the new one.
	if err := s.CompactHistory(ctx, t0, at(120)); err != nil {
		t.Fatal(err)
	}
	_, h = record(t, s, "p", at(125), true, 5)
	wantWindow(t, "at 02:05 after compaction", h.Window, 90*time.Minute, at(125), 4, 4, 0)
}

// testHealthWindowStatus: a provider that fails every third call today, after
// a long good history, is no longer EXCELLENT; its lifetime counters would
// still say 99%.
func testHealthWindowStatus(t *testing.T, s switchboard.Store) {
	mustCreate(t, s, windowed(t, "p", 24*time.Hour))
	start := t0.Add(-100 * 24 * time.Hour)
	for i := range 400 { // every 6 hours for 100 days
		record(t, s, "p", start.Add(time.Duration(i)*6*time.Hour), true, 5)
	}
	var h switchboard.Health
	for i := range 9 { // today, every 10 minutes; every third fails
		_, h = record(t, s, "p", t0.Add(time.Duration(i+1)*10*time.Minute), (i+1)%3 != 0, 5)
	}
	if life := h.Uptime(); life < health.ExcellentUptime {
		t.Fatalf("lifetime uptime %.2f: the test needs it EXCELLENT", life)
	}
	// The window: the 4 checks of the last day of history (18:00 the day
	// before is out), and today's 9.
	if h.Status == switchboard.StatusExcellent || h.Status != switchboard.StatusWarning {
		t.Errorf("status = %s (%s), want WARNING: uptime in the window is below 95%%", h.Status, h.StatusReason)
	}
	if h.Window.Checks != 12 || h.Window.SuccessfulChecks != 9 {
		t.Errorf("window = %+v, want 12 checks, 9 successful", h.Window)
	}
}

// testActivity: Activity counts, per provider, the streams started, the
// failovers, the client-reported failures and the stream seconds of a period,
// so that a UTC day starts at zero and the day before keeps its counts.
func testActivity(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustCreate(t, s, AgoraProvider(t, "p"))
	mustCreate(t, s, AgoraProvider(t, "q"))
	day := time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC)
	next := day.Add(24 * time.Hour)

	mustStart(t, s, newStream("a", "p", "o", day.Add(23*time.Hour)), 0)
	mustMigrate(t, s, "a", "q", next.Add(-time.Minute)) // 23:59 on the day
	mustEnd(t, s, "a", next.Add(time.Minute))           // 00:01 the next day
	mustStart(t, s, newStream("b", "p", "o", next.Add(time.Hour)), 0)
	mustEnd(t, s, "b", next.Add(90*time.Minute))
	reportFailure(t, s, "p", next.Add(-time.Nanosecond))
	reportFailure(t, s, "p", next)
	reportFailure(t, s, "p", next.Add(5*time.Hour))
	// A fold may add several reported failures at once: requests beyond
	// checks are client-reported failures.
	_, q, err := s.UpdateHealth(ctx, "q", next.Add(2*time.Hour), func(h switchboard.Health) switchboard.Health {
		h.TotalRequests += 3
		h.FailedRequests += 3
		return h
	})
	if err != nil {
		t.Fatal(err)
	}
	if q.TotalRequests != 3 {
		t.Fatalf("q has %d requests", q.TotalRequests)
	}
	if h := reportFailure(t, s, "q", next.Add(3*time.Hour)); h.Window.ClientFailures != 4 {
		t.Errorf("q's window holds %d client failures, want 4", h.Window.ClientFailures)
	}

	got, err := s.Activity(ctx, day, next)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]switchboard.ProviderActivity{
		"p": {Provider: "p", StreamsStarted: 1, FailoversOut: 1, ClientFailures: 1, StreamSeconds: 59 * 60},
		"q": {Provider: "q", FailoversIn: 1, StreamSeconds: 60},
	}
	if len(got) != len(want) || got["p"] != want["p"] || got["q"] != want["q"] {
		t.Errorf("Activity(the day) = %+v, want %+v", got, want)
	}
	got, err = s.Activity(ctx, next, next.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]switchboard.ProviderActivity{
		"p": {Provider: "p", StreamsStarted: 1, ClientFailures: 2, StreamSeconds: 30 * 60},
		"q": {Provider: "q", ClientFailures: 4, StreamSeconds: 60},
	}
	if len(got) != len(want) || got["p"] != want["p"] || got["q"] != want["q"] {
		t.Errorf("Activity(the next day) = %+v, want %+v", got, want)
	}
	got, err = s.Activity(ctx, next.Add(48*time.Hour), next.Add(72*time.Hour))
	if err != nil || len(got) != 0 {
		t.Errorf("Activity(a quiet day) = %+v, %v; want none", got, err)
	}
}

// testHealthWindowCompacted: compaction into daily rollups does not change
// what a window counts.
func testHealthWindowCompacted(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	for _, name := range []string{"a", "b"} {
		mustCreate(t, s, windowed(t, name, 72*time.Hour+30*time.Minute))
		for i := range 40 { // every 6 hours for 10 days; every fifth fails
			record(t, s, name, t0.Add(-time.Duration(40-i)*6*time.Hour+time.Minute), i%5 != 0, 5)
		}
		reportFailure(t, s, name, t0.Add(-50*time.Hour))
	}
	if err := s.CompactHistory(ctx, t0, t0.Add(-5*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DailyRollups(ctx, "a", t0.Add(-10*24*time.Hour), t0); err != nil {
		t.Fatal(err)
	}
	_, a := record(t, s, "a", t0.Add(time.Hour), true, 5)
	// The window starts at 03-07 02:30: the checks of 03-07 06:01 to 03-10
	// 00:01 (i = 29 to 39, of which 30 and 35 failed), the failure report,
	// and this check.
	wantWindow(t, "after compaction", a.Window, 72*time.Hour+30*time.Minute, t0.Add(time.Hour), 12, 10, 1)
	_, b := record(t, s, "b", t0.Add(time.Hour), true, 5)
	if a.Window.Checks != b.Window.Checks || a.Window.SuccessfulChecks != b.Window.SuccessfulChecks || a.Window.ClientFailures != b.Window.ClientFailures {
		t.Errorf("windows differ: %+v and %+v", a.Window, b.Window)
	}
}
