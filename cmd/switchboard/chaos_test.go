package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/internal/apiclient"
	"github.com/switchboardhq/switchboard/internal/providers/fakes"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

// The chaos suite fails the primary provider under a few hundred streams
// spread over two SDK processes, every way `switchboard simulate` can, and
// also with the control plane killed or hung while the streams fail over. The
// server and simulate run as real processes of a binary built without the
// race detector; the provider fakes run in the test.
const (
	chaosStreams = 300
	chaosProcs   = 2
	chaosShare   = 0.5 // of --fail-mode partial
)

// chaosFailRE finds the instant simulate announces for the failure.
var chaosFailRE = regexp.MustCompile(`fails \(\w+\) at (\S+)`)

// chaosServer is `switchboard serve` as a process on an SQLite file.
type chaosServer struct {
	cmd  *exec.Cmd
	url  string
	addr string // host:port, to restart on the same address
	done chan error
	out  *testutil.Buffer
}

// startChaosServer runs serve in dir on addr (127.0.0.1:0 for any port).
func startChaosServer(t *testing.T, dir, addr string) *chaosServer {
	t.Helper()
	cmd := exec.Command(binary(t), "serve", "--addr", addr, "--db", "sqlite:sb.db", "--log-level", "warn")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "SWITCHBOARD_BOOTSTRAP_TOKEN="+serveToken)
	out := &testutil.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &chaosServer{cmd: cmd, done: make(chan error, 1), out: out}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // also ends a stopped process
		s.wait()
		if t.Failed() {
			t.Logf("server output:\n%s", out)
		}
	})
	s.url = announcedURL(t, out, s.done)
	u, err := url.Parse(s.url)
	if err != nil {
		t.Fatal(err)
	}
	s.addr = u.Host
	waitHealthy(t, s.url, s.done)
	return s
}

// wait waits for the process to exit (and leaves its result for others).
func (s *chaosServer) wait() error {
	err := <-s.done
	s.done <- err
	return err
}

// chaosWorld is one scenario's world: the provider fakes, the server and
// the SDK's client token.
type chaosWorld struct {
	dir   string
	srv   *chaosServer
	token string
}

func newChaosWorld(t *testing.T) *chaosWorld {
	t.Helper()
	world, err := fakes.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = world.Close() })
	w := &chaosWorld{dir: t.TempDir()}
	w.srv = startChaosServer(t, w.dir, "127.0.0.1:0")
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	admin, err := apiclient.New(w.srv.url, serveToken, &http.Client{Transport: tr, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range world.Providers(5*time.Second, false) {
		if err := registerProvider(ctx, admin, p); err != nil {
			t.Fatalf("register %s: %v", p.Name, err)
		}
	}
	tok, err := admin.CreateToken(ctx, "chaos-sdk", "client")
	if err != nil {
		t.Fatal(err)
	}
	w.token = tok.Secret
	return w
}

// activeOn counts the streams the server has active on provider, or
// returns an error when it does not answer.
func activeOn(serverURL, provider string) (int, error) {
	n, cursor := 0, ""
	for {
		u := serverURL + "/api/streams?status=active&limit=500&provider=" + url.QueryEscape(provider)
		if cursor != "" {
			u += "&cursor=" + url.QueryEscape(cursor)
		}
		st, b, err := callErr("GET", u, serveToken, nil)
		if err != nil {
			return 0, err
		}
		if st != http.StatusOK {
			return 0, fmt.Errorf("GET /api/streams: %d %s", st, b)
		}
		var page struct {
			Streams []struct {
				Provider string `json:"provider"`
			} `json:"streams"`
			NextCursor string `json:"nextCursor"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return 0, err
		}
		for _, s := range page.Streams {
			if s.Provider == provider {
				n++
			}
		}
		if page.NextCursor == "" {
			return n, nil
		}
		cursor = page.NextCursor
	}
}

// chaosSim is `switchboard simulate` as a process, with its workers in its
// process group.
type chaosSim struct {
	cmd            *exec.Cmd
	stdout, stderr *testutil.Buffer
	done           chan error
}

func startSimulate(t *testing.T, w *chaosWorld, args ...string) *chaosSim {
	t.Helper()
	args = append([]string{"simulate", "--server", w.srv.url, "--json", "--streams", strconv.Itoa(chaosStreams),
		"--procs", strconv.Itoa(chaosProcs)}, args...)
	cmd := exec.Command(binary(t), args...)
	cmd.Env = append(os.Environ(), "SWITCHBOARD_TOKEN="+w.token)
	sim := &chaosSim{cmd: cmd, stdout: &testutil.Buffer{}, stderr: &testutil.Buffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = sim.stdout, sim.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { sim.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // simulate and its workers
		err := <-sim.done
		sim.done <- err
		if t.Failed() {
			t.Logf("simulate stderr (last 4 KiB):\n%s", lastBytes(sim.stderr.String(), 4<<10))
		}
	})
	return sim
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// failureAt waits for simulate to announce when the provider fails.
func (s *chaosSim) failureAt(t *testing.T) time.Time {
	t.Helper()
	deadline := time.Now().Add(120 * time.Second) // the start of every stream, under load
	for {
		if m := chaosFailRE.FindStringSubmatch(s.stderr.String()); m != nil {
			at, err := time.Parse(time.RFC3339Nano, m[1])
			if err != nil {
				t.Fatalf("failure instant %q: %v", m[1], err)
			}
			return at
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("simulate exited (%v) before the failure:\n%s\n%s", err, s.stdout, lastBytes(s.stderr.String(), 4<<10))
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("simulate announced no failure:\n%s", lastBytes(s.stderr.String(), 4<<10))
		}
	}
}

// result waits for simulate to exit and decodes its JSON summary.
func (s *chaosSim) result(t *testing.T, by time.Time) simResult {
	t.Helper()
	var err error
	select {
	case err = <-s.done:
		s.done <- err
	case <-time.After(time.Until(by)):
		t.Fatalf("simulate still running at %s", by.Format(time.TimeOnly))
	}
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, lastBytes(s.stderr.String(), 4<<10))
	}
	lines := strings.Split(strings.TrimSpace(s.stdout.String()), "\n")
	var res simResult
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		t.Fatalf("last line is not the JSON summary: %v\n%s", err, s.stdout)
	}
	t.Logf("simulate:\n%s", s.stdout)
	return res
}

// sleepTill sleeps until at: the failure and the outages are scheduled at
// instants simulate announced.
func sleepTill(at time.Time) { time.Sleep(time.Until(at)) }

// chaosScenario is one run of the suite.
type chaosScenario struct {
	name     string
	mode     string        // --fail-mode
	failAt   time.Duration // --fail-at
	duration time.Duration // --duration
	args     []string      // more flags
	// during, when set, runs at the failure (announced for at): the control
	// plane's outage. It returns when the control plane is back.
	during func(t *testing.T, w *chaosWorld, at time.Time)
	// movedBy bounds the wait, after the failure (or after during
	// returned), for the server to have no stream left on the failed
	// provider: the moves reported.
	movedBy time.Duration
}

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the server and simulate as processes through many failovers")
	}
	before := runtime.NumGoroutine()
	t.Cleanup(func() { testutil.CheckGoroutines(t, before) }) // runs last
	binary(t)

	scenarios := []chaosScenario{
		{name: "Kill", mode: "kill", failAt: time.Second, duration: 6 * time.Second, movedBy: 4 * time.Second},
		{name: "Hang", mode: "hang", failAt: time.Second, duration: 6 * time.Second, movedBy: 4 * time.Second},
		{name: "Slow", mode: "slow", failAt: time.Second, duration: 6 * time.Second, movedBy: 4 * time.Second,
			args: []string{"--slow-delay", "2s"}},
		{name: "Auth", mode: "auth", failAt: time.Second, duration: 6 * time.Second, movedBy: 4 * time.Second},
		{name: "Partial", mode: "partial", failAt: time.Second, duration: 6 * time.Second, movedBy: 4 * time.Second,
			args: []string{"--fail-share", strconv.FormatFloat(chaosShare, 'f', -1, 64)}},
		// The control plane dies just before the provider does, and comes
		// back 3 s later on the same database and address.
		{name: "ControlPlaneKilled", mode: "kill", failAt: 2 * time.Second, duration: 25 * time.Second, movedBy: 20 * time.Second,
			during: func(t *testing.T, w *chaosWorld, at time.Time) {
				sleepTill(at.Add(-300 * time.Millisecond))
				if err := w.srv.cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				_ = w.srv.wait()
				sleepTill(at.Add(3 * time.Second))
				w.srv = startChaosServer(t, w.dir, w.srv.addr)
			}},
		// The control plane hangs (SIGSTOP: connections are accepted, never
		// answered) just before the provider fails, for 10 s.
		{name: "ControlPlaneStopped", mode: "kill", failAt: 2 * time.Second, duration: 32 * time.Second, movedBy: 20 * time.Second,
			during: func(t *testing.T, w *chaosWorld, at time.Time) {
				sleepTill(at.Add(-300 * time.Millisecond))
				if err := w.srv.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
					t.Fatal(err)
				}
				sleepTill(at.Add(10 * time.Second))
				if err := w.srv.cmd.Process.Signal(syscall.SIGCONT); err != nil {
					t.Fatal(err)
				}
				waitHealthy(t, w.srv.url, w.srv.done)
			}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { runChaos(t, sc) })
	}
}

func runChaos(t *testing.T, sc chaosScenario) {
	w := newChaosWorld(t)
	args := append([]string{"--fail-provider", fakes.Agora, "--fail-mode", sc.mode,
		"--fail-at", sc.failAt.String(), "--duration", sc.duration.String()}, sc.args...)
	sim := startSimulate(t, w, args...)
	at := sim.failureAt(t)
	end := at.Add(sc.duration - sc.failAt) // when simulate ends its streams
	if sc.during != nil {
		sc.during(t, w, at)
	}

	// Every stream the failure hit moved, and the server knows it: none is
	// left on the failed provider (for partial, the share not cut stays).
	wantLeft := 0
	if sc.mode == "partial" {
		wantLeft = chaosStreams - expectedCut(chaosStreams, chaosProcs, chaosShare)
	}
	deadline := time.Now().Add(sc.movedBy)
	if end.Add(-time.Second).Before(deadline) {
		deadline = end.Add(-time.Second) // the streams are still running
	}
	left, err := activeOn(w.srv.url, fakes.Agora)
	for (err != nil || left != wantLeft) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		left, err = activeOn(w.srv.url, fakes.Agora)
	}
	if err != nil || left != wantLeft {
		t.Errorf("the server has %d active streams on %s %s after the failure (err %v), want %d",
			left, fakes.Agora, time.Since(at).Round(time.Millisecond), err, wantLeft)
	}

	res := sim.result(t, end.Add(90*time.Second))
	wantCut := chaosStreams
	if sc.mode == "partial" {
		wantCut = expectedCut(chaosStreams, chaosProcs, chaosShare)
	}
	if res.Streams != chaosStreams || res.StartFailures != 0 || res.Procs != chaosProcs || res.FailMode != sc.mode {
		t.Errorf("started %d streams (%d failures) over %d processes in mode %s, want %d over %d in %s",
			res.Streams, res.StartFailures, res.Procs, res.FailMode, chaosStreams, chaosProcs, sc.mode)
	}
	if res.Dropped != wantCut {
		t.Errorf("the failure hit %d connections, want %d", res.Dropped, wantCut)
	}
	if res.Lost != 0 || res.Stranded != 0 {
		t.Errorf("%d streams lost, %d stranded (longest %.0f ms in FailingOver/Reconnecting), want none", res.Lost, res.Stranded, res.StrandedMaxMs)
	}
	if res.DroppedMoved != res.Dropped || res.Moved != res.Dropped {
		t.Errorf("%d streams moved, %d of the %d hit; want every stream hit, and only those", res.Moved, res.DroppedMoved, res.Dropped)
	}
}

// expectedCut is how many connections --fail-mode partial cuts: each worker
// cuts its rounded share.
func expectedCut(streams, procs int, share float64) int {
	n := 0
	for i := range procs {
		per := streams / procs
		if i < streams%procs {
			per++
		}
		n += int(float64(per)*share + 0.5)
	}
	return n
}
