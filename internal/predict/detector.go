// Package predict tells, from a provider's recent probes, that it is
// degrading before the status rules call it CRITICAL, so that new streams
// (and, if the operator wants, live ones) can leave it minutes early.
//
// # Method
//
// The Detector is an online change detector with no training data: it learns
// each provider's normal from the provider's own samples as they come and
// watches for a sustained shift away from it. It follows up to five signals:
//
//   - errors: the probe outcome. The baseline is the failure rate p0, an
//     exponentially weighted moving average (EWMA) of the failure indicator
//     with a half-life of ErrorHalfLife samples, floored at MinErrorRate. A
//     Bernoulli CUSUM (Page's cumulative sum of log-likelihood ratios) tests
//     p0 against a degraded rate p1 = max(ErrorShift×p0, MinDegradedErrorRate):
//     each failure adds ln(p1/p0), each success adds ln((1−p1)/(1−p0)) (a
//     small negative step), and the sum is floored at 0. Isolated failures
//     decay away; failures that bunch up cross ErrorThreshold.
//   - latency: the latency of successful probes, on a log scale (latency is
//     skewed and degrades multiplicatively). The baseline is an EWMA of
//     ln(latency) with a half-life of BaselineHalfLife samples, its spread an
//     EWMA of the absolute deviation (×1.25, which is the standard deviation
//     for normal noise) floored at MinLogSpread; both are Huber-style
//     (a sample moves the mean by at most K spreads, the spread by at most
//     3), so outliers barely move them. Each sample's distance from
//     the baseline in spreads, z, capped at ZCap so that one wild sample
//     cannot alarm on its own, feeds a one-sided CUSUM S = max(0, S + z − K);
//     the alarm is S > LatencyThreshold. The baseline learns only while the
//     CUSUM is low (below ClearFraction of the threshold), so that a slow
//     ramp does not drag the baseline up behind it; slow daily cycles, which
//     stay within K, are followed.
//   - loss and rtt: the same CUSUM over field quality samples when the
//     caller has them (loss as an absolute fraction, rtt on a log scale).
//   - failures: a run of FailureRun consecutive failed probes (the status
//     rules' failure threshold), which raises degrading at once, so the
//     detector is never later than the rules on a sudden outage.
//
// Every CUSUM is capped at twice its threshold, so that a long outage does not
// take hours to forget. The Detector is degrading while any signal is over its
// threshold. It clears with hysteresis: only once every continuous CUSUM has
// fallen below ClearFraction of its threshold, the errors CUSUM has too or the
// last ClearRun probes (or those of the last ClearAfter) all succeeded, and at
// least MinHold has passed since it was raised.
//
// Each signal over its threshold is reported as Evidence: the signal, its
// baseline and current value, its distance from the baseline in spreads and
// since when it had been drifting (the CUSUM's own estimate of the change
// point: the first sample after the sum was last at zero).
//
// The half-lives, the warm-up and the CUSUM allowances count samples: they were
// tuned on probes 10 s apart (see predict-eval). At the scheduler's default
// interval of 5 minutes the detector learns, reacts and forgets in
// proportionally more time, except that a quarter hour of successes clears it.
//
// The Detector does no I/O and reads no clock: every sample carries its time.
// It is not safe for concurrent use; its owner serialises the samples of one
// provider.
package predict

import (
	"fmt"
	"math"
	"time"
)

// Signal names one input the Detector watches.
type Signal string

// The signals.
const (
	SignalErrors   Signal = "errors"
	SignalLatency  Signal = "latency"
	SignalLoss     Signal = "loss"
	SignalRTT      Signal = "rtt"
	SignalFailures Signal = "failures"
)

// Sample is one observation of a provider.
type Sample struct {
	At time.Time
	// OK is the outcome of the probe.
	OK bool
	// LatencyMs is the probe's latency; only successful probes' latency is
	// used (a failed probe's latency is often its timeout).
	LatencyMs float64
	// HasQuality says Loss and RTTMs hold a field quality sample.
	HasQuality bool
	// Loss is the packet loss the field reported, 0–1.
	Loss float64
	// RTTMs is the round-trip time the field reported.
	RTTMs float64
}

// Config tunes the Detector. The zero value of a field takes its default
// (see DefaultConfig).
type Config struct {
	// BaselineHalfLife is the half-life, in samples, of the latency, loss
	// and rtt baselines.
	BaselineHalfLife float64
	// ErrorHalfLife is the half-life, in samples, of the baseline failure rate.
	ErrorHalfLife float64
	// Warmup is how many samples of a signal its baseline takes before the
	// signal may alarm.
	Warmup int
	// K is the CUSUM's allowance in spreads: drift below it is normal.
	K float64
	// ZCap caps one sample's distance, in spreads.
	ZCap float64
	// LatencyThreshold is the CUSUM level, in spreads, at which latency (and
	// rtt and loss) alarm.
	LatencyThreshold float64
	// MinLogSpread floors the spread of ln(latency) and ln(rtt).
	MinLogSpread float64
	// MinLossSpread floors the spread of the loss fraction.
	MinLossSpread float64
	// MinErrorRate floors the baseline failure rate p0.
	MinErrorRate float64
	// MinDegradedErrorRate floors the degraded failure rate p1.
	MinDegradedErrorRate float64
	// ErrorShift is p1 as a multiple of p0.
	ErrorShift float64
	// ErrorThreshold is the Bernoulli CUSUM level (in nats) at which errors alarm.
	ErrorThreshold float64
	// FailureRun is the run of consecutive failures that raises degrading
	// at once: the status rules' failure threshold.
	FailureRun int
	// ClearFraction is the share of its threshold below which every CUSUM
	// must fall before degrading clears.
	ClearFraction float64
	// ClearRun is a run of successful probes that counts as the errors
	// signal being calm, whatever its CUSUM (which falls only slowly after
	// an outage).
	ClearRun int
	// ClearAfter is a run of successful probes, as a duration, that counts
	// the same (for long probe intervals, where ClearRun probes take hours).
	ClearAfter time.Duration
	// MinHold is the least time degrading stays raised.
	MinHold time.Duration
}

// DefaultConfig is the configuration the server and predict-eval use.
func DefaultConfig() Config {
	return Config{
		BaselineHalfLife:     180, // 30 min at a 10 s interval
		ErrorHalfLife:        2160,
		Warmup:               30,
		K:                    1,
		ZCap:                 4,
		LatencyThreshold:     30,
		MinLogSpread:         0.05,
		MinLossSpread:        0.01,
		MinErrorRate:         0.002,
		MinDegradedErrorRate: 0.05,
		ErrorShift:           10,
		ErrorThreshold:       9,
		FailureRun:           3,
		ClearFraction:        0.25,
		ClearRun:             30,
		ClearAfter:           15 * time.Minute,
		MinHold:              5 * time.Minute,
	}
}

// withDefaults fills c's unset fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	setF := func(v *float64, dv float64) {
		if *v <= 0 {
			*v = dv
		}
	}
	setF(&c.BaselineHalfLife, d.BaselineHalfLife)
	setF(&c.ErrorHalfLife, d.ErrorHalfLife)
	setF(&c.K, d.K)
	setF(&c.ZCap, d.ZCap)
	setF(&c.LatencyThreshold, d.LatencyThreshold)
	setF(&c.MinLogSpread, d.MinLogSpread)
	setF(&c.MinLossSpread, d.MinLossSpread)
	setF(&c.MinErrorRate, d.MinErrorRate)
	setF(&c.MinDegradedErrorRate, d.MinDegradedErrorRate)
	setF(&c.ErrorShift, d.ErrorShift)
	setF(&c.ErrorThreshold, d.ErrorThreshold)
	setF(&c.ClearFraction, d.ClearFraction)
	if c.Warmup <= 0 {
		c.Warmup = d.Warmup
	}
	if c.ClearRun <= 0 {
		c.ClearRun = d.ClearRun
	}
	if c.ClearAfter <= 0 {
		c.ClearAfter = d.ClearAfter
	}
	if c.FailureRun <= 0 {
		c.FailureRun = d.FailureRun
	}
	if c.MinHold <= 0 {
		c.MinHold = d.MinHold
	}
	return c
}

// Evidence is why the Detector is degrading: one signal over its threshold.
type Evidence struct {
	Signal Signal `json:"signal"`
	// Baseline is the signal's normal: a failure rate (0–1), a latency or
	// rtt in milliseconds, or a loss fraction.
	Baseline float64 `json:"baseline"`
	// Current is its recent value in the same unit: the failure rate since
	// the drift began, the last latency or rtt, the last loss.
	Current float64 `json:"current"`
	// Distance is how far Current is from Baseline in spreads (latency, loss,
	// rtt), as a multiple of the baseline rate (errors), or the length of
	// the run of failures.
	Distance float64 `json:"distance"`
	// Since is when the signal began to drift.
	Since time.Time `json:"since"`
}

// String is a one-line account, such as "latency 412ms vs 80ms (6.2σ) since 12:01:10Z".
func (e Evidence) String() string {
	since := e.Since.UTC().Format(time.RFC3339)
	switch e.Signal {
	case SignalErrors:
		return fmt.Sprintf("errors %.1f%% vs %.1f%% (%.1f×) since %s", 100*e.Current, 100*e.Baseline, e.Distance, since)
	case SignalFailures:
		return fmt.Sprintf("%.0f consecutive failed probes since %s", e.Distance, since)
	case SignalLoss:
		return fmt.Sprintf("loss %.1f%% vs %.1f%% (%.1fσ) since %s", 100*e.Current, 100*e.Baseline, e.Distance, since)
	default:
		return fmt.Sprintf("%s %.0fms vs %.0fms (%.1fσ) since %s", e.Signal, e.Current, e.Baseline, e.Distance, since)
	}
}

// State is what the Detector says of its provider now.
type State struct {
	Degrading bool `json:"degrading"`
	// Since is when degrading was raised; zero when it is not.
	Since time.Time `json:"since,omitzero"`
	// Evidence lists the signals over their thresholds at the last sample
	// (while degrading is held by hysteresis, those that raised it).
	Evidence []Evidence `json:"evidence,omitempty"`
}

// Detector watches one provider. The zero value is not ready: use New.
type Detector struct {
	cfg      Config
	errors   bernoulli
	latency  cusum
	loss     cusum
	rtt      cusum
	run      int       // consecutive failed probes
	runSince time.Time // first failure of the run
	okRun    int       // consecutive successful probes
	okSince  time.Time // first success of the run
	lastOK   bool
	lastAt   time.Time // of the last sample
	state    State
}

// New returns a Detector with cfg (unset fields take their defaults).
func New(cfg Config) *Detector {
	cfg = cfg.withDefaults()
	return &Detector{
		cfg:     cfg,
		errors:  bernoulli{p0: cfg.MinErrorRate},
		latency: cusum{signal: SignalLatency, log: true, minSpread: cfg.MinLogSpread},
		loss:    cusum{signal: SignalLoss, minSpread: cfg.MinLossSpread},
		rtt:     cusum{signal: SignalRTT, log: true, minSpread: cfg.MinLogSpread},
	}
}

// State returns what the Detector says now.
func (d *Detector) State() State {
	s := d.state
	s.Evidence = append([]Evidence(nil), s.Evidence...)
	return s
}

// Observe folds one sample in and reports whether degrading was raised or
// cleared by it.
func (d *Detector) Observe(s Sample) (changed bool) {
	c := d.cfg
	d.errors.observe(s.OK, s.At, c)
	d.lastOK, d.lastAt = s.OK, s.At
	if s.OK {
		d.run = 0
		if d.okRun == 0 {
			d.okSince = s.At
		}
		d.okRun++
		if s.LatencyMs > 0 {
			d.latency.observe(s.LatencyMs, s.At, c)
		}
	} else {
		d.okRun = 0
		if d.run == 0 {
			d.runSince = s.At
		}
		d.run++
	}
	if s.HasQuality {
		d.loss.observe(s.Loss, s.At, c)
		if s.RTTMs > 0 {
			d.rtt.observe(s.RTTMs, s.At, c)
		}
	}

	var ev []Evidence
	if d.run >= c.FailureRun {
		ev = append(ev, Evidence{Signal: SignalFailures, Current: 1, Baseline: d.errors.p0,
			Distance: float64(d.run), Since: d.runSince})
	}
	// While degrading, a run of ClearRun successes outweighs the errors
	// CUSUM, which after an outage would take long to fall.
	if d.errors.s > c.ErrorThreshold && !(d.state.Degrading && d.calmRun()) {
		ev = append(ev, d.errors.evidence())
	}
	for _, cu := range []*cusum{&d.latency, &d.loss, &d.rtt} {
		if cu.s > c.LatencyThreshold {
			ev = append(ev, cu.evidence())
		}
	}

	switch {
	case len(ev) > 0:
		if !d.state.Degrading {
			d.state = State{Degrading: true, Since: s.At, Evidence: ev}
			return true
		}
		d.state.Evidence = ev
	case d.state.Degrading:
		calm := d.calmRun() || d.errors.s < c.ClearFraction*c.ErrorThreshold
		for _, cu := range []*cusum{&d.latency, &d.loss, &d.rtt} {
			calm = calm && cu.s < c.ClearFraction*c.LatencyThreshold
		}
		if calm && d.lastOK && s.At.Sub(d.state.Since) >= c.MinHold {
			d.errors.reset()
			d.state = State{}
			return true
		}
	}
	return false
}

// calmRun reports whether the run of successes is long enough to call the
// errors signal calm: ClearRun probes, or at least two over ClearAfter.
func (d *Detector) calmRun() bool {
	return d.okRun >= d.cfg.ClearRun || (d.okRun >= 2 && d.lastAt.Sub(d.okSince) >= d.cfg.ClearAfter)
}

// bernoulli is a CUSUM of the log-likelihood ratio of a degraded failure rate
// p1 against the baseline p0.
type bernoulli struct {
	p0    float64   // baseline failure rate (EWMA)
	s     float64   // the cumulative sum, ≥ 0
	since time.Time // the first sample of the drift (s left 0)
	n     float64   // samples since s left 0
	fails float64   // failures among them
}

func (b *bernoulli) observe(ok bool, at time.Time, c Config) {
	p0 := b.p0
	p1 := max(c.ErrorShift*p0, c.MinDegradedErrorRate)
	if p1 >= 1 {
		p1 = 0.999
	}
	x := 0.0
	if ok {
		b.s += math.Log((1 - p1) / (1 - p0))
	} else {
		x = 1
		b.s += math.Log(p1 / p0)
	}
	b.s = min(b.s, 2*c.ErrorThreshold)
	if b.s <= 0 {
		b.s, b.n, b.fails = 0, 0, 0
		// The baseline learns while the sum is at rest, so that a burst of
		// errors does not become the new normal while it is being tested.
		b.p0 = max(p0+alpha(c.ErrorHalfLife)*(x-p0), c.MinErrorRate)
		return
	}
	if b.n == 0 {
		b.since = at
	}
	b.n++
	b.fails += x
}

// reset puts the sum back at rest.
func (b *bernoulli) reset() { b.s, b.n, b.fails = 0, 0, 0 }

func (b *bernoulli) evidence() Evidence {
	cur := 0.0
	if b.n > 0 {
		cur = b.fails / b.n
	}
	return Evidence{Signal: SignalErrors, Baseline: b.p0, Current: cur, Distance: cur / b.p0, Since: b.since}
}

// cusum is a one-sided CUSUM of a continuous signal's upward shift from its
// EWMA baseline, in spreads.
type cusum struct {
	signal    Signal
	log       bool // work on ln(x)
	minSpread float64
	n         int
	mean      float64 // baseline (of ln x when log)
	dev       float64 // EWMA of |x − mean|
	s         float64
	since     time.Time // the first sample of the drift (s left 0)
	last      float64   // the last raw value
	lastZ     float64
}

func (u *cusum) spread() float64 { return max(1.25*u.dev, u.minSpread) }

func (u *cusum) observe(raw float64, at time.Time, c Config) {
	x := raw
	if u.log {
		x = math.Log(max(raw, 1e-3))
	}
	u.last = raw
	if u.n == 0 {
		u.mean, u.dev = x, 0
	}
	u.n++
	a := alpha(c.BaselineHalfLife)
	if u.n <= c.Warmup {
		// Learn fast during the warm-up: a plain running mean.
		a = 1 / float64(u.n)
	}
	z := (x - u.mean) / u.spread()
	u.lastZ = z
	rest := u.s == 0
	if u.n > c.Warmup {
		u.s = min(max(0, u.s+min(z, c.ZCap)-c.K), 2*c.LatencyThreshold)
	}
	if rest && u.s > 0 {
		u.since = at
	}
	if u.s <= c.ClearFraction*c.LatencyThreshold {
		// Huber-style updates: the mean sees the sample clipped at K spreads
		// above it, so a drift upward moves it by at most a×K spreads a
		// sample; the spread sees deviations clipped at 3 spreads.
		d := x - u.mean
		if u.n > c.Warmup {
			sp := u.spread()
			u.mean += a * min(max(d, -3*sp), c.K*sp)
			u.dev += a * (min(math.Abs(d), 3*sp) - u.dev)
		} else {
			u.mean += a * d
			u.dev += a * (math.Abs(d) - u.dev)
		}
	}
}

func (u *cusum) evidence() Evidence {
	base := u.mean
	if u.log {
		base = math.Exp(base)
	}
	return Evidence{Signal: u.signal, Baseline: base, Current: u.last, Distance: u.lastZ, Since: u.since}
}

// alpha is the EWMA weight of a half-life of h samples.
func alpha(h float64) float64 { return 1 - math.Pow(0.5, 1/h) }
