package events

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchboardhq/switchboard"
)

// Resync is the type of the event that tells an SSE client to refetch its state
// because the events it missed can no longer be replayed. Its data is
// {"reason": "..."}.
const Resync = "resync"

// lastEventIDParam is the query parameter that carries the last event id for
// clients that cannot set the Last-Event-ID header.
const lastEventIDParam = "lastEventId"

// maxBatch bounds how many queued events are written between two flushes.
const maxBatch = 64

// maxSpare is the largest queue a stream keeps for reuse between wake-ups.
const maxSpare = 16

// ServeSSE streams events to an HTTP client as Server-Sent Events, until the
// client goes away, the client is dropped for not keeping up, or the hub
// closes. Only events whose Audience is at most role are sent. It is ServeStream
// with Stream{Role: role}.
//
// A client that sends Last-Event-ID (the header, or the lastEventId query
// parameter) first receives the buffered events after that id. When they are no
// longer all buffered, or the id is unknown or malformed, it receives a resync
// event instead, whose id is the latest event's so that a later reconnection
// resumes from there; it should then refetch its state. The stream continues
// live in both cases. A comment line is sent every Options.Heartbeat, by a
// sweep over all the streams rather than a timer per stream.
//
// A client dropped for not keeping up first receives what was already queued
// for it, then its stream ends; it resumes when it reconnects.
//
// The caller authenticates the request and passes the caller's role. Taking
// the connection over and flushing go through http.ResponseController, so
// middleware that wraps the ResponseWriter must implement Unwrap.
func (h *Hub) ServeSSE(w http.ResponseWriter, r *http.Request, role switchboard.Role) {
	h.ServeStream(w, r, Stream{Role: role})
}

// ServeSSEAs is ServeSSE for a caller whose owner key (switchboard.Actor.Key)
// is owner: an event meant for one owner (Event.Owner) is sent to that owner
// and to admins only.
func (h *Hub) ServeSSEAs(w http.ResponseWriter, r *http.Request, role switchboard.Role, owner string) {
	h.ServeStream(w, r, Stream{Role: role, Owner: owner})
}

// Stream describes the caller of an SSE stream, for ServeStream.
type Stream struct {
	// Role is the caller's: only events whose Audience is at most Role are
	// sent.
	Role switchboard.Role
	// Owner is the caller's owner key (switchboard.Actor.Key): an event
	// meant for one owner (Event.Owner) is sent to that owner and to admins
	// only.
	Owner string
	// Context, if set, ends the stream when it is done, without writing what
	// is still queued. The request's own context ends as soon as the
	// connection is taken over from net/http, so Context must not derive
	// from it (context.WithoutCancel does not).
	Context context.Context
	// Done, if set, is called once when the stream has ended, whether it
	// was refused, served by the handler or on a connection taken over, in
	// which case ServeStream has long returned.
	Done func()
	// TakenOver, if set, is called when the connection is taken over, with
	// a function that tells at once, without waiting, whether the client has
	// closed or reset its connection, and if so ends the stream (Done
	// follows). A stream on a connection taken over finds that out by
	// itself at the next keep-alive; this is for a caller that needs to
	// know sooner, such as a bound on the streams open.
	TakenOver func(gone func() bool)
}

// ServeStream is ServeSSE for the caller st.
//
// Over HTTP/1.x, once the client is subscribed, ServeStream takes the
// connection over from net/http (http.ResponseController.Hijack), writes the
// response's head (the headers already set on w, with Content-Type
// text/event-stream) and returns: the stream then holds no goroutine and no
// buffer while it is idle, a goroutine being started only to write what is due
// to it. Such a response is delimited by the connection's end. A client that
// closes its connection is found at the next keep-alive, when a write fails,
// or at once when the stream has something to write. http.Server.Shutdown does
// not wait for those connections: Hub.Shutdown does. Over HTTP/2, for a HEAD
// request, or when the ResponseWriter cannot hand its connection over,
// ServeStream serves the stream until it ends, as the handler.
func (h *Hub) ServeStream(w http.ResponseWriter, r *http.Request, st Stream) {
	ended := st.Done
	if ended == nil {
		ended = func() {}
	}
	// A stream served by the handler lives in the request's goroutine, whose
	// stack it keeps for as long as it is open: the work is split so that no
	// frame on the way is large, and the goroutine stays on its first stack
	// size (8 KiB) rather than doubling it for the whole life of the stream.
	out := &stream{w: w, rc: http.NewResponseController(w), timeout: h.writeTO}
	// The first flush writes the response's headers through net/http's
	// deepest frames (about 3 KiB for the header alone): on a goroutine of
	// its own, whose stack is freed as it returns, so that this one, which
	// lives as long as the stream, does not keep a doubled stack.
	var (
		s    *subscriber
		sent uint64
		ok   bool
	)
	opened := make(chan struct{})
	go func() {
		defer close(opened)
		s, sent, ok = h.openSSE(out, r, st)
	}()
	<-opened
	if s == nil { // refused, or on a connection taken over: Done is its own
		return
	}
	defer ended()
	defer h.closeSSE(s, out)
	if ok {
		done := r.Context().Done()
		var cut <-chan struct{}
		if st.Context != nil {
			cut = st.Context.Done()
		}
		h.streamSSE(done, cut, s, out, sent)
	}
}

// openSSE subscribes the client of r, writes the response's headers and the
// events it resumes from, and flushes them. It returns the subscriber (nil
// when the hub is closed, after answering 503, and when the connection was
// taken over), the id of the last event written, and whether the stream is
// still writable.
//
//go:noinline
func (h *Hub) openSSE(out *stream, r *http.Request, st Stream) (s *subscriber, sent uint64, ok bool) {
	lastID, resume, malformed := lastEventID(r)
	s, backlog, resync, newest, ok := h.subscribeSSE(st.Role, st.Owner, resume && !malformed, lastID)
	if !ok {
		out.w.Header().Set("Retry-After", "1")
		http.Error(out.w, "event stream closed", http.StatusServiceUnavailable)
		if st.Done != nil {
			st.Done()
		}
		return nil, 0, false
	}
	if malformed {
		resync = "malformed last event id"
	}
	hdr := out.w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	var head []byte
	head = append(head, "retry: 1000\n\n"...)
	sent = lastID
	if resync != "" {
		head = append(head, resyncFrame(newest, string(resync))...)
		sent = newest
	}
	if r.ProtoMajor == 1 && r.Method == http.MethodGet && canProbe {
		if h.takeOver(out, s, head, backlog, sent, st) {
			return nil, 0, false
		}
	}
	out.w.WriteHeader(http.StatusOK)
	out.write(head)
	for _, rec := range backlog {
		out.write(rec.frame)
		sent = rec.id
	}
	if !out.flush() {
		if errors.Is(out.err, http.ErrNotSupported) {
			h.logger.Error("event stream cannot flush: the response writer does not support it")
		}
		return s, sent, false
	}
	return s, sent, true
}

// takeOver takes the connection of s's stream over from net/http, writes the
// response's head, first and the backlog on it, and hands s to a writer
// started when something is due. It reports false, having written nothing,
// when the ResponseWriter cannot hand its connection over; the handler then
// serves the stream. sent is the id of the last event in first.
func (h *Hub) takeOver(out *stream, s *subscriber, first []byte, backlog []*record, sent uint64, st Stream) bool {
	conn, _, err := out.rc.Hijack()
	if err != nil {
		return false
	}
	// What net/http buffered of the connection is left unread: a client of an
	// event stream sends nothing after its request, and the response ends
	// with the connection.
	c := &sseConn{hub: h, c: conn, timeout: h.writeTO, sent: sent, ended: st.Done}
	c.bufs = append(c.bufs, responseHead(out.w.Header()), first)
	for _, rec := range backlog {
		if len(c.bufs) == maxBatch && !c.flush() {
			break
		}
		c.bufs = append(c.bufs, rec.frame)
		c.sent = rec.id
	}
	c.flush()
	if !h.track(c) { // Shutdown has given up waiting
		c.err = errors.Join(c.err, http.ErrServerClosed)
	}
	if c.err != nil {
		h.remove(s)
		c.finish()
		return true
	}
	if st.Context != nil {
		h.subMu.Lock() // s.stop is read under it, when s is removed
		if s.idx >= 0 {
			s.stop = context.AfterFunc(st.Context, func() {
				s.mu.Lock()
				s.cut = true
				s.mu.Unlock()
				h.remove(s)
			})
		}
		h.subMu.Unlock()
	}
	if st.TakenOver != nil {
		st.TakenOver(func() bool {
			if !peerGone(conn) {
				return false
			}
			s.mu.Lock()
			s.cut = true // nothing more to write to a client gone
			s.mu.Unlock()
			h.remove(s)
			return true
		})
	}
	// From now on the records are written by c; those queued meanwhile, and
	// the end of s if it was removed meanwhile, are written at once.
	s.mu.Lock()
	s.conn = c
	if len(s.queued) > 0 || s.ping || s.done {
		s.notifyLocked()
	} else {
		s.mu.Unlock()
	}
	return true
}

// closeSSE unregisters s and leaves no write deadline behind on a connection
// that serves other requests next.
//
//go:noinline
func (h *Hub) closeSSE(s *subscriber, st *stream) {
	h.remove(s)
	_ = st.rc.SetWriteDeadline(time.Time{})
}

// streamSSE writes the events queued for s and the keep-alive comments as
// they come, until the request ends (done), the stream's context ends (cut),
// s ends (dropped as slow, or the hub closed) or a write fails. sent is the
// id of the last event already written.
func (h *Hub) streamSSE(done, cut <-chan struct{}, s *subscriber, st *stream, sent uint64) {
	var recs, spare []*record
	for {
		select {
		case <-done:
			return
		case <-cut:
			return
		case <-s.wake:
		}
		var ping, end bool
		recs, ping, end = s.take(spare)
		if !st.writeQueued(recs, ping, &sent) || end {
			return
		}
		// Keep the emptied slice for the next wake-up, unless a burst made
		// it large: an idle stream should hold next to nothing.
		clear(recs)
		spare = nil
		if cap(recs) <= maxSpare {
			spare = recs
		}
	}
}

// writeQueued writes a keep-alive comment when ping is set, then the records
// after *sent, flushing every maxBatch records and at the end. It reports
// whether the stream is still writable.
//
//go:noinline
func (st *stream) writeQueued(recs []*record, ping bool, sent *uint64) bool {
	if ping {
		st.write([]byte(": ping\n\n"))
	}
	for i, rec := range recs {
		if rec.id > *sent { // the backlog may overlap the queue
			st.write(rec.frame)
			*sent = rec.id
		}
		if (i+1)%maxBatch == 0 && !st.flush() {
			return false
		}
	}
	return st.flush()
}

// lastEventID reads the id a reconnecting client last received. resume reports
// whether the client sent one; malformed, that it could not be parsed.
func lastEventID(r *http.Request) (id uint64, resume, malformed bool) {
	v := strings.TrimSpace(r.Header.Get("Last-Event-ID"))
	if v == "" {
		v = strings.TrimSpace(r.URL.Query().Get(lastEventIDParam))
	}
	if v == "" {
		return 0, false, false
	}
	id, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, true, true
	}
	return id, true, false
}

// resyncFrame is the resync event. It carries id so that the client's next
// reconnection resumes after the state it is about to refetch.
func resyncFrame(id uint64, reason string) []byte {
	data, _ := json.Marshal(struct {
		Reason string `json:"reason"`
	}{reason})
	b := make([]byte, 0, 48+len(data))
	b = append(b, "id: "...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, "\nevent: "+Resync+"\ndata: "...)
	b = append(b, data...)
	return append(b, "\n\n"...)
}

// stream writes to one SSE client. After the first failed write it writes
// nothing more and flush reports false.
type stream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	err     error
}

func (s *stream) write(b []byte) {
	if s.err != nil {
		return
	}
	// A per-write deadline: a stalled client cannot hold the handler forever,
	// and the server's WriteTimeout does not cut healthy streams.
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.err = err
		return
	}
	_, s.err = s.w.Write(b)
}

func (s *stream) flush() bool {
	if s.err == nil {
		s.err = s.rc.Flush()
	}
	return s.err == nil
}
