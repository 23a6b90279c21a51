package events

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

// wait is the generous bound of every wait in these tests: they never assert
// on speed, only that something happens eventually.
const wait = testutil.Patience

// checkGoroutines fails the test if, once everything it started has been
// cleaned up, more goroutines run than before it. Call it first, so that its
// cleanup runs last.
func checkGoroutines(t *testing.T) {
	t.Helper()
	testutil.LeakCheck(t)
}

// eventually polls cond until it holds, failing the test after a generous wait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, what, cond)
}

// newServer serves h over loopback HTTP. The caller's role comes from the
// "role" query parameter (client when absent), and its owner key from "owner",
// standing in for the API's authentication. configure, if any, adjusts the server before it starts.
func newServer(t *testing.T, h *Hub, configure ...func(*http.Server)) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		role := switchboard.RoleClient
		if v := r.URL.Query().Get("role"); v != "" {
			var ok bool
			if role, ok = switchboard.ParseRole(v); !ok {
				http.Error(w, "bad role", http.StatusBadRequest)
				return
			}
		}
		if owner := r.URL.Query().Get("owner"); owner != "" {
			h.ServeSSEAs(w, r, role, owner)
			return
		}
		h.ServeSSE(w, r, role)
	}))
	for _, f := range configure {
		f(srv.Config)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// sseEvent is one item of an SSE stream: an event, a retry field or a comment.
type sseEvent struct {
	ID, Type, Data string
	Retry          string
	Comment        string
}

// wireData is the JSON of an event's data line.
type wireData struct {
	ID   uint64          `json:"id"`
	Type string          `json:"type"`
	At   time.Time       `json:"at"`
	Data json.RawMessage `json:"data"`
}

// sseClient reads one SSE stream.
type sseClient struct {
	t      *testing.T
	resp   *http.Response
	cancel context.CancelFunc
	items  chan sseEvent // closed at the end of the stream
}

// connect opens an SSE stream at url with the given extra headers.
func connect(t *testing.T, url string, header http.Header) *sseClient {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		t.Fatalf("new request: %v", err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		cancel()
		t.Fatalf("get %s: %v", url, err)
	}
	c := &sseClient{t: t, resp: resp, cancel: cancel, items: make(chan sseEvent, 1<<15)}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(c.items)
		readSSE(bufio.NewReader(resp.Body), func(e sseEvent) bool { c.items <- e; return true })
	}()
	t.Cleanup(func() {
		cancel()
		resp.Body.Close()
		<-done
	})
	return c
}

// readSSE parses an SSE stream, calling emit for each event, retry field and
// comment until emit returns false or the stream ends.
func readSSE(r *bufio.Reader, emit func(sseEvent) bool) {
	var cur sseEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			if line != "" { // a comment
				if !emit(sseEvent{Comment: value}) {
					return
				}
				continue
			}
			if cur != (sseEvent{}) {
				if !emit(cur) {
					return
				}
			}
			cur = sseEvent{}
		case "id":
			cur.ID = value
		case "event":
			cur.Type = value
		case "data":
			cur.Data = value
		case "retry":
			cur.Retry = value
		}
	}
}

// next returns the next event of the stream, skipping retry fields and
// comments. It fails the test if the stream ends first.
func (c *sseClient) next() sseEvent {
	c.t.Helper()
	for {
		select {
		case e, ok := <-c.items:
			if !ok {
				c.t.Fatal("stream ended, want an event")
			}
			if e.Retry != "" || e.Comment != "" {
				continue
			}
			return e
		case <-time.After(wait):
			c.t.Fatal("timed out waiting for an event")
		}
	}
}

// expectEnd waits for the end of the stream and returns the events read
// before it.
func (c *sseClient) expectEnd() []sseEvent {
	c.t.Helper()
	var got []sseEvent
	timeout := time.After(wait)
	for {
		select {
		case e, ok := <-c.items:
			if !ok {
				return got
			}
			if e.Retry == "" && e.Comment == "" {
				got = append(got, e)
			}
		case <-timeout:
			c.t.Fatal("timed out waiting for the stream to end")
		}
	}
}

// ids returns the ids of events as a string such as "1,2,3".
func ids(events []sseEvent) string {
	s := make([]string, len(events))
	for i, e := range events {
		s[i] = e.ID
	}
	return strings.Join(s, ",")
}

// idRange returns "from,...,to".
func idRange(from, to int) string {
	var s []string
	for i := from; i <= to; i++ {
		s = append(s, strconv.Itoa(i))
	}
	return strings.Join(s, ",")
}

// nextN reads n events.
func (c *sseClient) nextN(n int) []sseEvent {
	c.t.Helper()
	out := make([]sseEvent, n)
	for i := range out {
		out[i] = c.next()
	}
	return out
}

// publishN publishes n events of type typ for audience, with data {"n": i}.
func publishN(h *Hub, n int, typ string, audience switchboard.Role) {
	for i := range n {
		h.Publish(switchboard.Event{Type: typ, Audience: audience, Data: map[string]int{"n": i}})
	}
}

// fixedClock always tells the same time.
type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// caughtUp reports whether the delivery goroutine has taken every published
// event.
func (h *Hub) caughtUp() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.delivered == h.lastID
}
