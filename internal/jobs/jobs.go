// Package jobs runs the scheduled work of the control plane: ending abandoned
// streams, compacting health history every day, freezing each month's usage
// and cost, and raising budget alerts.
//
// Every job is keyed by a period (a day, a month) recorded in the store with
// MarkJobRan, so that it runs once per period across restarts and, for budget
// alerts, across replicas. A job's work is idempotent and is marked only after
// it succeeded: a failed job retries on the next tick, and a crash between the
// work and the mark only repeats harmless work.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/streams"
)

// Defaults of Config.
const (
	DefaultTick         = 15 * time.Second
	DefaultAbandonAfter = 2 * time.Minute
	DefaultKeepRaw      = 7 * 24 * time.Hour
)

// DefaultBudgetThresholds are the percentages of a monthly budget at which an
// alert is raised when Config.BudgetThresholds is empty.
var DefaultBudgetThresholds = []float64{80, 100}

// Job names, as recorded with MarkJobRan. A budget alert is recorded as
// "budget-<threshold>:<provider>" for the month, e.g. "budget-80:agora".
const (
	JobDailyRollup   = "daily-rollup"   // period: the UTC date of the day that ended, "2026-11-27"
	JobMonthlyRollup = "monthly-rollup" // period: the month that ended, "2026-11"
)

const (
	dayLayout   = "2006-01-02"
	monthLayout = "2006-01"
)

// Store is what the jobs need of storage; the SQL store implements it.
type Store interface {
	ListProviders(ctx context.Context) ([]sb.ProviderRecord, error)
	CompactHistory(ctx context.Context, day time.Time, keepRawBefore time.Time) error
	AbandonStale(ctx context.Context, cutoff time.Time) ([]sb.Stream, error)
	Usage(ctx context.Context, from, to time.Time) ([]sb.ProviderUsage, error)
	SaveMonthlyUsage(ctx context.Context, us []sb.MonthlyUsage) error
	MarkJobRan(ctx context.Context, job, period string, at time.Time) (bool, error)
	JobRan(ctx context.Context, job, period string) (bool, error)
}

// QualityCompactor is the retention of quality rollups, run with the daily
// compaction when the Store has it (the SQL store does).
type QualityCompactor interface {
	CompactQuality(ctx context.Context, day, keepRawBefore time.Time) error
}

// Config wires a Runner. Store is required; every other field has a default.
type Config struct {
	Store  Store
	Bus    sb.Bus       // default: sb.NopBus
	Clock  sb.Clock     // default: sb.SystemClock; the only source of time
	Logger *slog.Logger // default: discard
	// Tick is how often Run wakes up to call RunOnce (default 15 s).
	Tick time.Duration
	// AbandonAfter is how long an active stream may go without a heartbeat
	// before it is ended as abandoned (default 2 min).
	AbandonAfter time.Duration
	// KeepRaw is how long raw probe results are kept (default 7 days).
	KeepRaw time.Duration
	// SweepGrace holds back the abandoned sweep for this long after the
	// Runner's first run (0 = none). After an outage of the control plane,
	// clients whose streams kept running need a heartbeat interval to reach it
	// again; without the grace their streams would be ended as abandoned.
	SweepGrace time.Duration
	// BudgetThresholds are percentages of a provider's monthly budget at which
	// an alert is published once a month (default 80 and 100). Values that are
	// not finite and positive are ignored.
	BudgetThresholds []float64
}

// BudgetAlert is the Data of an sb.EventBudgetAlert event: the provider's cost
// this month reached Threshold percent of its budget.
type BudgetAlert struct {
	Provider  string  `json:"provider"`
	Month     string  `json:"month"`     // YYYY-MM
	Threshold float64 `json:"threshold"` // percent of the budget
	Cost      float64 `json:"cost"`
	Budget    float64 `json:"budget"`
	Currency  string  `json:"currency"`
}

// Runner runs the scheduled jobs. Create it with New; run it with Run, or
// drive it with RunOnce.
type Runner struct {
	store        Store
	bus          sb.Bus
	clock        sb.Clock
	log          *slog.Logger
	tick         time.Duration
	abandonAfter time.Duration
	keepRaw      time.Duration
	sweepGrace   time.Duration
	thresholds   []float64

	running atomic.Bool

	mu sync.Mutex // serialises RunOnce and guards done
	// done remembers, per job key, the last period known to be recorded, so
	// that a steady tick asks the store nothing it already knows.
	done map[string]string
	// first is the time of the first RunOnce, for SweepGrace.
	first time.Time
}

// New returns a Runner for cfg, with defaults filled in.
func New(cfg Config) *Runner {
	r := &Runner{
		store: cfg.Store, bus: cfg.Bus, clock: cfg.Clock, log: cfg.Logger,
		tick: cfg.Tick, abandonAfter: cfg.AbandonAfter, keepRaw: cfg.KeepRaw, sweepGrace: cfg.SweepGrace,
		done: make(map[string]string),
	}
	if r.bus == nil {
		r.bus = sb.NopBus{}
	}
	if r.clock == nil {
		r.clock = sb.SystemClock{}
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.tick <= 0 {
		r.tick = DefaultTick
	}
	if r.abandonAfter <= 0 {
		r.abandonAfter = DefaultAbandonAfter
	}
	if r.keepRaw <= 0 {
		r.keepRaw = DefaultKeepRaw
	}
	for _, t := range cfg.BudgetThresholds {
		if t > 0 && !math.IsInf(t, 0) && !slices.Contains(r.thresholds, t) {
			r.thresholds = append(r.thresholds, t)
		}
	}
	if len(r.thresholds) == 0 {
		r.thresholds = slices.Clone(DefaultBudgetThresholds)
	}
	slices.Sort(r.thresholds)
	return r
}

// Run calls RunOnce at once and then every Tick until ctx is done, and returns
// nil once it has stopped; it starts no goroutine. The ticker only wakes it up:
// what is due is decided by the Clock. A failed RunOnce is logged and retried
// on the next tick. A Runner runs at most once at a time; a second concurrent
// Run returns an error.
func (r *Runner) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("jobs: runner is already running")
	}
	defer r.running.Store(false)

	t := time.NewTicker(r.tick)
	defer t.Stop()
	for {
		if err := r.RunOnce(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("scheduled jobs failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RunOnce does what is due at the Clock's now, in order:
//
//  1. ends the active streams whose last heartbeat is older than AbandonAfter,
//     at their last heartbeat;
//  2. once per UTC day, compacts the health history of the days before today
//     and deletes raw probe results older than KeepRaw;
//  3. once per month, freezes the usage and cost of the month that ended;
//  4. publishes a budget alert for each provider and threshold its cost this
//     month has reached, once per month.
//
// A job that fails does not stop the others; their errors are joined. Periods
// are only ever the latest: a store that missed days or months (a new install,
// a long outage) gets the previous day's and month's jobs, never a backfill.
func (r *Runner) RunOnce(ctx context.Context) error {
	if r.store == nil {
		return errors.New("jobs: no store configured")
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	now := r.clock.Now().UTC()
	var errs []error
	if err := r.sweepAbandoned(ctx, now); err != nil {
		errs = append(errs, fmt.Errorf("abandoned sweep: %w", err))
	}
	if err := r.dailyRollup(ctx, now); err != nil {
		errs = append(errs, fmt.Errorf("daily rollup: %w", err))
	}
	if err := r.monthlyRollup(ctx, now); err != nil {
		errs = append(errs, fmt.Errorf("monthly rollup: %w", err))
	}
	if err := r.budgetAlerts(ctx, now); err != nil {
		errs = append(errs, fmt.Errorf("budget alerts: %w", err))
	}
	return errors.Join(errs...)
}

// sweepAbandoned ends the streams that stopped sending heartbeats. The store
// ends each at its last heartbeat, so that no silent time is billed.
func (r *Runner) sweepAbandoned(ctx context.Context, now time.Time) error {
	if r.first.IsZero() {
		r.first = now
	}
	if now.Sub(r.first) < r.sweepGrace {
		return nil
	}
	// The store may have ended some before an error: those are announced.
	ended, err := r.store.AbandonStale(ctx, now.Add(-r.abandonAfter))
	for _, s := range ended {
		r.log.Info("stream abandoned", "stream_id", s.ID, "provider", s.Provider,
			"last_heartbeat", s.LastHeartbeat)
		r.bus.Publish(sb.Event{Type: sb.EventStreamEnded, At: now, Audience: sb.RoleAdmin, Data: streams.Lifecycle(s, sb.EndAbandoned)})
	}
	return err
}

// dailyRollup compacts the health history once the UTC day has changed. The
// period is the day that ended; CompactHistory folds every complete day before
// today (recomputing rather than adding), so it is idempotent and catches up
// with any days missed.
func (r *Runner) dailyRollup(ctx context.Context, now time.Time) error {
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	period := today.AddDate(0, 0, -1).Format(dayLayout)
	return r.once(ctx, JobDailyRollup, period, now, func() error {
		if err := r.store.CompactHistory(ctx, today, now.Add(-r.keepRaw)); err != nil {
			return err
		}
		// Quality rollups follow the same retention: minutes as raw results,
		// hours 35 days.
		if q, ok := r.store.(QualityCompactor); ok {
			if err := q.CompactQuality(ctx, today, now.Add(-r.keepRaw)); err != nil {
				return err
			}
		}
		r.log.Info("health history compacted", "period", period)
		return nil
	})
}

// monthlyRollup freezes the usage of the month that ended: minutes per tier
// over [start of that month, start of this month) and their cost at each
// provider's CURRENT pricing (the prices in force when the month is frozen;
// later price changes do not alter a frozen month). Providers created after
// the month ended are left out. Saving is an upsert, so doing it twice is
// harmless.
//
// A stream live across the month boundary counts in the frozen month up to its
// last heartbeat before the rollup runs, which may miss at most one heartbeat
// interval before midnight.
func (r *Runner) monthlyRollup(ctx context.Context, now time.Time) error {
	to := sb.MonthStart(now)
	from := sb.MonthStart(to.Add(-time.Nanosecond))
	month := from.Format(monthLayout)
	return r.once(ctx, JobMonthlyRollup, month, now, func() error {
		recs, err := r.store.ListProviders(ctx)
		if err != nil {
			return fmt.Errorf("list providers: %w", err)
		}
		stats, err := r.stats(ctx, from, to)
		if err != nil {
			return err
		}
		us := make([]sb.MonthlyUsage, 0, len(recs))
		for _, rec := range recs {
			st := stats[rec.Name]
			if !used(st.Minutes) && !rec.CreatedAt.IsZero() && !rec.CreatedAt.Before(to) {
				continue
			}
			minutes := st.Minutes
			if minutes == nil { // created after StatsAt listed the providers
				minutes = map[sb.Quality]float64{}
			}
			us = append(us, sb.MonthlyUsage{
				Provider: rec.Name, Month: month, Minutes: minutes,
				Cost: st.MonthlyCost, Currency: rec.Pricing.Currency,
			})
		}
		if err := r.store.SaveMonthlyUsage(ctx, us); err != nil {
			return fmt.Errorf("save: %w", err)
		}
		r.log.Info("monthly usage frozen", "month", month, "providers", len(us))
		return nil
	})
}

// budgetAlerts publishes an alert for every provider with a budget and every
// threshold its cost this month has reached. The store's MarkJobRan decides
// who publishes: only the call that records the month's key does, so an alert
// goes out once per month even with several replicas.
func (r *Runner) budgetAlerts(ctx context.Context, now time.Time) error {
	recs, err := r.store.ListProviders(ctx)
	if err != nil {
		return fmt.Errorf("list providers: %w", err)
	}
	from := sb.MonthStart(now)
	month := from.Format(monthLayout)

	// Ask the store for usage only when some threshold may still fire.
	pending := false
	for _, rec := range recs {
		if rec.MonthlyBudget > 0 && r.done[budgetJob(r.thresholds[len(r.thresholds)-1], rec.Name)] != month {
			pending = true
			break
		}
	}
	if !pending {
		return nil
	}
	stats, err := r.stats(ctx, from, now)
	if err != nil {
		return err
	}
	var errs []error
	for _, rec := range recs {
		if rec.MonthlyBudget <= 0 {
			continue
		}
		cost := stats[rec.Name].MonthlyCost
		for _, t := range r.thresholds {
			if !reached(cost, rec.MonthlyBudget, t) {
				break // thresholds are sorted
			}
			job := budgetJob(t, rec.Name)
			if r.done[job] == month {
				continue
			}
			marked, err := r.store.MarkJobRan(ctx, job, month, now)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", job, err))
				break
			}
			r.done[job] = month
			if !marked {
				continue // another replica, or an earlier run, sent it
			}
			a := BudgetAlert{Provider: rec.Name, Month: month, Threshold: t, Cost: cost,
				Budget: rec.MonthlyBudget, Currency: rec.Pricing.Currency}
			r.log.Info("budget alert", "provider", a.Provider, "month", a.Month, "threshold", a.Threshold,
				"cost", a.Cost, "budget", a.Budget, "currency", a.Currency)
			r.bus.Publish(sb.Event{Type: sb.EventBudgetAlert, At: now, Audience: sb.RoleAdmin, Data: a})
		}
	}
	return errors.Join(errs...)
}

// once runs work for job and period unless it is known to have run, and
// records it when work succeeds.
func (r *Runner) once(ctx context.Context, job, period string, now time.Time, work func() error) error {
	if r.done[job] == period {
		return nil
	}
	ran, err := r.store.JobRan(ctx, job, period)
	if err != nil {
		return fmt.Errorf("job ran %s %s: %w", job, period, err)
	}
	if !ran {
		if err := work(); err != nil {
			return fmt.Errorf("%s: %w", period, err)
		}
		if _, err := r.store.MarkJobRan(ctx, job, period, now); err != nil {
			return fmt.Errorf("mark job ran %s %s: %w", job, period, err)
		}
	}
	r.done[job] = period
	return nil
}

// stats prices every registered provider's usage over [from, to) at its
// current pricing (streams.StatsAt), by provider name.
func (r *Runner) stats(ctx context.Context, from, to time.Time) (map[string]streams.ProviderStats, error) {
	list, err := streams.StatsAt(ctx, r.store, from, to)
	if err != nil {
		return nil, fmt.Errorf("usage: %w", err)
	}
	out := make(map[string]streams.ProviderStats, len(list))
	for _, s := range list {
		out[s.Name] = s
	}
	return out, nil
}

// used reports whether any minutes were streamed.
func used(minutes map[sb.Quality]float64) bool {
	for _, m := range minutes {
		if m > 0 {
			return true
		}
	}
	return false
}

// reached reports whether cost is at least pct percent of budget, compared in
// whole cents so that, say, $8.00 of a $10.00 budget is exactly 80 %. Nothing
// spent reaches nothing, however small the budget.
func reached(cost, budget, pct float64) bool {
	c := sb.Round2(cost)
	return c > 0 && c >= sb.Round2(budget*pct/100)
}

func budgetJob(threshold float64, provider string) string {
	return "budget-" + strconv.FormatFloat(threshold, 'f', -1, 64) + ":" + provider
}
