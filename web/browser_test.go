package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/alerts"
	"github.com/switchboardhq/switchboard/internal/auth"
	"github.com/switchboardhq/switchboard/internal/events"
	"github.com/switchboardhq/switchboard/internal/health"
	"github.com/switchboardhq/switchboard/internal/httpapi"
	"github.com/switchboardhq/switchboard/internal/maintenance"
	"github.com/switchboardhq/switchboard/internal/providers"
	"github.com/switchboardhq/switchboard/internal/providers/agora/agorafake"
	"github.com/switchboardhq/switchboard/internal/providers/fault"
	"github.com/switchboardhq/switchboard/internal/providers/zegocloud/zegocloudfake"
	"github.com/switchboardhq/switchboard/internal/secrets"
	"github.com/switchboardhq/switchboard/internal/sqlstore"
	"github.com/switchboardhq/switchboard/internal/streams"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

// screenshotsEnv, when set, makes the browser tests keep their screenshots in
// testdata/screenshots and refresh docs/dashboard.png, the README's picture.
const screenshotsEnv = "SWITCHBOARD_SCREENSHOTS"

// Fixtures of the loopback fakes.
const (
	agoraAppID     = "970CA35de60c44645bbae8a215061b33"
	agoraCustomer  = "cust-id-7f3a9c1e5b"
	agoraSecret    = "cust-secret-Zq8XwV2pL0"
	agoraCert      = "c0ffee00c0ffee00c0ffee00c0ffee00"
	zegoAppID      = 1234567890
	zegoSecret     = "zegoSecretZegoSecretZegoSecret12"
	bootstrapToken = "sbt_browser-test-bootstrap-0123456789"
	adminPassword  = "correct horse battery staple"
)

// waitLong bounds every wait for the page: generous, for a slow 2-core machine.
const waitLong = 45 * time.Second

var adminHash = sync.OnceValue(func() string {
	h, err := auth.HashPassword(adminPassword)
	if err != nil {
		panic(err)
	}
	return h
})

// chromiumPath finds the browser, or "" when none is installed.
func chromiumPath() string {
	if p := os.Getenv("SWITCHBOARD_CHROMIUM"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// server is a complete Switchboard API with the dashboard, over a SQLite
// store, with real adapters probing the Agora and ZEGOCLOUD fakes.
type server struct {
	t       *testing.T
	store   *sqlstore.Store
	clock   *testutil.Clock // the wall clock, unless set to a fixed time to record history
	url     string
	client  *http.Client
	agora   *agorafake.Fake
	zego    *zegocloudfake.Fake
	checker *health.Checker
	hub     *events.Hub
}

func newServer(t *testing.T) *server {
	t.Helper()
	return newServerWith(t, nil)
}

// newServerWith is newServer with options changed by opts (nil: none).
func newServerWith(t *testing.T, opts func(*httpapi.Options)) *server {
	t.Helper()
	ctx := context.Background()
	sealer, err := secrets.NewAESGCM(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	clock := &testutil.Clock{}
	store, err := sqlstore.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "sb.db"), sealer, clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	if err := store.CreateUser(ctx, sb.User{Username: "admin", Role: sb.RoleSuperadmin, PasswordHash: adminHash(), CreatedAt: time.Now().UTC()}); err != nil {
		t.Fatal(err)
	}
	af, err := agorafake.New(agorafake.Config{AppID: agoraAppID, CustomerID: agoraCustomer, CustomerSecret: agoraSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = af.Close() })
	zf, err := zegocloudfake.New(zegocloudfake.Config{AppID: zegoAppID, ServerSecret: zegoSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = zf.Close() })

	logger := slog.New(slog.DiscardHandler)
	hub := events.New(events.Options{Clock: clock, Heartbeat: time.Second})
	checker, err := health.NewChecker(health.Config{
		Registry: store, Health: store, Probers: providers.Probers(), Bus: hub, Logger: logger, Clock: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	minters := map[sb.Kind]sb.TokenMinter{}
	for k, a := range providers.Adapters() {
		minters[k] = a
	}
	maint := maintenance.New(maintenance.Config{Store: store, Bus: hub, Clock: clock, Logger: logger})
	svc := streams.New(streams.Config{Store: store, Checker: checker, Minters: minters, Bus: hub, Clock: clock, Logger: logger, Maintenance: maint})
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = svc.Run(runCtx) })
	wg.Go(func() { _ = maint.Run(runCtx) })
	wg.Go(func() { _ = maint.Lead(runCtx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	o := httpapi.Options{
		Store: store, Bus: hub, Clock: clock, Logger: logger, Health: checker, Streams: svc, Events: hub, Maintenance: maint,
		BootstrapToken: bootstrapToken, LoginEvery: time.Millisecond, LoginBurst: 1000,
	}
	o.Alerts = alerts.New(alerts.Config{Store: store, Senders: alerts.Senders(nil, nil, nil), Clock: clock, Logger: logger})
	if opts != nil {
		opts(&o)
	}
	api := httpapi.New(o)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	// The hub closes first, ending the event streams, so that srv.Close does
	// not wait for them.
	t.Cleanup(hub.Close)
	return &server{t: t, store: store, clock: clock, url: srv.URL, client: srv.Client(), agora: af, zego: zf, checker: checker, hub: hub}
}

// call sends an API request as the bootstrap superadmin and decodes the answer.
func (s *server) call(method, path string, body any, want int, out any) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bootstrapToken)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		s.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
}

// addProviders registers Agora (priority 1) and ZEGOCLOUD (priority 2) against
// the fakes (the server checks each one as it is created) and checks them once
// more, so that both are healthy.
func (s *server) addProviders() {
	s.t.Helper()
	s.call("POST", "/api/streaming/providers", map[string]any{
		"name": "agora", "displayName": "Agora", "kind": "agora", "priority": 1, "monthlyBudget": 500,
		"config":      map[string]any{"appId": agoraAppID, "baseUrl": s.agora.URL()},
		"credentials": map[string]any{"customerId": agoraCustomer, "customerSecret": agoraSecret, "appCertificate": agoraCert},
	}, 201, nil)
	s.call("POST", "/api/streaming/providers", map[string]any{
		"name": "zegocloud", "displayName": "ZEGOCLOUD", "kind": "zegocloud", "priority": 2, "monthlyBudget": 300,
		"config":      map[string]any{"appId": fmt.Sprint(zegoAppID), "baseUrl": s.zego.URL()},
		"credentials": map[string]any{"serverSecret": zegoSecret},
	}, 201, nil)
	s.call("POST", "/api/streaming/providers/health-check-all", nil, 200, nil)
}

// startStream starts a stream through the API and returns the provider it got.
func (s *server) startStream(room string) string {
	s.t.Helper()
	var a struct {
		Provider struct{ Name string } `json:"provider"`
	}
	s.call("POST", "/api/streams", map[string]any{"room": room, "userId": "user-" + room, "role": "publisher"}, 201, &a)
	return a.Provider.Name
}

// check probes a provider n times, as the scheduler would.
func (s *server) check(name string, n int) {
	s.t.Helper()
	for range n {
		if _, err := s.checker.Check(context.Background(), name); err != nil {
			s.t.Fatalf("check %s: %v", name, err)
		}
	}
}

// recordHistory runs a day of hourly checks, ending an hour ago, with varying
// latency and a short ZEGOCLOUD outage, so that the history charts have data.
func (s *server) recordHistory() {
	s.t.Helper()
	start := time.Now().UTC().Add(-24 * time.Hour)
	s.clock.Set(start)
	s.addProviders()
	for i := range 24 {
		s.clock.Set(start.Add(time.Duration(i) * time.Hour))
		s.agora.Faults().SetLatency(time.Duration(15+(i*37)%45) * time.Millisecond)
		s.zego.Faults().SetLatency(time.Duration(25+(i*53)%60) * time.Millisecond)
		mode := fault.OK
		if i == 14 || i == 15 {
			mode = fault.ServerErr
		}
		if err := s.zego.Faults().Set(mode); err != nil {
			s.t.Fatal(err)
		}
		s.check("agora", 1)
		s.check("zegocloud", 1)
	}
	s.agora.Faults().SetLatency(0)
	s.zego.Faults().SetLatency(0)
	s.clock.Set(time.Time{})
}

// browser is one headless Chromium for the tests of this file.
type browser struct {
	ctx context.Context
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		t.Skip("package web: chromium is not installed (apt-get install chromium); skipping the browser tests")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	// Start the browser now, so that a broken install fails here.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return &browser{ctx: bctx}
}

// page is one tab on the dashboard, recording the page's errors.
type page struct {
	t   *testing.T
	ctx context.Context
	srv *server

	mu   sync.Mutex
	errs []string
}

func (b *browser) open(t *testing.T, srv *server) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	p := &page{t: t, ctx: ctx, srv: srv}
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
	})
	// Registered after the tab's cancel, so it runs first: the page's errors
	// are read while the tab is still open.
	t.Cleanup(p.failOnErrors)
	if err := chromedp.Listen(ctx, p.record); err != nil {
		t.Fatalf("listen: %v", err)
	}
	return p
}

// record keeps every JavaScript error of the page: uncaught exceptions and
// rejections, console.error and console.assert, and browser log errors other
// than failed requests (an expected 401 is one), such as CSP violations.
func (p *page) record(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *cdpruntime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg = fmt.Sprintf("uncaught exception: %s", d.Text)
		if d.Exception != nil && d.Exception.Description != "" {
			msg += ": " + d.Exception.Description
		}
		msg += fmt.Sprintf(" (%s:%d)", d.URL, d.LineNumber+1)
	case *cdpruntime.EventConsoleAPICalled:
		if ev.Type != cdpruntime.ConsoleAPICalledTypeError && ev.Type != cdpruntime.ConsoleAPICalledTypeAssert {
			return
		}
		var parts []string
		for _, a := range ev.Args {
			if a.Description != "" {
				parts = append(parts, a.Description)
			} else {
				parts = append(parts, string(a.Value))
			}
		}
		msg = "console." + string(ev.Type) + ": " + strings.Join(parts, " ")
	case *log.EventEntryAdded:
		e := ev.Entry
		if e.Level != log.EntryLevelError || e.Source == log.EntrySourceNetwork {
			return
		}
		msg = fmt.Sprintf("browser log (%s): %s %s", e.Source, e.Text, e.URL)
	default:
		return
	}
	p.mu.Lock()
	p.errs = append(p.errs, msg)
	p.mu.Unlock()
}

func (p *page) failOnErrors() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, e := range p.errs {
		p.t.Errorf("JavaScript error in the page: %s", e)
	}
}

// do runs actions on the tab and fails the test on error, with a screenshot.
func (p *page) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.screenshot("failed-" + sanitize(what))
		p.t.Fatalf("%s: %v", what, err)
	}
}

// waitFor polls a JavaScript expression until it is truthy.
func (p *page) waitFor(what, expr string) {
	p.t.Helper()
	p.do("wait for "+what, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(waitLong)))
}

// idle waits until the dashboard has no reload running or pending, so that
// its elements stay in place for mouse actions.
func (p *page) idle() {
	p.t.Helper()
	p.waitFor("the dashboard idle", `document.querySelector('#dashboard').getAttribute('aria-busy') === 'false'`)
}

// click clicks the first element that matches sel once the dashboard is
// idle. A refresh may still replace the element between the query and the
// click; the click is then retried on the new element.
func (p *page) click(what, sel string) {
	p.t.Helper()
	var err error
	for range 3 {
		p.idle()
		if err = chromedp.Do(p.ctx, chromedp.Click(chromedp.CSS(sel))); err == nil {
			return
		}
	}
	p.screenshot("failed-" + sanitize(what))
	p.t.Fatalf("%s: %v", what, err)
}

// eval evaluates a JavaScript expression.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// login opens the dashboard (with query, e.g. "?refresh=2") and logs in as the admin.
func (p *page) login(query string) { p.loginAs("admin", query) }

// loginAs opens the dashboard and logs in as user, whose password is adminPassword.
func (p *page) loginAs(user, query string) {
	p.t.Helper()
	p.do("open the dashboard", chromedp.Navigate(p.srv.url+"/"+query), chromedp.WaitVisible(chromedp.CSS("#login-username")))
	p.do("log in",
		chromedp.SendKeys(chromedp.CSS("#login-username"), user),
		chromedp.SendKeys(chromedp.CSS("#login-password"), adminPassword),
		chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#providers [data-provider]")))
	// Live updates are subscribed before a test changes anything.
	p.waitFor("the live event stream", `document.querySelector('#live-status').classList.contains('on')`)
}

// screenshot saves the page as name.png.
func (p *page) screenshot(name string) string {
	p.t.Helper()
	buf, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	dir := filepath.Join(p.t.TempDir(), "screenshots")
	if os.Getenv(screenshotsEnv) != "" {
		dir = filepath.Join("testdata", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		p.t.Fatal(err)
	}
	path := filepath.Join(dir, name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		p.t.Fatal(err)
	}
	p.t.Logf("screenshot: %s", path)
	return path
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(s))
}

// card is a selector inside a provider's card.
func card(name, sel string) string {
	return fmt.Sprintf(`[data-provider=%q] %s`, name, sel)
}

// textOf is a JavaScript expression for the trimmed text of the first match of sel.
func textOf(sel string) string {
	return fmt.Sprintf(`(document.querySelector(%q)?.textContent ?? '').trim()`, sel)
}

// TestDashboard runs the acceptance tests of the dashboard in headless Chromium.
func TestDashboard(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() { testutil.CheckGoroutines(t, before) })
	b := newBrowser(t)

	t.Run("disable Agora, a new stream lands on ZEGOCLOUD and its count rises without a reload", func(t *testing.T) {
		srv := newServer(t)
		srv.addProviders()
		p := b.open(t, srv)
		p.login("?refresh=2")
		p.waitFor("both providers healthy", textOf(card("agora", `[data-stat="status"]`))+` === 'EXCELLENT' && `+
			textOf(card("zegocloud", `[data-stat="status"]`))+` === 'EXCELLENT'`)
		if got := eval[string](p, textOf(card("zegocloud", `[data-stat="active"]`))); got != "0" {
			t.Fatalf("ZEGOCLOUD active streams before = %q, want 0", got)
		}
		eval[bool](p, `(window.__noReload = true)`)

		p.click("disable Agora", card("agora", `input[name="enabled"]`))
		p.waitFor("Agora DISABLED", textOf(card("agora", `[data-stat="status"]`))+` === 'DISABLED'`)
		var got struct{ Enabled bool }
		srv.call("GET", "/api/streaming/providers/agora", nil, 200, &got)
		if got.Enabled {
			t.Fatal("the API still has Agora enabled")
		}

		if name := srv.startStream("room-1"); name != "zegocloud" {
			t.Fatalf("stream assigned to %s, want zegocloud", name)
		}
		p.waitFor("ZEGOCLOUD active streams 1", textOf(card("zegocloud", `[data-stat="active"]`))+` === '1'`)
		p.waitFor("the stream in the table", textOf(`#streams tbody [data-stat="provider"]`)+` === 'zegocloud'`)
		if !eval[bool](p, `window.__noReload === true`) {
			t.Error("the page reloaded")
		}
		p.screenshot("1-agora-disabled")
	})

	t.Run("a failing provider turns CRITICAL with the failover alert", func(t *testing.T) {
		srv := newServer(t)
		srv.addProviders()
		p := b.open(t, srv)
		p.login("") // default 30 s refresh: the change must arrive as a live event
		p.waitFor("Agora EXCELLENT", textOf(card("agora", `[data-stat="status"]`))+` === 'EXCELLENT'`)

		if err := srv.agora.Faults().Set(fault.ServerErr); err != nil {
			t.Fatal(err)
		}
		srv.check("agora", 3)
		p.waitFor("Agora CRITICAL", textOf(card("agora", `[data-stat="status"]`))+` === 'CRITICAL'`)
		p.waitFor("the failover alert", textOf(card("agora", ".failover-alert"))+`.includes('⚠ Automatic failover will activate')`)
		if got := eval[string](p, textOf(card("agora", ".failover-alert"))); !strings.Contains(got, "3 consecutive failures") {
			t.Errorf("alert = %q, want the failure count", got)
		}
		if got := eval[string](p, textOf(card("agora", `[data-stat="failures"]`))); got != "3" {
			t.Errorf("consecutive failures = %q, want 3", got)
		}
		if eval[bool](p, `!document.querySelector('#no-healthy-banner').hidden`) {
			t.Error("the no-healthy banner shows while ZEGOCLOUD is healthy")
		}
		p.waitFor("the transition in recent events", `[...document.querySelectorAll('#events li')].some(li => li.textContent.includes('agora:') && li.textContent.includes('→ CRITICAL'))`)
		p.screenshot("2-agora-critical")

		if err := srv.zego.Faults().Set(fault.ServerErr); err != nil {
			t.Fatal(err)
		}
		srv.check("zegocloud", 3)
		p.waitFor("ZEGOCLOUD CRITICAL", textOf(card("zegocloud", `[data-stat="status"]`))+` === 'CRITICAL'`)
		p.waitFor("the no-healthy banner", `!document.querySelector('#no-healthy-banner').hidden`)
		p.screenshot("2-no-healthy-provider")
	})

	t.Run("the priority swap on the dashboard changes where new streams go", func(t *testing.T) {
		srv := newServer(t)
		srv.addProviders()
		p := b.open(t, srv)
		p.login("")
		if name := srv.startStream("before-swap"); name != "agora" {
			t.Fatalf("before the swap: stream on %s, want agora", name)
		}
		// Keyboard: focus ZEGOCLOUD's "Move up" button and press Enter.
		p.do("move ZEGOCLOUD up",
			chromedp.Focus(chromedp.CSS(card("zegocloud", `button[data-action="up"]`))),
			chromedp.KeyEvent("\r"))
		p.waitFor("the confirmed order", textOf("#order-status")+`.includes('1. ZEGOCLOUD, 2. Agora')`)
		p.waitFor("ZEGOCLOUD first", `document.querySelector('#providers [data-provider]').dataset.provider === 'zegocloud'`)
		var list struct{ Providers []struct{ Name string } }
		srv.call("GET", "/api/streaming/providers", nil, 200, &list)
		if len(list.Providers) != 2 || list.Providers[0].Name != "zegocloud" {
			t.Fatalf("API order = %+v, want zegocloud first", list.Providers)
		}
		if name := srv.startStream("after-swap"); name != "zegocloud" {
			t.Fatalf("after the swap: stream on %s, want zegocloud", name)
		}
		p.screenshot("3-priority-swapped")

		// Drag Agora by its grip onto ZEGOCLOUD's heading: Agora goes first again.
		p.idle()
		p.do("drag Agora above ZEGOCLOUD", chromedp.DragAndDrop(chromedp.CSS(card("agora", ".grip")), chromedp.CSS(card("zegocloud", "h3"))))
		p.waitFor("the confirmed order after the drag", textOf("#order-status")+`.includes('1. Agora, 2. ZEGOCLOUD')`)
		if name := srv.startStream("after-drag"); name != "agora" {
			t.Fatalf("after the drag: stream on %s, want agora", name)
		}
	})

	t.Run("Check All updates every provider's last check and latency", func(t *testing.T) {
		srv := newServer(t)
		srv.addProviders()
		p := b.open(t, srv)
		p.login("")
		names := []string{"agora", "zegocloud"}
		before := map[string]string{}
		for _, n := range names {
			p.waitFor(n+" checked", `document.querySelector('`+card(n, `time[data-stat="lastCheck"]`)+`').dateTime !== ''`)
			before[n] = eval[string](p, `document.querySelector('`+card(n, `time[data-stat="lastCheck"]`)+`').dateTime`)
		}
		srv.agora.Faults().SetLatency(120 * time.Millisecond)
		srv.zego.Faults().SetLatency(120 * time.Millisecond)
		p.click("Check All", "#check-all")
		for _, n := range names {
			p.waitFor(n+" last check updated", fmt.Sprintf(`document.querySelector('%s').dateTime !== %q`, card(n, `time[data-stat="lastCheck"]`), before[n]))
			p.waitFor(n+" latency updated", fmt.Sprintf(`parseInt(%s, 10) >= 120`, textOf(card(n, `[data-stat="latency"]`))))
			title := eval[string](p, `document.querySelector('`+card(n, `time[data-stat="lastCheck"]`)+`').title`)
			if title == "" || title == "never" {
				t.Errorf("%s: last check has no exact time on hover (title %q)", n, title)
			}
		}
		p.screenshot("4-check-all")
	})

	t.Run("client-reported failures show on the card, in the window and today, beside consecutive failures", func(t *testing.T) {
		srv := newServer(t)
		srv.addProviders()
		var a struct {
			ID       string                `json:"id"`
			Provider struct{ Name string } `json:"provider"`
		}
		srv.call("POST", "/api/streams", map[string]any{"room": "lobby", "userId": "u1", "role": "publisher"}, 201, &a)
		if a.Provider.Name != "agora" {
			t.Fatalf("stream on %s, want agora", a.Provider.Name)
		}
		p := b.open(t, srv)
		p.login("?refresh=1")
		p.waitFor("Agora checked", textOf(card("agora", `[data-stat="status"]`))+` === 'EXCELLENT'`)
		if got := eval[string](p, textOf(card("agora", `[data-stat="clientFailures"]`))); got != "0" {
			t.Errorf("client failures before = %q, want 0", got)
		}
		for range 2 {
			srv.call("POST", "/api/streams/"+a.ID+"/failures", map[string]any{"provider": "agora", "stage": "connect", "code": "CONNECTION_LOST", "message": "lost"}, 202, nil)
		}
		p.waitFor("2 client failures in the window", textOf(card("agora", `[data-stat="clientFailures"]`))+` === '2'`)
		p.waitFor("2 client failures today", textOf(card("agora", `[data-stat="todayClientFailures"]`))+` === '2'`)
		if got := eval[string](p, textOf(card("agora", `[data-stat="todayStarted"]`))); got != "1" {
			t.Errorf("streams started today = %q, want 1", got)
		}
		if got := eval[string](p, textOf(card("agora", `[data-stat="failures"]`))); got != "0" {
			t.Errorf("consecutive probe failures = %q, want 0: the probes pass", got)
		}
		label := eval[string](p, `[...document.querySelectorAll('`+card("agora", "dt")+`')].map(d => d.textContent).find(t => t.startsWith('Client failures')) ?? ''`)
		if label != "Client failures (24h)" {
			t.Errorf("label = %q, want the window in it", label)
		}
		p.screenshot("5-client-failures")
	})

	t.Run("a provider never verified shows as not taking streams and gets none", func(t *testing.T) {
		srv := newServer(t)
		srv.addProviders()
		// Registered in the store behind the API's back, so never checked:
		// UNKNOWN. Put first in the order, it still takes no stream.
		fresh := sb.Provider{Name: "fresh", DisplayName: "Fresh", Kind: sb.KindZegocloud, Enabled: true, Priority: 3,
			Config:      sb.ProviderConfig{AppID: fmt.Sprint(zegoAppID), BaseURL: srv.zego.URL()},
			Credentials: sb.Credentials{ServerSecret: zegoSecret}}
		fresh.Normalize()
		if err := srv.store.CreateProvider(context.Background(), fresh, sb.AuditEntry{At: time.Now().UTC(), Action: "provider.create", Target: fresh.Name}); err != nil {
			t.Fatal(err)
		}
		srv.call("PUT", "/api/streaming/providers/priorities", map[string]any{"order": []string{"fresh", "agora", "zegocloud"}}, 200, nil)
		if name := srv.startStream("room-fresh"); name != "agora" {
			t.Fatalf("stream on %s, want agora: a never-verified provider must not take it", name)
		}
		p := b.open(t, srv)
		p.login("")
		p.waitFor("the fresh provider's card", textOf(card("fresh", `[data-stat="status"]`))+` === 'UNKNOWN'`)
		if got := eval[string](p, textOf(card("fresh", `[data-stat="usable"]`))); got != "no" {
			t.Errorf("never-checked provider: takes streams %q, want no", got)
		}
		label := eval[string](p, `document.querySelector('`+card("fresh", `[data-stat="usable"]`)+`').previousElementSibling.textContent`)
		if label != "Takes streams" {
			t.Errorf("label = %q, want Takes streams", label)
		}
		for _, n := range []string{"agora", "zegocloud"} {
			if got := eval[string](p, textOf(card(n, `[data-stat="usable"]`))); got != "yes" {
				t.Errorf("%s: takes streams %q, want yes", n, got)
			}
		}
		if eval[bool](p, `!document.querySelector('#no-healthy-banner').hidden`) {
			t.Error("the no-usable banner shows while Agora is usable")
		}
		p.screenshot("5-never-verified")

		// Verified by a check: the card follows the server's answer.
		srv.call("POST", "/api/streaming/providers/fresh/health-check", nil, 200, nil)
		p.waitFor("the fresh provider usable after its check", textOf(card("fresh", `[data-stat="usable"]`))+` === 'yes'`)
	})

	t.Run("overview: history charts, a decision trail, and a phone-width layout", func(t *testing.T) {
		srv := newServer(t)
		srv.recordHistory()
		srv.check("agora", 1)
		srv.check("zegocloud", 1)
		srv.startStream("lobby")
		srv.startStream("stage")
		p := b.open(t, srv)
		p.login("")
		p.click("open Agora's history", card("agora", `button[data-action="history"]`))
		p.waitFor("Agora's uptime and latency charts", `document.querySelectorAll('`+card("agora", `svg.chart polyline`)+`').length >= 3`)
		p.click("open ZEGOCLOUD's history", card("zegocloud", `button[data-action="history"]`))
		p.waitFor("ZEGOCLOUD's charts", `document.querySelectorAll('`+card("zegocloud", `svg.chart polyline`)+`').length >= 3`)
		p.click("ZEGOCLOUD over 7 days", card("zegocloud", `.segmented button:nth-child(2)`))
		p.waitFor("the 7-day window", `document.querySelector('`+card("zegocloud", `.segmented button:nth-child(2)`)+`').getAttribute('aria-pressed') === 'true' && document.querySelectorAll('`+card("zegocloud", `svg.chart polyline`)+`').length >= 3`)
		p.click("expand a stream", `#streams tbody button[aria-expanded]`)
		p.waitFor("the decision trail", `document.querySelector('#streams .trail li')?.textContent.includes('assign')`)
		p.waitFor("admin changes in recent events", `[...document.querySelectorAll('#events li')].some(li => li.textContent.includes('created provider'))`)
		shot := p.screenshot("5-overview")
		if shot != "" && os.Getenv(screenshotsEnv) != "" {
			b, err := os.ReadFile(shot)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join("..", "docs", "dashboard.png"), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}

		p.do("phone width", chromedp.EmulateViewport(390, 844))
		p.waitFor("a phone-width layout", `window.innerWidth === 390`)
		if w := eval[int](p, `document.documentElement.scrollWidth`); w > 390 {
			t.Errorf("at 390 px the page is %d px wide: it scrolls sideways", w)
		}
		p.screenshot("5-phone")
	})
}

// TestDashboardForms covers the provider form, session expiry and roles.
func TestDashboardForms(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() { testutil.CheckGoroutines(t, before) })
	b := newBrowser(t)

	t.Run("provider form: inline API errors, write-only credentials, and an expired session keeps what was typed", func(t *testing.T) {
		srv := newServer(t)
		srv.addProviders()
		p := b.open(t, srv)
		p.login("")
		p.do("open the add form", chromedp.Click(chromedp.CSS("#add-provider")), chromedp.WaitVisible(chromedp.CSS("#pf-name")))
		p.do("fill the form",
			chromedp.SendKeys(chromedp.CSS("#pf-name"), "agora-eu"),
			chromedp.SendKeys(chromedp.CSS("#pf-displayName"), "Agora EU"),
			chromedp.SendKeys(chromedp.CSS("#pf-appId"), "not-an-app-id"),
			chromedp.SendKeys(chromedp.CSS("#pf-baseUrl"), srv.agora.URL()),
			chromedp.SendKeys(chromedp.CSS("#pf-customerId"), agoraCustomer),
			chromedp.SendKeys(chromedp.CSS("#pf-customerSecret"), agoraSecret),
			chromedp.SendKeys(chromedp.CSS("#pf-appCertificate"), agoraCert),
			chromedp.Click(chromedp.CSS("#pf-save")))
		p.waitFor("the error next to App ID", `!document.querySelector('#pf-appId-error')?.hidden && `+textOf("#pf-appId-error")+`.includes('App ID')`)
		if got := eval[string](p, `document.querySelector('#pf-appId').getAttribute('aria-invalid') + ' ' + document.querySelector('#pf-appId').getAttribute('aria-describedby')`); !strings.Contains(got, "true") || !strings.Contains(got, "pf-appId-error") {
			t.Errorf("App ID input: aria-invalid and aria-describedby = %q", got)
		}
		p.screenshot("6-form-error")

		// The session ends while the form is open: the save fails with 401.
		srv.clock.Set(time.Now().UTC().Add(13 * time.Hour))
		p.do("fix the App ID and save", chromedp.SetValue(chromedp.CSS("#pf-appId"), agoraAppID), chromedp.Click(chromedp.CSS("#pf-save")))
		p.waitFor("the login page", `!document.querySelector('#login-view').hidden && `+textOf("#login-reason")+`.includes('session')`)
		srv.clock.Set(time.Time{})
		p.do("log in again",
			chromedp.SendKeys(chromedp.CSS("#login-password"), adminPassword),
			chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)))
		p.waitFor("the form back with what was typed", `document.querySelector('#provider-dialog').open && `+
			`document.querySelector('#pf-name').value === 'agora-eu' && document.querySelector('#pf-appId').value === '`+agoraAppID+`' && `+
			`document.querySelector('#pf-customerSecret').value !== ''`)
		p.click("save", "#pf-save")
		p.waitFor("the new card", `document.querySelector('[data-provider="agora-eu"]') !== null && !document.querySelector('#provider-dialog').open`)

		p.click("edit it", card("agora-eu", `button[data-action="edit"]`))
		p.do("the edit form", chromedp.WaitVisible(chromedp.CSS("#pf-displayName")))
		got := eval[[]string](p, `['#pf-customerId', '#pf-customerSecret', '#pf-appCertificate'].map(s => document.querySelector(s).value)`)
		for i, v := range got {
			if v != "" {
				t.Errorf("credential input %d is prefilled", i)
			}
		}
		if eval[bool](p, `document.querySelector('#pf-credentials-set').hidden`) {
			t.Error(`"credentials set" is not shown`)
		}
		if eval[string](p, `document.querySelector('#pf-appId').value`) != agoraAppID {
			t.Error("the App ID is not filled in for editing")
		}
		p.screenshot("6-form-edit")
		p.click("cancel", "#pf-cancel")
	})

	t.Run("a session that ends during an action returns to the login page without a script error", func(t *testing.T) {
		srv := newServer(t)
		srv.addProviders()
		p := b.open(t, srv)
		p.login("")
		srv.clock.Set(time.Now().UTC().Add(13 * time.Hour))
		// The history request answers 401: the login page shows, then the
		// action's own error handling runs with no session left.
		p.click("open Agora's history", card("agora", `button[data-action="history"]`))
		p.waitFor("the login page", `!document.querySelector('#login-view').hidden && `+textOf("#login-reason")+`.includes('session')`)
		srv.clock.Set(time.Time{})
		p.do("log in again",
			chromedp.SendKeys(chromedp.CSS("#login-password"), adminPassword),
			chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)))
		p.waitFor("the dashboard back", `!document.querySelector('#dashboard').hidden && document.querySelector('[data-provider="agora"]') !== null`)
		p.idle()
		// Script errors, such as rendering without a session, fail the test at cleanup.
	})

	t.Run("an admin can steer providers but not add or delete them", func(t *testing.T) {
		srv := newServer(t)
		srv.addProviders()
		if err := srv.store.CreateUser(context.Background(), sb.User{Username: "operator", Role: sb.RoleAdmin, PasswordHash: adminHash(), CreatedAt: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
		p := b.open(t, srv)
		p.loginAs("operator", "")
		if got := textOf("#user-role"); eval[string](p, got) != "admin" {
			t.Errorf("role shown = %q", eval[string](p, got))
		}
		if !eval[bool](p, `document.querySelector('#add-provider').hidden`) {
			t.Error("an admin sees Add provider")
		}
		if n := eval[int](p, `document.querySelectorAll('[data-action="delete"]').length`); n != 0 {
			t.Errorf("an admin sees %d Delete buttons", n)
		}
		if n := eval[int](p, `document.querySelectorAll('#providers input[name="enabled"], #providers [data-action="edit"], #providers [data-action="check"]').length`); n != 6 {
			t.Errorf("an admin sees %d of the 6 toggles, Edit and Check buttons", n)
		}
	})
}
