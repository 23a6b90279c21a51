package events

import (
	"bufio"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func TestSSEDeliversInOrderWithIDs(t *testing.T) {
	checkGoroutines(t)
	h := New(Options{Clock: fixedClock(t0)})
	defer h.Close()
	srv := newServer(t, h)
	c := connect(t, srv.URL, nil)

	if got, want := c.resp.Header.Get("Content-Type"), "text/event-stream"; got != want {
		t.Errorf("Content-Type = %q, want %q", got, want)
	}
	if got, want := c.resp.Header.Get("Cache-Control"), "no-cache"; got != want {
		t.Errorf("Cache-Control = %q, want %q", got, want)
	}
	if got, want := c.resp.Header.Get("X-Accel-Buffering"), "no"; got != want {
		t.Errorf("X-Accel-Buffering = %q, want %q", got, want)
	}
	if first := <-c.items; first.Retry != "1000" {
		t.Errorf("first item = %+v, want retry: 1000", first)
	}

	at := t0.Add(-time.Minute)
	sent := []switchboard.Event{
		{Type: switchboard.EventProviderCreated, Audience: switchboard.RoleClient, Data: map[string]string{"name": "agora-main"}},
		{Type: switchboard.EventProviderStatus, Audience: switchboard.RoleClient, At: at, Data: map[string]any{"from": "up", "to": "down"}},
		{Type: switchboard.EventProvidersReorder, Audience: switchboard.RoleAnonymous, Data: []string{"b", "a"}},
	}
	for _, e := range sent {
		h.Publish(e)
	}
	for i, e := range sent {
		got := c.next()
		id := uint64(i + 1)
		if got.ID != strconv.FormatUint(id, 10) || got.Type != e.Type {
			t.Fatalf("event %d: id %q type %q, want %d %q", i, got.ID, got.Type, id, e.Type)
		}
		var w wireData
		if err := json.Unmarshal([]byte(got.Data), &w); err != nil {
			t.Fatalf("event %d: data %q: %v", i, got.Data, err)
		}
		wantAt := t0
		if !e.At.IsZero() {
			wantAt = e.At
		}
		wantData, _ := json.Marshal(e.Data)
		if w.ID != id || w.Type != e.Type || !w.At.Equal(wantAt) || string(w.Data) != string(wantData) {
			t.Errorf("event %d: data = %+v (data %s), want id %d type %s at %v data %s", i, w, w.Data, id, e.Type, wantAt, wantData)
		}
	}
}

func TestSSEFiltersByRole(t *testing.T) {
	checkGoroutines(t)
	h := New(Options{})
	defer h.Close()
	srv := newServer(t, h)

	tests := []struct {
		role string
		want string // ids
	}{
		{"client", "1,3,5"},
		{"admin", "1,2,3,5"},
		{"superadmin", "1,2,3,4,5"},
	}
	clients := make([]*sseClient, len(tests))
	for i, tt := range tests {
		clients[i] = connect(t, srv.URL+"?role="+tt.role, nil)
	}
	for _, aud := range []switchboard.Role{switchboard.RoleClient, switchboard.RoleAdmin, switchboard.RoleClient, switchboard.RoleSuperadmin, switchboard.RoleAnonymous} {
		h.Publish(switchboard.Event{Type: switchboard.EventBudgetAlert, Audience: aud, Data: aud.String()})
	}
	for i, tt := range tests {
		t.Run(tt.role, func(t *testing.T) {
			c := clients[i]
			c.t = t
			n := strings.Count(tt.want, ",") + 1
			if got := ids(c.nextN(n)); got != tt.want {
				t.Errorf("ids = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestSSEResume(t *testing.T) {
	checkGoroutines(t)
	tests := []struct {
		name   string
		query  string
		header string
		want   string // ids of the backlog, "" for none
		resync bool
	}{
		{name: "header", header: "7", want: "8,9"},
		{name: "query parameter", query: "?lastEventId=7", want: "8,9"},
		{name: "header wins over query", header: "8", query: "?lastEventId=2", want: "9"},
		{name: "admin sees admin backlog", header: "7", query: "?role=admin", want: "8,9,10"},
		{name: "oldest resumable", header: "6", want: "7,8,9"},
		{name: "up to date", header: "10"},
		{name: "too old", header: "5", resync: true},
		{name: "zero after eviction", header: "0", resync: true},
		{name: "future", header: "11", resync: true},
		{name: "garbage", header: "abc", resync: true},
		{name: "negative", query: "?lastEventId=-1", resync: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The buffer holds 4 events: after 10, ids 7..10; 6 was the
			// last evicted.
			h := New(Options{BufferSize: 4})
			defer h.Close()
			srv := newServer(t, h)
			publishN(h, 9, switchboard.EventProviderStatus, switchboard.RoleClient)
			h.Publish(switchboard.Event{Type: switchboard.EventBudgetAlert, Audience: switchboard.RoleAdmin}) // 10

			hdr := http.Header{}
			if tt.header != "" {
				hdr.Set("Last-Event-ID", tt.header)
			}
			c := connect(t, srv.URL+tt.query, hdr)
			var got []sseEvent
			if tt.resync {
				e := c.next()
				var body struct{ Reason string }
				if err := json.Unmarshal([]byte(e.Data), &body); err != nil || e.Type != Resync || e.ID != "10" || body.Reason == "" {
					t.Fatalf("first event = %+v, want a resync with id 10 and a reason", e)
				}
			} else if tt.want != "" {
				got = c.nextN(strings.Count(tt.want, ",") + 1)
			}
			if ids(got) != tt.want {
				t.Errorf("backlog = %s, want %s", ids(got), tt.want)
			}
			// The stream continues live, without duplicates or gaps.
			h.Publish(switchboard.Event{Type: switchboard.EventProviderUpdated, Audience: switchboard.RoleClient})
			if e := c.next(); e.ID != "11" {
				t.Errorf("live event id = %s, want 11", e.ID)
			}
		})
	}
}

// TestSSEResumeAcrossRestarts: a single node's hub numbered its events from
// 1 at every start, so a client resuming with the Last-Event-ID of the run
// before was taken for a client of this run once this run had published as
// many events: it was given the events after that id and missed the earlier
// ones, without a resync. A hub that starts its ids after FirstID tells such
// a client to resync, and numbers its events after FirstID.
func TestSSEResumeAcrossRestarts(t *testing.T) {
	checkGoroutines(t)
	before := New(Options{FirstID: 1000})
	publishN(before, 3, switchboard.EventProviderStatus, switchboard.RoleClient) // 1001..1003
	if last := before.Stats().LastID; last != 1003 {
		t.Fatalf("the first run's last id %d, want 1003", last)
	}
	before.Close()
	h := New(Options{FirstID: 5000}) // the next run, started later
	defer h.Close()
	srv := newServer(t, h)
	publishN(h, 4, switchboard.EventProviderStatus, switchboard.RoleClient) // 5001..5004
	for _, last := range []string{"1003", "5000"} {
		c := connect(t, srv.URL, http.Header{"Last-Event-ID": {last}})
		e := c.next()
		switch last {
		case "1003": // from the run before
			if e.Type != Resync || e.ID != "5004" {
				t.Fatalf("resuming from %s of the run before: %+v, want a resync with id 5004", last, e)
			}
		case "5000": // a client of this run that saw none of its events yet
			if e.ID != "5001" {
				t.Fatalf("resuming from %s: first event %+v, want 5001", last, e)
			}
		}
	}
}

// TestSSEResumeRace publishes while clients connect with Last-Event-ID: each
// must see every event exactly once, in order, whatever the interleaving of
// its backlog and live queue.
func TestSSEResumeRace(t *testing.T) {
	checkGoroutines(t)
	h := New(Options{BufferSize: 1 << 14, SubscriberQueue: 1 << 14})
	defer h.Close()
	srv := newServer(t, h)
	publishN(h, 100, "test", switchboard.RoleClient)

	const total = 2000
	stop := make(chan struct{})
	published := make(chan struct{})
	go func() {
		defer close(published)
		for i := 100; i < total; i++ {
			select {
			case <-stop:
				return
			default:
			}
			h.Publish(switchboard.Event{Type: "test", Audience: switchboard.RoleClient})
			if i%50 == 0 {
				runtime.Gosched() // let the clients connect while events are published
			}
		}
	}()
	defer func() { close(stop); <-published }()

	var clients []*sseClient
	for range 5 {
		clients = append(clients, connect(t, srv.URL, http.Header{"Last-Event-Id": {"50"}}))
	}
	<-published
	for i, c := range clients {
		if got, want := ids(c.nextN(total-50)), idRange(51, total); got != want {
			t.Fatalf("client %d: ids = %.80s..., want %.80s...", i, got, want)
		}
	}
}

func TestSSEHeartbeat(t *testing.T) {
	checkGoroutines(t)
	h := New(Options{Heartbeat: 10 * time.Millisecond})
	defer h.Close()
	c := connect(t, newServer(t, h).URL, nil)
	timeout := time.After(wait)
	for {
		select {
		case e, ok := <-c.items:
			if !ok {
				t.Fatal("stream ended before a heartbeat")
			}
			if e.Comment == "ping" {
				return
			}
		case <-timeout:
			t.Fatal("no heartbeat")
		}
	}
}

func TestCloseEndsStreams(t *testing.T) {
	checkGoroutines(t)
	h := New(Options{})
	srv := newServer(t, h)
	var clients []*sseClient
	for range 3 {
		clients = append(clients, connect(t, srv.URL, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := h.Subscribe(ctx, nil)
	eventually(t, "4 subscribers", func() bool { return h.Stats().Subscribers == 4 })
	h.Publish(switchboard.Event{Type: "test", Audience: switchboard.RoleClient})

	h.Close()
	h.Close() // idempotent
	h.Publish(switchboard.Event{Type: "test"})

	for i, c := range clients {
		if got := ids(c.expectEnd()); got != "1" {
			t.Errorf("client %d: ids before the end = %q, want 1", i, got)
		}
	}
	if e, ok := <-ch; !ok || e.ID != 1 {
		t.Errorf("in-process subscriber got %+v, %v; want event 1", e, ok)
	}
	if _, ok := <-ch; ok {
		t.Error("in-process channel still open after Close")
	}
	if _, ok := <-h.Subscribe(ctx, nil); ok {
		t.Error("Subscribe after Close returned an open channel")
	}
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("ServeSSE after Close: status %d, want 503", resp.StatusCode)
	}
	if s := h.Stats(); s.Subscribers != 0 || s.Published != 1 {
		t.Errorf("stats = %+v, want no subscribers and 1 published", s)
	}
}

func TestDisconnectUnsubscribes(t *testing.T) {
	checkGoroutines(t)
	// A stream on a connection taken over finds its client gone at the
	// next keep-alive.
	h := New(Options{Heartbeat: 50 * time.Millisecond})
	defer h.Close()
	srv := newServer(t, h)
	c := connect(t, srv.URL, nil)
	eventually(t, "a subscriber", func() bool { return h.Stats().Subscribers == 1 })
	c.cancel()
	eventually(t, "no subscriber", func() bool { return h.Stats().Subscribers == 0 })
	if d := h.Stats().Dropped; d != 0 {
		t.Errorf("dropped = %d after a clean disconnect, want 0", d)
	}
}

// TestSlowSubscriberDropped has one SSE client that never reads, behind small
// socket buffers, and one that reads everything. Publishing 10,000 events must
// not block, must drop the slow client and deliver every event to the fast one.
func TestSlowSubscriberDropped(t *testing.T) {
	checkGoroutines(t)
	const (
		total = 10_000
		queue = 1024
		batch = 256 // events published between waits for the fast client, < queue
	)
	h := New(Options{SubscriberQueue: queue, WriteTimeout: time.Minute})
	defer h.Close()
	srv := newServer(t, h, func(s *http.Server) {
		s.ConnContext = func(ctx context.Context, c net.Conn) context.Context {
			_ = c.(*net.TCPConn).SetWriteBuffer(4096) // a slow network, for the slow client
			return ctx
		}
	})

	slow := dialRaw(t, srv.Listener.Addr().String(), "/", 4096)
	fast := connect(t, srv.URL, nil)
	eventually(t, "2 subscribers", func() bool { return h.Stats().Subscribers == 2 })

	payload := strings.Repeat("x", 1024)
	var received int
	var maxPublish time.Duration
	for i := range total {
		start := time.Now()
		h.Publish(switchboard.Event{Type: "test", Audience: switchboard.RoleClient, Data: payload})
		maxPublish = max(maxPublish, time.Since(start))
		if (i+1)%batch == 0 || i+1 == total {
			for received < i+1 {
				e := fast.next()
				received++
				if e.ID != strconv.Itoa(received) {
					t.Fatalf("fast client: event id %s, want %d", e.ID, received)
				}
			}
		}
	}
	t.Logf("slowest Publish: %v", maxPublish)
	if s := h.Stats(); s.Dropped != 1 || s.Subscribers != 1 {
		t.Errorf("stats = %+v, want 1 dropped and 1 subscriber left", s)
	}

	// The slow client's stream ends: it reads what was queued, then EOF.
	var last int
	readSSE(slow, func(e sseEvent) bool {
		if e.ID != "" {
			id, _ := strconv.Atoi(e.ID)
			if id <= last {
				t.Errorf("slow client: id %d after %d", id, last)
			}
			last = id
		}
		return true
	})
	if last == 0 || last >= total {
		t.Errorf("slow client read up to id %d, want some but not all of %d events", last, total)
	}
	t.Logf("slow client was dropped after event %d", last)
}

// dialRaw opens an SSE stream on a raw TCP connection with a small receive
// buffer and returns a reader of the response body. The connection is closed at
// the end of the test.
func dialRaw(t *testing.T, addr, path string, rcvbuf int) *bufio.Reader {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Write([]byte("GET " + path + " HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")); err != nil {
		t.Fatalf("write request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return bufio.NewReader(resp.Body)
}

func TestSubscribe(t *testing.T) {
	checkGoroutines(t)
	h := New(Options{SubscriberQueue: 4})
	defer h.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	all := h.Subscribe(ctx, nil)
	status := h.Subscribe(ctx, func(e switchboard.Event) bool { return e.Type == switchboard.EventProviderStatus })
	slow := h.Subscribe(ctx, nil)
	cctx, ccancel := context.WithCancel(ctx)
	cancelled := h.Subscribe(cctx, nil)
	ccancel()
	done, dcancel := context.WithCancel(ctx)
	dcancel()
	alreadyDone := h.Subscribe(done, nil)

	if _, ok := <-cancelled; ok {
		t.Error("channel of a cancelled context is open")
	}
	if _, ok := <-alreadyDone; ok {
		t.Error("channel of a done context is open")
	}
	eventually(t, "3 subscribers", func() bool { return h.Stats().Subscribers == 3 })

	types := []string{switchboard.EventProviderStatus, switchboard.EventProviderCreated, switchboard.EventProviderStatus, "x", "y"}
	for i, typ := range types {
		h.Publish(switchboard.Event{Type: typ, Data: i})
		if i < 4 {
			if e := <-all; e.ID != uint64(i+1) || e.Type != typ {
				t.Errorf("all: got %d %s, want %d %s", e.ID, e.Type, i+1, typ)
			}
		}
	}
	for _, want := range []uint64{1, 3} {
		if e := <-status; e.ID != want {
			t.Errorf("status: got id %d, want %d", e.ID, want)
		}
	}
	// slow never read: its 4 queued events, then closed on the 5th. Delivery
	// runs after Publish returns, so wait for the drop before reading.
	eventually(t, "slow dropped", func() bool { return h.Stats().Dropped == 1 })
	var got []uint64
	for e := range slow {
		got = append(got, e.ID)
	}
	if len(got) != 4 || got[3] != 4 {
		t.Errorf("slow subscriber got %v, want 1..4 then closed", got)
	}
	if s := h.Stats(); s.Dropped != 1 || s.Subscribers != 2 {
		t.Errorf("stats = %+v, want 1 dropped, 2 subscribers", s)
	}
	cancel()
	eventually(t, "no subscriber", func() bool { return h.Stats().Subscribers == 0 })
	if _, ok := <-status; ok {
		t.Error("channel open after its context was cancelled")
	}
}

func TestPublishIDsAndValidation(t *testing.T) {
	h := New(Options{Clock: fixedClock(t0)})
	defer h.Close()
	ch := h.Subscribe(context.Background(), nil)

	tests := []struct {
		name   string
		in     switchboard.Event
		wantID uint64 // 0: discarded
		wantAt time.Time
	}{
		{"assigned", switchboard.Event{Type: "a"}, 1, t0},
		{"at kept", switchboard.Event{Type: "a", At: t0.Add(time.Hour)}, 2, t0.Add(time.Hour)},
		{"larger id kept", switchboard.Event{Type: "a", ID: 100}, 100, t0},
		{"after the largest", switchboard.Event{Type: "a"}, 101, t0},
		{"smaller id replaced", switchboard.Event{Type: "a", ID: 5}, 102, t0},
		{"empty type", switchboard.Event{}, 0, t0},
		{"multi-line type", switchboard.Event{Type: "a\nid: 7"}, 0, t0},
		{"unencodable data", switchboard.Event{Type: "a", Data: make(chan int)}, 0, t0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := h.Stats().Published
			h.Publish(tt.in)
			if tt.wantID == 0 {
				if got := h.Stats().Published; got != before {
					t.Errorf("published = %d, want %d (discarded)", got, before)
				}
				return
			}
			e := <-ch
			if e.ID != tt.wantID || !e.At.Equal(tt.wantAt) {
				t.Errorf("got id %d at %v, want %d at %v", e.ID, e.At, tt.wantID, tt.wantAt)
			}
		})
	}
}

// TestDeliveryFallsBehind holds the subscribers' lock, as a long delivery round
// would, while more events than the buffer holds are published. Publish must
// not wait for it, and the subscribers that missed events are dropped: an SSE
// client then resumes with a resync, and later subscribers are unaffected.
func TestDeliveryFallsBehind(t *testing.T) {
	checkGoroutines(t)
	h := New(Options{BufferSize: 4})
	defer h.Close()
	srv := newServer(t, h)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in := h.Subscribe(ctx, nil)
	c := connect(t, srv.URL, nil)
	eventually(t, "2 subscribers", func() bool { return h.Stats().Subscribers == 2 })

	h.subMu.Lock()
	publishN(h, 6, "test", switchboard.RoleClient) // ids 3..6 stay buffered
	h.subMu.Unlock()

	if e, ok := <-in; ok {
		t.Errorf("in-process subscriber got event %d, want its channel closed", e.ID)
	}
	if got := ids(c.expectEnd()); got != "" {
		t.Errorf("SSE client got %q before its stream ended, want nothing", got)
	}
	if s := h.Stats(); s.Dropped != 2 || s.Subscribers != 0 {
		t.Errorf("stats = %+v, want 2 dropped and no subscriber", s)
	}

	later := h.Subscribe(ctx, nil)
	again := connect(t, srv.URL, http.Header{"Last-Event-Id": {"0"}})
	if e := again.next(); e.Type != Resync || e.ID != "6" {
		t.Errorf("reconnection: first event %+v, want a resync with id 6", e)
	}
	h.Publish(switchboard.Event{Type: "test", Audience: switchboard.RoleClient})
	if e := again.next(); e.ID != "7" {
		t.Errorf("reconnection: live event id %s, want 7", e.ID)
	}
	if e := <-later; e.ID != 7 {
		t.Errorf("later subscriber: got event %d, want 7", e.ID)
	}
}

// TestSubscribeReceivesLaterEventsOnly subscribes while the delivery of an
// earlier event is pending: whichever of the two goes first, the subscriber
// receives only the events published after it subscribed.
func TestSubscribeReceivesLaterEventsOnly(t *testing.T) {
	checkGoroutines(t)
	h := New(Options{})
	defer h.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for i := range 50 {
		h.subMu.Lock() // the delivery of the next event waits
		h.Publish(switchboard.Event{Type: "before"})
		subscribed := make(chan (<-chan switchboard.Event))
		go func() { subscribed <- h.Subscribe(ctx, nil) }()
		h.subMu.Unlock()
		ch := <-subscribed
		h.Publish(switchboard.Event{Type: "after"})
		if e := <-ch; e.Type != "after" {
			t.Fatalf("round %d: first event %d %s, want the one published after Subscribe", i, e.ID, e.Type)
		}
	}
}

// TestIdleHubRunsNoGoroutine checks that the delivery goroutine ends once it
// has delivered everything, so a hub that is never closed leaks nothing.
func TestIdleHubRunsNoGoroutine(t *testing.T) {
	checkGoroutines(t)
	h := New(Options{})
	ctx, cancel := context.WithCancel(context.Background())
	ch := h.Subscribe(ctx, nil)
	publishN(h, 100, "test", switchboard.RoleClient)
	for range 100 {
		<-ch
	}
	cancel()
	eventually(t, "no subscriber", func() bool { return h.Stats().Subscribers == 0 })
}

// TestOwnerEvents checks that an event meant for one owner reaches that
// owner and admins only, live and when resuming.
func TestOwnerEvents(t *testing.T) {
	checkGoroutines(t)
	h := New(Options{})
	defer h.Close()
	srv := newServer(t, h)
	tests := []struct {
		query string
		want  string // ids
	}{
		{"?owner=token:a", "1,2,4"},
		{"?owner=token:b", "1,3,4"},
		{"", "1,4"},
		{"?role=admin&owner=user:root", "1,2,3,4"},
	}
	clients := make([]*sseClient, len(tests))
	for i, tt := range tests {
		clients[i] = connect(t, srv.URL+tt.query, nil)
	}
	h.Publish(switchboard.Event{Type: switchboard.EventProviderStatus, Audience: switchboard.RoleClient})
	h.Publish(switchboard.Event{Type: switchboard.EventStreamMigrate, Audience: switchboard.RoleClient, Owner: "token:a"})
	h.Publish(switchboard.Event{Type: switchboard.EventStreamMigrate, Audience: switchboard.RoleClient, Owner: "token:b"})
	h.Publish(switchboard.Event{Type: switchboard.EventProviderStatus, Audience: switchboard.RoleClient})
	for i, tt := range tests {
		t.Run("live"+tt.query, func(t *testing.T) {
			c := clients[i]
			c.t = t
			if got := ids(c.nextN(strings.Count(tt.want, ",") + 1)); got != tt.want {
				t.Errorf("ids = %s, want %s", got, tt.want)
			}
		})
	}
	// Resuming from the start replays only what the caller may see.
	c := connect(t, srv.URL+"?owner=token:a", http.Header{"Last-Event-ID": {"1"}})
	if got := ids(c.nextN(2)); got != "2,4" {
		t.Errorf("resumed ids = %s, want 2,4", got)
	}
}
