package replica

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/switchboardhq/switchboard"
)

// Defaults for EventsOptions.
const (
	DefaultPollInterval   = 500 * time.Millisecond
	DefaultSafetyInterval = 5 * time.Second
	DefaultRetention      = time.Hour
	// QueueSize bounds the events waiting to be appended to the log, while
	// the database is out of reach for instance.
	QueueSize = 4096
	readBatch = 500
	// announcedQueue bounds the announcements waiting for the reader; when
	// it is full, the reader reads the log instead.
	announcedQueue = 256
	// appendBatch bounds the queued events appended together, in one
	// transaction.
	appendBatch = 256
	// appendRetryMin and appendRetryMax bound the backoff between attempts
	// to append an event while the log is unavailable.
	appendRetryMin = 100 * time.Millisecond
	appendRetryMax = 2 * time.Second
)

// EventLog is the log through which Events shares events: the store of a
// database that replicas share (sqlstore.Store on PostgreSQL).
type EventLog interface {
	// AppendEvents appends evs, published by replica, in their order and in
	// one transaction, and returns their ids in the log, the same on every
	// replica. Appends are serialised, so ids become visible in increasing
	// order, and each append is announced to ListenEvents when it commits.
	AppendEvents(ctx context.Context, replica string, evs []switchboard.Event) ([]uint64, error)
	// EventsAfter returns at most limit events whose id is greater than
	// after, in id order.
	EventsAfter(ctx context.Context, after uint64, limit int) ([]switchboard.Event, error)
	// LastEventID returns the id of the newest event, 0 when there is none.
	LastEventID(ctx context.Context) (uint64, error)
	// PruneEvents deletes the events from before t.
	PruneEvents(ctx context.Context, before time.Time) error
	// ListenEvents calls listening once it listens for announcements on a
	// connection of its own, then notified on every announcement with the
	// events it carries (committed, in id order, as EventsAfter returns
	// them), or with none when it carries only news of an append, until ctx
	// ends or the connection fails, and returns why it stopped.
	ListenEvents(ctx context.Context, listening func(), notified func([]switchboard.Event)) error
}

// EventsOptions configures Events. Zero fields take their defaults.
type EventsOptions struct {
	// ReplicaID names this replica in the event log (default: a random id).
	ReplicaID string
	// PollInterval is how often the log is read while the LISTEN connection is
	// down (DefaultPollInterval); SafetyInterval how often while it is up, in
	// case a notification was missed (DefaultSafetyInterval).
	PollInterval, SafetyInterval time.Duration
	// Retention is how long events stay in the log (DefaultRetention); a
	// client that was away longer resynchronises.
	Retention time.Duration
	// OnEvent, if set, is called with every event delivered to the local bus,
	// from this replica or another, in id order. It must not block.
	OnEvent func(switchboard.Event)
	Logger  *slog.Logger
}

// Events is a switchboard.Bus shared by the replicas of one database. Publish
// appends the event to the EventLog, whose id for it becomes the event id on
// every replica, and the log announces that id; each replica reads the log in
// id order and publishes what it reads, its own events included, to its local
// bus (the SSE hub). So an event reaches every replica exactly once, with the
// same id everywhere, and a client can resume with Last-Event-ID on any
// replica. Appends are serialised, so ids become visible in increasing order
// and reading "after the last id" never skips one.
//
// Announcements carry the appended events, so that a replica need not read
// the log for each append: it delivers the events of an announcement when
// they follow, id after id, the last event it delivered. Otherwise (an id
// skipped, which may be an append that failed or an announcement that was
// missed, an announcement that carries no event, or a reconnection of the
// LISTEN connection) it reads the log, which is the source of truth, and
// skips what it already delivered. It also reads the log every
// SafetyInterval, in case an announcement was lost. While the LISTEN
// connection is down, the log is polled every PollInterval, so a replica lags
// by at most about that much.
// While the database cannot take events, they are held, in order, and
// appended once it is back, so that every replica receives them, with the
// same ids; up to QueueSize events wait, and those published when the queue
// is full are published to the local bus only (with a local id), rather than
// lost. The same holds for the events left when Run stops and the database
// stays out of reach.
type Events struct {
	store EventLog
	local switchboard.Bus
	opts  EventsOptions
	log   *slog.Logger

	queue     chan switchboard.Event
	wake      chan struct{} // buffered 1: a read of the log is due
	announced chan []switchboard.Event
	listening atomic.Bool
	started   atomic.Bool

	// from is where reading the log begins, once BeginAfter has set it.
	from  uint64
	begun bool
}

var _ switchboard.Bus = (*Events)(nil)

// NewEvents returns Events on store's log that deliver to local. Run must be
// running for events to flow; those published before it starts wait in a
// queue.
func NewEvents(store EventLog, local switchboard.Bus, opts EventsOptions) *Events {
	opts.PollInterval = positive(opts.PollInterval, DefaultPollInterval)
	opts.SafetyInterval = positive(opts.SafetyInterval, DefaultSafetyInterval)
	opts.Retention = positive(opts.Retention, DefaultRetention)
	if opts.ReplicaID == "" {
		opts.ReplicaID = NewID()
	}
	return &Events{
		store: store, local: local, opts: opts, log: logger(opts.Logger),
		queue:     make(chan switchboard.Event, QueueSize),
		wake:      make(chan struct{}, 1),
		announced: make(chan []switchboard.Event, announcedQueue),
	}
}

// Publish queues e for the log. It never blocks: when the queue is full, e goes
// to the local bus only.
func (e *Events) Publish(ev switchboard.Event) {
	select {
	case e.queue <- ev:
	default:
		e.log.Warn("event published locally only", "type", ev.Type, "reason", "queue full")
		e.local.Publish(ev)
	}
}

// Listening reports whether the LISTEN connection is up.
func (e *Events) Listening() bool { return e.listening.Load() }

// BeginAfter sets where Run begins reading the log: after id, the log's
// last id as LogPosition read it before the server served anything that
// subscribes to the local bus, so that an event appended after a
// subscription cannot fall before it. Without it, Run reads the position
// when it starts, which may be after a subscriber came. It must be called
// before Run.
func (e *Events) BeginAfter(id uint64) {
	e.from, e.begun = id, true
}

// Run moves events between the log and the local bus until ctx ends. It may
// be called once.
func (e *Events) Run(ctx context.Context) error {
	if e.started.Swap(true) {
		return errors.New("replica: events: Run called twice")
	}
	last := e.from
	if !e.begun {
		last = e.lastID(ctx)
	}
	done := make(chan struct{}, 2)
	go func() { e.listen(ctx); done <- struct{}{} }()
	go func() { e.write(ctx); done <- struct{}{} }()
	e.read(ctx, last)
	<-done
	<-done
	return nil
}

// lastID is where reading starts: events older than this replica are not
// replayed to it (see LogPosition).
func (e *Events) lastID(ctx context.Context) uint64 {
	last, _ := LogPosition(ctx, e.store, e.log)
	return last
}

// LogPosition returns the id of the last event in store's log: where a
// replica that starts now begins reading it. It retries while the database
// is unreachable, and returns ctx's error when ctx ends first.
func LogPosition(ctx context.Context, store EventLog, log *slog.Logger) (uint64, error) {
	log = logger(log)
	for delay := 100 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		last, err := store.LastEventID(ctx)
		if err == nil {
			return last, nil
		}
		log.Warn("read event log position", "err", err.Error())
		if !sleep(ctx, delay) {
			return 0, ctx.Err()
		}
	}
}

func (e *Events) signal() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// drainTimeout bounds how long write spends, once ctx has ended, appending the
// events still queued.
const drainTimeout = 5 * time.Second

// write appends queued events to the log, in order: those queued together
// (up to appendBatch) in one transaction, so that a burst of events costs
// a few appends rather than one each, and the queue keeps up with it. While
// the log is unavailable it retries the batch at the head of the queue, with
// backoff, and the others wait behind it. When ctx ends it appends those
// still queued, so that what the server did while it shut down (the last
// requests it drained) reaches the other replicas.
func (e *Events) write(ctx context.Context) {
	batch := make([]switchboard.Event, 0, appendBatch)
	for {
		select {
		case <-ctx.Done():
			e.drain(ctx)
			return
		case ev := <-e.queue:
			batch = e.take(append(batch[:0], ev))
			if len(batch) == 0 {
				continue
			}
			if !e.append(ctx, batch) {
				e.drain(ctx, batch...)
				return
			}
			// The append's announcement brings the events back, to this
			// replica as to the others; without LISTEN, read them at once.
			if !e.listening.Load() {
				e.signal()
			}
		}
	}
}

// take adds to batch the events queued now, up to appendBatch, and returns
// those of batch that the log can take: an event whose data cannot be
// encoded, which no database would take and whose retries would hold the
// rest, goes to the local bus only.
func (e *Events) take(batch []switchboard.Event) []switchboard.Event {
	for len(batch) < appendBatch {
		select {
		case ev := <-e.queue:
			batch = append(batch, ev)
			continue
		default:
		}
		break
	}
	kept := batch[:0]
	for _, ev := range batch {
		data, err := json.Marshal(ev.Data)
		if err != nil {
			e.log.Warn("event published locally only", "type", ev.Type, "reason", "data cannot be encoded", "err", err.Error())
			e.local.Publish(ev)
			continue
		}
		ev.Data = json.RawMessage(data) // encoded once: the append copies it as it is
		kept = append(kept, ev)
	}
	return kept
}

// append appends batch to the log, retrying while the log is unavailable,
// and reports false when ctx ended first.
func (e *Events) append(ctx context.Context, batch []switchboard.Event) bool {
	failing := false
	for delay := appendRetryMin; ; delay = min(2*delay, appendRetryMax) {
		err := e.insert(ctx, batch)
		if err == nil {
			if failing {
				e.log.Info("event log available again: appending the held events", "held", len(e.queue)+len(batch))
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		if !failing {
			failing = true
			e.log.Warn("event log unavailable: holding events until it is back", "type", batch[0].Type,
				"held", len(e.queue)+len(batch), "bound", QueueSize, "err", err.Error())
		}
		if !sleep(ctx, delay) {
			return false
		}
	}
}

// drain appends pending and then the queued events under a deadline of its
// own; those it cannot append go to the local bus only.
func (e *Events) drain(ctx context.Context, pending ...switchboard.Event) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drainTimeout)
	defer cancel()
	put := func(batch []switchboard.Event) {
		if err := e.insert(ctx, batch); err != nil {
			for _, ev := range batch {
				e.log.Warn("event published locally only", "type", ev.Type, "reason", "event log unavailable", "err", err.Error())
				e.local.Publish(ev)
			}
		}
	}
	if len(pending) > 0 {
		put(pending)
	}
	for {
		select {
		case ev := <-e.queue:
			if batch := e.take([]switchboard.Event{ev}); len(batch) > 0 {
				put(batch)
			}
		default:
			return
		}
	}
}

// insert appends batch to the log in one transaction.
func (e *Events) insert(ctx context.Context, batch []switchboard.Event) error {
	now := time.Now()
	evs := make([]switchboard.Event, len(batch))
	for i, ev := range batch {
		if ev.At.IsZero() {
			ev.At = now
		}
		evs[i] = ev
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, err := e.store.AppendEvents(ctx, e.opts.ReplicaID, evs)
	return err
}

// read publishes the events to the local bus, in id order: those that
// announcements carry when they follow the last one delivered, and otherwise
// those of the log, which it reads on a gap, on every wake-up and at least
// every PollInterval (LISTEN down) or SafetyInterval (LISTEN up).
func (e *Events) read(ctx context.Context, last uint64) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	var lastPrune time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case evs := <-e.announced:
			if e.deliverAnnounced(evs, &last) {
				continue
			}
			// A gap: read the log.
		case <-e.wake:
		case <-timer.C:
		}
		for {
			n, err := e.readBatch(ctx, &last)
			if err != nil {
				if ctx.Err() == nil {
					e.log.Debug("read event log", "err", err.Error())
				}
				break
			}
			if n < readBatch {
				break
			}
		}
		if time.Since(lastPrune) > time.Minute {
			lastPrune = time.Now()
			if err := e.store.PruneEvents(ctx, time.Now().Add(-e.opts.Retention)); err != nil && ctx.Err() == nil {
				e.log.Debug("prune event log", "err", err.Error())
			}
		}
		next := e.opts.SafetyInterval
		if !e.listening.Load() {
			next = e.opts.PollInterval
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(next)
	}
}

// deliverAnnounced publishes the events of an announcement that follow last,
// skipping those already delivered, and reports false, having stopped, at the
// first that does not follow last by one (or when there are none): the log
// must be read then. Only an event whose id is last+1 is published, so no
// event is skipped, even one of an append that commits later than another of
// greater ids.
func (e *Events) deliverAnnounced(evs []switchboard.Event, last *uint64) bool {
	if len(evs) == 0 {
		return false
	}
	for _, ev := range evs {
		switch {
		case ev.ID <= *last:
			continue
		case ev.ID != *last+1:
			return false
		}
		*last = ev.ID
		e.deliver(ev)
	}
	return true
}

func (e *Events) readBatch(ctx context.Context, last *uint64) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	evs, err := e.store.EventsAfter(ctx, *last, readBatch)
	for _, ev := range evs {
		*last = ev.ID
		e.deliver(ev)
	}
	return len(evs), err
}

// deliver publishes ev to the local bus.
func (e *Events) deliver(ev switchboard.Event) {
	e.local.Publish(ev)
	if e.opts.OnEvent != nil {
		e.opts.OnEvent(ev)
	}
}

// listen keeps a LISTEN connection, hands the reader the events of every
// notification (or wakes it to read the log, for a notification without
// events or when too many wait) and wakes it after every reconnection (to
// catch up on what was missed meanwhile).
func (e *Events) listen(ctx context.Context) {
	for delay := 250 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		err := e.listenOnce(ctx, func() { delay = 250 * time.Millisecond })
		e.listening.Store(false)
		if ctx.Err() != nil {
			return
		}
		e.log.Warn("event notifications lost; polling the event log", "err", err.Error(), "retry_in", delay.String())
		e.signal()
		if !sleep(ctx, delay) {
			return
		}
	}
}

func (e *Events) listenOnce(ctx context.Context, connected func()) error {
	return e.store.ListenEvents(ctx, func() {
		e.listening.Store(true)
		connected()
		e.signal()
	}, e.announce)
}

// announce hands the events of a notification to the reader, or wakes it to
// read the log.
func (e *Events) announce(evs []switchboard.Event) {
	if len(evs) == 0 {
		e.signal()
		return
	}
	select {
	case e.announced <- evs:
	default:
		e.signal()
	}
}

// sleep waits for d or ctx, reporting false when ctx ended.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
