package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/internal/alerts"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

// TestDashboardAlerts shows channels, rules and deliveries, and sends test
// notifications from the page: one to a receiver that verifies the
// signature and takes it, one to a receiver that refuses it.
func TestDashboardAlerts(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() { testutil.CheckGoroutines(t, before) })
	b := newBrowser(t)
	const secret = "browser-signing-secret-0123"
	var got atomic.Int64
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := alerts.Verify(secret, r.Header.Get(alerts.SignatureHeader), body, time.Now(), time.Minute); err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		got.Add(1)
	}))
	t.Cleanup(ok.Close)
	refuse := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
	}))
	t.Cleanup(refuse.Close)

	srv := newServer(t)
	srv.addProviders()
	srv.call("POST", "/api/alerts/channels", map[string]any{"name": "oncall", "kind": "webhook",
		"config": map[string]any{"url": ok.URL + "/hook"}, "secrets": map[string]any{"signingSecret": secret}}, 201, nil)
	srv.call("POST", "/api/alerts/channels", map[string]any{"name": "broken", "kind": "webhook",
		"config": map[string]any{"url": refuse.URL + "/hook"}, "secrets": map[string]any{"signingSecret": secret}}, 201, nil)
	srv.call("POST", "/api/alerts/rules", map[string]any{"name": "down", "events": []string{"provider.critical"},
		"channels": []string{"oncall"}, "repeatInterval": "30m"}, 201, nil)

	p := b.open(t, srv)
	p.login("")
	p.waitFor("the channels", textOf(`#alert-channels [data-channel="oncall"] td`)+` === 'oncall'`)
	p.waitFor("the rule", textOf(`#alert-rules [data-rule="down"] td:nth-child(6)`)+` === '30m0s'`)
	if eval[bool](p, `document.body.textContent.includes('`+secret+`')`) {
		t.Fatal("the page shows the signing secret")
	}
	p.click("test oncall", `#alert-channels [data-channel="oncall"] button[data-action="test"]`)
	p.waitFor("the test sent", textOf(`#alert-channels [data-channel="oncall"] [data-stat="test"]`)+`.startsWith('sent')`)
	if got.Load() != 1 {
		t.Errorf("the receiver took %d notifications, want 1", got.Load())
	}
	p.click("test broken", `#alert-channels [data-channel="broken"] button[data-action="test"]`)
	p.waitFor("the test refused", textOf(`#alert-channels [data-channel="broken"] [data-stat="test"]`)+` === 'failed: answered 400'`)
	p.waitFor("both attempts listed", `document.querySelectorAll('#alert-deliveries tbody tr').length === 2`)
	if o := eval[string](p, textOf(`#alert-deliveries tbody tr [data-stat="outcome"]`)); o != "failed" {
		t.Errorf("newest attempt outcome = %q, want failed", o)
	}
	p.screenshot("alerts")
}
