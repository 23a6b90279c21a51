package main

import (
	"bytes"
	"context"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/internal/testutil"
)

func TestPercentiles(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name string
		gaps []time.Duration
		want gapStats
	}{
		{"none", nil, gapStats{}},
		{"one", []time.Duration{7 * ms}, gapStats{P50: 7, P95: 7, Max: 7}},
		{"nearest rank", []time.Duration{5 * ms, 1 * ms, 4 * ms, 2 * ms, 3 * ms}, gapStats{P50: 3, P95: 5, Max: 5}},
		{"twenty", func() []time.Duration {
			var g []time.Duration
			for i := 20; i >= 1; i-- {
				g = append(g, time.Duration(i)*ms)
			}
			return g
		}(), gapStats{P50: 10, P95: 19, Max: 20}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentiles(tt.gaps); got != tt.want {
				t.Errorf("percentiles = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestSimulateUsage(t *testing.T) {
	tests := [][]string{
		{"simulate", "--streams", "0"},
		{"simulate", "--duration", "0s"},
		{"simulate", "extra"},
		{"simulate", "--server", "not a url", "--token", "x"},
		{"simulate", "--fail-provider", "agora-main", "--fail-at", "5s", "--duration", "5s"},
	}
	for _, args := range tests {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := run(context.Background(), args, func(string) string { return "" }, &out, &errOut)
			if exitCode(err) != 2 {
				t.Errorf("exit code %d (err %v), want 2", exitCode(err), err)
			}
		})
	}
}

// TestDemoAndSimulate runs the demo (server, fakes, streams and chaos) and
// the simulate command against it, failing the primary provider.
func TestDemoAndSimulate(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole demo")
	}
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	type endpoint struct{ url, token string }
	ready := make(chan endpoint, 1)
	done := make(chan error, 1)
	var demoOut, demoErr testutil.Buffer
	go func() {
		done <- runDemo(ctx, demoOptions{addr: "127.0.0.1:0", streams: 2, chaos: true, chaosEvery: time.Hour, logLevel: "warn"},
			&demoOut, &demoErr, func(url, token string) { ready <- endpoint{url, token} })
	}()
	var ep endpoint
	select {
	case ep = <-ready:
	case err := <-done:
		t.Fatalf("demo returned %v before it was ready\n%s", err, demoErr.String())
	case <-time.After(60 * time.Second):
		t.Fatal("demo not ready")
	}
	for _, want := range []string{"dashboard    http://", "admin login  admin / ", "live on agora-main"} {
		waitFor(t, func() bool { return strings.Contains(demoOut.String(), want) })
	}

	var out, errOut bytes.Buffer
	err := run(ctx, []string{"simulate", "--server", ep.url, "--token", ep.token, "--streams", "20", "--duration", "3s",
		"--fail-provider", "agora-main", "--fail-at", "1s", "--connect-delay", "5ms", "--json"},
		func(string) string { return "" }, &out, &errOut)
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var res struct {
		Streams   int `json:"streams"`
		Failovers int `json:"failovers"`
		Lost      int `json:"lost"`
		GapMs     struct {
			P50, P95, Max *float64
		} `json:"gapMs"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line is not the JSON summary: %v\n%s", err, out.String())
	}
	if res.Streams != 20 || res.Failovers != 20 || res.Lost != 0 {
		t.Errorf("summary %+v, want 20 streams, 20 failovers, 0 lost\n%s", res, out.String())
	}
	if res.GapMs.P50 == nil || res.GapMs.P95 == nil || res.GapMs.Max == nil || *res.GapMs.Max <= 0 {
		t.Errorf("gapMs incomplete: %s", lines[len(lines)-1])
	}
	t.Logf("simulate:\n%s", out.String())

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("demo returned %v after cancel", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("demo did not stop")
	}
	if strings.Contains(demoErr.String(), ep.token) {
		t.Error("the demo logged the SDK token")
	}
	testutil.CheckGoroutines(t, before)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
