package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/client"
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
		{"one", []time.Duration{7 * ms}, gapStats{P50: 7, P95: 7, P99: 7, Max: 7}},
		{"nearest rank", []time.Duration{5 * ms, 1 * ms, 4 * ms, 2 * ms, 3 * ms}, gapStats{P50: 3, P95: 5, P99: 5, Max: 5}},
		{"twenty", msRange(20), gapStats{P50: 10, P95: 19, P99: 20, Max: 20}},
		{"two hundred", msRange(200), gapStats{P50: 100, P95: 190, P99: 198, Max: 200}},
		{"tenths", []time.Duration{1234567 * time.Nanosecond}, gapStats{P50: 1.2, P95: 1.2, P99: 1.2, Max: 1.2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := percentiles(tt.gaps); got != tt.want {
				t.Errorf("percentiles = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// msRange is n durations of n ms down to 1 ms.
func msRange(n int) []time.Duration {
	var g []time.Duration
	for i := n; i >= 1; i-- {
		g = append(g, time.Duration(i)*time.Millisecond)
	}
	return g
}

func TestSimulateUsage(t *testing.T) {
	tests := [][]string{
		{"simulate", "--streams", "0"},
		{"simulate", "--duration", "0s"},
		{"simulate", "extra"},
		{"simulate", "--server", "not a url", "--token", "x"},
		{"simulate", "--fail-provider", "agora-main", "--fail-at", "5s", "--duration", "5s"},
		{"simulate", "--procs", "0"},
		{"simulate", "--procs", "3", "--streams", "2"},
		{"simulate", "--fail-mode", "explode"},
		{"simulate", "--fail-share", "0"},
		{"simulate", "--fail-share", "1.5"},
		{"simulate", "--slow-delay", "0s"},
		{"simulate", "--stranded-after", "0s"},
		{"simulate", "--heartbeat", "0s"},
		{"simulate", "--start-concurrency", "0"},
		{"simulate", "--watchdog", "-1s"},
		{"simulate", "--fail-provider", "agora-main", "--fail-mode", "hang", "--watchdog", "0"},
		{"simulate", "--fail-provider", "agora-main", "--fail-mode", "slow", "--watchdog", "0"},
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
		if !poll(30*time.Second, func() bool { return strings.Contains(demoOut.String(), want) }) {
			t.Fatalf("the demo did not print %q:\n%s", want, demoOut.String())
		}
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

// TestSummarize aggregates the raw results of two processes.
func TestSummarize(t *testing.T) {
	ms := int64(time.Millisecond)
	fail := int64(1_000_000) * ms // the failure, in Unix ns
	move := func(after, gap int64, to string) simMove {
		return simMove{At: fail + after*ms, GapNs: gap * ms, From: "p1", To: to}
	}
	cfg := simConfig{procs: 2, failProvider: "p1", failMode: "partial", strandedAfter: 10 * time.Second}
	plan := simPlan{FailAt: fail, EndAt: fail + 20_000*ms}
	reports := []simReport{
		{Dropped: 3, Streams: []simStream{
			{Room: "a", Hit: true, Moves: []simMove{move(100, 80, "p2")}},
			{Room: "b", Hit: true, Moves: []simMove{move(300, 250, "p2")}},
			{Room: "c", Hit: true, FailedAt: fail + 5_000*ms, LimboMaxNs: 5_000 * ms},
			{Room: "d"}, // not hit: stays
		}},
		{Dropped: 1, Streams: []simStream{
			// A second move does not make the mass failover last longer.
			{Room: "e", Hit: true, Moves: []simMove{move(500, 40, "p3"), move(9_000, 20, "p2")}, LimboMaxNs: 11_000 * ms,
				Trail: []simState{{At: fail + 500*ms, State: "live on p3"}, {At: fail + 1_000*ms, State: "failing over from p3: x"}}},
			{Room: "f", LimboAtEnd: true, LimboMaxNs: 200 * ms, Trail: []simState{{At: fail - 1_500*ms, State: "live on p2"}}},
			// A move before the failure counts as a failover, not as one of its moves.
			{Room: "g", Moves: []simMove{move(-2_000, 30, "p2")}},
		}},
	}
	got := summarize(cfg, plan, reports)
	want := simResult{
		Streams: 7, Procs: 2, FailProvider: "p1", FailMode: "partial", Dropped: 4, Failovers: 5, Moved: 3, DroppedMoved: 3,
		Lost: 1, Stranded: 2, StrandedMaxMs: 11_000,
		GapMs:          gapStats{P50: 40, P95: 250, P99: 250, Max: 250},
		RecoveryMs:     gapStats{P50: 300, P95: 500, P99: 500, Max: 500},
		MovesPerSecond: 6, // 3 streams moved in the 500 ms from the failure to the last of them
		StrandedTrails: []strandedTrail{{Room: "e", States: []string{"+0.500 s live on p3", "+1.000 s failing over from p3: x"}},
			{Room: "f", States: []string{"-1.500 s live on p2"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("summarize =\n%+v, want\n%+v", got, want)
	}
}

// A stream keeps its last states from the moment it went live, no more than
// simTrailLen of them.
func TestSimTrackTrail(t *testing.T) {
	var tr simTrack
	at := time.Unix(1000, 0)
	tr.record(client.Connecting{Provider: "p1", Attempt: 1}, at)
	tr.record(client.Live{Provider: "p1"}, at)
	for i := range simTrailLen + 3 {
		tr.record(client.Reconnecting{Provider: "p1", Attempt: i + 1, Err: errors.New("refused")}, at.Add(time.Duration(i+1)*time.Second))
	}
	if len(tr.trail) != simTrailLen {
		t.Fatalf("%d states kept, want %d", len(tr.trail), simTrailLen)
	}
	if first, last := tr.trail[0], tr.trail[simTrailLen-1]; first.At != at.Add(4*time.Second).UnixNano() || !strings.Contains(last.State, "attempt 15 on p1") {
		t.Errorf("kept from %v (%s) to %s: want the last %d states", time.Unix(0, first.At), first.State, last.State, simTrailLen)
	}
}

// TestSimShares: streams and start slots are shared out among processes.
func TestSimShares(t *testing.T) {
	total := 0
	for i := range 4 {
		n := simShare(10, 4, i)
		if n != 3 && n != 2 {
			t.Errorf("process %d of 4 runs %d of 10 streams", i, n)
		}
		total += n
	}
	if total != 10 {
		t.Errorf("4 processes run %d of 10 streams", total)
	}
	for _, tt := range []struct{ procs, conc, want int }{{1, 64, 64}, {4, 64, 16}, {64, 64, 1}, {8, 4, 1}} {
		if got := (simConfig{procs: tt.procs, startConcurrency: tt.conc}).spec(1, 0).StartConcurrency; got != tt.want {
			t.Errorf("%d starts in flight over %d processes: %d each, want %d", tt.conc, tt.procs, got, tt.want)
		}
	}
}
