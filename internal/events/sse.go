package events

import (
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
	lastID, resume, malformed := lastEventID(r)
	s, backlog, resync, newest, ok := h.subscribeSSE(role, owner, resume && !malformed, lastID)
	if !ok {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "event stream closed", http.StatusServiceUnavailable)
		return
	}
	defer h.remove(s)
	if malformed {
		resync = "malformed last event id"
	}

	st := &stream{w: w, rc: http.NewResponseController(w), timeout: h.writeTO}
	// Leave no deadline behind on a connection that serves other requests next.
	defer func() { _ = st.rc.SetWriteDeadline(time.Time{}) }()
	hdr := w.Header()
	hdr.Set("Content-Type", "text/event-stream")
	hdr.Set("Cache-Control", "no-cache")
	hdr.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	st.write([]byte("retry: 1000\n\n"))
	sent := lastID
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
		return
	}

	ctx := r.Context()
	var recs, spare []*record
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		}
		var ping, done bool
		recs, ping, done = s.take(spare)
		if ping {
			st.write([]byte(": ping\n\n"))
		}
		for i, rec := range recs {
			if rec.id > sent { // the backlog may overlap the queue
				st.write(rec.frame)
				sent = rec.id
			}
			if (i+1)%maxBatch == 0 && !st.flush() {
				return
			}
		}
		if !st.flush() || done {
			return // done: dropped as slow, or the hub closed
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
