// Package events carries Switchboard's events: an in-process bus that other parts
// of the server subscribe to, and a Server-Sent Events endpoint that streams the
// same events to API clients and the dashboard.
//
// A Hub numbers every published event, encodes it once and keeps the most recent
// ones in a ring buffer. Publish does only that, in a few microseconds whatever
// the number of subscribers; a goroutine of the hub then walks the subscribers
// and offers each new event to their bounded queues. Nothing blocks on a
// subscriber: one whose queue is full is dropped, and its stream ends. An SSE
// client then reconnects with Last-Event-ID and resumes from the ring buffer, or
// is told to resynchronise (refetch its state) when the events it missed are no
// longer buffered.
package events

import (
	"context"
	"encoding/json"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboardhq/switchboard"
)

// Defaults for Options.
const (
	DefaultBufferSize      = 4096
	DefaultSubscriberQueue = 256
	DefaultHeartbeat       = 15 * time.Second
	DefaultWriteTimeout    = 10 * time.Second
)

// Options configures a Hub. Zero fields take their defaults.
type Options struct {
	// BufferSize is how many recent events are kept for clients that resume
	// with Last-Event-ID (default 4096).
	BufferSize int
	// SubscriberQueue is the capacity of each subscriber's queue (default 256).
	// A subscriber whose queue is full when an event is delivered to it is
	// dropped.
	SubscriberQueue int
	// Heartbeat is the interval of the comment lines that keep SSE streams
	// alive through proxies (default 15 s).
	Heartbeat time.Duration
	// WriteTimeout bounds each write to an SSE client (default 10 s). It
	// replaces the http.Server's WriteTimeout for the stream, which would
	// otherwise end every stream after a fixed time.
	WriteTimeout time.Duration
	// Clock stamps events published without a time (default the system clock).
	Clock switchboard.Clock
	// Logger receives drops and encoding failures (default discards).
	Logger *slog.Logger
	// FirstID is the id after which the hub numbers the events it is given
	// without a larger one (default 0: from 1), and before which it knows
	// none: a client that resumes with an earlier id is told to resync,
	// rather than given the events after it that the hub has (and missing
	// those it never had). A hub that numbers its own events (a single node)
	// starts it from the clock, so that the ids of one run of the server
	// follow those of the run before; a replica's hub, given the shared
	// log's events, at the log's last id when the replica started.
	FirstID uint64
}

// Stats are counters of a Hub, for metrics.
type Stats struct {
	// Subscribers is the number of current subscribers (SSE and in-process).
	Subscribers int
	// Dropped counts subscribers dropped because they did not keep up: their
	// queue was full, or the events due to them left the ring buffer before
	// the hub could deliver them.
	Dropped uint64
	// Published counts events published.
	Published uint64
	// LastID is the id of the most recent event (Options.FirstID before the first).
	LastID uint64
}

// record is a published event as the hub keeps it: the event for in-process
// subscribers and its SSE frame, encoded once, for streams.
type record struct {
	id       uint64
	audience switchboard.Role
	owner    string // Event.Owner
	event    switchboard.Event
	frame    []byte // "id: N\nevent: T\ndata: {...}\n\n"
}

// subscriber is one SSE stream (wake != nil) or one in-process subscriber
// (events != nil).
//
// An SSE subscriber holds no buffer while it is idle: the delivery goroutine
// appends the records due to it to queued, which grows only while they wait
// to be written. The keep-alive sweep sets ping the same way, so a stream
// needs no timer of its own. Who writes them depends on the stream:
//
//   - served by its handler (HTTP/2, or a ResponseWriter that cannot hand its
//     connection over), the handler waits on wake, a channel with room for
//     one signal;
//   - on a connection taken over from net/http (conn != nil), no goroutine
//     waits: one is started to write while records or a keep-alive are due
//     (writing), and returns once they are written.
type subscriber struct {
	role  switchboard.Role // SSE: the caller's role
	owner string           // SSE: the caller's owner key (switchboard.Actor.Key)
	limit int              // SSE: the most records queued before s is dropped
	wake  chan struct{}    // SSE: signalled when queued, ping or done changes, while conn is nil

	mu      sync.Mutex // guards the fields below
	queued  []*record  // SSE: records due to s, not yet taken by its writer
	ping    bool       // SSE: a keep-alive comment is due
	done    bool       // SSE: no more records will be queued
	cut     bool       // SSE: end without writing what is queued (the stream's context ended)
	conn    *sseConn   // SSE: the connection taken over, once it is
	writing bool       // SSE on conn: a writer goroutine runs

	filter func(switchboard.Event) bool // in-process: nil accepts everything
	events chan switchboard.Event
	stop   func() bool // stops the context.AfterFunc of an in-process subscriber

	from uint64 // the last id published before s subscribed: s receives later ones only
	idx  int    // position in Hub.subs, -1 once removed; guarded by Hub.subMu
}

// offer queues rec for s if s wants it. It reports false when s's queue is full.
// It never blocks.
func (s *subscriber) offer(rec *record) bool {
	if rec.id <= s.from {
		return true
	}
	if s.wake != nil {
		if !rec.visible(s.role, s.owner) {
			return true
		}
		s.mu.Lock()
		if len(s.queued) >= s.limit {
			s.mu.Unlock()
			return false
		}
		s.queued = append(s.queued, rec)
		s.notifyLocked()
		return true
	}
	if s.filter != nil && !s.filter(rec.event) {
		return true
	}
	select {
	case s.events <- rec.event:
		return true
	default:
		return false
	}
}

// notifyLocked tells whoever writes an SSE subscriber's stream that queued,
// ping or done changed, and unlocks s.mu: it starts a writer goroutine for a
// connection taken over when none runs, or wakes the handler. It never
// blocks.
func (s *subscriber) notifyLocked() {
	if c := s.conn; c != nil {
		start := !s.writing
		s.writing = true
		s.mu.Unlock()
		if start {
			go c.run(s)
		}
		return
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}: // a signal already pending covers this one
	default:
	}
}

// take returns the records queued for an SSE subscriber, oldest first, in
// place of which it leaves spare (emptied), whether a keep-alive is due, and
// whether the subscriber has ended (the records returned are still to be
// written).
func (s *subscriber) take(spare []*record) (recs []*record, ping, done bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	recs, s.queued = s.queued, spare[:0]
	ping, s.ping = s.ping, false
	return recs, ping, s.done
}

// visible reports whether a subscriber of role and owner key may receive rec:
// its audience is at most role and, for an event meant for one owner, the
// subscriber is that owner or an admin.
func (rec *record) visible(role switchboard.Role, owner string) bool {
	if rec.audience > role {
		return false
	}
	return rec.owner == "" || role >= switchboard.RoleAdmin || rec.owner == owner
}

// close ends s's queue. The hub calls it once, when it removes s.
func (s *subscriber) close() {
	if s.wake != nil {
		s.mu.Lock()
		s.done = true
		s.notifyLocked()
		return
	}
	close(s.events)
}

// Hub is the event bus and SSE hub. It implements switchboard.Bus. A Hub is safe
// for concurrent use; create one with New.
type Hub struct {
	queue     int
	heartbeat time.Duration
	writeTO   time.Duration
	clock     switchboard.Clock
	logger    *slog.Logger

	published atomic.Uint64
	dropped   atomic.Uint64
	nsubs     atomic.Int64 // len(subs), for Stats without waiting for a delivery round

	// subMu guards the subscribers. The delivery goroutine holds it while it
	// walks them; Publish never takes it. When both are needed, subMu is taken
	// before mu.
	subMu sync.Mutex
	subs  []*subscriber // a slice: each delivery round walks it
	nsse  int           // SSE subscribers among subs
	// keepAlive runs sweep once per heartbeat while there are SSE
	// subscribers; nil otherwise. A timer rather than a goroutine: between
	// sweeps the hub runs nothing.
	keepAlive *time.Timer

	mu sync.Mutex
	// The fields below are guarded by mu. Publish holds it only to number an
	// event and append it to the ring.
	first      uint64 // Options.FirstID: ids up to it are from before this hub
	lastID     uint64
	evicted    uint64    // largest id that fell out of the ring (0 if none)
	ring       []*record // circular buffer of the most recent events, oldest at head
	head       int       // index of the oldest record in ring
	size       int       // number of records in ring
	delivered  uint64    // id of the last record taken by the delivery goroutine
	delivering bool      // the delivery goroutine is running
	closed     bool

	deliverer sync.WaitGroup // the delivery goroutine, for Close
	closeOnce sync.Once

	// connMu guards the connections taken over from net/http, which its
	// Shutdown no longer knows of: Shutdown waits for them, or closes them.
	connMu    sync.Mutex
	conns     map[*sseConn]struct{}
	connsGone chan struct{} // closed when conns empties, while Shutdown waits
	cutConns  bool          // Shutdown's time is up: close every connection at once
}

// New returns a Hub configured by opts.
func New(opts Options) *Hub {
	if opts.BufferSize <= 0 {
		opts.BufferSize = DefaultBufferSize
	}
	if opts.SubscriberQueue <= 0 {
		opts.SubscriberQueue = DefaultSubscriberQueue
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = DefaultHeartbeat
	}
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = DefaultWriteTimeout
	}
	if opts.Clock == nil {
		opts.Clock = switchboard.SystemClock{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Hub{
		queue:     opts.SubscriberQueue,
		heartbeat: opts.Heartbeat,
		writeTO:   opts.WriteTimeout,
		clock:     opts.Clock,
		logger:    opts.Logger,
		ring:      make([]*record, opts.BufferSize),
		first:     opts.FirstID,
		lastID:    opts.FirstID,
		delivered: opts.FirstID,
	}
}

// Publish numbers e, keeps it for resuming clients and schedules its delivery
// to every subscriber that may receive it. It returns without waiting for the
// delivery and never blocks on a subscriber: the hub's delivery goroutine drops
// one whose queue is full (its channel or stream ends). Events reach each
// subscriber in id order.
//
// The id of the event is the one after the largest id the hub has seen; an
// event that already carries a larger id keeps it, so ids stay unique and
// increasing. At is stamped from the hub's clock when zero. An event whose Data
// cannot be encoded as JSON, or whose Type is empty or spans lines, is logged and
// discarded. Publish after Close does nothing.
//
// In-process subscribers receive e itself, so the publisher must not modify
// e.Data after Publish.
func (h *Hub) Publish(e switchboard.Event) {
	if e.Type == "" || strings.ContainsAny(e.Type, "\r\n") {
		h.logger.Error("event discarded: invalid type", "type", strconv.Quote(e.Type))
		return
	}
	if e.At.IsZero() {
		e.At = h.clock.Now()
	}
	// Encode outside the lock; only the id is spliced in under it.
	data, err := json.Marshal(e.Data)
	if err != nil {
		h.logger.Error("event discarded: encode data", "type", e.Type, "err", err)
		return
	}
	typ, _ := json.Marshal(e.Type) // a string always encodes
	at, err := e.At.MarshalJSON()
	if err != nil { // a year outside [0, 9999]
		h.logger.Error("event discarded: encode time", "type", e.Type, "err", err)
		return
	}

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	e.ID = max(e.ID, h.lastID+1)
	h.lastID = e.ID
	h.push(&record{id: e.ID, audience: e.Audience, owner: e.Owner, event: e, frame: frame(e.ID, e.Type, typ, at, data)})
	start := !h.delivering
	if start {
		// Counted under mu, so that Close, which sets closed under mu, waits
		// for this goroutine.
		h.delivering = true
		h.deliverer.Add(1)
	}
	h.mu.Unlock()
	h.published.Add(1)
	if start {
		go h.deliver()
	}
}

// deliver hands the records published since the last round to the
// subscribers, round after round, and returns once it has caught up with
// Publish. Publish starts it when it is not running, so a hub without traffic
// runs no goroutine; Close waits for it.
//
// A round takes the new records from the ring under mu, then offers them to
// every subscriber under subMu only, so Publish never waits for a walk over
// the subscribers. The cost of waking them (and being preempted behind them)
// falls on this goroutine rather than on Publish's callers.
func (h *Hub) deliver() {
	defer h.deliverer.Done()
	var batch []*record
	for {
		h.subMu.Lock()
		h.mu.Lock()
		if h.delivered == h.lastID {
			h.delivering = false
			h.mu.Unlock()
			h.subMu.Unlock()
			return
		}
		// Records after h.delivered up to h.evicted left the ring before this
		// goroutine took them: subscribers that were due to receive them
		// missed them.
		var lostUpTo uint64
		if h.evicted > h.delivered {
			lostUpTo = h.evicted
		}
		batch = h.after(batch[:0], h.delivered)
		h.delivered = h.lastID
		h.mu.Unlock()

		h.offerLocked(batch, lostUpTo)
		h.subMu.Unlock()
		clear(batch) // let the ring alone keep records alive
	}
}

// offerLocked offers batch, in order, to every subscriber, dropping those whose
// queue is full and, when lostUpTo is not 0, those that were due to receive
// events up to lostUpTo that were lost. h.subMu must be held.
func (h *Hub) offerLocked(batch []*record, lostUpTo uint64) {
	var full, behind int
	for i := 0; i < len(h.subs); {
		s := h.subs[i]
		ok := true
		if s.from < lostUpTo {
			ok = false
			behind++
		} else {
			for _, rec := range batch {
				if !s.offer(rec) {
					ok = false
					full++
					break
				}
			}
		}
		if ok {
			i++
			continue
		}
		h.dropped.Add(1)  // before the queue closes, for whoever watches it
		h.removeLocked(s) // moves the last subscriber to i
	}
	last := batch[len(batch)-1].id
	if full > 0 {
		h.logger.Info("event subscribers dropped", "reason", "queue full", "count", full, "event_id", last)
	}
	if behind > 0 {
		h.logger.Warn("event subscribers dropped", "reason", "delivery fell behind the buffer", "count", behind, "event_id", last)
	}
}

// frame builds the SSE frame of an event: its id, type, and a data line with
// the JSON object {"id","type","at","data"}.
func frame(id uint64, typ string, typJSON, at, data []byte) []byte {
	b := make([]byte, 0, 64+2*20+len(typ)+len(typJSON)+len(at)+len(data))
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, "\nevent: "...)
	b = append(b, typ...)
	b = append(b, "\ndata: {\"id\":"...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, ",\"type\":"...)
	b = append(b, typJSON...)
	b = append(b, ",\"at\":"...)
	b = append(b, at...)
	b = append(b, ",\"data\":"...)
	b = append(b, data...)
	b = append(b, "}\n\n"...)
	return b
}

// push appends rec to the ring, evicting the oldest record when it is full.
// h.mu must be held.
func (h *Hub) push(rec *record) {
	if h.size == len(h.ring) {
		h.evicted = h.ring[h.head].id
		h.ring[h.head] = rec
		h.head = (h.head + 1) % len(h.ring)
		return
	}
	h.ring[(h.head+h.size)%len(h.ring)] = rec
	h.size++
}

// at returns the i-th oldest record of the ring. h.mu must be held.
func (h *Hub) at(i int) *record { return h.ring[(h.head+i)%len(h.ring)] }

// after appends to dst the buffered records whose id is larger than id, oldest
// first. h.mu must be held.
func (h *Hub) after(dst []*record, id uint64) []*record {
	for i := sort.Search(h.size, func(i int) bool { return h.at(i).id > id }); i < h.size; i++ {
		dst = append(dst, h.at(i))
	}
	return dst
}

// errResync explains why a client must refetch its state instead of resuming.
type errResync string

// since returns the buffered records after id that role may receive, or the
// reason why the events after id cannot be replayed. h.mu must be held.
func (h *Hub) since(id uint64, role switchboard.Role, owner string) ([]*record, errResync) {
	switch {
	case id > h.lastID:
		return nil, "unknown event id: the server may have restarted"
	case id < h.first:
		return nil, "unknown event id: from before this server started"
	case id < h.evicted:
		return nil, "events after this id are no longer buffered"
	}
	out := h.after(nil, id)
	kept := out[:0]
	for _, rec := range out {
		if rec.visible(role, owner) {
			kept = append(kept, rec)
		}
	}
	clear(out[len(kept):])
	return kept, ""
}

// Subscribe returns a channel that receives, in order, the events published
// from now on for which filter returns true (every event when filter is nil).
//
// The channel is bounded (Options.SubscriberQueue). A subscriber that does not
// keep up is dropped: its channel is closed as soon as an event finds the queue
// full, so a closed channel while ctx is live means events were missed. The
// channel is also closed when ctx ends or the hub closes.
//
// filter runs on the hub's delivery goroutine while the subscribers are
// locked: it must be fast, must not block and must not call the hub.
func (h *Hub) Subscribe(ctx context.Context, filter func(switchboard.Event) bool) <-chan switchboard.Event {
	s := &subscriber{filter: filter, events: make(chan switchboard.Event, h.queue)}
	h.subMu.Lock()
	defer h.subMu.Unlock()
	h.mu.Lock()
	closed := h.closed
	s.from = h.lastID
	h.mu.Unlock()
	if closed {
		close(s.events)
		return s.events
	}
	h.addLocked(s)
	// Registered under the lock so that the removal in AfterFunc cannot run
	// before s.stop is set.
	s.stop = context.AfterFunc(ctx, func() { h.remove(s) })
	return s.events
}

// subscribeSSE registers an SSE subscriber of role and returns it with the
// buffered events after lastID (when resume is set), atomically, so that no
// event falls between the backlog and the live queue.
func (h *Hub) subscribeSSE(role switchboard.Role, owner string, resume bool, lastID uint64) (s *subscriber, backlog []*record, resync errResync, newest uint64, ok bool) {
	s = &subscriber{role: role, owner: owner, limit: h.queue, wake: make(chan struct{}, 1)}
	h.subMu.Lock()
	defer h.subMu.Unlock()
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, nil, "", 0, false
	}
	if resume {
		backlog, resync = h.since(lastID, role, owner)
	}
	s.from = h.lastID
	h.mu.Unlock()
	h.addLocked(s)
	return s, backlog, resync, s.from, true
}

// addLocked registers s. h.subMu must be held.
func (h *Hub) addLocked(s *subscriber) {
	s.idx = len(h.subs)
	h.subs = append(h.subs, s)
	h.nsubs.Add(1)
	if s.wake != nil {
		h.nsse++
		if h.keepAlive == nil {
			h.keepAlive = time.AfterFunc(h.heartbeat, h.sweep)
		}
	}
}

// sweep asks every SSE stream to send a keep-alive comment, and schedules
// the next sweep while there are SSE subscribers left. One shared sweep
// replaces a ticker per stream: streams wake once per heartbeat all the
// same, and an idle stream holds no timer.
func (h *Hub) sweep() {
	h.subMu.Lock()
	defer h.subMu.Unlock()
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed || h.nsse == 0 {
		h.keepAlive = nil
		return
	}
	for _, s := range h.subs {
		if s.wake == nil {
			continue
		}
		s.mu.Lock()
		s.ping = true
		s.notifyLocked()
	}
	h.keepAlive.Reset(h.heartbeat)
}

// remove unregisters s and closes its queue, if it is still registered.
func (h *Hub) remove(s *subscriber) {
	h.subMu.Lock()
	defer h.subMu.Unlock()
	h.removeLocked(s)
}

// removeLocked unregisters s and closes its queue, if it is still registered.
// h.subMu must be held.
func (h *Hub) removeLocked(s *subscriber) {
	if s.idx < 0 {
		return
	}
	last := len(h.subs) - 1
	h.subs[s.idx] = h.subs[last]
	h.subs[s.idx].idx = s.idx
	h.subs[last] = nil
	h.subs = h.subs[:last]
	s.idx = -1
	h.nsubs.Add(-1)
	if s.wake != nil {
		h.nsse--
		if h.nsse == 0 && h.keepAlive != nil {
			h.keepAlive.Stop()
			h.keepAlive = nil
		}
	}
	if s.stop != nil {
		s.stop()
	}
	s.close()
}

// Close ends every subscription once the events already published have been
// delivered: in-process channels are closed and ServeSSE calls return. Later
// Publish calls do nothing and later ServeSSE calls answer 503. Close is
// idempotent and stops the hub's goroutine; it does not wait for the streams'
// handlers to return, http.Server.Shutdown does that, nor for the streams on
// connections taken over from net/http to write what was queued for them and
// close, Shutdown does that.
func (h *Hub) Close() {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		h.mu.Unlock()
		h.deliverer.Wait()

		h.subMu.Lock()
		defer h.subMu.Unlock()
		for len(h.subs) > 0 {
			h.removeLocked(h.subs[len(h.subs)-1])
		}
	})
}

// Stats returns the hub's counters. It does not wait for a delivery round.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	last := h.lastID
	h.mu.Unlock()
	return Stats{
		Subscribers: int(h.nsubs.Load()),
		Dropped:     h.dropped.Load(),
		Published:   h.published.Load(),
		LastID:      last,
	}
}

var _ switchboard.Bus = (*Hub)(nil)
