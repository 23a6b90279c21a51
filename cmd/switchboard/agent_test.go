package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/internal/testutil"
)

// regionalView is the part of a provider's regional health the agent test
// reads.
type regionalView struct {
	Status    string
	Stale     bool
	Usable    bool
	Source    string
	LastCheck *time.Time
}

func regionalOf(t *testing.T, url, name string) map[string]regionalView {
	t.Helper()
	var v struct{ RegionalHealth map[string]regionalView }
	if st := call(t, "GET", url+"/api/streaming/providers/"+name, serveToken, nil, &v); st != 200 {
		t.Fatalf("get %s: %d", name, st)
	}
	return v.RegionalHealth
}

// TestAgentReportsRegionalHealth runs `switchboard agent` against a real
// `switchboard serve` (its own probes counting for --region eu-central) with
// a loopback fake of Agora: the agent's region appears in the provider's
// regional health beside the server's, each probed once at start; once the
// agent stops (cleanly, leaving no goroutine), its region goes stale after a
// minute (three 1 s intervals are less than the minimum) and is never shown
// healthy again.
func TestAgentReportsRegionalHealth(t *testing.T) {
	if testing.Short() {
		t.Skip("waits a minute for the agent's region to go stale")
	}
	before := runtime.NumGoroutine()
	dir := t.TempDir()
	env := map[string]string{"SWITCHBOARD_BOOTSTRAP_TOKEN": serveToken}
	sctx, stopServer := context.WithCancel(context.Background())
	logs := &testutil.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(sctx, []string{"serve", "--addr", "127.0.0.1:0", "--region", "eu-central", "--db", "sqlite:" + filepath.Join(dir, "sb.db")},
			func(k string) string { return env[k] }, logs, logs)
	}()
	// Registered first, so run last: after the fake provider closed.
	t.Cleanup(func() {
		stopServer()
		if err := <-done; err != nil {
			t.Errorf("serve returned %v", err)
		}
		if strings.Contains(logs.String(), serveSecret) || strings.Contains(logs.String(), serveCustID) {
			t.Error("the server's log holds a credential")
		}
		testutil.CheckGoroutines(t, before)
	})
	url := announcedURL(t, logs, done)
	waitHealthy(t, url, done)
	evs := subscribe(t, url)
	fake := agoraFake(t)

	body := agoraBody("agora", fake.URL())
	body["healthCheck"] = map[string]any{"interval": "1s", "timeout": "500ms"}
	if st := call(t, "POST", url+"/api/streaming/providers", serveToken, body, nil); st != 201 {
		t.Fatalf("create provider: %d", st)
	}
	// The agent's token, minted with the token CLI.
	var out, errOut bytes.Buffer
	cliEnv := map[string]string{"SWITCHBOARD_URL": url, "SWITCHBOARD_TOKEN": serveToken}
	if err := run(context.Background(), []string{"tokens", "create", "--name", "fra-agent", "--role", "agent"}, func(k string) string { return cliEnv[k] }, &out, &errOut); err != nil {
		t.Fatalf("tokens create: %v\n%s", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	agentToken := lines[len(lines)-1]
	if !strings.Contains(out.String(), "agent") || !strings.HasPrefix(agentToken, "sbt_") {
		t.Fatalf("tokens create printed %q", out.String())
	}

	actx, stopAgent := context.WithCancel(context.Background())
	agentLogs := &testutil.Buffer{}
	agentDone := make(chan error, 1)
	agentEnv := map[string]string{"SWITCHBOARD_TOKEN": agentToken}
	go func() {
		agentDone <- run(actx, []string{"agent", "--server", url, "--region", "eu-west", "--log-level", "debug"},
			func(k string) string { return agentEnv[k] }, agentLogs, agentLogs)
	}()
	var rh map[string]regionalView
	if !poll(30*time.Second, func() bool {
		rh = regionalOf(t, url, "agora")
		return rh["eu-west"].Usable && rh["eu-central"].Usable
	}) {
		stopAgent()
		t.Fatalf("regional health = %+v; want eu-west from the agent and eu-central from the server, both usable\nagent:\n%s", rh, agentLogs)
	}
	if rh["eu-west"].Source != "agent:fra-agent" || rh["eu-central"].Source != "server" {
		t.Errorf("sources = %q, %q; want agent:fra-agent and server", rh["eu-west"].Source, rh["eu-central"].Source)
	}

	// The CLI shows the regions.
	out.Reset()
	if err := run(context.Background(), []string{"providers", "list"}, func(k string) string { return cliEnv[k] }, &out, &errOut); err != nil {
		t.Fatalf("providers list: %v", err)
	}
	if !strings.Contains(out.String(), "REGIONS") || !regexp.MustCompile(`eu-central=(EXCELLENT|HEALTHY) eu-west=(EXCELLENT|HEALTHY)`).MatchString(out.String()) {
		t.Errorf("providers list does not show the regions:\n%s", out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"providers", "get", "agora"}, func(k string) string { return cliEnv[k] }, &out, &errOut); err != nil {
		t.Fatalf("providers get: %v", err)
	}
	if !regexp.MustCompile(`Region eu-west:\s+(EXCELLENT|HEALTHY), uptime 100.00%, latency \d+ms, last check .*, from agent:fra-agent`).MatchString(out.String()) {
		t.Errorf("providers get does not show the agent's region:\n%s", out.String())
	}

	stopAgent()
	select {
	case err := <-agentDone:
		if err != nil {
			t.Fatalf("agent returned %v after cancel", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("agent did not stop")
	}
	for _, s := range []string{serveSecret, serveCustID, agentToken} {
		if strings.Contains(agentLogs.String(), s) {
			t.Error("the agent's log holds a secret")
		}
	}
	stoppedAt := time.Now()
	if !poll(90*time.Second, func() bool {
		rh = regionalOf(t, url, "agora")
		if w := rh["eu-west"]; w.Usable && time.Since(stoppedAt) > 62*time.Second {
			t.Fatalf("eu-west usable %s after the agent stopped: %+v", time.Since(stoppedAt), w)
		}
		return rh["eu-west"].Stale
	}) {
		t.Fatalf("eu-west = %+v 90 s after the agent stopped; want stale", rh["eu-west"])
	}
	if w := rh["eu-west"]; w.Status != "UNKNOWN" || w.Usable {
		t.Errorf("stale eu-west = %+v; want UNKNOWN, not usable", w)
	}
	if c := rh["eu-central"]; !c.Usable || c.Stale {
		t.Errorf("eu-central = %+v; want the server's own probes still fresh", c)
	}

	// The leader told each change of eu-west once: its first report, and
	// its going stale, from the agent's last report.
	type change struct{ Provider, Region, From, To, Source string }
	var west []change
	for end := time.After(5 * time.Second); ; {
		var e sseEvent
		select {
		case e = <-evs:
		case <-end:
		}
		if e.typ == "" {
			break
		}
		if e.typ != "provider.regional" {
			continue
		}
		for _, secret := range []string{serveSecret, serveCustID, agentToken} {
			if strings.Contains(string(e.data), secret) {
				t.Errorf("a provider.regional event holds a secret: %s", e.data)
			}
		}
		var c change
		if err := json.Unmarshal(e.data, &c); err != nil {
			t.Fatal(err)
		}
		if c.Region == "eu-west" {
			west = append(west, c)
		}
	}
	var stale int
	for _, c := range west {
		if c.To == "stale" {
			stale++
			if c.Provider != "agora" || c.From == "stale" || c.Source != "agent:fra-agent" {
				t.Errorf("stale change = %+v", c)
			}
		}
	}
	if stale != 1 || len(west) < 2 || west[0].From != "UNKNOWN" {
		t.Errorf("eu-west changes = %+v; want one from UNKNOWN at the first report, and one to stale", west)
	}
}
