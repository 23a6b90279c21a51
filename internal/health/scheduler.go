package health

import (
	"container/heap"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboardhq/switchboard"
)

// Scheduler defaults.
const (
	// DefaultJitter is the fraction of the interval by which each probe is moved
	// at random, either way, when SchedulerConfig.Jitter is zero.
	DefaultJitter = 0.1
	// DefaultResync is how often the Scheduler re-reads the registry when
	// SchedulerConfig.Resync is zero, as a safety net for a missed Notify.
	DefaultResync = 30 * time.Second
	// maxJitter keeps two probes of a provider at least half an interval apart.
	maxJitter = 0.5
)

// SchedulerConfig tunes a Scheduler. The zero value is ready to use.
type SchedulerConfig struct {
	// Jitter is the fraction of the interval by which each probe moves, either
	// way, at random: 0.1 means intervals of 0.9 to 1.1 times the setting, so
	// that probes that start together drift apart. Zero means DefaultJitter; a
	// negative value disables jitter. At most 0.5.
	Jitter float64
	// MaxStagger caps the random delay, otherwise in [0, interval), before a
	// provider's first probe (after start, or after its interval changed). Zero
	// means no cap.
	MaxStagger time.Duration
	// Resync is how often the registry is re-read even without Notify. Zero
	// means DefaultResync.
	Resync time.Duration
	// Logger defaults to the Checker's logger.
	Logger *slog.Logger
}

// Scheduler probes every enabled provider at its interval, through a Checker
// (so that a manual check joins a scheduled one, and the Checker's
// MaxConcurrent bounds both). Create it with NewScheduler and start it with Run.
//
// It is a single loop over a min-heap of next-due times rather than one
// goroutine per provider: the schedule has one owner, so Notify and resyncs
// change it without locks; it costs one timer whatever the number of providers
// and O(log n) per probe; and it spawns a goroutine only for a probe that is
// due, at most one per provider (a provider whose previous probe still runs
// skips its turn instead of piling up). 200 providers at a 1 s interval are 200
// short-lived goroutines a second.
type Scheduler struct {
	checker    *Checker
	log        *slog.Logger
	jitter     float64
	maxStagger time.Duration
	resync     time.Duration

	notify  chan struct{} // buffered 1: Notify coalesces
	running atomic.Bool
}

// NewScheduler returns a Scheduler that runs checks through c.
func NewScheduler(c *Checker, cfg SchedulerConfig) *Scheduler {
	s := &Scheduler{
		checker:    c,
		log:        cfg.Logger,
		jitter:     cfg.Jitter,
		maxStagger: cfg.MaxStagger,
		resync:     cfg.Resync,
		notify:     make(chan struct{}, 1),
	}
	if s.log == nil {
		s.log = c.log
	}
	switch {
	case s.jitter == 0:
		s.jitter = DefaultJitter
	case s.jitter < 0:
		s.jitter = 0
	case s.jitter > maxJitter:
		s.jitter = maxJitter
	}
	if s.resync <= 0 {
		s.resync = DefaultResync
	}
	return s
}

// Notify tells a running Scheduler that providers changed (created, updated,
// enabled, disabled, deleted), so that it re-reads the registry now. It never
// blocks; several calls before the Scheduler gets to them count as one.
func (s *Scheduler) Notify() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// Run probes providers until ctx is done, then returns nil once every goroutine
// it started has exited (probes in flight are cancelled and not recorded, unless
// a manual Check still waits for them). When the registry cannot be read, the
// schedule stays as it was and the next Notify or resync tries again. A
// Scheduler runs at most once at a time; a second concurrent Run returns an
// error.
func (s *Scheduler) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("health: scheduler is already running")
	}
	defer s.running.Store(false)

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait() // runs after cancel: each probe returns when its caller leaves
	defer cancel()

	finished := make(chan *entry)
	sched := schedule{byName: make(map[string]*entry)}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	resync := time.NewTicker(s.resync)
	defer resync.Stop()

	s.sync(ctx, &sched)
	for {
		s.arm(timer, &sched)
		select {
		case <-ctx.Done():
			return nil
		case <-s.notify:
			s.sync(ctx, &sched)
		case <-resync.C:
			s.sync(ctx, &sched)
		case e := <-finished:
			e.running = false
		case <-timer.C:
			s.dispatch(ctx, &sched, &wg, finished)
		}
	}
}

// arm sets timer to fire when the next probe is due.
func (s *Scheduler) arm(timer *time.Timer, sched *schedule) {
	if len(sched.heap) == 0 {
		timer.Stop()
		return
	}
	timer.Reset(max(time.Until(sched.heap[0].next), 0))
}

// dispatch starts the probes that are due.
func (s *Scheduler) dispatch(ctx context.Context, sched *schedule, wg *sync.WaitGroup, finished chan<- *entry) {
	now := time.Now()
	for len(sched.heap) > 0 && !sched.heap[0].next.After(now) {
		e := sched.heap[0]
		// Fixed delay from this dispatch, not from the due time: two probes of
		// a provider are never closer than the jittered interval, even after
		// the loop fell behind.
		e.next = now.Add(s.jittered(e.interval))
		heap.Fix(&sched.heap, 0)
		if e.running {
			s.log.Debug("health probe skipped: previous probe still running", "provider", e.name)
			continue
		}
		e.running = true
		wg.Go(func() {
			if _, err := s.checker.Check(ctx, e.name); err != nil && ctx.Err() == nil {
				if switchboard.IsCode(err, switchboard.ENotFound) {
					s.log.Debug("health probe of deleted provider", "provider", e.name)
				} else {
					s.log.Warn("health check failed", "provider", e.name, "error", err)
				}
			}
			select {
			case finished <- e:
			case <-ctx.Done():
			}
		})
	}
}

// sync makes the schedule match the registry: enabled providers are added or
// updated, others dropped. On a registry error the schedule stays as it is.
func (s *Scheduler) sync(ctx context.Context, sched *schedule) {
	recs, err := s.checker.reg.ListProviders(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("health scheduler cannot list providers", "error", err)
		}
		return
	}
	now := time.Now()
	seen := make(map[string]bool, len(recs))
	for _, rec := range recs {
		if !rec.Enabled {
			continue
		}
		seen[rec.Name] = true
		interval := withDefaults(rec.HealthCheck).Interval.D()
		e := sched.byName[rec.Name]
		switch {
		case e == nil:
			e = &entry{name: rec.Name, interval: interval, next: now.Add(s.stagger(interval))}
			sched.byName[rec.Name] = e
			heap.Push(&sched.heap, e)
		case e.interval != interval:
			// Start over as if new, so that a shorter interval applies at once
			// and a longer one does not wait for the old due time.
			e.interval = interval
			e.next = now.Add(s.stagger(interval))
			heap.Fix(&sched.heap, e.index)
		}
	}
	for name, e := range sched.byName {
		if !seen[name] {
			heap.Remove(&sched.heap, e.index)
			delete(sched.byName, name)
		}
	}
}

// stagger returns the random delay before a provider's first probe.
func (s *Scheduler) stagger(interval time.Duration) time.Duration {
	limit := interval
	if s.maxStagger > 0 {
		limit = min(limit, s.maxStagger)
	}
	if limit <= 0 {
		return 0
	}
	return rand.N(limit)
}

// jittered returns interval moved by up to ±jitter of itself.
func (s *Scheduler) jittered(interval time.Duration) time.Duration {
	if s.jitter == 0 {
		return interval
	}
	f := 1 + s.jitter*(2*rand.Float64()-1)
	return time.Duration(float64(interval) * f)
}

// entry is one provider in the schedule. Only the Run loop touches it.
type entry struct {
	name     string
	interval time.Duration
	next     time.Time
	running  bool // a probe started by the scheduler has not finished
	index    int  // in the heap
}

// schedule is the Run loop's state.
type schedule struct {
	heap   entryHeap
	byName map[string]*entry
}

// entryHeap is a min-heap of entries by next due time (container/heap).
type entryHeap []*entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*h = old[:len(old)-1]
	return e
}
