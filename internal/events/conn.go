package events

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// An SSE stream over HTTP/1.x takes its connection over from net/http
// (http.ResponseController.Hijack) once it is subscribed, writes its
// response's head itself and lets its handler return. net/http's read and
// write buffers, its background read, the request and the handler's
// goroutine are then freed: an idle stream holds its subscriber, the
// connection and this struct. A goroutine is started to write while records
// or a keep-alive are due, and returns once they are written.
//
// The response is delimited by the connection's end (Connection: close, no
// chunking), which every HTTP/1.x client, EventSource included, reads.
//
// A client that goes away is found at the next keep-alive at the latest: a
// read that does not wait tells whether the client closed or reset the
// connection (peerGone), before the comment is written; a write that fails
// or times out ends the stream as well.

// sseConn is an SSE stream on a connection taken over from net/http.
type sseConn struct {
	hub     *Hub
	c       net.Conn
	timeout time.Duration
	sent    uint64      // the id of the last event written; only the writer touches it
	err     error       // the first failed write; only the writer touches it
	ended   func()      // Stream.Done, if any
	bufs    net.Buffers // the writer's batch, reused
}

// errPeerGone is the error of a stream whose client closed its connection.
var errPeerGone = errors.New("the client closed the connection")

// pingFrame is the keep-alive comment.
var pingFrame = []byte(": ping\n\n")

// run writes what is due to s, turn after turn, and returns once nothing is
// left: the subscriber's notifyLocked starts it again when something is due.
// When s has ended it closes the connection.
func (c *sseConn) run(s *subscriber) {
	for {
		s.mu.Lock()
		recs, ping, done, cut := s.queued, s.ping, s.done, s.cut
		s.queued, s.ping = nil, false
		if len(recs) == 0 && !ping && !done {
			s.writing = false
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		if c.err == nil && !cut {
			c.write(recs, ping)
		}
		if done {
			c.finish()
			return
		}
		if c.err != nil {
			c.hub.remove(s) // sets done: the next turn closes the connection
		}
	}
}

// write writes a keep-alive comment when ping is set, once the client is
// known to be there, then the records after c.sent, maxBatch at a time.
func (c *sseConn) write(recs []*record, ping bool) {
	if ping {
		if peerGone(c.c) {
			c.err = errPeerGone
			return
		}
		c.bufs = append(c.bufs, pingFrame)
	}
	for _, rec := range recs {
		if rec.id <= c.sent { // the backlog may overlap the queue
			continue
		}
		c.bufs = append(c.bufs, rec.frame)
		c.sent = rec.id
		if len(c.bufs) == maxBatch && !c.flush() {
			return
		}
	}
	c.flush()
}

// flush writes c.bufs, within the write timeout, and reports whether it could.
func (c *sseConn) flush() bool {
	if len(c.bufs) == 0 || c.err != nil {
		return c.err == nil
	}
	c.err = c.c.SetWriteDeadline(time.Now().Add(c.timeout))
	if c.err == nil {
		if len(c.bufs) == 1 {
			_, c.err = c.c.Write(c.bufs[0])
		} else {
			b := c.bufs // WriteTo consumes its receiver
			_, c.err = b.WriteTo(c.c)
		}
	}
	clear(c.bufs)
	c.bufs = c.bufs[:0]
	if cap(c.bufs) > maxSpare {
		c.bufs = nil
	}
	return c.err == nil
}

// finish closes the connection of a stream whose subscriber was removed, and
// tells its owner.
func (c *sseConn) finish() {
	_ = c.c.Close()
	c.bufs = nil
	c.hub.untrack(c)
	if c.ended != nil {
		c.ended()
	}
}

// track registers c for Shutdown. It reports false when Shutdown has already
// given up waiting, in which case c must be closed at once.
func (h *Hub) track(c *sseConn) bool {
	h.connMu.Lock()
	defer h.connMu.Unlock()
	if h.conns == nil {
		h.conns = map[*sseConn]struct{}{}
	}
	h.conns[c] = struct{}{}
	return !h.cutConns
}

// untrack unregisters c, and wakes Shutdown when it was the last.
func (h *Hub) untrack(c *sseConn) {
	h.connMu.Lock()
	defer h.connMu.Unlock()
	delete(h.conns, c)
	if len(h.conns) == 0 && h.connsGone != nil {
		close(h.connsGone)
		h.connsGone = nil
	}
}

// Streams returns how many event streams run on connections taken over from
// net/http: those that http.Server.Shutdown does not wait for.
func (h *Hub) Streams() int {
	h.connMu.Lock()
	defer h.connMu.Unlock()
	return len(h.conns)
}

// Shutdown closes the hub (see Close) and waits until every event stream
// on a connection taken over from net/http has written what was queued for
// it and closed its connection, which http.Server.Shutdown does not do. When
// ctx ends first, it closes the connections left at once, waits for their
// writers to notice, and returns ctx's error. Call it beside, or after,
// http.Server.Shutdown.
func (h *Hub) Shutdown(ctx context.Context) error {
	h.Close()
	if h.waitConns(ctx.Done()) {
		return nil
	}
	h.connMu.Lock()
	h.cutConns = true
	for c := range h.conns {
		_ = c.c.Close() // a blocked write fails at once; its writer finishes
	}
	h.connMu.Unlock()
	h.waitConns(nil)
	return ctx.Err()
}

// waitConns waits until no connection is tracked, or stop is closed. It
// reports whether none is left.
func (h *Hub) waitConns(stop <-chan struct{}) bool {
	h.connMu.Lock()
	if len(h.conns) == 0 {
		h.connMu.Unlock()
		return true
	}
	if h.connsGone == nil {
		h.connsGone = make(chan struct{})
	}
	gone := h.connsGone
	h.connMu.Unlock()
	select {
	case <-gone:
		return true
	case <-stop:
		return false
	}
}

// responseHead is the head of an SSE response on a connection taken over:
// the status line and the header of w, in which the middleware's headers
// were already set, with those net/http would have added.
func responseHead(hdr http.Header) []byte {
	hdr.Del("Content-Length")
	hdr.Del("Transfer-Encoding")
	hdr.Set("Connection", "close")
	if _, ok := hdr["Date"]; !ok {
		hdr.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	}
	b := &headBuffer{b: make([]byte, 0, 512)}
	b.b = append(b.b, "HTTP/1.1 200 OK\r\n"...)
	_ = hdr.Write(b) // writes to memory; values' line breaks become spaces
	b.b = append(b.b, "\r\n"...)
	return b.b
}

// headBuffer is an io.Writer appending to a slice (Header.Write wants one).
type headBuffer struct{ b []byte }

func (b *headBuffer) Write(p []byte) (int, error) {
	b.b = append(b.b, p...)
	return len(p), nil
}
