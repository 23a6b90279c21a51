package health

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
)

func TestStaleAfter(t *testing.T) {
	for _, tc := range []struct {
		interval time.Duration
		want     time.Duration
	}{
		{10 * time.Second, time.Minute}, // 30 s is below the minimum
		{20 * time.Second, time.Minute},
		{30 * time.Second, 90 * time.Second},
		{5 * time.Minute, 15 * time.Minute},
		{0, max(3*switchboard.DefaultHealthCheck().Interval.D(), time.Minute)}, // the default interval
	} {
		pol := switchboard.HealthCheckPolicy{Interval: switchboard.Duration(tc.interval)}
		if got := StaleAfter(pol); got != tc.want {
			t.Errorf("StaleAfter(interval %s) = %s; want %s", tc.interval, got, tc.want)
		}
	}
}

func TestRegionalStatus(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	pol := switchboard.HealthCheckPolicy{Interval: switchboard.Duration(30 * time.Second), FailureThreshold: 3, SuccessThreshold: 2, Window: switchboard.Duration(time.Hour)}
	healthy := switchboard.Health{}
	for i := range 5 {
		healthy = ObserveRegional(healthy, switchboard.ProbeResult{OK: true, At: t0.Add(time.Duration(i) * 30 * time.Second)}, pol, true)
	}
	last := *healthy.LastCheck
	for _, tc := range []struct {
		name      string
		h         switchboard.Health
		enabled   bool
		now       time.Time
		want      switchboard.Status
		wantStale bool
	}{
		{"fresh", healthy, true, last.Add(30 * time.Second), switchboard.StatusExcellent, false},
		{"just before stale", healthy, true, last.Add(90 * time.Second), switchboard.StatusExcellent, false},
		{"stale", healthy, true, last.Add(91 * time.Second), switchboard.StatusUnknown, true},
		{"stale for long", healthy, true, last.Add(24 * time.Hour), switchboard.StatusUnknown, true},
		{"disabled is never stale", healthy, false, last.Add(24 * time.Hour), switchboard.StatusDisabled, false},
		{"never checked", switchboard.Health{}, true, t0, switchboard.StatusUnknown, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, reason, stale := RegionalStatus(tc.h, pol, tc.enabled, tc.now)
			if got != tc.want || stale != tc.wantStale || reason == "" {
				t.Errorf("RegionalStatus = %s, %q, stale %v; want %s, stale %v", got, reason, stale, tc.want, tc.wantStale)
			}
		})
	}
}

func TestObserveRegionalWindow(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	pol := switchboard.HealthCheckPolicy{Interval: switchboard.Duration(time.Minute), FailureThreshold: 3, SuccessThreshold: 2, Window: switchboard.Duration(time.Hour)}
	var h switchboard.Health
	// Half the checks of the first hour fail, one at a time: WARNING.
	for i := range 10 {
		h = ObserveRegional(h, switchboard.ProbeResult{OK: i%2 == 0, Stage: switchboard.StageConnect, At: t0.Add(time.Duration(i) * time.Minute)}, pol, true)
	}
	if h.Status != switchboard.StatusWarning || h.Window.Checks != 10 || !h.Window.At.Equal(t0) {
		t.Fatalf("after the first hour: %s, window %+v; want WARNING over 10 checks from t0", h.Status, h.Window)
	}
	// An hour after the window started, it starts over: the old failures no
	// longer count, though the lifetime counters keep them.
	h = ObserveRegional(h, switchboard.ProbeResult{OK: true, At: t0.Add(time.Hour)}, pol, true)
	if h.Window.Checks != 1 || !h.Window.At.Equal(t0.Add(time.Hour)) || h.Status != switchboard.StatusExcellent || h.TotalChecks != 11 {
		t.Errorf("in the second hour: %s, window %+v, %d checks; want EXCELLENT over a new window", h.Status, h.Window, h.TotalChecks)
	}
	// Three failures in a row are CRITICAL, as for the provider as a whole.
	for i := range 3 {
		h = ObserveRegional(h, switchboard.ProbeResult{OK: false, At: t0.Add(time.Hour + time.Duration(i+1)*time.Minute)}, pol, true)
	}
	if h.Status != switchboard.StatusCritical {
		t.Errorf("after 3 failures: %s; want CRITICAL", h.Status)
	}
}

// regionalRecorder is a RegionalRecorder in memory.
type regionalRecorder struct {
	mu      sync.Mutex
	records map[string]switchboard.Health // by provider/region/source
}

func (r *regionalRecorder) RecordRegionalCheck(_ context.Context, provider, region, source string, fold func(switchboard.Health) switchboard.Health) (before, after switchboard.Health, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := provider + "/" + region + "/" + source
	before = r.records[k]
	after = fold(before)
	r.records[k] = after
	return before, after, nil
}

// The Checker's probes also fold into the health of its region, when it has
// one, by the regional rules; the provider's own health is recorded as ever.
func TestCheckerRecordsItsRegion(t *testing.T) {
	store := newFakeStore(testProvider("a"))
	prober := newFakeProber()
	rec := &regionalRecorder{records: map[string]switchboard.Health{}}
	c := newTestChecker(t, store, prober, nil, func(cfg *Config) { cfg.Region, cfg.Regional = "eu-central", rec })
	for range 2 {
		if _, err := c.Check(t.Context(), "a"); err != nil {
			t.Fatal(err)
		}
	}
	h, ok := rec.records["a/eu-central/"+switchboard.SourceServer]
	if !ok || h.TotalChecks != 2 || h.Window.Span <= 0 || h.Status == "" {
		t.Errorf("regional records = %+v; want a/eu-central/server with 2 checks in a window", rec.records)
	}
	if got := store.recordCount(); got != 2 {
		t.Errorf("the provider's own records = %d, want 2", got)
	}

	// Without a region, nothing is recorded per region.
	none := &regionalRecorder{records: map[string]switchboard.Health{}}
	c = newTestChecker(t, store, prober, nil, func(cfg *Config) { cfg.Regional = none })
	if _, err := c.Check(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	if len(none.records) != 0 {
		t.Errorf("without a region: %+v; want nothing", none.records)
	}
}
