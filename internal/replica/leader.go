// Package replica coordinates several Switchboard replicas that share one
// PostgreSQL database: a cross-replica event bus (Events) and leadership for
// scheduled work (Leader). A single node on SQLite needs neither: its bus is
// the in-process hub, and it is always the leader (Solo). The package runs
// the loops; the store keeps the leases and the event log (Leases, EventLog).
package replica

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/switchboardhq/switchboard"
)

// Defaults for LeaderOptions. A leader renews its lease every third of the
// TTL, so that a replica takes over from a leader that died within the TTL
// and a renewal period (a retry interval, at most, after the lease expired).
const (
	DefaultLeaseTTL      = switchboard.DefaultLeaderLease
	DefaultRenewInterval = DefaultLeaseTTL / 3
	DefaultRetryInterval = time.Second
)

// Leadership runs work on one replica at a time.
type Leadership interface {
	// RunWhileLeader runs fn whenever this replica leads, with a context that
	// ends when leadership is lost, until ctx ends. It returns nil when ctx
	// ends, or fn's error when fn fails while this replica still leads.
	RunWhileLeader(ctx context.Context, fn func(ctx context.Context) error) error
}

// Solo is the Leadership of a single node (SQLite): always the leader.
type Solo struct{}

// RunWhileLeader runs fn with ctx.
func (Solo) RunWhileLeader(ctx context.Context, fn func(ctx context.Context) error) error {
	if err := fn(ctx); err != nil && ctx.Err() == nil {
		return err
	}
	return nil
}

// LeaderOptions configures a Leader. Zero fields take their defaults.
type LeaderOptions struct {
	// Name is the lease's name (default "scheduler").
	Name string
	// ID is this replica's id in the lease (default NewID()).
	ID string
	// TTL is how long a lease lasts after each renewal (DefaultLeaseTTL),
	// RenewInterval how often the leader renews it (a third of TTL), and
	// RetryInterval how often a follower, or a leader whose renewal
	// failed, tries again (DefaultRetryInterval).
	TTL, RenewInterval, RetryInterval time.Duration
	Logger                            *slog.Logger
}

// Leases are what a Leader campaigns through: the store of a database that
// replicas share (sqlstore.Store on PostgreSQL).
type Leases interface {
	// AcquireLease takes the lease name for holder until ttl from now, or
	// renews it, when it is free, expired or already holder's, and reports
	// whether holder holds it. Expiry is on the database's clock.
	AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	// ReleaseLease lets the lease expire now, if holder holds it.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Leader holds, renews and gives up a lease in the store, so that of the
// replicas sharing a database one at a time leads. Acquiring and renewing
// succeeds only when the lease is free, expired or already this replica's;
// expiry is on the database's clock. A leader steps
// down, locally, once 4/5 of the TTL has passed since the start of its last
// successful renewal: before the lease can expire and another replica take it.
// Create it with NewLeader, and run Run.
type Leader struct {
	leases Leases
	opts   LeaderOptions
	log    *slog.Logger
	// campaigned, when set (by tests), receives whether this replica leads
	// after every attempt to acquire or renew the lease. nil in production.
	campaigned chan<- campaign

	mu sync.Mutex
	// Guarded by mu:
	ttl, renew time.Duration      // the lease and its renewal period (SetLease)
	term       context.Context    // live while leading; nil otherwise
	end        context.CancelFunc // ends term
	changed    chan struct{}      // closed and replaced on every change
}

var _ Leadership = (*Leader)(nil)

// NewLeader returns a Leader that campaigns through leases.
func NewLeader(leases Leases, opts LeaderOptions) *Leader {
	if opts.Name == "" {
		opts.Name = "scheduler"
	}
	if opts.ID == "" {
		opts.ID = NewID()
	}
	opts.TTL = positive(opts.TTL, DefaultLeaseTTL)
	opts.RenewInterval = positive(opts.RenewInterval, opts.TTL/3)
	opts.RetryInterval = positive(opts.RetryInterval, DefaultRetryInterval)
	return &Leader{leases: leases, opts: opts, log: logger(opts.Logger).With("lease", opts.Name, "replica", opts.ID),
		ttl: opts.TTL, renew: opts.RenewInterval, changed: make(chan struct{})}
}

// SetLease changes the lease to ttl, renewed every third of it, from the
// next attempt to take or renew it on (the lease held now runs out as it
// was taken). A ttl that is not positive is ignored.
func (l *Leader) SetLease(ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if ttl != l.ttl {
		l.log.Info("lease changed", "from", l.ttl.String(), "to", ttl.String())
	}
	l.ttl, l.renew = ttl, ttl/3
}

// Lease returns the lease and how often the leader renews it.
func (l *Leader) Lease() (ttl, renew time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ttl, l.renew
}

// positive returns d, or def when d is not positive: an option's default.
func positive(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// logger returns log, or one that discards everything when log is nil.
func logger(log *slog.Logger) *slog.Logger {
	if log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return log
}

// NewID returns an id for this replica: host, process id and a random suffix.
func NewID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
}

// ID is this replica's id in the lease.
func (l *Leader) ID() string { return l.opts.ID }

// IsLeader reports whether this replica leads now.
func (l *Leader) IsLeader() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.term != nil
}

// Run campaigns for the lease, and keeps it while it can, until ctx ends; then
// it steps down and releases the lease so that another replica takes over at
// once. It returns nil.
func (l *Leader) Run(ctx context.Context) error {
	var stepDownAt time.Time
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			l.release()
			return nil
		case <-timer.C:
		}
		start := time.Now()
		leading := l.IsLeader()
		ttl, renew := l.Lease()
		held, err := l.acquire(ctx, ttl)
		switch {
		case err != nil && ctx.Err() != nil:
			continue // the select above returns
		case err != nil:
			l.log.Warn("lease renewal failed", "err", err.Error())
		case held:
			stepDownAt = start.Add(ttl * 4 / 5)
			l.lead()
		case leading:
			l.stepDown("lease taken by another replica")
		}
		if l.IsLeader() && !time.Now().Before(stepDownAt) {
			l.stepDown("lease could not be renewed in time")
		}
		next := l.opts.RetryInterval
		if l.IsLeader() {
			if err == nil {
				next = renew
			}
			next = min(next, time.Until(stepDownAt))
		}
		l.signal(ctx, campaign{id: l.opts.ID, held: held, err: err, leading: l.IsLeader()})
		timer.Reset(max(next, 0))
	}
}

// campaign is the outcome of one attempt to acquire or renew the lease: a
// test signal.
type campaign struct {
	id            string
	held, leading bool
	err           error
}

// signal sends c to the test that asked for it, if any.
func (l *Leader) signal(ctx context.Context, c campaign) {
	if l.campaigned == nil {
		return
	}
	select {
	case l.campaigned <- c:
	case <-ctx.Done():
	}
}

// acquire takes or renews the lease, reporting whether this replica holds it.
// It is bounded by the retry interval, so that a hung connection cannot keep
// a leader past its step-down time.
func (l *Leader) acquire(ctx context.Context, ttl time.Duration) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, max(l.opts.RetryInterval, ttl/5))
	defer cancel()
	held, err := l.leases.AcquireLease(ctx, l.opts.Name, l.opts.ID, ttl)
	if err != nil {
		return false, fmt.Errorf("replica: lease %s: %w", l.opts.Name, err)
	}
	return held, nil
}

// release gives the lease up, if this replica holds it.
func (l *Leader) release() {
	l.stepDown("shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := l.leases.ReleaseLease(ctx, l.opts.Name, l.opts.ID); err != nil {
		l.log.Warn("release lease", "err", err.Error())
	}
}

func (l *Leader) lead() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.term != nil {
		return
	}
	l.term, l.end = context.WithCancel(context.Background())
	close(l.changed)
	l.changed = make(chan struct{})
	l.log.Info("became leader")
}

func (l *Leader) stepDown(reason string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.term == nil {
		return
	}
	l.end()
	l.term, l.end = nil, nil
	close(l.changed)
	l.changed = make(chan struct{})
	l.log.Info("stepped down", "reason", reason)
}

// wait returns the current term once this replica leads, or nil when ctx ends.
func (l *Leader) wait(ctx context.Context) context.Context {
	for {
		l.mu.Lock()
		term, changed := l.term, l.changed
		l.mu.Unlock()
		if term != nil {
			return term
		}
		select {
		case <-ctx.Done():
			return nil
		case <-changed:
		}
	}
}

// RunWhileLeader runs fn whenever this replica leads (Run must be running),
// with a context that ends when leadership is lost or ctx ends. It returns nil
// when ctx ends, or fn's error when fn fails while still leading.
func (l *Leader) RunWhileLeader(ctx context.Context, fn func(ctx context.Context) error) error {
	for {
		term := l.wait(ctx)
		if term == nil {
			return nil
		}
		fctx, cancel := context.WithCancel(ctx)
		stop := context.AfterFunc(term, cancel)
		err := fn(fctx)
		if err == nil && fctx.Err() == nil {
			<-fctx.Done() // fn finished early: run it again next term only
		}
		stop()
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && term.Err() == nil {
			return err
		}
	}
}
