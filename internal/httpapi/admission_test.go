package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/events"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

// holdStore holds every bearer-token lookup until released, so that a test
// keeps requests in flight inside their admission slot (authentication runs
// inside it). Requests with the bootstrap token look nothing up and pass.
type holdStore struct {
	sb.Store
	held    chan struct{} // one value per request being held
	release chan struct{} // closed to let the held requests go
	once    sync.Once
}

func (h *holdStore) APITokenByHash(ctx context.Context, hash []byte) (sb.APIToken, error) {
	h.held <- struct{}{}
	select {
	case <-h.release:
		return h.Store.APITokenByHash(ctx, hash)
	case <-ctx.Done():
		// Wrapped, as the store reports a cancelled query.
		return sb.APIToken{}, fmt.Errorf("sqlstore: api token by hash: %w", ctx.Err())
	}
}

func (h *holdStore) letGo() { h.once.Do(func() { close(h.release) }) }

// admissionEnv is a server with admission limits on the store of a test env,
// with its own metrics and logs. done receives the X-Test-Done header of
// each request the server has finished that carries one.
type admissionEnv struct {
	*testEnv
	url     string
	client  *http.Client
	hold    *holdStore
	metrics *Metrics
	reg     *prometheus.Registry
	logs    *testutil.Buffer
	done    chan string
	holds   int // requests held so far (holdOne)
}

func newAdmissionEnv(t *testing.T, a Admission) *admissionEnv {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() { testutil.CheckGoroutines(t, before) }) // runs last
	e := newTestEnv(t)
	hold := &holdStore{Store: e.store, held: make(chan struct{}, 16), release: make(chan struct{})}
	hub := events.New(events.Options{Clock: e.clock})
	t.Cleanup(hub.Close)
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, e.store)
	logs := &testutil.Buffer{}
	api := New(Options{
		Store: hold, Clock: e.clock, Health: e.health, Streams: e.streams, Events: hub, Metrics: m,
		Logger:         slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		BootstrapToken: bootstrapToken, Admission: a,
	})
	done := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.ServeHTTP(w, r)
		if v := r.Header.Get("X-Test-Done"); v != "" {
			select {
			case done <- v:
			default:
			}
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(hold.letGo) // before srv.Close, which waits for the held requests
	return &admissionEnv{testEnv: e, url: srv.URL, client: srv.Client(), hold: hold, metrics: m, reg: reg, logs: logs, done: done}
}

type answer struct {
	status  int
	header  http.Header
	body    string
	elapsed time.Duration
	err     error
}

// send makes one request; headers come in name, value pairs.
func (a *admissionEnv) send(ctx context.Context, method, path, token, body string, headers ...string) answer {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.url+path, rd)
	if err != nil {
		return answer{err: err}
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	start := time.Now()
	resp, err := a.client.Do(req)
	if err != nil {
		return answer{err: err, elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, header: resp.Header, body: string(b), elapsed: time.Since(start), err: err}
}

// holdOne sends a request with the client token, which the store holds inside
// its admission slot, and returns once it is held. Its answer arrives on the
// channel once it is let go or cancelled.
func (a *admissionEnv) holdOne(ctx context.Context, method, path, body string, headers ...string) <-chan answer {
	a.t.Helper()
	// Each held request has a token of its own: the requests of one token
	// that miss the cache together share one read of it (readToken), which
	// holds them all.
	token := a.tokens[[]sb.Role{sb.RoleClient, sb.RoleAdmin, sb.RoleSuperadmin}[a.holds%3]]
	a.holds++
	out := make(chan answer, 1)
	go func() { out <- a.send(ctx, method, path, token, body, headers...) }()
	select {
	case <-a.hold.held:
	case ans := <-out:
		a.t.Fatalf("%s %s was not held: %d %s %v", method, path, ans.status, ans.body, ans.err)
	case <-time.After(10 * time.Second):
		a.t.Fatalf("%s %s was not held", method, path)
	}
	return out
}

func (a *admissionEnv) wait(ch <-chan answer) answer {
	a.t.Helper()
	select {
	case ans := <-ch:
		return ans
	case <-time.After(10 * time.Second):
		a.t.Fatal("no answer")
		return answer{}
	}
}

// value reads one series from the server's registry: a counter or a gauge,
// 0 when it does not exist yet. labels come in name, value pairs.
func (a *admissionEnv) value(name string, labels ...string) float64 {
	a.t.Helper()
	mfs, err := a.reg.Gather()
	if err != nil {
		a.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue series
				}
			}
			return m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return 0
}

func (a *admissionEnv) noErrorLogged() {
	a.t.Helper()
	for line := range strings.SplitSeq(a.logs.String(), "\n") {
		if strings.Contains(line, `"level":"ERROR"`) {
			a.t.Errorf("error logged: %s", line)
		}
	}
}

// checkShed checks an answer is the overload answer, given at once.
func checkShed(t *testing.T, what string, ans answer, bound time.Duration) {
	t.Helper()
	if ans.err != nil || ans.status != http.StatusServiceUnavailable {
		t.Fatalf("%s: %d %s %v, want 503", what, ans.status, ans.body, ans.err)
	}
	if ra := ans.header.Get("Retry-After"); ra != "1" && ra != "2" {
		t.Errorf("%s: Retry-After %q, want 1 or 2", what, ra)
	}
	var body errorBody
	if err := json.Unmarshal([]byte(ans.body), &body); err != nil || body.Error.Code != sb.EUnavailable ||
		!strings.Contains(body.Error.Message, "overloaded") || ans.header.Get("Content-Type") != "application/json" {
		t.Errorf("%s: body %s (%s), want the unavailable error envelope saying overloaded", what, ans.body, ans.header.Get("Content-Type"))
	}
	// Answered when its wait ran out, not left to time out.
	if ans.elapsed < bound || ans.elapsed > bound+2*time.Second {
		t.Errorf("%s: answered after %v, want its wait of %v", what, ans.elapsed, bound)
	}
}

func TestRouteClasses(t *testing.T) {
	want := map[string]string{
		"GET /healthz": "", "GET /readyz": "", "GET /metrics": "", "GET /api/events": "",
		"POST /api/streams":                          classStart,
		"POST /api/streams/{id}/migrate":             classFailover,
		"POST /api/streams/{id}/heartbeat":           classFailover,
		"POST /api/streams/{id}/failures":            classFailover,
		"POST /api/streams/{id}/end":                 classFailover,
		"GET /api/streams":                           classOther,
		"GET /api/streams/{id}":                      classOther,
		"POST /api/auth/login":                       classOther,
		"GET /api/streaming/config":                  classOther,
		"GET /api/streaming/providers":               classOther,
		"GET /api/openapi.json":                      classOther,
		"GET " + dashboardIndexPath:                  classOther,
		"POST /api/streaming/providers":              classOther,
		"GET /api/streaming/providers/{name}/health": classOther,
	}
	seen := 0
	for _, rt := range New(Options{}).routes() {
		key := rt.Method + " " + rt.Path
		got := routeClass(rt.Method, rt.Path)
		if w, ok := want[key]; ok {
			seen++
			if got != w {
				t.Errorf("%s: class %q, want %q", key, got, w)
			}
		} else if got != classOther {
			t.Errorf("%s: class %q, want other", key, got)
		}
	}
	if seen != len(want) {
		t.Errorf("%d of the %d routes listed here are routes", seen, len(want))
	}
}

// TestAdmissionShedsStartsBeforeFailover saturates the start and other
// classes and checks that their next requests are shed with 503 and
// Retry-After once their wait runs out, while failover work, probes, metrics
// and the event stream are still served.
func TestAdmissionShedsStartsBeforeFailover(t *testing.T) {
	const wait = 20 * time.Millisecond
	a := newAdmissionEnv(t, Admission{
		Failover: ClassLimit{MaxInFlight: 1, MaxWait: wait},
		Start:    ClassLimit{MaxInFlight: 1, MaxWait: wait},
		Other:    ClassLimit{MaxInFlight: 1, MaxWait: wait},
	})
	ctx := t.Context()
	start := a.holdOne(ctx, "POST", "/api/streams", `{"room":"r1"}`)
	other := a.holdOne(ctx, "GET", "/api/streaming/config", "")

	checkShed(t, "start", a.send(ctx, "POST", "/api/streams", bootstrapToken, `{"room":"r2"}`), wait)
	checkShed(t, "other", a.send(ctx, "GET", "/api/auth/me", bootstrapToken, ""), wait)
	checkShed(t, "unmatched", a.send(ctx, "GET", "/api/nothing-here", "", ""), wait)

	// Failover work has its own slots: still served (404: no such stream).
	for _, op := range []string{"heartbeat", "end"} {
		if ans := a.send(ctx, "POST", "/api/streams/st_000000000000000000000000/"+op, bootstrapToken, ""); ans.status != http.StatusNotFound {
			t.Errorf("%s while starts are saturated: %d %s %v, want 404", op, ans.status, ans.body, ans.err)
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if ans := a.send(ctx, "GET", path, "", ""); ans.status != http.StatusOK {
			t.Errorf("GET %s while saturated: %d %v", path, ans.status, ans.err)
		}
	}
	if st := a.eventsStatus(); st != http.StatusOK {
		t.Errorf("GET /api/events while saturated: %d", st)
	}

	for class, n := range map[string]float64{classStart: 1, classOther: 2, classFailover: 0} {
		if got := a.value("switchboard_http_requests_shed_total", "class", class); got != n {
			t.Errorf("shed{class=%s} = %v, want %v", class, got, n)
		}
	}
	for class, n := range map[string]float64{classStart: 1, classOther: 1, classFailover: 0} {
		if got := a.value("switchboard_http_requests_in_flight", "class", class); got != n {
			t.Errorf("in_flight{class=%s} = %v, want %v", class, got, n)
		}
	}
	metrics := a.send(ctx, "GET", "/metrics", "", "").body
	for _, line := range []string{
		`switchboard_http_requests_shed_total{class="start"} 1`,
		`switchboard_http_requests_in_flight{class="failover"} 0`,
		`switchboard_http_requests_waiting{class="start"} 0`,
		`switchboard_http_requests_total{route="POST /api/streams",status="503"} 1`,
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("/metrics has no line %s", line)
		}
	}

	a.hold.letGo()
	// No provider is registered: the start is served and fails on its own.
	if ans := a.wait(start); ans.err != nil || ans.status == http.StatusOK || strings.Contains(ans.body, "overloaded") {
		t.Errorf("held start: %d %s %v", ans.status, ans.body, ans.err)
	}
	if ans := a.wait(other); ans.status != http.StatusOK {
		t.Errorf("held config: %d %s %v", ans.status, ans.body, ans.err)
	}
	// The slots are free again.
	if ans := a.send(ctx, "GET", "/api/auth/me", bootstrapToken, ""); ans.status != http.StatusOK {
		t.Errorf("after the load: %d %s", ans.status, ans.body)
	}
	waitFor(t, func() bool {
		return a.value("switchboard_http_requests_in_flight", "class", classStart) == 0 && a.value("switchboard_http_requests_in_flight", "class", classOther) == 0
	}, "no request in flight")
	a.noErrorLogged()
}

// eventsStatus opens the event stream and closes it once its status is in.
func (a *admissionEnv) eventsStatus() int {
	ctx, cancel := context.WithCancel(a.t.Context())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", a.url+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+bootstrapToken)
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	return resp.StatusCode
}

// TestAdmissionWaiterLeavesOnCancel checks that a request waiting for a slot
// leaves the line as soon as its client goes away, even before its body was
// read, and holds no slot afterwards.
func TestAdmissionWaiterLeavesOnCancel(t *testing.T) {
	a := newAdmissionEnv(t, Admission{Failover: ClassLimit{MaxInFlight: 1, MaxWait: time.Minute}})
	path := "/api/streams/st_000000000000000000000000/heartbeat"
	held := a.holdOne(t.Context(), "POST", path, `{}`)

	ctx, cancel := context.WithCancel(t.Context())
	waiter := make(chan answer, 1)
	go func() {
		waiter <- a.send(ctx, "POST", path, bootstrapToken, `{}`, "X-Test-Done", "waiter")
	}()
	waiting := func() float64 { return a.value("switchboard_http_requests_waiting", "class", classFailover) }
	waitFor(t, func() bool { return waiting() == 1 }, "the request to wait")
	cancelled := time.Now()
	cancel()
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled request is still waiting")
	}
	if d := time.Since(cancelled); d > 2*time.Second {
		t.Errorf("the cancelled request left the line after %v", d)
	}
	if ans := a.wait(waiter); ans.err == nil {
		t.Errorf("cancelled request answered %d", ans.status)
	}
	if got := waiting(); got != 0 {
		t.Errorf("waiting = %v after the cancel", got)
	}
	route := "POST /api/streams/{id}/heartbeat"
	if got := a.value("switchboard_http_requests_cancelled_total", "route", route); got != 1 {
		t.Errorf("cancelled{route=%s} = %v, want 1", route, got)
	}
	if got := a.value("switchboard_http_requests_shed_total", "class", classFailover); got != 0 {
		t.Errorf("a cancelled waiter counted as shed: %v", got)
	}

	// The held request's slot goes to the next request, not to the one gone.
	a.hold.letGo()
	if ans := a.wait(held); ans.status != http.StatusNotFound {
		t.Errorf("held heartbeat: %d %s %v", ans.status, ans.body, ans.err)
	}
	if ans := a.send(t.Context(), "POST", path, bootstrapToken, `{}`); ans.status != http.StatusNotFound || ans.elapsed > 5*time.Second {
		t.Errorf("next heartbeat: %d %s after %v", ans.status, ans.body, ans.elapsed)
	}
	a.noErrorLogged()
}

// TestClientCancelledIsNotAnError checks that a request whose client goes
// away, which the store reports as a wrapped context.Canceled, is logged at
// debug level and counted as cancelled, not logged as an internal error.
func TestClientCancelledIsNotAnError(t *testing.T) {
	a := newAdmissionEnv(t, Admission{}) // no limits: in flight is still counted
	ctx, cancel := context.WithCancel(t.Context())
	held := a.holdOne(ctx, "GET", "/api/streaming/config", "", "X-Test-Done", "config")
	if got := a.value("switchboard_http_requests_in_flight", "class", classOther); got != 1 {
		t.Errorf("in_flight{class=other} = %v, want 1", got)
	}
	cancel()
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not finish the cancelled request")
	}
	if ans := a.wait(held); ans.err == nil {
		t.Errorf("cancelled request answered %d", ans.status)
	}
	route := "GET /api/streaming/config"
	if got := a.value("switchboard_http_requests_cancelled_total", "route", route); got != 1 {
		t.Errorf("cancelled{route=%s} = %v, want 1", route, got)
	}
	if got := a.value("switchboard_http_requests_total", "route", route, "status", "499"); got != 1 {
		t.Errorf("requests{route=%s,status=499} = %v, want 1", route, got)
	}
	if got := a.value("switchboard_http_requests_in_flight", "class", classOther); got != 0 {
		t.Errorf("in_flight{class=other} = %v after the request", got)
	}
	a.noErrorLogged()
	logs := a.logs.String()
	if !strings.Contains(logs, `"level":"DEBUG","msg":"request cancelled by the client"`) || !strings.Contains(logs, "context canceled") {
		t.Errorf("no debug line for the cancelled request:\n%s", logs)
	}
}

// TestServerCancellationIsAnError checks the other side of the line: a
// context error from the server's own work, while the client still waits,
// stays an internal error.
func TestServerCancellationIsAnError(t *testing.T) {
	logs := &testutil.Buffer{}
	s := New(Options{Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	for _, err := range []error{
		fmt.Errorf("probe: %w", context.DeadlineExceeded),
		fmt.Errorf("get stream: %w", context.Canceled), // cancelled by the server, not the client
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.writeError(w, r, err) }))
		resp, gerr := srv.Client().Get(srv.URL)
		if gerr != nil {
			t.Fatal(gerr)
		}
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Errorf("%v: status %d, want 500", err, resp.StatusCode)
		}
	}
	if n := strings.Count(logs.String(), `"level":"ERROR","msg":"internal error"`); n != 2 {
		t.Errorf("%d internal errors logged, want 2:\n%s", n, logs.String())
	}
}

// unreachableStore fails every registry read, so that a scrape reports
// only the metrics kept in memory.
type unreachableStore struct{ sb.Store }

func (unreachableStore) ListProviders(context.Context) ([]sb.ProviderRecord, error) {
	return nil, sb.Errorf(sb.EUnavailable, "unreachable")
}

func (unreachableStore) QualityTotals(context.Context, time.Time, time.Duration) (map[sb.QualityKey]sb.QualityTotals, error) {
	return nil, sb.Errorf(sb.EUnavailable, "unreachable")
}

func (unreachableStore) ListRegionalHealth(context.Context) ([]sb.RegionalHealth, error) {
	return nil, sb.Errorf(sb.EUnavailable, "unreachable")
}

// TestAdmissionMetricsLint checks the new metric names against the
// Prometheus naming rules promtool applies.
func TestAdmissionMetricsLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, unreachableStore{})
	m.cancelled.WithLabelValues("GET /api/streams").Inc()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	ours := mfs[:0]
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "switchboard_http_requests_") {
			ours = append(ours, mf)
		}
	}
	if len(ours) != 4 { // in flight, waiting, shed, cancelled; the request counter has no series yet
		t.Errorf("%d request metric families, want 4", len(ours))
	}
	problems, err := promlint.NewWithMetricFamilies(ours).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}
