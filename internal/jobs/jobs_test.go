package jobs

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

func date(y int, m time.Month, d, hh, mm, ss int) time.Time {
	return time.Date(y, m, d, hh, mm, ss, 0, time.UTC)
}

func provider(name string, budget float64, p sb.Pricing) sb.ProviderRecord {
	return sb.ProviderRecord{Provider: sb.Provider{
		Name: name, Kind: sb.KindAgora, Enabled: true, Pricing: p, MonthlyBudget: budget,
		CreatedAt: date(2026, 1, 1, 0, 0, 0),
	}}
}

func minutes(n float64) time.Duration { return time.Duration(n * float64(time.Minute)) }

func mustRunOnce(t *testing.T, r *Runner) {
	t.Helper()
	if err := r.RunOnce(context.Background()); err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
}

func TestDailyRollupOncePerDay(t *testing.T) {
	st := newStore()
	clock := testutil.NewClock(date(2026, 11, 27, 12, 0, 0))
	newRunner := func() *Runner { return New(Config{Store: st, Clock: clock}) }
	r := newRunner()

	steps := []struct {
		name    string
		at      time.Time
		restart bool
		want    []compaction // new compactions at this step
		period  string       // recorded after this step
	}{
		{
			name: "new install compacts the previous day only", at: date(2026, 11, 27, 12, 0, 0),
			want:   []compaction{{date(2026, 11, 27, 0, 0, 0), date(2026, 11, 20, 12, 0, 0)}},
			period: "2026-11-26",
		},
		{name: "one minute before midnight", at: date(2026, 11, 27, 23, 59, 0)},
		{
			name: "just past midnight", at: date(2026, 11, 28, 0, 0, 30),
			want:   []compaction{{date(2026, 11, 28, 0, 0, 0), date(2026, 11, 21, 0, 0, 30)}},
			period: "2026-11-27",
		},
		{name: "later the same day", at: date(2026, 11, 28, 0, 5, 0)},
		{name: "after a restart", at: date(2026, 11, 28, 0, 6, 0), restart: true},
	}
	for _, step := range steps {
		if step.restart {
			r = newRunner()
		}
		before := len(st.compactions)
		clock.Set(step.at)
		mustRunOnce(t, r)
		got := st.compactions[before:]
		if len(got) == 0 {
			got = nil
		}
		if !reflect.DeepEqual(got, step.want) {
			t.Errorf("%s: compactions = %v, want %v", step.name, got, step.want)
		}
		if step.period != "" && !st.ran(JobDailyRollup, step.period) {
			t.Errorf("%s: %s %s not recorded", step.name, JobDailyRollup, step.period)
		}
	}
}

func TestFailedJobRetriesNextTick(t *testing.T) {
	for _, method := range []string{"CompactHistory", "JobRan", "MarkJobRan"} {
		t.Run(method, func(t *testing.T) {
			st := newStore()
			// Mark the month so that only the daily job touches the store.
			st.jobs[JobMonthlyRollup+" 2026-10"] = time.Time{}
			clock := testutil.NewClock(date(2026, 11, 28, 0, 0, 30))
			r := New(Config{Store: st, Clock: clock})

			st.failNext(method)
			err := r.RunOnce(context.Background())
			if !errors.Is(err, errInjected) || !strings.Contains(err.Error(), "daily rollup") {
				t.Fatalf("RunOnce = %v, want the injected daily rollup failure", err)
			}
			if st.ran(JobDailyRollup, "2026-11-27") {
				t.Fatal("failed job recorded as ran")
			}
			if len(st.cutoffs) != 1 {
				t.Errorf("abandoned sweeps = %d, want 1: a failed job must not stop the others", len(st.cutoffs))
			}

			clock.Set(date(2026, 11, 28, 0, 0, 45))
			mustRunOnce(t, r)
			if !st.ran(JobDailyRollup, "2026-11-27") {
				t.Fatal("retried job not recorded")
			}
			if n := len(st.compactions); n < 1 || n > 2 {
				t.Errorf("compactions = %d, want 1 (or 2 when the mark failed after the work)", n)
			}
		})
	}
}

func TestMonthlyRollupFreezesPastMonth(t *testing.T) {
	agora := provider("agora", 0, sb.DefaultPricing()) // hd 3.99, audio 0.99 per 1000 min
	zego := provider("zego", 0, sb.Pricing{Currency: "EUR", PerThousandMinutes: map[sb.Quality]float64{sb.QualityFullHD: 8.99}})
	idle := provider("idle", 0, sb.DefaultPricing())
	late := provider("late", 0, sb.DefaultPricing())
	late.CreatedAt = date(2026, 12, 1, 0, 0, 10) // after November ended
	st := newStore(agora, zego, idle, late)

	nov := func(d, hh int) time.Time { return date(2026, 11, d, hh, 0, 0) }
	st.addSegment(segment{"agora", sb.QualityHD, nov(10, 8), nov(10, 8).Add(minutes(940))})
	// 60 minutes in November, the rest in December.
	st.addSegment(segment{"agora", sb.QualityHD, nov(30, 23), date(2026, 12, 1, 1, 0, 0)})
	st.addSegment(segment{"agora", sb.QualityAudio, nov(12, 9), nov(12, 9).Add(minutes(90))})
	// 30 minutes in October are not November's.
	st.addSegment(segment{"zego", sb.QualityFullHD, date(2026, 10, 31, 23, 30, 0), nov(1, 0).Add(minutes(1234))})

	clock := testutil.NewClock(date(2026, 11, 30, 23, 59, 0))
	r := New(Config{Store: st, Clock: clock})
	mustRunOnce(t, r) // a new install freezes October, not November
	if _, ok := st.monthly["agora 2026-11"]; ok {
		t.Fatal("November frozen before it ended")
	}
	if !st.ran(JobMonthlyRollup, "2026-10") {
		t.Fatal("October not recorded on a new install")
	}
	saves := st.saves

	clock.Set(date(2026, 12, 1, 0, 1, 0))
	mustRunOnce(t, r)
	if st.saves != saves+1 {
		t.Fatalf("saves = %d, want %d", st.saves, saves+1)
	}
	if want := (period{date(2026, 11, 1, 0, 0, 0), date(2026, 12, 1, 0, 0, 0)}); !slicesContain(st.usageCalls, want) {
		t.Errorf("usage periods = %v, want one of %v", st.usageCalls, want)
	}
	// 1000 hd min at 3.99/1000 = 3.99; 90 audio min at 0.99/1000 = 0.0891;
	// 4.0791 rounds to 4.08. 1234 fullhd min at 8.99/1000 = 11.09366 → 11.09.
	want := map[string]sb.MonthlyUsage{
		"agora 2026-11": {Provider: "agora", Month: "2026-11", Currency: "USD", Cost: 4.08,
			Minutes: map[sb.Quality]float64{sb.QualityHD: 1000, sb.QualityAudio: 90}},
		"zego 2026-11": {Provider: "zego", Month: "2026-11", Currency: "EUR", Cost: 11.09,
			Minutes: map[sb.Quality]float64{sb.QualityFullHD: 1234}},
		"idle 2026-11": {Provider: "idle", Month: "2026-11", Currency: "USD", Cost: 0,
			Minutes: map[sb.Quality]float64{}},
	}
	for k, w := range want {
		if got := st.monthly[k]; !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %+v, want %+v", k, got, w)
		}
	}
	if got, ok := st.monthly["late 2026-11"]; ok {
		t.Errorf("provider created in December frozen for November: %+v", got)
	}

	clock.Set(date(2026, 12, 1, 0, 5, 0))
	mustRunOnce(t, r)
	mustRunOnce(t, New(Config{Store: st, Clock: clock})) // a restart
	if st.saves != saves+1 {
		t.Errorf("saves = %d after later ticks and a restart, want %d", st.saves, saves+1)
	}
}

func slicesContain[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestBudgetAlerts(t *testing.T) {
	pricing := sb.Pricing{Currency: "USD", PerThousandMinutes: map[sb.Quality]float64{sb.QualityHD: 10}}
	st := newStore(provider("agora", 10, pricing), provider("free", 0, pricing))
	bus := &testutil.Bus{}
	clock := testutil.NewClock(date(2026, 12, 10, 0, 0, 0))
	newRunner := func() *Runner { return New(Config{Store: st, Bus: bus, Clock: clock}) }
	r := newRunner()
	used := 0.0 // minutes of agora and free this month so far
	use := func(p string, m float64, at time.Time) {
		st.addSegment(segment{p, sb.QualityHD, at, at.Add(minutes(m))})
	}

	alert := func(month string, threshold, cost float64) BudgetAlert {
		return BudgetAlert{Provider: "agora", Month: month, Threshold: threshold, Cost: cost, Budget: 10, Currency: "USD"}
	}
	steps := []struct {
		name    string
		add     float64 // agora minutes added at the start of the day
		day     time.Time
		restart bool
		want    []BudgetAlert
	}{
		{name: "below 80%", add: 799, day: date(2026, 12, 10, 0, 0, 0)},
		{name: "80% reached", add: 1, day: date(2026, 12, 11, 0, 0, 0), want: []BudgetAlert{alert("2026-12", 80, 8)}},
		{name: "80% again", add: 100, day: date(2026, 12, 12, 0, 0, 0)},
		{name: "100% reached", add: 100, day: date(2026, 12, 13, 0, 0, 0), want: []BudgetAlert{alert("2026-12", 100, 10)}},
		{name: "over budget", add: 500, day: date(2026, 12, 14, 0, 0, 0)},
		{name: "restart", day: date(2026, 12, 15, 0, 0, 0), restart: true},
		{name: "next month, both at once", add: 1200, day: date(2027, 1, 2, 0, 0, 0),
			want: []BudgetAlert{alert("2027-01", 80, 12), alert("2027-01", 100, 12)}},
		{name: "next month again", day: date(2027, 1, 3, 0, 0, 0)},
	}
	for _, step := range steps {
		if step.restart {
			r = newRunner()
		}
		if step.add > 0 {
			use("agora", step.add, step.day)
			use("free", 5000, step.day)
			used += step.add
		}
		// The usage of the step's day has ended an hour later.
		clock.Set(step.day.Add(minutes(step.add) + time.Hour))
		mustRunOnce(t, r)
		var got []BudgetAlert
		for _, e := range bus.Take() {
			if e.Type != sb.EventBudgetAlert || e.Audience != sb.RoleAdmin || !e.At.Equal(clock.Now()) {
				t.Errorf("%s: event %+v, want a budget alert for admins at now", step.name, e)
			}
			got = append(got, e.Data.(BudgetAlert))
		}
		if !reflect.DeepEqual(got, step.want) {
			t.Errorf("%s (%.0f min): alerts = %+v, want %+v", step.name, used, got, step.want)
		}
	}
}

func TestBudgetAlertOnceAcrossReplicas(t *testing.T) {
	pricing := sb.Pricing{Currency: "USD", PerThousandMinutes: map[sb.Quality]float64{sb.QualityHD: 10}}
	st := newStore(provider("agora", 10, pricing))
	st.addSegment(segment{"agora", sb.QualityHD, date(2026, 12, 1, 0, 0, 0), date(2026, 12, 1, 0, 0, 0).Add(minutes(1500))})
	bus := &testutil.Bus{}
	clock := testutil.NewClock(date(2026, 12, 5, 0, 0, 0))

	var wg sync.WaitGroup
	for range 4 {
		r := New(Config{Store: st, Bus: bus, Clock: clock})
		wg.Go(func() {
			if err := r.RunOnce(context.Background()); err != nil {
				t.Errorf("RunOnce: %v", err)
			}
		})
	}
	wg.Wait()
	got := map[float64]int{}
	for _, e := range bus.Take() {
		got[e.Data.(BudgetAlert).Threshold]++
	}
	if want := map[float64]int{80: 1, 100: 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("alerts per threshold = %v, want %v", got, want)
	}
}

func TestAbandonedSweep(t *testing.T) {
	now := date(2026, 12, 3, 10, 0, 0)
	st := newStore()
	st.streams = []sb.Stream{
		{ID: "s-stale", Provider: "agora", Status: sb.StreamActive, LastHeartbeat: now.Add(-3 * time.Minute)},
		{ID: "s-live", Provider: "agora", Status: sb.StreamActive, LastHeartbeat: now.Add(-time.Minute)},
	}
	var logs bytes.Buffer
	r := New(Config{Store: st, Clock: testutil.NewClock(now), AbandonAfter: 2 * time.Minute,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	mustRunOnce(t, r)

	if want := []time.Time{now.Add(-2 * time.Minute)}; !reflect.DeepEqual(st.cutoffs, want) {
		t.Errorf("cutoffs = %v, want %v", st.cutoffs, want)
	}
	if s := st.streams[0]; s.Status != sb.StreamEnded || !s.EndedAt.Equal(s.LastHeartbeat) {
		t.Errorf("stale stream = %+v, want ended at its last heartbeat", s)
	}
	if s := st.streams[1]; s.Status != sb.StreamActive {
		t.Errorf("live stream = %+v, want active", s)
	}
	out := logs.String()
	if !strings.Contains(out, `msg="stream abandoned" stream_id=s-stale provider=agora`) || strings.Contains(out, "s-live") {
		t.Errorf("logs = %q, want one stream abandoned line for s-stale", out)
	}
}

// TestRunStopsWithContext runs the jobs at start and then on every tick,
// refuses a second concurrent Run, and returns once its context ends, leaving
// no goroutine behind (the bubble's end checks that).
func TestRunStopsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const tick = time.Minute
		st := newStore()
		st.sweeps = make(chan struct{}, 1)
		r := New(Config{Store: st, Tick: tick})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		start := time.Now()
		go func() { done <- r.Run(ctx) }()

		for i := range 3 { // once at start, then on ticks
			<-st.sweeps
			if got, want := time.Since(start), time.Duration(i)*tick; got != want {
				t.Errorf("sweep %d after %v, want %v", i, got, want)
			}
		}
		if err := r.Run(ctx); err == nil {
			t.Error("second concurrent Run succeeded, want an error")
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	})
}

func TestNewDefaults(t *testing.T) {
	tests := []struct {
		name       string
		thresholds []float64
		want       []float64
	}{
		{"nil", nil, []float64{80, 100}},
		{"sorted and deduplicated", []float64{100, 50, 100, 90}, []float64{50, 90, 100}},
		{"invalid dropped", []float64{0, -5, 75}, []float64{75}},
		{"all invalid", []float64{0}, []float64{80, 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(Config{Store: newStore(), BudgetThresholds: tt.thresholds})
			if !reflect.DeepEqual(r.thresholds, tt.want) {
				t.Errorf("thresholds = %v, want %v", r.thresholds, tt.want)
			}
			if r.tick != DefaultTick || r.abandonAfter != DefaultAbandonAfter || r.keepRaw != DefaultKeepRaw {
				t.Errorf("durations = %v %v %v, want the defaults", r.tick, r.abandonAfter, r.keepRaw)
			}
		})
	}
	if err := New(Config{}).RunOnce(context.Background()); err == nil {
		t.Error("RunOnce without a store succeeded")
	}
}

func TestReached(t *testing.T) {
	tests := []struct {
		cost, budget, pct float64
		want              bool
	}{
		{7.99, 10, 80, false},
		{8, 10, 80, true},
		{0.1 + 0.2 + 7.7, 10, 80, true}, // 8.000000000000002 or 7.999…, still $8.00
		{9.99, 10, 100, false},
		{10, 10, 100, true},
		{12.34, 10, 100, true},
		{0, 10, 80, false},
		{0, 0.001, 80, false}, // a threshold under half a cent
		{0.01, 0.001, 80, true},
		{80.01, 100.01, 80, true}, // 80 % of 100.01 is 80.008 → 80.01
	}
	for _, tt := range tests {
		if got := reached(tt.cost, tt.budget, tt.pct); got != tt.want {
			t.Errorf("reached(%v, %v, %v) = %v, want %v", tt.cost, tt.budget, tt.pct, got, tt.want)
		}
	}
}

// TestSweepGrace: right after a (re)start the sweep waits, so that streams
// whose clients could not reach the control plane are not ended before those
// clients have had a heartbeat interval to come back.
func TestSweepGrace(t *testing.T) {
	now := date(2026, 12, 3, 10, 0, 0)
	st := newStore()
	st.streams = []sb.Stream{{ID: "s-quiet", Provider: "agora", Status: sb.StreamActive, LastHeartbeat: now.Add(-10 * time.Minute)}}
	clock := testutil.NewClock(now)
	r := New(Config{Store: st, Clock: clock, SweepGrace: 2 * time.Minute})
	mustRunOnce(t, r)
	clock.Set(now.Add(time.Minute))
	mustRunOnce(t, r)
	if len(st.cutoffs) != 0 || st.streams[0].Status != sb.StreamActive {
		t.Fatalf("swept during the grace: cutoffs %v, stream %+v", st.cutoffs, st.streams[0])
	}
	clock.Set(now.Add(2 * time.Minute))
	mustRunOnce(t, r)
	if len(st.cutoffs) != 1 || st.streams[0].Status != sb.StreamEnded {
		t.Fatalf("not swept after the grace: cutoffs %v, stream %+v", st.cutoffs, st.streams[0])
	}
}
