// Package maintenance follows the planned maintenance windows of providers.
// Every replica keeps the windows that are not over in memory, so that
// routing (which providers take no new streams) and alerting (which
// providers are silenced) ask without I/O. The leader announces when windows
// start and end, and drains the providers of the windows that ask for it:
// their live streams are asked, one by one and at most DrainRate per second,
// to move to another provider, through an event their SDK acts on.
package maintenance

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/routing"
)

// Store is what the service needs of storage.
type Store interface {
	sb.MaintenanceStore
	ListStreams(ctx context.Context, f sb.StreamFilter) ([]sb.Stream, error)
	GetStream(ctx context.Context, id string) (sb.Stream, error)
	ActiveCounts(ctx context.Context) (map[string]int64, error)
}

// Defaults of Config.
const (
	DefaultMaxAge = 5 * time.Second
	// DefaultReask is how long a stream asked to move may stay on the
	// provider before it is asked again (its SDK may have missed the event).
	DefaultReask = 30 * time.Second
)

// Config wires a Service.
type Config struct {
	Store  Store
	Bus    sb.Bus
	Clock  sb.Clock
	Logger *slog.Logger
	// MaxAge is how old the windows in memory may grow before Run reads
	// them again (DefaultMaxAge); Changed makes it read them at once.
	MaxAge time.Duration
	// Reask is DefaultReask when zero.
	Reask time.Duration
	// Tick is how often the leader looks for windows that start, end or
	// drain (default 1 s).
	Tick time.Duration
}

// Service holds the windows and, on the leader, runs their announcements
// and drains. It is safe for concurrent use.
type Service struct {
	store  Store
	bus    sb.Bus
	clock  sb.Clock
	log    *slog.Logger
	maxAge time.Duration
	reask  time.Duration
	tick   time.Duration

	wake    chan struct{} // buffered 1: read the windows again
	changed atomic.Uint64 // Changed calls

	mu      sync.Mutex
	windows []sb.MaintenanceWindow // guarded by mu: the windows not over when read, soonest first
	// none is set while windows is empty, so that Blocked, asked on every
	// start and client config, answers without the lock in the usual case.
	none    atomic.Bool
	read    time.Time // guarded by mu: when they were read (wall time); zero: never
	readGen uint64    // guarded by mu: changed before they were read
}

// New returns a Service.
func New(c Config) *Service {
	s := &Service{store: c.Store, bus: c.Bus, clock: c.Clock, log: c.Logger, maxAge: c.MaxAge, reask: c.Reask, tick: c.Tick,
		wake: make(chan struct{}, 1)}
	if s.bus == nil {
		s.bus = sb.NopBus{}
	}
	if s.clock == nil {
		s.clock = sb.SystemClock{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxAge <= 0 {
		s.maxAge = DefaultMaxAge
	}
	if s.reask <= 0 {
		s.reask = DefaultReask
	}
	if s.tick <= 0 {
		s.tick = time.Second
	}
	return s
}

// Changed tells the service that the windows changed elsewhere (another
// replica's maintenance event): Run reads them again at once.
func (s *Service) Changed() {
	s.changed.Add(1)
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Refresh reads the windows that are not over from the store.
func (s *Service) Refresh(ctx context.Context) error {
	gen := s.changed.Load()
	now := s.clock.Now()
	var all []sb.MaintenanceWindow
	for _, st := range []string{sb.MaintenanceActive, sb.MaintenanceUpcoming} {
		ws, err := s.store.ListMaintenance(ctx, sb.MaintenanceFilter{State: st, At: now, Limit: 1000})
		if err != nil {
			return err
		}
		all = append(all, ws...)
	}
	s.mu.Lock()
	s.windows, s.read, s.readGen = all, time.Now(), gen
	s.none.Store(len(all) == 0)
	s.mu.Unlock()
	return nil
}

// Windows returns the windows that were not over when last read: active
// ones, then upcoming ones, each soonest first.
func (s *Service) Windows() []sb.MaintenanceWindow {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]sb.MaintenanceWindow(nil), s.windows...)
}

// Silenced reports whether the alerts of provider are silenced at at: it is
// in a maintenance window then. The reason is the window's.
func (s *Service) Silenced(provider string, at time.Time) (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.windows {
		if w.Provider == provider && w.State(at) == sb.MaintenanceActive {
			return true, w.Reason
		}
	}
	return false, ""
}

// Blocked returns the providers that take no new streams at at because of a
// window (active, or draining before its start), each with when the last of
// its blocking windows ends and the reason of that window.
func (s *Service) Blocked(at time.Time) map[string]routing.Maintenance {
	if s.none.Load() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out map[string]routing.Maintenance
	for _, w := range s.windows {
		if !w.Blocks(at) {
			continue
		}
		if out == nil {
			out = map[string]routing.Maintenance{}
		}
		if cur, ok := out[w.Provider]; !ok || w.Ends().After(cur.Until) {
			out[w.Provider] = routing.Maintenance{Until: w.Ends(), Reason: w.Reason}
		}
	}
	return out
}

// stale reports whether the windows should be read again.
func (s *Service) stale() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.read.IsZero() || time.Since(s.read) >= s.maxAge || s.readGen != s.changed.Load()
}

// Run keeps the windows in memory fresh until ctx ends. Every replica runs
// it.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if s.stale() {
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := s.Refresh(rctx); err != nil && ctx.Err() == nil {
				s.log.Warn("read maintenance windows", "err", err.Error())
			}
			cancel()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-s.wake:
		}
	}
}

// Lead announces the windows that start and end and drains those that ask
// for it, until ctx ends. Only the leader runs it.
func (s *Service) Lead(ctx context.Context) error {
	var wg sync.WaitGroup
	drains := map[string]context.CancelFunc{} // by window id
	defer func() {
		for _, cancel := range drains {
			cancel()
		}
		wg.Wait()
	}()
	done := make(chan string, 16)
	t := time.NewTicker(s.tick)
	defer t.Stop()
	for {
		now := s.clock.Now()
		live := map[string]bool{}
		for _, w := range s.Windows() {
			if w.State(now) == sb.MaintenanceActive && w.Announced == "" {
				s.announce(ctx, w, "started", sb.EventMaintenanceStarted)
			}
			if !w.Draining(now) {
				continue
			}
			live[w.ID] = true
			if _, ok := drains[w.ID]; !ok {
				dctx, cancel := context.WithCancel(ctx)
				drains[w.ID] = cancel
				wg.Add(1)
				go func() {
					defer wg.Done()
					s.drain(dctx, w)
					select {
					case done <- w.ID:
					case <-ctx.Done():
					}
				}()
			}
		}
		for id, cancel := range drains {
			if !live[id] {
				cancel() // ended early, or over
			}
		}
		s.announceEnded(ctx, now)
		select {
		case <-ctx.Done():
			return nil
		case id := <-done:
			if cancel, ok := drains[id]; ok {
				cancel()
				delete(drains, id)
			}
		case <-t.C:
		}
	}
}

// announceEnded announces the windows that ended since the last look, from
// the most recent ones over.
func (s *Service) announceEnded(ctx context.Context, now time.Time) {
	ws, err := s.store.ListMaintenance(ctx, sb.MaintenanceFilter{State: sb.MaintenancePast, At: now, Limit: 50})
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("read ended maintenance windows", "err", err.Error())
		}
		return
	}
	for _, w := range ws {
		if w.Announced != "ended" {
			s.announce(ctx, w, "ended", sb.EventMaintenanceEnded)
		}
	}
}

// announce publishes typ for w unless it was published already.
func (s *Service) announce(ctx context.Context, w sb.MaintenanceWindow, state, typ string) {
	first, err := s.store.AnnounceMaintenance(ctx, w.ID, state)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("announce maintenance", "id", w.ID, "state", state, "err", err.Error())
		}
		return
	}
	if !first {
		return
	}
	w.Announced = state
	s.log.Info("maintenance "+state, "id", w.ID, "provider", w.Provider, "reason", w.Reason)
	s.bus.Publish(sb.Event{Type: typ, At: s.clock.Now(), Audience: sb.RoleClient, Data: EventData(w)})
	s.Changed()
}

// Announce publishes the ended event of a window ended early, unless the
// leader did already. The API calls it, so that the event follows at once.
func (s *Service) Announce(ctx context.Context, w sb.MaintenanceWindow) {
	s.announce(ctx, w, "ended", sb.EventMaintenanceEnded)
}

// Event is the data of the maintenance events. SDKs receive them: they tell
// neither who scheduled the window nor how its drain goes.
type Event struct {
	ID        string     `json:"id"`
	Provider  string     `json:"provider"`
	Start     time.Time  `json:"start"`
	End       time.Time  `json:"end"`
	Reason    string     `json:"reason"`
	Drain     bool       `json:"drain"`
	DrainRate float64    `json:"drainRate"`
	EndedAt   *time.Time `json:"endedAt"`
}

// EventData is the data of a maintenance event about w.
func EventData(w sb.MaintenanceWindow) Event {
	return Event{ID: w.ID, Provider: w.Provider, Start: w.Start, End: w.End, Reason: w.Reason, Drain: w.Drain,
		DrainRate: w.DrainRate, EndedAt: w.EndedAt}
}
