// Package events carries Switchboard's events: an in-process bus that other parts
// of the server subscribe to, and a Server-Sent Events endpoint that streams the
// same events to API clients and the dashboard.
//
// A Hub numbers every published event, encodes it once, keeps the most recent
// ones in a ring buffer and fans them out to its subscribers. Publish never
// blocks: a subscriber whose queue is full is dropped, and its stream ends. An SSE
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
	// A subscriber whose queue is full when an event is published is dropped.
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
}

// Stats are counters of a Hub, for metrics.
type Stats struct {
	// Subscribers is the number of current subscribers (SSE and in-process).
	Subscribers int
	// Dropped counts subscribers dropped because their queue was full.
	Dropped uint64
	// Published counts events published.
	Published uint64
	// LastID is the id of the most recent event (0 before the first).
	LastID uint64
}

// record is a published event as the hub keeps it: the event for in-process
// subscribers and its SSE frame, encoded once, for streams.
type record struct {
	id       uint64
	audience switchboard.Role
	event    switchboard.Event
	frame    []byte // "id: N\nevent: T\ndata: {...}\n\n"
}

// subscriber is one SSE stream (frames != nil) or one in-process subscriber
// (events != nil).
type subscriber struct {
	role   switchboard.Role // SSE: the caller's role
	frames chan *record

	filter func(switchboard.Event) bool // in-process: nil accepts everything
	events chan switchboard.Event
	stop   func() bool // stops the context.AfterFunc of an in-process subscriber

	idx int // position in Hub.subs, -1 once removed; guarded by Hub.mu
}

// offer queues rec for s if s wants it. It reports false when s's queue is full.
// It never blocks.
func (s *subscriber) offer(rec *record) bool {
	if s.frames != nil {
		if rec.audience > s.role {
			return true
		}
		select {
		case s.frames <- rec:
			return true
		default:
			return false
		}
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

// close ends s's queue. The hub calls it once, when it removes s.
func (s *subscriber) close() {
	if s.frames != nil {
		close(s.frames)
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

	mu sync.Mutex
	// The fields below are guarded by mu.
	lastID  uint64
	evicted uint64        // largest id that fell out of the ring (0 if none)
	ring    []*record     // circular buffer of the most recent events, oldest at head
	head    int           // index of the oldest record in ring
	size    int           // number of records in ring
	subs    []*subscriber // a slice: Publish walks it on every event
	closed  bool
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
	}
}

// Publish numbers e, keeps it for resuming clients and hands it to every
// subscriber that may receive it. It never blocks on a subscriber: one whose
// queue is full is dropped (its channel or stream ends).
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

	var dropped []*subscriber
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	e.ID = max(e.ID, h.lastID+1)
	h.lastID = e.ID
	rec := &record{id: e.ID, audience: e.Audience, event: e, frame: frame(e.ID, e.Type, typ, at, data)}
	h.push(rec)
	for i := 0; i < len(h.subs); {
		s := h.subs[i]
		if s.offer(rec) {
			i++
			continue
		}
		h.removeLocked(s) // moves the last subscriber to i
		dropped = append(dropped, s)
	}
	h.mu.Unlock()

	h.published.Add(1)
	if len(dropped) > 0 {
		h.dropped.Add(uint64(len(dropped)))
		h.logger.Info("event subscribers dropped", "reason", "queue full", "count", len(dropped), "event_id", e.ID)
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

// errResync explains why a client must refetch its state instead of resuming.
type errResync string

// since returns the buffered records after id that role may receive, or the
// reason why the events after id cannot be replayed. h.mu must be held.
func (h *Hub) since(id uint64, role switchboard.Role) ([]*record, errResync) {
	switch {
	case id > h.lastID:
		return nil, "unknown event id: the server may have restarted"
	case id < h.evicted:
		return nil, "events after this id are no longer buffered"
	}
	first := sort.Search(h.size, func(i int) bool { return h.at(i).id > id })
	var out []*record
	for i := first; i < h.size; i++ {
		if rec := h.at(i); rec.audience <= role {
			out = append(out, rec)
		}
	}
	return out, ""
}

// Subscribe returns a channel that receives, in order, the events published
// from now on for which filter returns true (every event when filter is nil).
//
// The channel is bounded (Options.SubscriberQueue). A subscriber that does not
// keep up is dropped: its channel is closed as soon as an event finds the queue
// full, so a closed channel while ctx is live means events were missed. The
// channel is also closed when ctx ends or the hub closes.
//
// filter runs inside Publish while the hub is locked: it must be fast, must not
// block and must not call the hub.
func (h *Hub) Subscribe(ctx context.Context, filter func(switchboard.Event) bool) <-chan switchboard.Event {
	s := &subscriber{filter: filter, events: make(chan switchboard.Event, h.queue)}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		close(s.events)
		return s.events
	}
	h.add(s)
	// Registered under the lock so that the removal in AfterFunc cannot run
	// before s.stop is set.
	s.stop = context.AfterFunc(ctx, func() { h.remove(s) })
	h.mu.Unlock()
	return s.events
}

// subscribeSSE registers an SSE subscriber of role and returns it with the
// buffered events after lastID (when resume is set), atomically, so that no
// event falls between the backlog and the live queue.
func (h *Hub) subscribeSSE(role switchboard.Role, resume bool, lastID uint64) (s *subscriber, backlog []*record, resync errResync, newest uint64, ok bool) {
	s = &subscriber{role: role, frames: make(chan *record, h.queue)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, nil, "", 0, false
	}
	if resume {
		backlog, resync = h.since(lastID, role)
	}
	h.add(s)
	return s, backlog, resync, h.lastID, true
}

// add registers s. h.mu must be held.
func (h *Hub) add(s *subscriber) {
	s.idx = len(h.subs)
	h.subs = append(h.subs, s)
}

// remove unregisters s and closes its queue, if it is still registered.
func (h *Hub) remove(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(s)
}

// removeLocked unregisters s and closes its queue, if it is still registered.
// h.mu must be held.
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
	if s.stop != nil {
		s.stop()
	}
	s.close()
}

// Close ends every subscription: in-process channels are closed and ServeSSE
// calls return. Later Publish calls do nothing and later ServeSSE calls answer
// 503. Close is idempotent and does not wait for the streams' handlers to
// return; http.Server.Shutdown does that.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	for len(h.subs) > 0 {
		h.removeLocked(h.subs[len(h.subs)-1])
	}
}

// Stats returns the hub's counters.
func (h *Hub) Stats() Stats {
	h.mu.Lock()
	n, last := len(h.subs), h.lastID
	h.mu.Unlock()
	return Stats{Subscribers: n, Dropped: h.dropped.Load(), Published: h.published.Load(), LastID: last}
}

var _ switchboard.Bus = (*Hub)(nil)
