package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/internal/alerts"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

const cliSigningSecret = "cli-signing-secret-never-shown"

// TestAlertsEndToEnd runs the real server: a webhook channel and a rule
// made with the CLI, a test send, then a provider that fails its checks
// until CRITICAL: the receiver, which verifies every signature, gets the
// trigger from the dispatcher running on the (solo) leader.
func TestAlertsEndToEnd(t *testing.T) {
	var (
		mu     sync.Mutex
		bodies []alerts.Notification
		bad    int
	)
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if err := alerts.Verify(cliSigningSecret, r.Header.Get(alerts.SignatureHeader), b, time.Now(), 5*time.Minute); err != nil {
			bad++
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var n alerts.Notification
		_ = json.Unmarshal(b, &n)
		bodies = append(bodies, n)
	}))
	t.Cleanup(rc.Close)
	e := startServer(t)

	ch := writeFile(t, "channel.json", `{"name":"oncall","kind":"webhook","config":{"url":"`+rc.URL+`/hook"},
		"secrets":{"signingSecret":"`+cliSigningSecret+`"}}`)
	if out := e.mustCLI("alerts", "channels", "add", "-f", ch); out != "alert channel oncall created\n" {
		t.Errorf("channels add: %q", out)
	}
	rule := writeFile(t, "rule.json", `{"name":"down","events":["provider.critical"],"channels":["oncall"],"repeatInterval":"1h"}`)
	e.mustCLI("alerts", "rules", "add", "-f", rule)
	if out := e.mustCLI("alerts", "channels"); !strings.Contains(out, "oncall") || !strings.Contains(out, "signingSecret") || strings.Contains(out, cliSigningSecret) {
		t.Errorf("channels list:\n%s", out)
	}
	if out := e.mustCLI("alerts", "rules", "list"); !strings.Contains(out, "down") || !strings.Contains(out, "provider.critical") {
		t.Errorf("rules list:\n%s", out)
	}
	if out := e.mustCLI("alerts", "test", "oncall"); !strings.HasPrefix(out, "test notification sent to oncall") {
		t.Errorf("test: %q", out)
	}
	// A test send the receiver refuses exits with an error.
	mu.Lock()
	bad = 0
	mu.Unlock()
	bogus := writeFile(t, "bogus.json", `{"kind":"webhook","config":{"url":"`+rc.URL+`/hook"},"secrets":{"signingSecret":"another-secret-0123456789"}}`)
	e.mustCLI("alerts", "channels", "set", "oncall", "-f", bogus)
	if _, _, err := e.cli("alerts", "test", "oncall"); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("test to a refusing receiver: %v", err)
	}
	restore := writeFile(t, "restore.json", `{"kind":"webhook","config":{"url":"`+rc.URL+`/hook"},"secrets":{"signingSecret":"`+cliSigningSecret+`"}}`)
	e.mustCLI("alerts", "channels", "set", "oncall", "-f", restore)

	// A provider whose probe fails: checked until it is CRITICAL.
	e.mustCLI("providers", "add", "-f", writeFile(t, "p.json", `{"name":"dead","kind":"http","config":{"url":"http://127.0.0.1:9/health"}}`))
	testutil.Eventually(t, "the trigger of dead's incident", func() bool {
		_, _, _ = e.cli("check", "dead")
		mu.Lock()
		defer mu.Unlock()
		for _, n := range bodies {
			if n.Event == "provider.critical" && n.Provider == "dead" && n.Transition == "trigger" {
				return true
			}
		}
		return false
	})
	// The receiver has the trigger before the dispatcher records its
	// answer in the ledger: wait for the ledger, then check every column.
	var out string
	wants := []string{"oncall", "down", "trigger", "sent", "test", "failed", "401"}
	testutil.Eventually(t, "the trigger's delivery in the ledger", func() bool {
		out = e.mustCLI("alerts", "deliveries")
		return strings.Contains(out, "trigger")
	})
	for _, want := range wants {
		if !strings.Contains(out, want) {
			t.Errorf("deliveries lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(e.logs.String(), cliSigningSecret) {
		t.Error("the server logged the signing secret")
	}
	// Bad input is refused before anything is stored.
	if _, _, err := e.cli("alerts", "rules", "add", "-f", writeFile(t, "r.json", `{"name":"x","events":["provider.critical"],"channels":["oncall"],"repeatInterval":"10s"}`)); err == nil || !strings.Contains(err.Error(), "repeatInterval") {
		t.Errorf("repeat interval 10s: %v", err)
	}
	if _, _, err := e.cli("alerts", "channels", "frobnicate"); err == nil {
		t.Error("unknown sub-verb accepted")
	}
}
