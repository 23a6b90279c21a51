package health

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchboardhq/switchboard"
)

// startScheduler runs s until the test ends, or until the returned stop is
// called, which waits for Run to return and fails the test if it does not.
func startScheduler(t *testing.T, s *Scheduler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	errc := make(chan error, 1)
	go func() { errc <- s.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					t.Errorf("Run = %v, want nil", err)
				}
			case <-time.After(10 * time.Second):
				t.Error("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// TestSchedulerAtScale runs 200 providers at a 1 s interval for 10 s of the
// bubble's clock.
func TestSchedulerAtScale(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const (
			n          = 200
			interval   = time.Second
			runFor     = 10 * time.Second
			slots      = DefaultMaxConcurrent
			probeDelay = 5 * time.Millisecond // ~1 probe in flight on average
		)
		var ps []switchboard.Provider
		for _, name := range names(n) {
			p := testProvider(name)
			p.HealthCheck.Interval = switchboard.Duration(interval)
			p.HealthCheck.Timeout = switchboard.Duration(interval)
			ps = append(ps, p)
		}
		off := testProvider("zz-off")
		off.Enabled = false
		off.HealthCheck.Interval = switchboard.Duration(interval)
		store := newFakeStore(append(ps, off)...)
		prober := newFakeProber()
		prober.delay = probeDelay
		c := newTestChecker(t, store, prober, nil, func(cfg *Config) {
			cfg.MaxConcurrent = slots
			cfg.Clock = switchboard.SystemClock{}
		})
		s := NewScheduler(c, SchedulerConfig{})

		start := time.Now()
		stop := startScheduler(t, s)
		time.Sleep(runFor)
		stop()
		elapsed := time.Since(start)

		prober.mu.Lock()
		defer prober.mu.Unlock()
		counts := map[int]int{}
		var gaps []time.Duration
		lo, hi := 7, 12 // expected 9–11 in 10 s: stagger in [0, 1s), then every 0.9–1.1 s
		for _, name := range names(n) {
			starts := prober.starts[name]
			counts[len(starts)]++
			if len(starts) < lo || len(starts) > hi {
				t.Errorf("%s probed %d times in %v, want %d to %d", name, len(starts), elapsed.Round(time.Millisecond), lo, hi)
			}
			for i := 1; i < len(starts); i++ {
				gaps = append(gaps, starts[i].Sub(starts[i-1]))
			}
		}
		var dist []string
		for _, k := range slices.Sorted(maps.Keys(counts)) {
			dist = append(dist, fmt.Sprintf("%d probes: %d providers", k, counts[k]))
		}
		t.Logf("ran %v; probes per provider: %v", elapsed.Round(time.Millisecond), dist)
		t.Logf("gaps between probes of a provider: %s", summarize(gaps))
		t.Logf("max probes in flight: %d (limit %d)", prober.maxInFlight, slots)

		// Jitter is ±10%, and on the bubble's clock a probe starts when it is
		// due (the slots are never all taken), so every gap is within it.
		lowest, highest := interval*9/10, interval*11/10
		for _, g := range gaps {
			if g < lowest || g > highest {
				t.Errorf("gap of %v between probes of a provider, want in [%v, %v]", g, lowest, highest)
			}
		}
		slices.Sort(gaps)
		if med := gaps[len(gaps)/2]; med < 900*time.Millisecond || med > 1150*time.Millisecond {
			t.Errorf("median gap %v, want about %v", med, interval)
		}
		if prober.maxInFlight > slots {
			t.Errorf("max probes in flight = %d, want ≤ %d", prober.maxInFlight, slots)
		}
		if got := len(prober.starts["zz-off"]); got != 0 {
			t.Errorf("disabled provider probed %d times", got)
		}
	})
}

func TestSchedulerFollowsChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := testProvider("a")
		a.HealthCheck.Interval = switchboard.Duration(time.Hour)
		store := newFakeStore(a)
		prober := newFakeProber()
		c := newTestChecker(t, store, prober, nil)
		s := NewScheduler(c, SchedulerConfig{MaxStagger: 20 * time.Millisecond, Resync: time.Hour})
		stop := startScheduler(t, s)

		awaitProbes(t, prober, "a", 1)

		// A shorter interval takes effect on Notify.
		store.update("a", func(p *switchboard.Provider) { p.HealthCheck.Interval = switchboard.Duration(50 * time.Millisecond) })
		s.Notify()
		awaitProbes(t, prober, "a", 5)

		// A new provider is probed; a disabled one no longer is.
		b := testProvider("b")
		b.HealthCheck.Interval = switchboard.Duration(50 * time.Millisecond)
		store.put(b)
		store.update("a", func(p *switchboard.Provider) { p.Enabled = false })
		s.Notify()
		awaitProbes(t, prober, "b", 1)
		before := prober.count("a")
		awaitProbes(t, prober, "b", 10)
		if got := prober.count("a"); got > before+1 { // one probe may have been in flight
			t.Errorf("disabled provider a probed %d more times", got-before)
		}

		// A deleted provider is no longer probed. Provider c, added at the same
		// time, shows when the change has been read.
		store.mu.Lock()
		delete(store.providers, "b")
		store.mu.Unlock()
		cp := testProvider("c")
		cp.HealthCheck.Interval = switchboard.Duration(50 * time.Millisecond)
		store.put(cp)
		s.Notify()
		awaitProbes(t, prober, "c", 1)
		before = prober.count("b")
		awaitProbes(t, prober, "c", 10)
		if got := prober.count("b"); got > before+1 {
			t.Errorf("deleted provider b probed %d more times", got-before)
		}
		stop()
	})
}

func TestSchedulerResyncsWithoutNotify(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newFakeStore()
		prober := newFakeProber()
		c := newTestChecker(t, store, prober, nil)
		s := NewScheduler(c, SchedulerConfig{MaxStagger: 10 * time.Millisecond, Resync: 50 * time.Millisecond})
		startScheduler(t, s)

		p := testProvider("late")
		p.HealthCheck.Interval = switchboard.Duration(time.Hour)
		store.put(p)
		awaitProbes(t, prober, "late", 1)
	})
}

func TestSchedulerRunsOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newFakeStore()
		c := newTestChecker(t, store, newFakeProber(), nil)
		s := NewScheduler(c, SchedulerConfig{})
		stop := startScheduler(t, s)
		synctest.Wait()
		if !s.running.Load() {
			t.Fatal("Run has not started")
		}
		if err := s.Run(t.Context()); err == nil {
			t.Error("second concurrent Run succeeded, want an error")
		}
		stop()
		// Once stopped, it may run again.
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if err := s.Run(ctx); err != nil {
			t.Errorf("Run after stop = %v", err)
		}
	})
}

func TestSchedulerStopsSlowProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ps []switchboard.Provider
		for _, name := range names(20) {
			p := testProvider(name)
			p.HealthCheck.Interval = switchboard.Duration(time.Hour)
			p.HealthCheck.Timeout = switchboard.Duration(time.Hour)
			ps = append(ps, p)
		}
		store := newFakeStore(ps...)
		prober := newFakeProber()
		prober.hold = func(ctx context.Context, _ string) { <-ctx.Done() }
		c := newTestChecker(t, store, prober, nil, func(cfg *Config) { cfg.MaxConcurrent = 4 })
		s := NewScheduler(c, SchedulerConfig{MaxStagger: 10 * time.Millisecond})
		stop := startScheduler(t, s)
		for range 4 {
			<-prober.started
		}
		synctest.Wait() // the other probes wait for a slot
		if got := prober.total(); got != 4 {
			t.Fatalf("probes started = %d, want 4 (MaxConcurrent)", got)
		}
		stop() // Run must return, cancelling the probes in flight and those waiting for a slot
		if got := store.recordCount(); got != 0 {
			t.Errorf("records = %d, want 0: abandoned probes are not recorded", got)
		}
	})
}

// awaitProbes waits until name has been probed n times, failing t when that
// takes more than a minute of the bubble's clock.
func awaitProbes(t *testing.T, prober *fakeProber, name string, n int) {
	t.Helper()
	timeout := time.After(time.Minute)
	for prober.count(name) < n {
		select {
		case <-prober.started:
		case <-timeout:
			t.Fatalf("%s probed %d times in a minute, want %d", name, prober.count(name), n)
		}
	}
}

func TestJitterAndStagger(t *testing.T) {
	tests := []struct {
		name       string
		cfg        SchedulerConfig
		interval   time.Duration
		lo, hi     time.Duration // jittered interval bounds
		staggerMax time.Duration
	}{
		{"defaults", SchedulerConfig{}, time.Second, 900 * time.Millisecond, 1100 * time.Millisecond, time.Second},
		{"no jitter", SchedulerConfig{Jitter: -1}, time.Second, time.Second, time.Second, time.Second},
		{"jitter capped at half", SchedulerConfig{Jitter: 3}, time.Second, 500 * time.Millisecond, 1500 * time.Millisecond, time.Second},
		{"stagger capped", SchedulerConfig{MaxStagger: 30 * time.Second}, 5 * time.Minute, 270 * time.Second, 330 * time.Second, 30 * time.Second},
	}
	c := newTestChecker(t, newFakeStore(), newFakeProber(), nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewScheduler(c, tt.cfg)
			for range 1000 {
				if d := s.jittered(tt.interval); d < tt.lo || d > tt.hi {
					t.Fatalf("jittered(%v) = %v, want in [%v, %v]", tt.interval, d, tt.lo, tt.hi)
				}
				if d := s.stagger(tt.interval); d < 0 || d >= tt.staggerMax {
					t.Fatalf("stagger(%v) = %v, want in [0, %v)", tt.interval, d, tt.staggerMax)
				}
			}
		})
	}
}
