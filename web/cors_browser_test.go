package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboardhq/switchboard/internal/httpapi"
)

// appPage serves a blank page: the origin of a web app that calls the API.
func appPage(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "<!doctype html><title>app</title><p>app</p>")
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// tab opens a tab of b on url. Unlike the dashboard's pages it does not fail
// the test on the page's console errors: a request CORS blocks logs one.
func (b *browser) tab(t *testing.T, url string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	t.Cleanup(func() { cancelTimeout(); cancel() })
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	return ctx
}

// run evaluates a script in ctx, awaiting the promise it gives, and decodes
// its JSON result into out.
func run(t *testing.T, ctx context.Context, what, script string, out any) {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string]("("+script+")().then(JSON.stringify)", chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if err := json.Unmarshal([]byte(s), out); err != nil {
		t.Fatalf("%s: %v: %s", what, err, s)
	}
}

// TestCORSFromAnotherOrigin serves a web app from one loopback origin and
// the API from another, started with --cors-origins naming the app: in
// headless Chromium the app reads the configuration (its ETag, a 304),
// starts a stream, sends a heartbeat, reads a 4xx naming its field, and reads
// the event stream with fetch. A page of another origin can do none of it,
// and the dashboard's session cookie does not make the API readable to the
// allowed origin either.
func TestCORSFromAnotherOrigin(t *testing.T) {
	b := newBrowser(t)
	app, other := appPage(t), appPage(t)
	srv := newServerWith(t, func(o *httpapi.Options) { o.CORSOrigins = []string{app} })
	srv.addProviders()
	var tok struct {
		Token string `json:"token"`
	}
	srv.call("POST", "/api/auth/tokens", map[string]string{"name": "web-app", "role": "client"}, 201, &tok)
	consts := fmt.Sprintf("const api = %q, auth = {Authorization: 'Bearer ' + %q};\n", srv.url, tok.Token)

	// The allowed origin: the SDK's calls.
	tab := b.tab(t, app+"/")
	var got struct {
		Config, NotModified, Start, Heartbeat, Failure, Bad int
		ETag, RequestID, Provider, BadField                 string
	}
	run(t, tab, "the app's calls", `async () => {`+consts+`
		const json = {...auth, 'Content-Type': 'application/json'};
		const out = {};
		const cfg = await fetch(api + '/api/streaming/config', {headers: auth});
		out.config = cfg.status; out.eTag = cfg.headers.get('ETag') || ''; out.requestId = cfg.headers.get('X-Request-Id') || '';
		await cfg.json();
		const again = await fetch(api + '/api/streaming/config', {headers: {...auth, 'If-None-Match': out.eTag}});
		out.notModified = again.status;
		const st = await fetch(api + '/api/streams', {method: 'POST', headers: json,
			body: JSON.stringify({room: 'web-room', userId: 'web-user', role: 'publisher', idempotencyKey: 'web-app-start-1'})});
		out.start = st.status;
		const a = await st.json();
		out.provider = a.provider.name;
		out.heartbeat = (await fetch(api + '/api/streams/' + a.id + '/heartbeat', {method: 'POST', headers: json, body: '{}'})).status;
		out.failure = (await fetch(api + '/api/streams/' + a.id + '/failures', {method: 'POST', headers: json,
			body: JSON.stringify({provider: a.provider.name, stage: 'media', code: 'connection_lost'})})).status;
		const bad = await fetch(api + '/api/streams', {method: 'POST', headers: json, body: JSON.stringify({room: 'web-room', userId: 'web-user', role: 'nobody'})});
		out.bad = bad.status; out.badField = (await bad.json()).error.field;
		return out;
	}`, &got)
	if got.Config != 200 || got.ETag == "" || got.RequestID == "" || got.NotModified != 304 {
		t.Errorf("configuration from the app: %+v", got)
	}
	if got.Start != 201 || got.Provider != "agora" || got.Heartbeat != 200 || got.Failure/100 != 2 {
		t.Errorf("stream calls from the app: %+v", got)
	}
	if got.Bad != 400 || got.BadField != "role" {
		t.Errorf("a bad start from the app: %d naming %q, want 400 naming role", got.Bad, got.BadField)
	}

	// The event stream, read with fetch as the SDK does.
	run(t, tab, "open the event stream", `async () => {`+consts+`
		window.sse = {status: 0, type: '', text: '', err: ''};
		window.sseStop = new AbortController();
		(async () => {
			try {
				const r = await fetch(api + '/api/events', {signal: window.sseStop.signal,
					headers: {...auth, Accept: 'text/event-stream', 'Cache-Control': 'no-cache'}});
				window.sse.status = r.status; window.sse.type = r.headers.get('Content-Type') || '';
				const rd = r.body.getReader(), dec = new TextDecoder();
				for (;;) {
					const {value, done} = await rd.read();
					if (done) break;
					window.sse.text += dec.decode(value, {stream: true});
				}
			} catch (e) { if (e.name !== 'AbortError') window.sse.err = String(e); }
		})();
		return {};
	}`, &struct{}{})
	poll(t, tab, "the event stream open", `window.sse.status === 200 || window.sse.err !== ''`)
	var sse struct {
		Status    int
		Type, Err string
	}
	run(t, tab, "the event stream", `async () => window.sse`, &sse)
	if sse.Status != 200 || sse.Type != "text/event-stream" || sse.Err != "" {
		t.Fatalf("event stream from the app: %+v", sse)
	}
	srv.call("PUT", "/api/streaming/providers/priorities", map[string]any{"order": []string{"zegocloud", "agora"}}, 200, nil)
	poll(t, tab, "providers.reordered on the event stream", `window.sse.text.includes('providers.reordered')`)
	run(t, tab, "close the event stream", `async () => { window.sseStop.abort(); return {}; }`, &struct{}{})

	// Another origin: every call fails in the browser, and the start it
	// tried never reached the server (its preflight got no CORS answer).
	var blocked map[string]string
	run(t, b.tab(t, other+"/"), "the other origin's calls", `async () => {`+consts+`
		const out = {};
		const tries = {
			config: () => fetch(api + '/api/streaming/config', {headers: auth}),
			health: () => fetch(api + '/api/streaming/providers/agora/health'),
			events: () => fetch(api + '/api/events', {headers: {...auth, Accept: 'text/event-stream'}}),
			start: () => fetch(api + '/api/streams', {method: 'POST', headers: {...auth, 'Content-Type': 'application/json'},
				body: JSON.stringify({room: 'other-room', userId: 'other-user', role: 'publisher'})}),
		};
		for (const [k, f] of Object.entries(tries)) {
			try { const r = await f(); out[k] = 'read ' + r.status; } catch (e) { out[k] = e.name; }
		}
		return out;
	}`, &blocked)
	for _, k := range []string{"config", "health", "events", "start"} {
		if blocked[k] != "TypeError" {
			t.Errorf("%s from another origin: %q, want a TypeError (blocked)", k, blocked[k])
		}
	}
	var list struct {
		Streams []struct{ Room string } `json:"streams"`
	}
	srv.call("GET", "/api/streams?status=active", nil, 200, &list)
	if len(list.Streams) != 1 || list.Streams[0].Room != "web-room" {
		t.Errorf("active streams %+v, want only the app's", list.Streams)
	}

	// The dashboard's session: once logged in on the server's origin, its
	// cookie goes with a credentialed request from the app (same site), but
	// the answer stays unreadable there: no Allow-Credentials.
	dash := b.open(t, srv)
	dash.login("")
	var own struct{ Me int }
	run(t, dash.ctx, "the dashboard's own call", `async () => ({me: (await fetch('/api/auth/me')).status})`, &own)
	if own.Me != 200 {
		t.Fatalf("the dashboard's /api/auth/me: %d, want 200 (logged in)", own.Me)
	}
	var cookie struct{ WithCookie, Without string }
	run(t, tab, "the app with the dashboard's cookie", `async () => {
		const api = `+fmt.Sprintf("%q", srv.url)+`, out = {};
		try { const r = await fetch(api + '/api/auth/me', {credentials: 'include'}); out.withCookie = 'read ' + r.status; } catch (e) { out.withCookie = e.name; }
		try { const r = await fetch(api + '/api/auth/me'); out.without = 'read ' + r.status; } catch (e) { out.without = e.name; }
		return out;
	}`, &cookie)
	if cookie.WithCookie != "TypeError" || cookie.Without != "read 401" {
		t.Errorf("/api/auth/me from the app: with the cookie %q (want TypeError), without %q (want read 401)", cookie.WithCookie, cookie.Without)
	}
}

// poll waits until a JavaScript expression is truthy in ctx.
func poll(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(waitLong))); err != nil {
		t.Fatalf("wait for %s: %v", what, err)
	}
}
