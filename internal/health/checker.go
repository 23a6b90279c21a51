package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboardhq/switchboard"
)

// DefaultMaxConcurrent is the number of probes that run at once when
// Config.MaxConcurrent is zero.
const DefaultMaxConcurrent = 16

// maxMessageLen bounds a probe message as stored and published, in bytes.
const maxMessageLen = 512

// errAbandoned is the cause with which a probe is cancelled when every caller
// waiting for it has gone away. An abandoned probe is not recorded: it says
// nothing about the provider.
var errAbandoned = errors.New("probe abandoned: no caller is waiting")

// Registry reads providers. switchboard.Store satisfies it.
type Registry interface {
	// ListProviders returns every provider, enabled or not.
	ListProviders(ctx context.Context) ([]switchboard.ProviderRecord, error)
	// GetProvider returns one provider, or an error with code ENotFound.
	GetProvider(ctx context.Context, name string) (switchboard.ProviderRecord, error)
}

// HealthRecorder stores health. switchboard.HealthStore (and so
// switchboard.Store) satisfies it; see there for the contract of each method.
type HealthRecorder interface {
	RecordCheck(ctx context.Context, name string, r switchboard.ProbeResult, fold func(switchboard.Health) switchboard.Health) (before, after switchboard.Health, err error)
	UpdateHealth(ctx context.Context, name string, at time.Time, fold func(switchboard.Health) switchboard.Health) (before, after switchboard.Health, err error)
}

// The store satisfies both interfaces.
var (
	_ Registry       = switchboard.Store(nil)
	_ HealthRecorder = switchboard.HealthStore(nil)
)

// Config wires a Checker. Registry, Health and Probers are required.
type Config struct {
	Registry Registry
	Health   HealthRecorder
	// Probers holds the adapter of each provider kind.
	Probers map[switchboard.Kind]switchboard.Prober
	// Bus receives an EventProviderStatus for each status change. Nil drops them.
	Bus switchboard.Bus
	// Clock stamps results and events. Nil means switchboard.SystemClock.
	Clock switchboard.Clock
	// Logger receives state changes at Info and per-probe detail at Debug. Nil
	// discards.
	Logger *slog.Logger
	// MaxConcurrent bounds the probes running at once across all providers,
	// whoever asked for them (scheduler, CheckAll, manual checks). Zero means
	// DefaultMaxConcurrent.
	MaxConcurrent int

	// OnProbe, if set, is called after each probe is recorded, for metrics. It
	// must be quick and must not call back into the Checker.
	OnProbe func(Result)
	// OnTransition, if set, is called after each status change is recorded, for
	// metrics. It must be quick and must not call back into the Checker.
	OnTransition func(StatusChange)

	// Region, when set with Regional, is the region the Checker probes
	// from (serve --region): each recorded probe also folds into the
	// provider's health in that region, as the source SourceServer, by the
	// rules of ObserveRegional.
	Region   string
	Regional RegionalRecorder
	// Source, when set, is the source of those regional records instead of
	// switchboard.SourceServer.
	Source string
}

// RegionalRecorder stores health per region. switchboard.RegionalHealthStore
// (and so switchboard.Store) satisfies it.
type RegionalRecorder interface {
	RecordRegionalCheck(ctx context.Context, provider, region, source string, fold func(switchboard.Health) switchboard.Health) (before, after switchboard.Health, err error)
}

var _ RegionalRecorder = switchboard.RegionalHealthStore(nil)

// Result is the outcome of a check of one provider.
type Result struct {
	Name string
	Kind switchboard.Kind
	// Probed is false when the provider was not probed (it is disabled).
	Probed bool
	// Probe is the raw result of the probe; zero when not probed.
	Probe switchboard.ProbeResult
	// Health is the provider's health after the probe was folded in.
	Health switchboard.Health
	Status switchboard.Status
	State  switchboard.State
}

// StatusChange is the Data of an EventProviderStatus event. It holds no secret.
type StatusChange struct {
	Name   string             `json:"name"`
	Kind   switchboard.Kind   `json:"kind"`
	From   switchboard.Status `json:"from"`
	To     switchboard.Status `json:"to"`
	Reason string             `json:"reason"`
	At     time.Time          `json:"at"`
}

// Checker probes providers and records their health. It is safe for concurrent
// use. Create it with NewChecker.
type Checker struct {
	reg          Registry
	rec          HealthRecorder
	probers      map[switchboard.Kind]switchboard.Prober
	bus          switchboard.Bus
	clock        switchboard.Clock
	log          *slog.Logger
	onProbe      func(Result)
	onTransition func(StatusChange)
	// region, regional and source record probes per region (Config.Region).
	region   string
	regional RegionalRecorder
	source   string

	sem chan struct{} // one token per running probe

	mu      sync.Mutex
	flights map[string]*flight // guarded by mu; the probe in progress per provider

	// gen counts the health records this Checker wrote (see Generation).
	gen atomic.Uint64

	fmu     sync.Mutex
	failing map[string]*failureState // guarded by fmu; client-reported failures per provider (failures.go)
}

// Generation returns a number that grows after every health record this
// Checker writes (a probe recorded, a client failure, a refresh), once the
// write is committed. A reader that notes it before reading a record and
// finds it unchanged later knows that this Checker wrote nothing since:
// what caches health in memory uses it to drop what a change made stale.
func (c *Checker) Generation() uint64 { return c.gen.Load() }

// flight is one probe of one provider and the callers waiting for it.
type flight struct {
	done   chan struct{} // closed when res and err are set
	res    Result
	err    error
	cancel context.CancelCauseFunc

	waiters   int  // guarded by Checker.mu
	abandoned bool // guarded by Checker.mu; every waiter left and the probe was cancelled
}

// NewChecker returns a Checker wired by cfg.
func NewChecker(cfg Config) (*Checker, error) {
	switch {
	case cfg.Registry == nil:
		return nil, errors.New("health: Config.Registry is required")
	case cfg.Health == nil:
		return nil, errors.New("health: Config.Health is required")
	case len(cfg.Probers) == 0:
		return nil, errors.New("health: Config.Probers is required")
	case cfg.MaxConcurrent < 0:
		return nil, errors.New("health: Config.MaxConcurrent must not be negative")
	}
	c := &Checker{
		reg:          cfg.Registry,
		rec:          cfg.Health,
		probers:      cfg.Probers,
		bus:          cfg.Bus,
		clock:        cfg.Clock,
		log:          cfg.Logger,
		onProbe:      cfg.OnProbe,
		onTransition: cfg.OnTransition,
		region:       cfg.Region,
		regional:     cfg.Regional,
		source:       cfg.Source,
		flights:      make(map[string]*flight),
		failing:      make(map[string]*failureState),
	}
	if c.bus == nil {
		c.bus = switchboard.NopBus{}
	}
	if c.clock == nil {
		c.clock = switchboard.SystemClock{}
	}
	if c.source == "" {
		c.source = switchboard.SourceServer
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	n := cfg.MaxConcurrent
	if n == 0 {
		n = DefaultMaxConcurrent
	}
	c.sem = make(chan struct{}, n)
	return c, nil
}

// Check probes the provider name now, with the timeout of its policy, records
// the result and returns it. A call made while a probe of the same provider is
// running joins that probe and returns its result: a provider is never probed
// twice at once.
//
// The probe does not belong to any one caller: if ctx ends, Check returns
// ctx's error but the probe goes on for the other callers; when the last one
// leaves, the probe is cancelled and its result is not recorded. The probe's
// timeout starts when it gets one of the MaxConcurrent slots, so waiting for a
// slot never turns into a false timeout.
//
// A disabled provider is not probed: Check returns a Result with Probed false
// and status DISABLED. An unknown provider is an ENotFound error.
func (c *Checker) Check(ctx context.Context, name string) (Result, error) {
	rec, err := c.reg.GetProvider(ctx, name)
	if err != nil {
		return Result{}, fmt.Errorf("check %s: %w", name, err)
	}
	if !rec.Enabled {
		h := rec.Health
		h.Status, h.StatusReason = Derive(h, rec.HealthCheck, false)
		return Result{Name: rec.Name, Kind: rec.Kind, Health: h, Status: h.Status, State: StateOf(h.Status)}, nil
	}
	res, err := c.join(ctx, rec.Provider)
	if err != nil {
		return Result{}, fmt.Errorf("check %s: %w", name, err)
	}
	return res, nil
}

// join waits for the probe of p in progress, starting one if there is none.
func (c *Checker) join(ctx context.Context, p switchboard.Provider) (Result, error) {
	for {
		c.mu.Lock()
		f := c.flights[p.Name]
		if f != nil && f.abandoned {
			// A cancelled probe is winding down: wait for it rather than
			// probe the provider twice at once, then start afresh.
			c.mu.Unlock()
			select {
			case <-f.done:
				continue
			case <-ctx.Done():
				return Result{}, context.Cause(ctx)
			}
		}
		if f == nil {
			// The probe outlives the caller that started it (other callers may
			// join), so it runs under a context that only abandonment cancels.
			// The context keeps ctx's values.
			fctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
			f = &flight{done: make(chan struct{}), cancel: cancel}
			c.flights[p.Name] = f
			go c.fly(fctx, f, p)
		}
		f.waiters++
		c.mu.Unlock()

		select {
		case <-f.done:
			c.mu.Lock()
			f.waiters--
			c.mu.Unlock()
			return f.res, f.err
		case <-ctx.Done():
			c.mu.Lock()
			f.waiters--
			last := f.waiters == 0 && !isClosed(f.done)
			if last {
				f.abandoned = true
				f.cancel(errAbandoned)
			}
			c.mu.Unlock()
			if last {
				// The prober returns promptly once cancelled (Prober's
				// contract); waiting here means no probe goroutine outlives
				// the last caller who asked for it.
				<-f.done
			}
			return Result{}, context.Cause(ctx)
		}
	}
}

// fly runs one probe of p and records it, then releases the waiters of f. It is
// the root of its goroutine.
func (c *Checker) fly(ctx context.Context, f *flight, p switchboard.Provider) {
	defer func() {
		if v := recover(); v != nil {
			c.log.Error("health check panicked", "provider", p.Name, "kind", p.Kind,
				"panic", redact(fmt.Sprint(v), p.Credentials))
			f.res, f.err = Result{}, switchboard.Errorf(switchboard.EInternal, "health check of %s failed", p.Name)
		}
		f.cancel(nil)
		c.mu.Lock()
		if c.flights[p.Name] == f {
			delete(c.flights, p.Name)
		}
		close(f.done)
		c.mu.Unlock()
	}()
	f.res, f.err = c.probeAndRecord(ctx, p)
}

func (c *Checker) probeAndRecord(ctx context.Context, p switchboard.Provider) (Result, error) {
	prober := c.probers[p.Kind]
	if prober == nil {
		return Result{}, switchboard.Errorf(switchboard.EUnavailable, "no adapter for provider kind %q", p.Kind)
	}
	pol := withDefaults(p.HealthCheck)

	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return Result{}, context.Cause(ctx)
	}
	start := c.clock.Now()
	began := time.Now()
	pctx, cancel := context.WithTimeout(ctx, pol.Timeout.D())
	r := prober.Probe(pctx, p)
	timedOut := errors.Is(pctx.Err(), context.DeadlineExceeded)
	cancel()
	<-c.sem
	if ctx.Err() != nil {
		return Result{}, context.Cause(ctx)
	}
	r = normalize(r, p, start, time.Since(began), timedOut)

	before, after, err := c.rec.RecordCheck(ctx, p.Name, r, func(h switchboard.Health) switchboard.Health {
		return Observe(h, r, pol, p.Enabled)
	})
	c.gen.Add(1)
	if err != nil {
		return Result{}, fmt.Errorf("record check: %w", err)
	}
	if c.regional != nil && c.region != "" {
		_, _, err := c.regional.RecordRegionalCheck(ctx, p.Name, c.region, c.source, func(h switchboard.Health) switchboard.Health {
			return ObserveRegional(h, r, pol, p.Enabled)
		})
		if err != nil && ctx.Err() == nil {
			c.log.Warn("record regional check failed", "provider", p.Name, "region", c.region, "error", err)
		}
	}
	res := Result{Name: p.Name, Kind: p.Kind, Probed: true, Probe: r, Health: after, Status: after.Status, State: StateOf(after.Status)}
	c.log.Debug("provider probed", "provider", p.Name, "kind", p.Kind, "ok", r.OK,
		"stage", r.Stage, "latency_ms", r.Latency.Milliseconds(), "status", after.Status)
	if c.onProbe != nil {
		c.onProbe(res)
	}
	c.transitioned(p, before, after, r.At)
	return res, nil
}

// normalize makes a probe result safe to store whatever the adapter did: it is
// stamped with the Checker's clock at the start of the probe (adapters have no
// clock), and has a latency, a stage when it failed, and a bounded message with
// no credential in it.
func normalize(r switchboard.ProbeResult, p switchboard.Provider, start time.Time, elapsed time.Duration, timedOut bool) switchboard.ProbeResult {
	r.At = start
	if r.Latency <= 0 {
		r.Latency = elapsed
	}
	if r.OK {
		r.Stage = ""
	} else if r.Stage == "" {
		r.Stage = switchboard.StageOperation
		if timedOut {
			r.Stage = switchboard.StageTimeout
		}
	}
	r.Message = truncate(redact(r.Message, p.Credentials), maxMessageLen)
	return r
}

// Refresh re-derives the stored status of the provider name from its current
// settings, publishing the transition if the status changes. Call it after a
// provider is enabled, disabled or given new thresholds. It first waits for a
// probe of the provider in progress, which may have read the old settings, so
// that the refreshed status is the last word.
func (c *Checker) Refresh(ctx context.Context, name string) (switchboard.Health, error) {
	c.mu.Lock()
	f := c.flights[name]
	c.mu.Unlock()
	if f != nil {
		select {
		case <-f.done:
		case <-ctx.Done():
			return switchboard.Health{}, fmt.Errorf("refresh %s: %w", name, context.Cause(ctx))
		}
	}
	now := c.clock.Now()
	h, err := c.update(ctx, name, now, func(h switchboard.Health, p switchboard.Provider) switchboard.Health {
		return Reevaluate(h, now, p.HealthCheck, p.Enabled)
	})
	if err != nil {
		return h, fmt.Errorf("refresh %s: %w", name, err)
	}
	return h, nil
}

func (c *Checker) update(ctx context.Context, name string, at time.Time, fold func(switchboard.Health, switchboard.Provider) switchboard.Health) (switchboard.Health, error) {
	rec, err := c.reg.GetProvider(ctx, name)
	if err != nil {
		return switchboard.Health{}, err
	}
	before, after, err := c.rec.UpdateHealth(ctx, name, at, func(h switchboard.Health) switchboard.Health {
		return fold(h, rec.Provider)
	})
	c.gen.Add(1) // after an error too: the write may have landed
	if err != nil {
		return switchboard.Health{}, fmt.Errorf("update health: %w", err)
	}
	c.transitioned(rec.Provider, before, after, at)
	return after, nil
}

// transitioned logs and publishes a status change from before to after, if
// there is one.
func (c *Checker) transitioned(p switchboard.Provider, before, after switchboard.Health, at time.Time) {
	from, to := orUnknown(before.Status), orUnknown(after.Status)
	if from == to {
		return
	}
	if after.StatusSince != nil {
		at = *after.StatusSince
	}
	ch := StatusChange{Name: p.Name, Kind: p.Kind, From: from, To: to, Reason: after.StatusReason, At: at}
	c.log.Info("provider status changed", "provider", p.Name, "kind", p.Kind,
		"from", from, "to", to, "reason", ch.Reason)
	c.bus.Publish(switchboard.Event{
		Type:     switchboard.EventProviderStatus,
		At:       at,
		Audience: switchboard.RoleClient,
		Data:     ch,
	})
	if c.onTransition != nil {
		c.onTransition(ch)
	}
}

// CheckAll checks every enabled provider at once (within MaxConcurrent), so it
// takes about as long as the slowest probe. Results follow the registry's order
// (priority, then name). A provider deleted during the call is left out; any
// other failure is joined into the error, next to the results that succeeded.
func (c *Checker) CheckAll(ctx context.Context) ([]Result, error) {
	recs, err := c.reg.ListProviders(ctx)
	if err != nil {
		return nil, fmt.Errorf("check all: %w", err)
	}
	type outcome struct {
		res Result
		err error
	}
	outs := make([]outcome, len(recs))
	var wg sync.WaitGroup
	for i, rec := range recs {
		if !rec.Enabled {
			continue
		}
		wg.Go(func() {
			outs[i].res, outs[i].err = c.Check(ctx, rec.Name)
		})
	}
	wg.Wait()
	results := make([]Result, 0, len(recs))
	var errs []error
	for i, o := range outs {
		switch {
		case !recs[i].Enabled || switchboard.IsCode(o.err, switchboard.ENotFound):
		case o.err != nil:
			errs = append(errs, o.err)
		default:
			results = append(results, o.res)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return results, fmt.Errorf("check all: %w", err)
	}
	return results, nil
}

func orUnknown(s switchboard.Status) switchboard.Status {
	if s == "" {
		return switchboard.StatusUnknown
	}
	return s
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// redact replaces every credential value of c found in s.
func redact(s string, c switchboard.Credentials) string {
	for _, v := range c.Values() {
		s = strings.ReplaceAll(s, v, "[REDACTED]")
	}
	return s
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence, and
// marks a cut with an ellipsis.
func truncate(s string, n int) string {
	if t := switchboard.Truncate(s, n); len(t) < len(s) {
		return t + "…"
	}
	return s
}
