package client_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/client"
	"github.com/switchboardhq/switchboard/client/admin"
	"github.com/switchboardhq/switchboard/client/clienttest"
	"github.com/switchboardhq/switchboard/internal/events"
	"github.com/switchboardhq/switchboard/internal/health"
	"github.com/switchboardhq/switchboard/internal/httpapi"
	"github.com/switchboardhq/switchboard/internal/maintenance"
	"github.com/switchboardhq/switchboard/internal/providers"
	"github.com/switchboardhq/switchboard/internal/providers/fakes"
	"github.com/switchboardhq/switchboard/internal/providers/fault"
	"github.com/switchboardhq/switchboard/internal/secrets"
	"github.com/switchboardhq/switchboard/internal/sqlstore"
	"github.com/switchboardhq/switchboard/internal/streams"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

const bootstrapToken = "sbt_client-test-bootstrap-71c0e2"

// Modes of the control plane as the SDK sees it.
const (
	modeUp       int32 = iota
	modeNoEvents       // GET /api/events answers 503; the rest works
	modeDown           // every connection is closed without an answer
	modeResync         // GET /api/events tells the client to resynchronise, then ends
)

// env is a control plane wired as `switchboard serve` wires it (store, health
// checker, streams service, event hub and API) on a loopback server, with the
// three provider fakes registered, and a simulated media engine.
type env struct {
	t       testing.TB
	url     string
	token   string // a client-role API token
	srv     *httptest.Server
	store   *sqlstore.Store
	checker *health.Checker
	fakes   *fakes.Fakes
	eng     *clienttest.Engine
	mode    atomic.Int32
	logs    *testutil.Buffer
	// intercept, when set, sees every request first and answers it itself
	// when it returns true.
	intercept atomic.Pointer[func(http.ResponseWriter, *http.Request) bool]
	// hits counts the requests that reached the server, by "METHOD path",
	// whatever the mode: tests wait on them as signals of the SDK's work.
	hits sync.Map // string → *atomic.Int64
	// taken holds the connections handed over by net/http (the event
	// streams'), which CloseClientConnections does not close.
	taken sync.Map // net.Conn → struct{}
}

// settings are quick client settings for tests.
func settings() sb.ClientSettings {
	return sb.ClientSettings{MaxRetries: 3, MaxFailures: 2, HealthCheckInterval: sb.Duration(100 * time.Millisecond),
		RetryBackoff: sb.Duration(10 * time.Millisecond), RetryBudget: 0.2}
}

func newEnv(t testing.TB, cs sb.ClientSettings) *env {
	t.Helper()
	return newEnvWith(t, cs, 0)
}

// newEnvWith is newEnv with join tokens that live ttl (0: the server's default).
func newEnvWith(t testing.TB, cs sb.ClientSettings, ttl time.Duration) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, err := secrets.NewAESGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	clock := sb.SystemClock{}
	store, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "sb.db"), sealer, clock)
	if err != nil {
		t.Fatal(err)
	}
	hub := events.New(events.Options{Clock: clock})
	checker, err := health.NewChecker(health.Config{Registry: store, Health: store, Probers: providers.Probers(), Clock: clock, Bus: hub})
	if err != nil {
		t.Fatal(err)
	}
	minters := map[sb.Kind]sb.TokenMinter{}
	for k, ad := range providers.Adapters() {
		minters[k] = ad
	}
	maint := maintenance.New(maintenance.Config{Store: store, Bus: hub, Clock: clock})
	svc := streams.New(streams.Config{Store: store, Checker: checker, Minters: minters, Bus: hub, Clock: clock, TokenTTL: ttl, Maintenance: maint})
	var wg sync.WaitGroup
	wg.Go(func() { _ = svc.Run(ctx) })
	wg.Go(func() { _ = maint.Run(ctx) })
	wg.Go(func() { _ = maint.Lead(ctx) })
	api := httpapi.New(httpapi.Options{Store: store, Clock: clock, BootstrapToken: bootstrapToken, Bus: hub, Maintenance: maint,
		Health: checker, Streams: svc, Events: hub, Settings: sb.Settings{MaxRetries: cs.MaxRetries, MaxFailures: cs.MaxFailures,
			HealthCheckInterval: cs.HealthCheckInterval, RetryBackoff: cs.RetryBackoff, RetryBudget: cs.RetryBudget}})

	e := &env{t: t, store: store, checker: checker, eng: clienttest.New(2 * time.Millisecond), logs: &testutil.Buffer{}}
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.counter(r.Method + " " + r.URL.Path).Add(1)
		if f := e.intercept.Load(); f != nil && (*f)(w, r) {
			return
		}
		switch e.mode.Load() {
		case modeDown:
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
					return
				}
			}
			http.Error(w, "down", http.StatusBadGateway)
			return
		case modeNoEvents:
			if r.URL.Path == "/api/events" {
				http.Error(w, "no events", http.StatusServiceUnavailable)
				return
			}
		case modeResync:
			if r.URL.Path == "/api/events" {
				w.Header().Set("Content-Type", "text/event-stream")
				_, _ = io.WriteString(w, "id: 1000000\nevent: resync\ndata: {\"reason\":\"test\"}\n\n")
				return
			}
		}
		api.ServeHTTP(w, r)
	}))
	e.srv.Config.RegisterOnShutdown(hub.Close)
	e.srv.Config.ConnState = func(c net.Conn, st http.ConnState) {
		if st == http.StateHijacked {
			e.taken.Store(c, struct{}{})
		}
	}
	e.srv.Start()
	e.url = e.srv.URL

	if e.fakes, err = fakes.Start(); err != nil {
		t.Fatal(err)
	}
	for _, p := range e.fakes.Providers(time.Hour, true) {
		audit := sb.AuditEntry{At: clock.Now(), Actor: sb.ActorFrom(ctx), Action: "provider.create", Target: p.Name}
		if err := store.CreateProvider(ctx, p, audit); err != nil {
			t.Fatal(err)
		}
		// Verified, as the API's create would do: a provider never checked
		// is UNKNOWN, which neither the server nor the SDK chooses.
		if res, err := checker.Check(ctx, p.Name); err != nil || !res.Status.Usable() {
			t.Fatalf("first check of %s: %s, %v", p.Name, res.Status, err)
		}
	}
	var tok struct {
		Token string `json:"token"`
	}
	e.admin(http.MethodPost, "/api/auth/tokens", map[string]string{"name": "sdk", "role": "client"}, &tok)
	e.token = tok.Token

	t.Cleanup(func() {
		hub.Close()
		e.srv.Close()
		cancel()
		wg.Wait()
		_ = store.Close()
		_ = e.fakes.Close()
		if strings.Contains(e.logs.String(), e.token) {
			t.Error("the SDK logged its token")
		}
	})
	return e
}

// admin calls the API with the bootstrap (superadmin) token.
func (e *env) admin(method, path string, in, out any) {
	e.t.Helper()
	c, err := admin.New(e.url, bootstrapToken, nil)
	if err == nil {
		err = c.Do(context.Background(), method, path, in, out)
	}
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
}

// setMode switches what the SDK sees of the control plane and cuts the
// connections it has open.
func (e *env) setMode(m int32) {
	e.mode.Store(m)
	e.srv.CloseClientConnections()
	e.taken.Range(func(c, _ any) bool {
		_ = c.(net.Conn).Close()
		e.taken.Delete(c)
		return true
	})
	http.DefaultClient.CloseIdleConnections() // the admin's, cut above
}

// critical makes the named provider CRITICAL on the server: its fake answers
// 5xx and a check runs (the failure threshold is 1).
func (e *env) critical(name string) {
	e.t.Helper()
	f, _ := e.fakes.Faults(name)
	if err := f.Set(fault.ServerErr); err != nil {
		e.t.Fatal(err)
	}
	res, err := e.checker.Check(context.Background(), name)
	if err != nil {
		e.t.Fatal(err)
	}
	if res.Status != sb.StatusCritical {
		e.t.Fatalf("status of %s = %s, want CRITICAL", name, res.Status)
	}
}

// newClient returns a Client of the env with the simulated engine for every
// kind; it is closed at cleanup.
func (e *env) newClient(opts ...client.Option) *client.Client {
	e.t.Helper()
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	base := []client.Option{client.WithLogger(log), client.WithHeartbeat(200 * time.Millisecond),
		client.WithEngine(client.KindAgora, e.eng), client.WithEngine(client.KindZegocloud, e.eng), client.WithEngine(client.KindLiveKit, e.eng)}
	c, err := client.New(e.url, e.token, append(base, opts...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

// serverStream reads a stream and its trail as the admin API shows them.
type serverStream struct {
	Owner      string `json:"owner"`
	Provider   string `json:"provider"`
	Status     string `json:"status"`
	Migrations int    `json:"migrations"`
	Trail      []struct {
		Kind       string     `json:"kind"`
		Provider   string     `json:"provider"`
		From       string     `json:"from"`
		Stage      string     `json:"stage"`
		At         time.Time  `json:"at"`
		ReportedAt *time.Time `json:"reportedAt"`
	} `json:"trail"`
}

func (e *env) stream(id string) serverStream {
	e.t.Helper()
	var st serverStream
	e.admin(http.MethodGet, "/api/streams/"+id, nil, &st)
	return st
}

// counter is the count of requests to key ("METHOD path").
func (e *env) counter(key string) *atomic.Int64 {
	v, _ := e.hits.LoadOrStore(key, new(atomic.Int64))
	return v.(*atomic.Int64)
}

// waitRequests waits until the server has seen n more requests to each of
// keys ("METHOD path") than when it was called: the SDK's periodic work
// (heartbeats, health polls) has run n more times.
func (e *env) waitRequests(t testing.TB, n int64, keys ...string) {
	t.Helper()
	want := make([]int64, len(keys))
	for i, key := range keys {
		want[i] = e.counter(key).Load() + n
	}
	for i, key := range keys {
		c := e.counter(key)
		waitFor(t, fmt.Sprintf("%d more requests %s", n, key), func() bool { return c.Load() >= want[i] })
	}
}

// heartbeatKey is the request key of a stream's heartbeats.
func heartbeatKey(s *client.Stream) string { return "POST /api/streams/" + s.ID() + "/heartbeat" }

// waitFor polls cond until it holds, failing the test after a generous bound.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// nextState waits for the first state of s for which match returns true.
func nextState[T client.State](t *testing.T, s *client.Stream) T {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case st, ok := <-s.States():
			if !ok {
				t.Fatalf("states closed before a %T", *new(T))
			}
			if v, ok := st.(T); ok {
				return v
			}
		case <-timeout:
			t.Fatalf("timed out waiting for a %T (last state %v)", *new(T), s.State())
		}
	}
}
