package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/alerts"
	"github.com/switchboardhq/switchboard/internal/auth"
	"github.com/switchboardhq/switchboard/internal/events"
	"github.com/switchboardhq/switchboard/internal/health"
	"github.com/switchboardhq/switchboard/internal/maintenance"
	"github.com/switchboardhq/switchboard/internal/providers"
	"github.com/switchboardhq/switchboard/internal/providers/agora/agorafake"
	"github.com/switchboardhq/switchboard/internal/providers/zegocloud/zegocloudfake"
	"github.com/switchboardhq/switchboard/internal/secrets"
	"github.com/switchboardhq/switchboard/internal/sqlstore"
	"github.com/switchboardhq/switchboard/internal/streams"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

// Secret values used in fixtures; leak tests look for them everywhere.
const (
	secretCustomerID  = "cust-id-7f3a9c1e5b"
	secretCustomer    = "cust-secret-Zq8XwV2pL0"
	secretCertificate = "c0ffee00c0ffee00c0ffee00c0ffee00"
	secretZego        = "zegoSecretZegoSecretZegoSecret12"
	secretLiveKit     = "lkSecret-lkSecret-lkSecret-lkSecret-42"
	secretHeader      = "Bearer hdr-secret-91b2c3"
	bootstrapToken    = "sbt_bootstrap-test-token-0123456789"
	adminPassword     = "correct horse battery staple"
	agoraAppID        = "970CA35de60c44645bbae8a215061b33"
)

var allSecrets = []string{secretCustomerID, secretCustomer, secretCertificate, secretZego, secretLiveKit, secretHeader, bootstrapToken, adminPassword}

type testEnv struct {
	t       testing.TB
	store   sb.Store
	api     *Server
	srv     *httptest.Server
	logs    *testutil.Buffer
	tokens  map[sb.Role]string // bearer tokens per role
	dir     string
	events  *testutil.Bus
	agora   *agorafake.Fake
	zego    *zegocloudfake.Fake
	health  *health.Checker
	clock   *testutil.Clock
	streams *streams.Service
	// hook is a webhook receiver for alert channels; hookBodies counts what it got.
	hook       *httptest.Server
	hookBodies *atomic.Int64
	maint      *maintenance.Service
}

// hashOnce caches the admin password hash: Argon2id is slow on purpose.
var hashOnce = sync.OnceValue(func() string {
	h, err := auth.HashPassword(adminPassword)
	if err != nil {
		panic(err)
	}
	return h
})

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	return newTestEnvOn(t, "")
}

// newTestEnvOn is newTestEnv on the store named by dsn; "" is an SQLite file
// in a temporary directory.
func newTestEnvOn(t testing.TB, dsn string) *testEnv {
	t.Helper()
	return newTestEnvWith(t, dsn, nil)
}

// newTestEnvWith is newTestEnvOn with the streams service's configuration
// changed by tune (when not nil) before the service is made.
func newTestEnvWith(t testing.TB, dsn string, tune func(*streams.Config)) *testEnv {
	t.Helper()
	dir := t.TempDir()
	if dsn == "" {
		dsn = "sqlite:" + filepath.Join(dir, "sb.db")
	}
	key := bytes.Repeat([]byte{7}, 32)
	sealer, err := secrets.NewAESGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	clock := testutil.NewClock(time.Now().UTC())
	store, err := sqlstore.Open(context.Background(), dsn, sealer, clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	logs := &testutil.Buffer{}
	bus := &testutil.Bus{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	af, err := agorafake.New(agorafake.Config{AppID: agoraAppID, CustomerID: secretCustomerID, CustomerSecret: secretCustomer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { af.Close() })
	zf, err := zegocloudfake.New(zegocloudfake.Config{AppID: 1234567890, ServerSecret: secretZego})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zf.Close() })
	metrics := NewMetrics(prometheus.NewRegistry(), store)
	checker, err := health.NewChecker(health.Config{
		Registry: store, Health: store, Probers: providers.Probers(), Bus: bus, Logger: logger, Clock: clock,
		OnProbe: metrics.ObserveProbe, OnTransition: metrics.ObserveTransition,
	})
	if err != nil {
		t.Fatal(err)
	}
	minters := map[sb.Kind]sb.TokenMinter{}
	for k, a := range providers.Adapters() {
		minters[k] = a
	}
	maint := maintenance.New(maintenance.Config{Store: store, Bus: bus, Clock: clock, Logger: logger})
	cfg := streams.Config{Store: store, Checker: checker, Minters: minters, Bus: bus, Clock: clock, Logger: logger, Maintenance: maint, Routing: store, Regional: store}
	if tune != nil {
		tune(&cfg)
	}
	svc := streams.New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = svc.Run(ctx) })
	wg.Go(func() { _ = maint.Run(ctx) })
	wg.Go(func() { _ = maint.Lead(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	hub := events.New(events.Options{Clock: clock})
	t.Cleanup(hub.Close)
	hookBodies := &atomic.Int64{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hookBodies.Add(1) }))
	t.Cleanup(hook.Close)
	dispatcher := alerts.New(alerts.Config{Store: store, Senders: alerts.Senders(hook.Client(), nil, nil), Clock: clock, Logger: logger})
	api := New(Options{
		Store: store, Bus: bus, Logger: logger, Health: checker, Metrics: metrics, Clock: clock, Streams: svc, Events: hub,
		BootstrapToken: bootstrapToken, LoginEvery: time.Millisecond, LoginBurst: 1000, Alerts: dispatcher, Maintenance: maint,
	})
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	e := &testEnv{t: t, store: store, api: api, srv: srv, logs: logs, tokens: map[sb.Role]string{}, dir: dir, events: bus,
		agora: af, zego: zf, health: checker, clock: clock, streams: svc, hook: hook, hookBodies: hookBodies, maint: maint}
	if err := store.CreateUser(context.Background(), sb.User{Username: "admin", Role: sb.RoleSuperadmin, PasswordHash: hashOnce(), CreatedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []sb.Role{sb.RoleClient, sb.RoleAdmin, sb.RoleSuperadmin, sb.RoleAgent} {
		var out struct{ Token string }
		e.mustDo("POST", "/api/auth/tokens", bootstrapToken, map[string]string{"name": r.String() + "-token", "role": r.String()}, 201, &out)
		e.tokens[r] = out.Token
	}
	return e
}

// do sends a request with a JSON body (a string is sent as is) and returns the
// status and body.
func (e *testEnv) do(method, path, token string, body any) (int, []byte) {
	e.t.Helper()
	return e.doHeaders(method, path, body, map[string]string{"Authorization": bearer(token)})
}

func bearer(token string) string {
	if token == "" {
		return ""
	}
	return "Bearer " + token
}

func (e *testEnv) doHeaders(method, path string, body any, headers map[string]string) (int, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// mustDo sends a request, checks the status and decodes the body into out.
func (e *testEnv) mustDo(method, path, token string, body any, want int, out any) {
	e.t.Helper()
	st, b := e.do(method, path, token, body)
	if st != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, st, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

func (e *testEnv) agoraProvider(name string, priority int) map[string]any {
	return map[string]any{
		"name": name, "displayName": "Agora " + name, "kind": "agora", "priority": priority,
		"config":      map[string]any{"appId": agoraAppID, "baseUrl": e.agora.URL()},
		"credentials": map[string]any{"customerId": secretCustomerID, "customerSecret": secretCustomer, "appCertificate": secretCertificate},
		"pricing":     map[string]any{"currency": "USD", "perThousandMinutes": map[string]any{"audio": 0.99, "sd": 3.99, "hd": 3.99, "fullhd": 8.99}},
	}
}

func (e *testEnv) zegoProvider(name string, priority int) map[string]any {
	return map[string]any{
		"name": name, "kind": "zegocloud", "priority": priority,
		"config":      map[string]any{"appId": "1234567890", "baseUrl": e.zego.URL()},
		"credentials": map[string]any{"serverSecret": secretZego},
	}
}

func (e *testEnv) createProvider(p map[string]any) {
	e.t.Helper()
	e.mustDo("POST", "/api/streaming/providers", e.tokens[sb.RoleSuperadmin], p, 201, nil)
}

// snapshot is the registry as an admin sees it, to show that a rejected
// write changed nothing.
func (e *testEnv) snapshot() string {
	e.t.Helper()
	st, b := e.do("GET", "/api/streaming/providers", e.tokens[sb.RoleAdmin], nil)
	if st != 200 {
		e.t.Fatalf("list: %d %s", st, b)
	}
	return string(b)
}

// doQuiet is do without the *testing.T helpers, for use from goroutines.
func (e *testEnv) doQuiet(method, path, token string, body any) (int, []byte) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	default:
		js, _ := json.Marshal(b)
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		return 0, []byte(err.Error())
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", bearer(token))
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		return 0, []byte(err.Error())
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func idOf(b []byte) string {
	var v struct{ ID string }
	_ = json.Unmarshal(b, &v)
	return v.ID
}

func newReq(method, url, token, ifNoneMatch string) (*http.Request, error) {
	r, err := http.NewRequest(method, url, nil)
	if err != nil {
		return nil, err
	}
	r.Header.Set("Authorization", bearer(token))
	if ifNoneMatch != "" {
		r.Header.Set("If-None-Match", ifNoneMatch)
	}
	return r, nil
}

// statusOnly sends a GET and returns the status without reading the body,
// for never-ending responses such as the event stream.
func (e *testEnv) statusOnly(method, path, token string) int {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", bearer(token))
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
