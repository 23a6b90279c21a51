package main

import (
	"strings"
	"testing"
	"time"
)

func TestMaintenanceCLI(t *testing.T) {
	e := startServer(t)
	e.mustCLI("providers", "add", "--name", "web", "--kind", "http", "--url", "http://127.0.0.1:9/health", "--priority", "1")
	if out, errOut, err := e.cli("maintenance", "list"); err != nil || out != "" || errOut != "No maintenance windows.\n" {
		t.Errorf("list of none: stdout %q, stderr %q, err %v", out, errOut, err)
	}
	out := e.mustCLI("maintenance", "add", "--provider", "web", "--for", "2h", "--reason", "vendor upgrade", "--drain", "--drain-rate", "2.5")
	for _, want := range []string{"PROVIDER", "web", "active", "2.5/s", "vendor upgrade"} {
		if !strings.Contains(out, want) {
			t.Errorf("add output lacks %q:\n%s", want, out)
		}
	}
	start := time.Now().Add(24 * time.Hour).UTC().Truncate(time.Second)
	var w struct {
		ID, Provider, State, Reason string
		Start, End                  time.Time
		Drain                       bool
	}
	e.mustJSON(&w, "maintenance", "add", "--provider", "web", "--start", start.Format(time.RFC3339),
		"--end", start.Add(time.Hour).Format(time.RFC3339), "--reason", "planned")
	if w.ID == "" || w.State != "upcoming" || !w.Start.Equal(start) || !w.End.Equal(start.Add(time.Hour)) || w.Drain {
		t.Errorf("add -o json = %+v", w)
	}
	out = e.mustCLI("maintenance", "list", "--state", "upcoming")
	if !strings.Contains(out, w.ID) || strings.Contains(out, "vendor upgrade") {
		t.Errorf("list --state upcoming:\n%s", out)
	}
	out = e.mustCLI("maintenance", "end", w.ID)
	if !strings.Contains(out, "past") {
		t.Errorf("end:\n%s", out)
	}
	out = e.mustCLI("maintenance", "list", "--state", "past", "--provider", "web")
	if !strings.Contains(out, w.ID) {
		t.Errorf("list --state past:\n%s", out)
	}

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"no provider", []string{"maintenance", "add", "--for", "1h", "--reason", "x"}, "usage"},
		{"both end and for", []string{"maintenance", "add", "--provider", "web", "--for", "1h", "--end", "2030-01-01T00:00:00Z", "--reason", "x"}, "usage"},
		{"rate without drain", []string{"maintenance", "add", "--provider", "web", "--for", "1h", "--reason", "x", "--drain-rate", "3"}, "--drain-rate needs --drain"},
		{"bad state", []string{"maintenance", "list", "--state", "soon"}, "--state must be"},
		{"unknown provider", []string{"maintenance", "add", "--provider", "ghost", "--for", "1h", "--reason", "x"}, "provider"},
		{"end in the past", []string{"maintenance", "add", "--provider", "web", "--end", "2001-01-01T00:00:00Z", "--reason", "x"}, "end"},
		{"rate too high", []string{"maintenance", "add", "--provider", "web", "--for", "1h", "--reason", "x", "--drain", "--drain-rate", "1000"}, "drainRate"},
		{"end unknown", []string{"maintenance", "end", "mw_0000000000000000"}, "no maintenance window"},
		{"end without id", []string{"maintenance", "end"}, "usage"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			_, errOut, err := e.cli(c.args...)
			if err == nil || !strings.Contains(err.Error()+errOut, c.want) {
				t.Errorf("err %v, stderr %q: want an error naming %q", err, errOut, c.want)
			}
		})
	}
	e.t = t
	// A client token may not schedule windows.
	var tok struct{ Token string }
	e.mustJSON(&tok, "tokens", "create", "--name", "app", "--role", "client")
	if _, _, err := e.cliAs(tok.Token, "maintenance", "add", "--provider", "web", "--for", "1h", "--reason", "x"); err == nil || !strings.Contains(err.Error(), "403") && !strings.Contains(strings.ToLower(err.Error()), "forbidden") {
		t.Errorf("client token: %v, want forbidden", err)
	}
}
