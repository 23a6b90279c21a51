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
// request's context ends, the client is dropped for not keeping up, or the hub
// closes. Only events whose Audience is at most role are sent.
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
// The caller authenticates the request and passes the caller's role. Flushing
// goes through http.ResponseController, so middleware that wraps the
// ResponseWriter must implement Unwrap.
func (h *Hub) ServeSSE(w http.ResponseWriter, r *http.Request, role switchboard.Role) {
	h.ServeSSEAs(w, r, role, "")
}

// ServeSSEAs is ServeSSE for a caller whose owner key (switchboard.Actor.Key)
// is owner: an event meant for one owner (Event.Owner) is sent to that owner
// and to admins only.
func (h *Hub) ServeSSEAs(w http.ResponseWriter, r *http.Request, role switchboard.Role, owner string) {
	// The stream lives in the request's goroutine, whose stack it keeps for
	// as long as it is open: the work is split so that no frame on the way
	// is large, and the goroutine stays on its first stack size (8 KiB)
	// rather than doubling it for the whole life of the stream.
	st := &stream{w: w, rc: http.NewResponseController(w), timeout: h.writeTO}
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
		s, sent, ok = h.openSSE(st, r, role, owner)
	}()
	<-opened
	if s == nil {
		return
	}
	defer h.closeSSE(s, st)
	if ok {
		h.streamSSE(r.Context(), s, st, sent)
	}
}

// openSSE subscribes the client of r, writes the response's headers and the
// events it resumes from, and flushes them. It returns the subscriber (nil
// when the hub is closed, after answering 503), the id of the last event
// written, and whether the stream is still writable.
//
//go:noinline
func (h *Hub) openSSE(st *stream, r *http.Request, role switchboard.Role, owner string) (s *subscriber, sent uint64, ok bool) {
	lastID, resume, malformed := lastEventID(r)
	s, backlog, resync, newest, ok := h.subscribeSSE(role, owner, resume && !malformed, lastID)
	if !ok {
		st.w.Header().Set("Retry-After", "1")
		http.Error(st.w, "event stream closed", http.StatusServiceUnavailable)
		return nil, 0, false
	}
	if malformed {
		resync = "malformed last event id"
	}
	hdr := st.w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	st.w.WriteHeader(http.StatusOK)
	st.write([]byte("retry: 1000\n\n"))
	sent = lastID
	if resync != "" {
		st.write(resyncFrame(newest, string(resync)))
		sent = newest
	}
	for _, rec := range backlog {
		st.write(rec.frame)
		sent = rec.id
	}
	if !st.flush() {
		if errors.Is(st.err, http.ErrNotSupported) {
			h.logger.Error("event stream cannot flush: the response writer does not support it")
		}
		return s, sent, false
	}
	return s, sent, true
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
// they come, until ctx ends, s ends (dropped as slow, or the hub closed) or a
// write fails. sent is the id of the last event already written.
func (h *Hub) streamSSE(ctx context.Context, s *subscriber, st *stream, sent uint64) {
	var recs, spare []*record
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		var ping, done bool
		recs, ping, done = s.take(spare)
		if !st.writeQueued(recs, ping, &sent) || done {
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
