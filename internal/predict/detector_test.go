package predict

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)

const step = 10 * time.Second

// feed is a scripted provider: f returns the sample of probe i (At is filled in).
type feed func(i int, r *rand.Rand) Sample

// healthy is 80 ms latency with 10 % multiplicative noise, all probes ok.
func healthy(i int, r *rand.Rand) Sample {
	return Sample{OK: true, LatencyMs: 80 * math.Exp(0.1*r.NormFloat64())}
}

// run feeds n samples and returns the index of every change and the state after each.
func run(t *testing.T, f feed, n int) (raised, cleared []int, states []State) {
	t.Helper()
	d := New(Config{})
	r := rand.New(rand.NewPCG(1, 2))
	for i := range n {
		s := f(i, r)
		s.At = t0.Add(time.Duration(i) * step)
		if d.Observe(s) {
			if d.State().Degrading {
				raised = append(raised, i)
			} else {
				cleared = append(cleared, i)
			}
		}
		states = append(states, d.State())
	}
	return raised, cleared, states
}

func TestDetector(t *testing.T) {
	tests := []struct {
		name   string
		f      feed
		n      int
		raise  [2]int // the first raise must fall in [lo, hi]; {-1,-1}: never raised
		signal Signal // the first evidence's signal at the raise
		since  [2]int // its Since, as a probe index, in [lo, hi]
		clear  [2]int // the first clear in [lo, hi]; {-1,-1}: never cleared
	}{
		{name: "healthy", f: healthy, n: 8640, raise: [2]int{-1, -1}, clear: [2]int{-1, -1}},
		{name: "isolated failures", f: func(i int, r *rand.Rand) Sample {
			s := healthy(i, r)
			s.OK = i%150 != 0
			return s
		}, n: 8640, raise: [2]int{-1, -1}, clear: [2]int{-1, -1}},
		{name: "single latency spikes", f: func(i int, r *rand.Rand) Sample {
			s := healthy(i, r)
			if i%100 == 50 || i%100 == 51 {
				s.LatencyMs *= 20
			}
			return s
		}, n: 8640, raise: [2]int{-1, -1}, clear: [2]int{-1, -1}},
		{name: "latency triples at 500", f: func(i int, r *rand.Rand) Sample {
			s := healthy(i, r)
			if i >= 500 {
				s.LatencyMs *= 3
			}
			return s
		}, n: 700, raise: [2]int{503, 510}, signal: SignalLatency, since: [2]int{498, 500}, clear: [2]int{-1, -1}},
		{name: "latency step that recovers", f: func(i int, r *rand.Rand) Sample {
			s := healthy(i, r)
			if i >= 500 && i < 560 {
				s.LatencyMs *= 3
			}
			return s
		}, n: 1000, raise: [2]int{503, 510}, signal: SignalLatency, since: [2]int{498, 500}, clear: [2]int{560, 620}},
		{name: "errors scatter at 30 %", f: func(i int, r *rand.Rand) Sample {
			s := healthy(i, r)
			if i >= 500 {
				s.OK = i%10 != 0 && i%10 != 3 && i%10 != 7
			}
			return s
		}, n: 700, raise: [2]int{500, 515}, signal: SignalErrors, since: [2]int{499, 500}, clear: [2]int{-1, -1}},
		{name: "sudden outage", f: func(i int, r *rand.Rand) Sample {
			s := healthy(i, r)
			s.OK = i < 500
			return s
		}, n: 600, raise: [2]int{500, 502}, signal: SignalFailures, since: [2]int{500, 500}, clear: [2]int{-1, -1}},
		{name: "outage then recovery", f: func(i int, r *rand.Rand) Sample {
			s := healthy(i, r)
			s.OK = i < 500 || i >= 520
			return s
		}, n: 1000, raise: [2]int{500, 502}, signal: SignalFailures, since: [2]int{500, 500}, clear: [2]int{549, 600}},
		{name: "field loss rises", f: func(i int, r *rand.Rand) Sample {
			s := healthy(i, r)
			s.HasQuality = true
			s.RTTMs = 120 * math.Exp(0.1*r.NormFloat64())
			s.Loss = max(0, 0.01+0.005*r.NormFloat64())
			if i >= 500 {
				s.Loss += 0.08
			}
			return s
		}, n: 700, raise: [2]int{500, 510}, signal: SignalLoss, since: [2]int{498, 500}, clear: [2]int{-1, -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raised, cleared, states := run(t, tt.f, tt.n)
			first := func(xs []int) int {
				if len(xs) == 0 {
					return -1
				}
				return xs[0]
			}
			in := func(v int, r [2]int) bool { return v >= r[0] && v <= r[1] }
			if got := first(raised); !in(got, tt.raise) {
				t.Fatalf("first raise at probe %d, want in %v (raised %v)", got, tt.raise, raised)
			}
			if got := first(cleared); !in(got, tt.clear) {
				t.Errorf("first clear at probe %d, want in %v (cleared %v)", got, tt.clear, cleared)
			}
			if len(raised) == 0 {
				return
			}
			st := states[raised[0]]
			if !st.Degrading || len(st.Evidence) == 0 {
				t.Fatalf("state at the raise = %+v, want degrading with evidence", st)
			}
			ev := st.Evidence[0]
			if ev.Signal != tt.signal {
				t.Errorf("evidence signal = %s, want %s (%v)", ev.Signal, tt.signal, st.Evidence)
			}
			since := int(ev.Since.Sub(t0) / step)
			if !in(since, tt.since) {
				t.Errorf("evidence since probe %d, want in %v", since, tt.since)
			}
			if !st.Since.Equal(t0.Add(time.Duration(raised[0]) * step)) {
				t.Errorf("state since %v, want the raise's time", st.Since)
			}
			if ev.Distance <= 1 {
				t.Errorf("evidence distance = %g, want > 1", ev.Distance)
			}
		})
	}
}

// The hysteresis holds degrading for MinHold even when the cause vanished
// at once, and a flapping provider is not raised and cleared on every flap.
func TestDetectorHysteresis(t *testing.T) {
	d := New(Config{})
	r := rand.New(rand.NewPCG(3, 4))
	at := t0
	obs := func(ok bool) bool {
		s := healthy(0, r)
		s.OK, s.At = ok, at
		at = at.Add(step)
		return d.Observe(s)
	}
	for range 300 {
		obs(true)
	}
	changes := 0
	// Flapping: three failures, four successes, over and over, for 30 minutes.
	for i := range 180 {
		if obs(i%7 < 3) {
			changes++
		}
	}
	if changes != 1 || !d.State().Degrading {
		t.Fatalf("flapping: %d changes, degrading %v; want raised once and held", changes, d.State().Degrading)
	}
	raisedAt := d.State().Since
	for i := 0; d.State().Degrading; i++ {
		if i == 1000 {
			t.Fatal("still degrading after 1000 successful probes")
		}
		obs(true)
	}
	if held := at.Sub(raisedAt); held < DefaultConfig().MinHold {
		t.Errorf("held for %v, want at least %v", held, DefaultConfig().MinHold)
	}
}

func TestEvidenceString(t *testing.T) {
	since := time.Date(2026, 5, 1, 12, 1, 10, 0, time.UTC)
	tests := []struct {
		ev   Evidence
		want string
	}{
		{Evidence{Signal: SignalLatency, Baseline: 80, Current: 412, Distance: 6.24, Since: since}, "latency 412ms vs 80ms (6.2σ) since 2026-05-01T12:01:10Z"},
		{Evidence{Signal: SignalErrors, Baseline: 0.002, Current: 0.25, Distance: 125, Since: since}, "errors 25.0% vs 0.2% (125.0×) since 2026-05-01T12:01:10Z"},
		{Evidence{Signal: SignalFailures, Distance: 3, Since: since}, "3 consecutive failed probes since 2026-05-01T12:01:10Z"},
		{Evidence{Signal: SignalLoss, Baseline: 0.01, Current: 0.09, Distance: 8, Since: since}, "loss 9.0% vs 1.0% (8.0σ) since 2026-05-01T12:01:10Z"},
	}
	for _, tt := range tests {
		if got := tt.ev.String(); !strings.EqualFold(got, tt.want) {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

// At a long probe interval a quarter hour of successes clears degrading,
// not ClearRun probes (two and a half hours at 5 minutes).
func TestDetectorClearsAfterAQuarterHour(t *testing.T) {
	const every = 5 * time.Minute
	d := New(Config{})
	at := t0
	obs := func(ok bool) {
		d.Observe(Sample{At: at, OK: ok, LatencyMs: 80})
		at = at.Add(every)
	}
	for range 40 {
		obs(true)
	}
	for range 3 {
		obs(false)
	}
	if !d.State().Degrading {
		t.Fatal("not degrading after three failures in a row")
	}
	n := 0
	for ; d.State().Degrading && n < 30; n++ {
		obs(true)
	}
	if n != 4 { // successes at 0, 5, 10 and 15 minutes
		t.Errorf("cleared after %d successes 5 minutes apart, want 4", n)
	}
}
