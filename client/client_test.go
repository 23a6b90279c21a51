package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/client"
	"github.com/switchboardhq/switchboard/client/clienttest"
	"github.com/switchboardhq/switchboard/internal/providers/fakes"
	"github.com/switchboardhq/switchboard/internal/providers/fault"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

const (
	primary = fakes.Agora
	backup  = fakes.Zegocloud
)

func mustStart(t *testing.T, c *client.Client, room string) *client.Stream {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s, err := c.Start(ctx, room, client.WithUserID("user-1"))
	if err != nil {
		t.Fatalf("Start(%s): %v", room, err)
	}
	return s
}

// Scenario 1: a provider dies mid-stream; the stream migrates and keeps running.
func TestProviderDiesMidStream(t *testing.T) {
	e := newEnv(t, settings())
	c := e.newClient()
	s := mustStart(t, c, "room-1")
	if got := s.Provider(); got != primary {
		t.Fatalf("started on %s, want %s", got, primary)
	}
	nextState[client.Live](t, s)

	e.eng.Down(primary, true)
	if n := e.eng.Fail(primary); n != 1 {
		t.Fatalf("Fail dropped %d connections, want 1", n)
	}
	m := nextState[client.Migrated](t, s)
	if m.From != primary || m.To != backup {
		t.Errorf("Migrated = %+v, want from %s to %s", m, primary, backup)
	}
	if m.Gap <= 0 {
		t.Errorf("Gap = %v, want > 0", m.Gap)
	}
	t.Logf("failover gap %v", m.Gap)
	if live := nextState[client.Live](t, s); live.Provider != backup {
		t.Errorf("Live on %s, want %s", live.Provider, backup)
	}
	if got := e.eng.Active(backup); got != 1 {
		t.Errorf("%d connections on %s, want 1", got, backup)
	}
	waitFor(t, "the failure report in the trail", func() bool {
		st := e.stream(s.ID())
		for _, tr := range st.Trail {
			if tr.Kind == "failure" && tr.Provider == primary && tr.Stage == "media" {
				return st.Provider == backup && st.Status == "active" && st.Migrations == 1
			}
		}
		return false
	})
	if want := "Successfully failed over to " + backup; !strings.Contains(e.logs.String(), want) {
		t.Errorf("logs lack %q", want)
	}

	// It never moves back on its own when the old provider recovers.
	e.eng.Down(primary, false)
	e.waitRequests(t, 2, heartbeatKey(s)) // two heartbeats, and their answers, later
	if got := s.Provider(); got != backup {
		t.Errorf("after recovery on %s, want it to stay on %s", got, backup)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Errorf("Close: %v", err)
	}
	if st := e.stream(s.ID()); st.Status != "ended" {
		t.Errorf("server status after Close = %s, want ended", st.Status)
	}
	if got := e.eng.Active(backup); got != 0 {
		t.Errorf("%d connections left after Close", got)
	}
}

// Scenario 2: an admin swaps priorities; new streams follow and live ones
// obey the policy.
func TestPrioritySwap(t *testing.T) {
	tests := []struct {
		name       string
		policy     client.Policy
		liveMoveTo string
	}{
		{"keep live", client.KeepLive{}, primary},
		{"migrate gradually", client.MigrateGradually{Rate: 50}, backup},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, settings())
			c := e.newClient(client.WithPolicy(tt.policy))
			var live []*client.Stream
			for i := range 3 {
				live = append(live, mustStart(t, c, fmt.Sprintf("live-%d", i)))
			}
			waitFor(t, "the event stream", c.EventsConnected)
			e.admin(http.MethodPut, "/api/streaming/providers/priorities",
				map[string][]string{"order": {backup, primary, fakes.LiveKit}}, nil)
			waitFor(t, "the new priorities in the client", func() bool {
				cfg, _ := c.Config()
				return len(cfg.Providers) > 0 && cfg.Providers[0].Name == backup
			})
			if s := mustStart(t, c, "new-stream"); s.Provider() != backup {
				t.Errorf("new stream on %s, want %s", s.Provider(), backup)
			}
			for _, s := range live {
				waitFor(t, "live streams on "+tt.liveMoveTo, func() bool { return s.Provider() == tt.liveMoveTo })
			}
			if tt.liveMoveTo == primary {
				// Two heartbeats of every live stream later, none has moved.
				keys := make([]string, len(live))
				for i, s := range live {
					keys[i] = heartbeatKey(s)
				}
				e.waitRequests(t, 2, keys...)
				for _, s := range live {
					if s.Provider() != primary || s.Migrations() != 0 {
						t.Errorf("live stream moved to %s (%d migrations) under KeepLive", s.Provider(), s.Migrations())
					}
				}
			}
		})
	}
}

// Scenario 3: the primary fails to connect; attempt 1 fails, attempt 2
// retries it, attempt 3 fails over and lands on the backup.
func TestStartWithFailingPrimary(t *testing.T) {
	e := newEnv(t, settings())
	e.eng.Down(primary, true)
	c := e.newClient()
	s := mustStart(t, c, "room-3")
	if got := s.Provider(); got != backup {
		t.Fatalf("live on %s, want %s", got, backup)
	}
	var got []string
	for len(got) < 6 {
		st := <-s.States()
		got = append(got, fmt.Sprintf("%T", st))
		if c, ok := st.(client.Connecting); ok {
			got[len(got)-1] += fmt.Sprintf("(%s,%d)", c.Provider, c.Attempt)
		}
	}
	want := []string{
		"client.Connecting(" + primary + ",1)", "client.Reconnecting",
		"client.Connecting(" + primary + ",2)", "client.FailingOver",
		"client.Connecting(" + backup + ",3)", "client.Live",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("states:\n got %v\nwant %v", got, want)
	}
	st := e.stream(s.ID())
	failures := 0
	for _, tr := range st.Trail {
		if tr.Kind == "failure" && tr.Provider == primary {
			failures++
		}
	}
	if failures != 2 {
		t.Errorf("%d failures of %s reported, want 2", failures, primary)
	}
	if st.Provider != backup {
		t.Errorf("server has the stream on %s, want %s", st.Provider, backup)
	}
	if want := "Successfully failed over to " + backup; !strings.Contains(e.logs.String(), want) {
		t.Errorf("logs lack %q", want)
	}
}

// Every provider refuses: Start gives up after maxRetries attempts and ends
// the stream it opened on the server.
func TestStartGivesUp(t *testing.T) {
	e := newEnv(t, settings())
	for _, p := range []string{primary, backup, fakes.LiveKit} {
		e.eng.Down(p, true)
	}
	c := e.newClient()
	_, err := c.Start(context.Background(), "room-x")
	if err == nil {
		t.Fatal("Start succeeded with every provider down")
	}
	var me client.MediaError
	if !errors.As(err, &me) || me.Kind != client.ConnectionLost {
		t.Errorf("Start error = %v, want a ConnectionLost MediaError", err)
	}
	if got := e.eng.Connects(); got != 3 {
		t.Errorf("%d connects, want 3 (maxRetries)", got)
	}
}

// A provider turning CRITICAL on the server moves every stream on it, through
// the event stream, before the media notices anything (make-before-break).
func TestCriticalStatusEventMigrates(t *testing.T) {
	e := newEnv(t, settings())
	c := e.newClient()
	var ss []*client.Stream
	for i := range 5 {
		ss = append(ss, mustStart(t, c, fmt.Sprintf("room-%d", i)))
	}
	waitFor(t, "the event stream", c.EventsConnected)
	e.critical(primary)
	for _, s := range ss {
		m := nextState[client.Migrated](t, s)
		if m.To != backup {
			t.Errorf("migrated to %s, want %s", m.To, backup)
		}
	}
	// The old connections are disconnected once the new ones are live.
	waitFor(t, "every connection off "+primary, func() bool { return e.eng.Active(primary) == 0 })
	if got := e.eng.Active(backup); got != 5 {
		t.Errorf("%d connections on %s, want 5", got, backup)
	}
}

// With the event stream down, the SDK polls provider health and leaves a
// provider after maxFailures unusable answers.
func TestPollingFallback(t *testing.T) {
	e := newEnv(t, settings())
	c := e.newClient()
	s := mustStart(t, c, "room-poll")
	waitFor(t, "the event stream", c.EventsConnected)
	e.setMode(modeNoEvents)
	waitFor(t, "the event stream to be down", func() bool { return !c.EventsConnected() })
	e.critical(primary)
	m := nextState[client.Migrated](t, s)
	if m.From != primary || !strings.Contains(m.Reason, "health checks") {
		t.Errorf("Migrated = %+v, want a move off %s after health checks", m, primary)
	}
}

// With the control plane unreachable, the stream keeps running and the SDK
// keeps its last known configuration.
func TestControlPlaneDown(t *testing.T) {
	e := newEnv(t, settings())
	c := e.newClient()
	s := mustStart(t, c, "room-down")
	e.setMode(modeDown)
	waitFor(t, "the event stream to be down", func() bool { return !c.EventsConnected() })
	// Several heartbeats and health polls fail meanwhile.
	e.waitRequests(t, 3, heartbeatKey(s), "GET /api/streaming/providers/"+primary+"/health")
	if _, ok := s.State().(client.Live); !ok {
		t.Errorf("state = %v, want Live", s.State())
	}
	if got := e.eng.Active(primary); got != 1 {
		t.Errorf("%d connections on %s, want 1", got, primary)
	}
	if cfg, ok := c.Config(); !ok || len(cfg.Providers) != 3 {
		t.Errorf("config lost: %+v", cfg)
	}
	e.setMode(modeUp)
	waitFor(t, "the event stream to be back", c.EventsConnected)
	if err := s.Close(context.Background()); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// A connection that stops carrying media without an error is caught by the
// watchdog.
func TestWatchdog(t *testing.T) {
	e := newEnv(t, settings())
	c := e.newClient(client.WithWatchdog(100 * time.Millisecond))
	s := mustStart(t, c, "room-stall")
	e.eng.Stall(primary)
	m := nextState[client.Migrated](t, s)
	if !strings.Contains(m.Reason, string(client.MediaStalled)) {
		t.Errorf("reason %q, want %s", m.Reason, client.MediaStalled)
	}
}

// The watchdog does not take a pause of its own for the connection's silence:
// a connection whose every answer of LastMedia is "a packet just now", but
// which keeps the asking goroutine a watchdog's length and more (as a busy
// process's scheduler may, between reading the time of the last packet and
// comparing it with the clock), is never moved.
func TestWatchdogCountsNotItsOwnPause(t *testing.T) {
	e := newEnv(t, settings())
	const watchdog = 50 * time.Millisecond
	slowEng := pausingEngine{Engine: e.eng, pause: 3 * watchdog}
	c := e.newClient(client.WithWatchdog(watchdog), client.WithEngine(client.KindAgora, slowEng),
		client.WithEngine(client.KindZegocloud, slowEng), client.WithEngine(client.KindLiveKit, slowEng))
	s := mustStart(t, c, "room-paused")
	// Several checks, each paused three times the watchdog.
	for deadline := time.After(20 * watchdog); ; {
		var st client.State
		select {
		case st = <-s.States():
		case <-deadline:
		}
		if st == nil {
			break
		}
		switch st.(type) {
		case client.FailingOver, client.Migrated:
			t.Fatalf("the watchdog moved a stream whose media flows: %v", st)
		}
	}
	if err := s.Close(context.Background()); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// pausingEngine's connections answer LastMedia with the time of the call and
// return it only after pause.
type pausingEngine struct {
	*clienttest.Engine
	pause time.Duration
}

func (p pausingEngine) Connect(ctx context.Context, a client.Assignment, report func(client.MediaError)) (client.Connection, error) {
	conn, err := p.Engine.Connect(ctx, a, report)
	if err != nil {
		return nil, err
	}
	return pausingConn{Connection: conn, pause: p.pause}, nil
}

type pausingConn struct {
	client.Connection
	pause time.Duration
}

func (c pausingConn) LastMedia() time.Time {
	now := time.Now()
	time.Sleep(c.pause)
	return now
}

// Close ends every stream and leaves no goroutine behind.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	e := newEnv(t, settings())
	before := runtime.NumGoroutine()
	log := e.logs
	_ = log
	c, err := client.New(e.url, e.token, client.WithEngine(client.KindAgora, e.eng), client.WithEngine(client.KindZegocloud, e.eng))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range 4 {
		s, err := c.Start(context.Background(), fmt.Sprintf("room-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.ID())
	}
	waitFor(t, "the event stream", c.EventsConnected)
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := c.Start(context.Background(), "late"); !errors.Is(err, client.ErrClosed) {
		t.Errorf("Start after Close = %v, want ErrClosed", err)
	}
	for _, id := range ids {
		if st := e.stream(id); st.Status != "ended" {
			t.Errorf("stream %s is %s after Close, want ended", id, st.Status)
		}
	}
	testutil.CheckGoroutines(t, before)
}

func TestNewValidates(t *testing.T) {
	eng := clienttest.New(0)
	tests := []struct {
		name string
		url  string
		opts []client.Option
	}{
		{"relative url", "/api", []client.Option{client.WithEngine(client.KindAgora, eng)}},
		{"user info", "http://u:p@example.com", []client.Option{client.WithEngine(client.KindAgora, eng)}},
		{"no engine", "http://example.com", nil},
		{"bad rate", "http://example.com", []client.Option{client.WithEngine(client.KindAgora, eng), client.WithPolicy(client.MigrateGradually{})}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := client.New(tt.url, "tok", tt.opts...)
			if err == nil {
				_ = c.Close()
				t.Fatal("New succeeded")
			}
			if strings.Contains(err.Error(), "u:p") {
				t.Errorf("error %q leaks the URL's user info", err)
			}
		})
	}
}

// Close abandons the starts in flight: their connects end with Close, every
// Start returns ErrClosed, no connection is left and no goroutine of the
// Client runs.
func TestCloseAbandonsStarts(t *testing.T) {
	e := newEnv(t, settings())
	before := runtime.NumGoroutine()
	slow := clienttest.New(time.Hour) // connects wait for their context
	c, err := client.New(e.url, e.token, client.WithEngine(client.KindAgora, slow), client.WithEngine(client.KindZegocloud, slow),
		client.WithConnectTimeout(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	errs := make(chan error, n)
	for i := range n {
		go func() {
			s, err := c.Start(context.Background(), fmt.Sprintf("room-%d", i))
			if err == nil {
				err = fmt.Errorf("Start returned stream %s while its connect hung", s.ID())
			}
			errs <- err
		}()
	}
	waitFor(t, "every start to reach the engine", func() bool { return slow.Connects() == n })
	if err := c.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	timeout := time.After(30 * time.Second) // without Close abandoning them, an hour
	for range n {
		select {
		case err := <-errs:
			if !errors.Is(err, client.ErrClosed) {
				t.Errorf("Start = %v, want ErrClosed", err)
			}
		case <-timeout:
			t.Fatal("a Start still runs after Close")
		}
	}
	testutil.CheckGoroutines(t, before)
}

// budgetProbe records, at each connect, how many retries the Client's budget
// counts.
type budgetProbe struct {
	client.MediaEngine
	c    atomic.Pointer[client.Client]
	mu   sync.Mutex
	seen []int
}

func (b *budgetProbe) Connect(ctx context.Context, a client.Assignment, report func(client.MediaError)) (client.Connection, error) {
	b.mu.Lock()
	b.seen = append(b.seen, b.c.Load().RetriesInFlight())
	b.mu.Unlock()
	return b.MediaEngine.Connect(ctx, a, report)
}

func (b *budgetProbe) take() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.seen
	b.seen = nil
	return out
}

// A retry counts once against the retry budget, from its backoff to its
// outcome, whether it is a start attempt or a failover attempt; the first
// attempt is not a retry.
func TestRetryBudgetCountsEachRetryOnce(t *testing.T) {
	all := []string{primary, backup, fakes.LiveKit}
	tests := []struct {
		name     string
		failover bool // start live, then fail every provider; else fail them before the start
		want     []int
	}{
		{"start", false, []int{0, 1, 1}},
		// The standby and the control plane's first choice (the standby's
		// provider again, with a fresh token) are not retries; the retry on the
		// third provider counts once; after it no provider is left that has
		// not failed (the client excludes them), so nothing more connects.
		{"failover", true, []int{0, 0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, settings())
			probe := &budgetProbe{MediaEngine: e.eng}
			c := e.newClient(client.WithEngine(client.KindAgora, probe), client.WithEngine(client.KindZegocloud, probe), client.WithEngine(client.KindLiveKit, probe))
			probe.c.Store(c)
			down := func() {
				for _, p := range all {
					e.eng.Down(p, true)
				}
			}
			if !tt.failover {
				down()
				if _, err := c.Start(context.Background(), "room-budget"); err == nil {
					t.Fatal("Start succeeded with every provider down")
				}
			} else {
				s := mustStart(t, c, "room-budget")
				probe.take()
				down()
				e.eng.Fail(primary)
				nextState[client.Failed](t, s)
			}
			if got, want := probe.take(), tt.want; !slices.Equal(got, want) {
				t.Errorf("retries in flight at each connect = %v, want %v", got, want)
			}
			if got := c.RetriesInFlight(); got != 0 {
				t.Errorf("%d retries still counted after the attempts", got)
			}
		})
	}
}

// A configuration the events changed is fetched in full at the next refresh:
// when the server's configuration has returned to the one the Client fetched
// last, a conditional fetch would answer 304 and leave the Client with what
// the events had made of it.
func TestResyncAfterEventsRefetchesInFull(t *testing.T) {
	e := newEnv(t, settings())
	c := e.newClient()
	waitFor(t, "the event stream", c.EventsConnected)
	first := func() string {
		cfg, _ := c.Config()
		if len(cfg.Providers) == 0 {
			return ""
		}
		return cfg.Providers[0].Name
	}
	waitFor(t, "the configuration", func() bool { return first() == primary })
	reorder := func(order ...string) {
		e.admin(http.MethodPut, "/api/streaming/providers/priorities", map[string][]string{"order": order}, nil)
	}
	reorder(backup, primary, fakes.LiveKit)
	waitFor(t, "the reorder event", func() bool { return first() == backup })

	// The events are lost while the order goes back; the event stream then
	// asks for a resync.
	e.setMode(modeNoEvents)
	waitFor(t, "the event stream to be down", func() bool { return !c.EventsConnected() })
	reorder(primary, backup, fakes.LiveKit)
	cfg, _ := c.Config()
	fetched := cfg.FetchedAt
	e.setMode(modeResync)
	waitFor(t, "a refresh after the resync", func() bool {
		cfg, _ := c.Config()
		return cfg.FetchedAt.After(fetched)
	})
	if got := first(); got != primary {
		t.Errorf("after the resync the Client has %s first, want %s", got, primary)
	}
}

// leakyEngine puts the join token in its errors, as an engine that wraps a
// dial error with the signalling URL would.
type leakyEngine struct {
	*clienttest.Engine
	mu      sync.Mutex
	failing map[string]bool // providers whose connects fail
	tokens  []string
	report  func(client.MediaError) // of the last connection
}

func (l *leakyEngine) Connect(ctx context.Context, a client.Assignment, report func(client.MediaError)) (client.Connection, error) {
	l.mu.Lock()
	l.tokens = append(l.tokens, a.Token)
	l.report = func(me client.MediaError) {
		report(client.MediaError{Kind: me.Kind, Err: fmt.Errorf("read wss://lk.test/rtc?access_token=%s: %w", a.Token, me.Err)})
	}
	failing := l.failing[a.Provider.Name]
	l.mu.Unlock()
	if failing {
		return nil, client.MediaError{Kind: client.ConnectionLost, Err: fmt.Errorf("dial wss://lk.test/rtc?access_token=%s: connection refused", a.Token)}
	}
	return l.Engine.Connect(ctx, a, report)
}

func (l *leakyEngine) fail(providers ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range providers {
		l.failing[p] = true
	}
}

// No join token reaches the SDK's logs, its states and errors, or the failure
// reports the server keeps, whatever the engine puts in its errors.
func TestJoinTokensStayOutOfErrors(t *testing.T) {
	e := newEnv(t, settings())
	leaky := &leakyEngine{Engine: e.eng, failing: map[string]bool{}}
	leaky.fail(primary)
	c := e.newClient(client.WithEngine(client.KindAgora, leaky), client.WithEngine(client.KindZegocloud, leaky), client.WithEngine(client.KindLiveKit, leaky))
	s := mustStart(t, c, "room-secret")
	if s.Provider() != backup {
		t.Fatalf("live on %s, want %s", s.Provider(), backup)
	}
	var states []string
	for len(s.States()) > 0 {
		states = append(states, (<-s.States()).String())
	}
	// The connection on the backup fails asynchronously; the stream moves on.
	leaky.mu.Lock()
	report := leaky.report
	leaky.mu.Unlock()
	report(client.MediaError{Kind: client.ConnectionLost, Err: errors.New("peer connection closed")})
	states = append(states, nextState[client.Migrated](t, s).String())
	waitFor(t, "the two failed starts and the media failure in the trail", func() bool {
		n := 0
		for _, tr := range e.stream(s.ID()).Trail {
			if tr.Kind == "failure" {
				n++
			}
		}
		return n == 3
	})
	var trail json.RawMessage
	e.admin(http.MethodGet, "/api/streams/"+s.ID(), nil, &trail)

	// Every provider fails: the error Start returns is clean too, and still a
	// MediaError.
	leaky.fail(backup, fakes.LiveKit)
	_, err := c.Start(context.Background(), "room-lost")
	var me client.MediaError
	if !errors.As(err, &me) || me.Kind != client.ConnectionLost {
		t.Fatalf("Start = %v, want a ConnectionLost MediaError", err)
	}

	leaky.mu.Lock()
	tokens := slices.Clone(leaky.tokens)
	leaky.mu.Unlock()
	places := map[string]string{
		"logs": e.logs.String(), "states": strings.Join(states, "\n"), "server trail": string(trail),
		"Start error": err.Error(), "MediaError": me.Error(),
	}
	for where, text := range places {
		for _, tok := range tokens {
			if strings.Contains(text, tok) {
				t.Errorf("a join token appears in the %s", where)
			}
		}
	}
	if !strings.Contains(places["server trail"], "access_token=[REDACTED]") {
		t.Errorf("the trail lacks the redacted failure messages: %s", trail)
	}
}

// Under MigrateGradually, a stream that a rebalance cannot move stays where it
// is, and the policy does not try it again at its rate for ever.
func TestRebalanceDoesNotRetryForEver(t *testing.T) {
	e := newEnv(t, settings())
	c := e.newClient(client.WithPolicy(client.MigrateGradually{Rate: 100}))
	const n = 3
	var live []*client.Stream
	for i := range n {
		live = append(live, mustStart(t, c, fmt.Sprintf("live-%d", i)))
	}
	waitFor(t, "the event stream", c.EventsConnected)
	e.eng.Down(backup, true) // the new first provider takes no connection
	e.admin(http.MethodPut, "/api/streaming/providers/priorities",
		map[string][]string{"order": {backup, primary, fakes.LiveKit}}, nil)
	waitFor(t, "one rebalance attempt per stream", func() bool { return e.eng.Connects() >= 2*n })
	// At 100 moves a second, retries would show at once: none in the time
	// each stream sends three heartbeats (at least 400 ms).
	keys := make([]string, len(live))
	for i, s := range live {
		keys[i] = heartbeatKey(s)
	}
	e.waitRequests(t, 3, keys...)
	if got := e.eng.Connects(); got != 2*n {
		t.Errorf("%d connects, want %d: one start and one rebalance attempt per stream", got, 2*n)
	}
	for _, s := range live {
		if s.Provider() != primary {
			t.Errorf("stream on %s, want it to stay on %s", s.Provider(), primary)
		}
	}
}

// TestUnverifiedProviderNotChosen: a provider that never passed a check
// (UNKNOWN) is not chosen, even at the highest priority: new streams, standbys
// and the priority policy leave it alone. Once a check verifies it, the
// policy moves streams there.
func TestUnverifiedProviderNotChosen(t *testing.T) {
	e := newEnv(t, settings())
	c := e.newClient(client.WithPolicy(client.MigrateGradually{Rate: 50}))
	live := mustStart(t, c, "live")
	waitFor(t, "the event stream", c.EventsConnected)

	// Created while its first check fails: not verified, so UNKNOWN (one
	// failure is below its failure threshold of 3).
	f, _ := e.fakes.Faults(backup)
	if err := f.Set(fault.ServerErr); err != nil {
		t.Fatal(err)
	}
	p := e.fakes.Providers(time.Hour, false)[1]
	var created struct {
		Status client.Status `json:"status"`
		Usable bool          `json:"usable"`
	}
	e.admin(http.MethodPost, "/api/streaming/providers", map[string]any{
		"name": "fresh", "kind": p.Kind, "priority": 4, "config": p.Config,
		"credentials": map[string]string{"serverSecret": p.Credentials.ServerSecret},
		"healthCheck": map[string]any{"interval": "1h", "failureThreshold": 3},
	}, &created)
	if created.Status != client.StatusUnknown || created.Usable {
		t.Fatalf("created with a failing first check: %+v, want UNKNOWN and not usable", created)
	}
	if err := f.Set(fault.OK); err != nil {
		t.Fatal(err)
	}
	e.admin(http.MethodPut, "/api/streaming/providers/priorities",
		map[string][]string{"order": {"fresh", primary, backup, fakes.LiveKit}}, nil)
	waitFor(t, "the unverified provider first in the client's configuration", func() bool {
		cfg, _ := c.Config()
		return len(cfg.Providers) > 0 && cfg.Providers[0].Name == "fresh" && cfg.Providers[0].Status == client.StatusUnknown
	})
	if cfg, _ := c.Config(); cfg.Providers[0].Usable || !cfg.Providers[1].Usable {
		t.Fatalf("usable in the configuration: %+v", cfg.Providers)
	}

	s := mustStart(t, c, "new")
	if s.Provider() != primary {
		t.Errorf("new stream on %s, want %s", s.Provider(), primary)
	}
	if sa, ok := s.Standby(); !ok || sa.Provider.Name != backup {
		t.Errorf("standby on %q (%v), want %s", sa.Provider.Name, ok, backup)
	}
	// Two heartbeats of each stream later, neither has moved to it.
	e.waitRequests(t, 2, heartbeatKey(live), heartbeatKey(s))
	if live.Provider() != primary || s.Provider() != primary {
		t.Fatalf("streams on %s and %s, want both on %s", live.Provider(), s.Provider(), primary)
	}

	// Verified: now it is the preferred provider and the policy moves there.
	e.admin(http.MethodPost, "/api/streaming/providers/fresh/health-check", nil, nil)
	waitFor(t, "the verified provider usable in the client's configuration", func() bool {
		cfg, _ := c.Config()
		return len(cfg.Providers) > 0 && cfg.Providers[0].Name == "fresh" && cfg.Providers[0].Usable
	})
	waitFor(t, "the live streams on the verified provider", func() bool {
		return live.Provider() == "fresh" && s.Provider() == "fresh"
	})
}
