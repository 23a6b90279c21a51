package events

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
)

// rawStream is an SSE stream opened on a plain TCP connection, read by the
// test's goroutine only, so that the client side runs no goroutine.
type rawStream struct {
	t    *testing.T
	conn net.Conn
	resp *http.Response
	body *bufio.Reader
}

// openRaw sends GET path on a new connection to addr and reads the
// response's head.
func openRaw(t *testing.T, addr, path string) *rawStream {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n")); err != nil {
		t.Fatalf("write request: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	return &rawStream{t: t, conn: conn, resp: resp, body: bufio.NewReader(resp.Body)}
}

// events reads the stream up to its end and returns its events' ids.
func (rs *rawStream) readToEnd() string {
	rs.t.Helper()
	_ = rs.conn.SetReadDeadline(time.Now().Add(wait))
	var got []sseEvent
	readSSE(rs.body, func(e sseEvent) bool {
		if e.ID != "" {
			got = append(got, e)
		}
		return true
	})
	return ids(got)
}

// goroutinesIn counts the goroutines whose stack holds fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			count++
		}
	}
	return count
}

// TestIdleStreamHoldsNoGoroutine opens streams over HTTP/1.1 and checks
// that once they are idle neither net/http nor the hub runs a goroutine for
// them, that an event still reaches each, with the headers set before
// ServeStream, and that a client that closes its connection is removed at
// the next keep-alive, although writing that one would not fail yet.
func TestIdleStreamHoldsNoGoroutine(t *testing.T) {
	checkGoroutines(t)
	const n = 20
	h := New(Options{Heartbeat: time.Hour}) // the test runs the keep-alive sweep itself
	defer h.Close()
	var ended atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "rid-1")
		w.Header().Set("Access-Control-Allow-Origin", "https://app.example")
		h.ServeStream(w, r, Stream{Role: switchboard.RoleClient, Done: func() { ended.Add(1) }})
	}))
	defer srv.Close()
	before := runtime.NumGoroutine()

	streams := make([]*rawStream, n)
	for i := range streams {
		streams[i] = openRaw(t, srv.Listener.Addr().String(), "/")
	}
	eventually(t, "n streams on connections taken over", func() bool {
		return h.Stats().Subscribers == n && h.Streams() == n
	})
	// Neither net/http's connection goroutine nor a writer stays: the
	// keep-alives come and go meanwhile.
	eventually(t, "no goroutine for the idle streams", func() bool {
		return runtime.NumGoroutine() <= before && goroutinesIn("net/http.(*conn).serve") == 0
	})

	hdr := streams[0].resp.Header
	for k, want := range map[string]string{
		"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
		"X-Request-Id": "rid-1", "Access-Control-Allow-Origin": "https://app.example",
	} {
		if got := hdr.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	if r := streams[0].resp; hdr.Get("Date") == "" || !r.Close || r.ContentLength != -1 || len(r.TransferEncoding) != 0 {
		t.Errorf("response head %+v: want a Date, and a body delimited by the connection's end", streams[0].resp)
	}

	h.Publish(switchboard.Event{Type: "test", Audience: switchboard.RoleClient})
	for i, rs := range streams {
		_ = rs.conn.SetReadDeadline(time.Now().Add(wait))
		var got sseEvent
		readSSE(rs.body, func(e sseEvent) bool {
			got = e
			return e.ID == "" // skip the retry field and keep-alives
		})
		if got.ID != "1" || got.Type != "test" {
			t.Fatalf("stream %d: got %+v, want event 1", i, got)
		}
	}

	// Half the clients leave; nothing is published meanwhile. One keep-alive
	// finds them gone: writing it would succeed, only the next one would fail.
	for _, rs := range streams[:n/2] {
		rs.conn.Close()
	}
	time.Sleep(100 * time.Millisecond) // for their FIN to arrive
	h.sweep()
	eventually(t, "the streams of the clients gone removed", func() bool {
		return h.Stats().Subscribers == n/2 && h.Streams() == n/2 && ended.Load() == n/2
	})
	if d := h.Stats().Dropped; d != 0 {
		t.Errorf("dropped = %d after clients left, want 0", d)
	}
	h.Close()
	for i, rs := range streams[n/2:] {
		if got := rs.readToEnd(); got != "" {
			t.Errorf("stream %d: events %q after the first, want none before the end", i, got)
		}
	}
	eventually(t, "every stream ended", func() bool { return ended.Load() == n && h.Streams() == 0 })
}

// TestStreamContextEndsStream checks that the end of Stream.Context ends a
// stream on a connection taken over, and calls Done once.
func TestStreamContextEndsStream(t *testing.T) {
	checkGoroutines(t)
	h := New(Options{})
	defer h.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ended atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeStream(w, r, Stream{Role: switchboard.RoleClient, Context: ctx, Done: func() { ended.Add(1) }})
	}))
	defer srv.Close()
	rs := openRaw(t, srv.Listener.Addr().String(), "/")
	eventually(t, "a stream taken over", func() bool { return h.Streams() == 1 })
	publishN(h, 3, "test", switchboard.RoleClient)
	eventually(t, "delivered", h.caughtUp)
	cancel()
	got := rs.readToEnd()
	if got != "1,2,3" && got != "1,2" && got != "1" && got != "" {
		t.Errorf("events before the end: %q, want a prefix of 1,2,3", got)
	}
	eventually(t, "the stream removed", func() bool {
		return h.Stats().Subscribers == 0 && h.Streams() == 0 && ended.Load() == 1
	})
}

// TestShutdownWaitsForStreams checks that Shutdown lets the streams on
// connections taken over write what was queued for them before they close,
// and that when its context ends first it cuts a stream whose client does
// not read.
func TestShutdownWaitsForStreams(t *testing.T) {
	checkGoroutines(t)
	smallBuffers := func(s *http.Server) {
		s.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
			_ = c.(*net.TCPConn).SetWriteBuffer(4096) // a slow network
			return ctx
		}
	}
	payload := strings.Repeat("x", 4096)
	const total = 500 // 2 MB: more than the socket buffers hold

	h := New(Options{SubscriberQueue: 1 << 12, WriteTimeout: time.Minute})
	srv := newServer(t, h, smallBuffers)
	var readers []chan string
	for range 3 {
		rs := openRaw(t, srv.Listener.Addr().String(), "/")
		got := make(chan string, 1)
		go func() { got <- rs.readToEnd() }()
		readers = append(readers, got)
	}
	eventually(t, "3 streams taken over", func() bool { return h.Streams() == 3 })
	for range total {
		h.Publish(switchboard.Event{Type: "test", Audience: switchboard.RoleClient, Data: payload})
	}
	if err := h.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if n := h.Streams(); n != 0 {
		t.Errorf("%d streams left after Shutdown", n)
	}
	for i, got := range readers {
		if ids := <-got; ids != idRange(1, total) {
			t.Errorf("client %d: %d bytes of ids, want all of 1..%d before the end", i, len(ids), total)
		}
	}

	h = New(Options{SubscriberQueue: 1 << 12, WriteTimeout: time.Minute})
	srv = newServer(t, h, smallBuffers)
	slow := dialRaw(t, srv.Listener.Addr().String(), "/", 4096)
	eventually(t, "a stream taken over", func() bool { return h.Streams() == 1 })
	for range total {
		h.Publish(switchboard.Event{Type: "test", Audience: switchboard.RoleClient, Data: payload})
	}
	eventually(t, "delivered", h.caughtUp)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := h.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with a client that does not read: %v, want the deadline exceeded", err)
	}
	if n := h.Streams(); n != 0 {
		t.Errorf("%d streams left after Shutdown", n)
	}
	if n, _ := io.Copy(io.Discard, slow); n >= int64(total*len(payload)) { // the connection was cut: it ends
		t.Errorf("the client that did not read got all %d bytes", n)
	}
	if err := h.Shutdown(context.Background()); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
}

// noHijack hides every optional interface of its ResponseWriter but Flush:
// the handler serves the stream.
type noHijack struct{ w http.ResponseWriter }

func (n noHijack) Header() http.Header         { return n.w.Header() }
func (n noHijack) Write(b []byte) (int, error) { return n.w.Write(b) }
func (n noHijack) WriteHeader(code int)        { n.w.WriteHeader(code) }
func (n noHijack) Flush()                      { n.w.(http.Flusher).Flush() }

// TestHandlerServedStreams checks the streams that the handler serves, over
// HTTP/2 and behind a ResponseWriter that cannot hijack: they resume, receive
// events and keep-alives, end with their client and with the hub.
func TestHandlerServedStreams(t *testing.T) {
	for _, mode := range []string{"http2", "nohijack"} {
		t.Run(mode, func(t *testing.T) {
			checkGoroutines(t)
			h := New(Options{Heartbeat: 20 * time.Millisecond})
			defer h.Close()
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if mode == "nohijack" {
					w = noHijack{w}
				}
				h.ServeSSE(w, r, switchboard.RoleClient)
			}))
			client := http.DefaultClient
			if mode == "http2" {
				srv.EnableHTTP2 = true
				srv.StartTLS()
				client = srv.Client()
			} else {
				srv.Start()
			}
			defer srv.Close()
			publishN(h, 2, "test", switchboard.RoleClient)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			req.Header.Set("Last-Event-ID", "1")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if mode == "http2" && resp.ProtoMajor != 2 {
				t.Fatalf("protocol %s, want HTTP/2", resp.Proto)
			}
			eventually(t, "a stream served by its handler", func() bool { return h.Stats().Subscribers == 1 })
			if n := h.Streams(); n != 0 {
				t.Errorf("%d streams taken over, want none", n)
			}
			h.Publish(switchboard.Event{Type: "test", Audience: switchboard.RoleClient})
			var got []string
			pinged := false
			readSSE(bufio.NewReader(resp.Body), func(e sseEvent) bool {
				if e.ID != "" {
					got = append(got, e.ID)
				}
				pinged = pinged || e.Comment == "ping"
				return len(got) < 2 || !pinged
			})
			if strings.Join(got, ",") != "2,3" || !pinged {
				t.Errorf("got ids %v, pinged %v; want 2,3 and a keep-alive", got, pinged)
			}
			cancel()
			eventually(t, "the stream removed with its client", func() bool { return h.Stats().Subscribers == 0 })
		})
	}
}
