package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/client/admin"
	"github.com/switchboardhq/switchboard/internal/providers/fakes"
)

// routingSim runs simulate with args against e and returns its summary.
func routingSim(t *testing.T, e *cliEnv, token string, args ...string) simRoutingResult {
	t.Helper()
	var out, errOut bytes.Buffer
	args = append([]string{"simulate", "--server", e.url, "--token", token, "--admin-token", cliBootstrap, "--connect-delay", "1ms", "--json"}, args...)
	if err := run(context.Background(), args, func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatalf("simulate: %v\n%s", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var res simRoutingResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line is not the JSON summary: %v\n%s", err, out.String())
	}
	t.Logf("simulate %s:\n%s", strings.Join(args[7:], " "), out.String())
	return res
}

// TestRoutingSimulation runs the routing simulation against a server with
// the fake providers agora-main (priority 1) and zego-main (priority 2):
// commit holds its shares, and optimized moves the new streams of the one
// region where agora-main degrades, and of that region only.
func TestRoutingSimulation(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a simulation of about 40 s")
	}
	e := startServer(t)
	ctx := context.Background()
	world, err := fakes.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer world.Close()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	ac, err := admin.New(e.url, cliBootstrap, &http.Client{Transport: tr, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := registerProviders(ctx, ac, world); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.UpdateProvider(ctx, fakes.LiveKit, map[string]any{"enabled": false}); err != nil {
		t.Fatal(err)
	}
	tok, err := ac.CreateToken(ctx, "sim", "client")
	if err != nil {
		t.Fatal(err)
	}

	// commit: 200 streams in 5 waves over two regions hold 35/65 within 2 %.
	res := routingSim(t, e, tok.Secret, "--regions", "eu-west,us-east", "--streams", "200", "--waves", "5", "--wave-every", "50ms",
		"--policy", "commit", "--shares", fakes.Agora+":0.35,"+fakes.Zegocloud+":0.65", "--quality-interval", "1m")
	if a := res.Overall[fakes.Agora]; a < 0.33 || a > 0.37 {
		t.Errorf("commit 0.35: agora-main took %.3f of the streams", a)
	}
	for _, w := range res.Waves {
		if w.Failures > 0 {
			t.Errorf("wave %d: %d streams failed to start", w.Wave, w.Failures)
		}
	}

	// optimized: 3 waves under balanced gather quality data on both
	// providers in both regions; then, with equal quality, agora-main (first
	// by priority) leads everywhere, until it degrades in eu-west only.
	res = routingSim(t, e, tok.Secret, "--regions", "eu-west,us-east", "--streams", "160", "--waves", "8", "--wave-every", "4s",
		"--warmup-waves", "3", "--policy", "optimized", "--quality-only", "--degrade", fakes.Agora+"@eu-west", "--degrade-wave", "5")
	if b := res.Before["eu-west"][fakes.Agora]; b < 0.9 {
		t.Errorf("before the degradation agora-main took %.2f of eu-west's new streams, want it leading", b)
	}
	if a := res.After["eu-west"][fakes.Agora]; a > 0.34 {
		t.Errorf("after the degradation agora-main still took %.2f of eu-west's new streams", a)
	}
	last := res.Waves[len(res.Waves)-1]
	if last.Regions["eu-west"][fakes.Agora] != 0 {
		t.Errorf("the last wave still sent %d eu-west streams to agora-main", last.Regions["eu-west"][fakes.Agora])
	}
	if a := res.After["us-east"][fakes.Agora]; a < 0.9 {
		t.Errorf("agora-main took %.2f of us-east's new streams after degrading in eu-west only, want it still leading", a)
	}
}

func TestRoutingSimulateUsage(t *testing.T) {
	tests := [][]string{
		{"simulate", "--regions", "EU"},
		{"simulate", "--regions", "eu-west,eu-west"},
		{"simulate", "--regions", "eu-west", "--degrade", "agora-main"},
		{"simulate", "--regions", "eu-west", "--degrade", "agora-main@eu-west", "--degrade-wave", "9", "--waves", "8"},
		{"simulate", "--regions", "eu-west", "--policy", "optimized"},
		{"simulate", "--regions", "eu-west", "--policy", "fastest", "--admin-token", "t"},
		{"simulate", "--regions", "eu-west", "--warmup-waves", "2", "--admin-token", "t"},
		{"simulate", "--regions", "eu-west", "--fail-provider", "agora-main"},
		{"simulate", "--regions", "eu-west", "--waves", "0"},
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
