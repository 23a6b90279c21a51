package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/client/admin"
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

// chaosReportBound bounds the wait for the moves to reach the control plane
// once it is back from an outage. The SDK reports moves to a standby with
// retries that back off up to its 30 s cap (and a refused retry-budget slot
// costs another wait), so after an outage of several seconds a report can
// be that long in coming; seen so far: up to 28 s after 10 s without the
// database.
const chaosReportBound = 45 * time.Second

// chaosFailedOverLine is in the SDK's log line for a stream that failed over:
// it is logged once the stream's Live state on the new provider is sent to
// the app.
const chaosFailedOverLine = "Successfully failed over to "

// chaosFailRE finds the instant simulate announces for the failure.
var chaosFailRE = regexp.MustCompile(`fails \(\w+\) at (\S+)`)

// chaosServer is `switchboard serve` as a process on an SQLite file.
type chaosServer struct {
	*proc
	addr string // host:port, to restart on the same address
}

// startChaosServer runs serve in dir on addr (127.0.0.1:0 for any port).
func startChaosServer(t *testing.T, dir, addr string) *chaosServer {
	t.Helper()
	s := &chaosServer{proc: execServe(t, dir, []string{"SWITCHBOARD_BOOTSTRAP_TOKEN=" + serveToken},
		"--addr", addr, "--db", "sqlite:sb.db", "--log-level", "warn")}
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill() // also ends a stopped process
		s.wait()
		if t.Failed() {
			t.Logf("server output:\n%s", s.out)
		}
	})
	s.url = announcedURL(t, s.out, s.done)
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

// chaosWorld is one scenario's world: the provider fakes, the control plane
// and the SDK's client token.
type chaosWorld struct {
	url   string // of the control plane, as the SDK and the admin see it
	dir   string
	srv   *chaosServer     // the server on SQLite, or nil
	pg    *privatePostgres // the database of the replicas, or nil
	token string
}

// newChaosWorld is one server on an SQLite file.
func newChaosWorld(t *testing.T) *chaosWorld {
	t.Helper()
	w := &chaosWorld{dir: t.TempDir()}
	w.srv = startChaosServer(t, w.dir, "127.0.0.1:0")
	w.url = w.srv.url
	w.register(t)
	return w
}

// register registers the provider fakes and creates the SDK's token.
func (w *chaosWorld) register(t *testing.T) {
	t.Helper()
	world, err := fakes.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = world.Close() })
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	ac, err := admin.New(w.url, serveToken, &http.Client{Transport: tr, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := registerProviders(ctx, ac, world); err != nil {
		t.Fatal(err)
	}
	tok, err := ac.CreateToken(ctx, "chaos-sdk", "client")
	if err != nil {
		t.Fatal(err)
	}
	w.token = tok.Secret
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
	// At log level info, the SDK logs every failover (chaosFailedOverLine).
	args = append([]string{"simulate", "--server", w.url, "--json", "--streams", strconv.Itoa(chaosStreams),
		"--procs", strconv.Itoa(chaosProcs), "--log-level", "info"}, args...)
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
	var at time.Time
	// The start of every stream, under load, comes first.
	if !poll(120*time.Second, func() bool {
		if m := chaosFailRE.FindStringSubmatch(s.stderr.String()); m != nil {
			var err error
			if at, err = time.Parse(time.RFC3339Nano, m[1]); err != nil {
				t.Fatalf("failure instant %q: %v", m[1], err)
			}
			return true
		}
		if err, ok := exited(s.done); ok {
			t.Fatalf("simulate exited (%v) before the failure:\n%s\n%s", err, s.stdout, lastBytes(s.stderr.String(), 4<<10))
		}
		return false
	}) {
		t.Fatalf("simulate announced no failure:\n%s", lastBytes(s.stderr.String(), 4<<10))
	}
	return at
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

// sleepTill sleeps until at. It is the one wait of the suite on the clock
// rather than on a condition, because the time is what the scenario is
// about: an outage of the control plane or of the database starts just
// before the instant simulate announced for the provider's failure (there is
// no earlier sign of that instant) and lasts as long as the scenario says.
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
	// world makes the scenario's world (default newChaosWorld).
	world func(t *testing.T) *chaosWorld
}

func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the server and simulate as processes through many failovers")
	}
	before := runtime.NumGoroutine()
	t.Cleanup(func() { testutil.CheckGoroutines(t, before) }) // runs last
	binary(t)

	// Durations are upper bounds: a run ends early once the server has the
	// moves (see runChaos).
	scenarios := []chaosScenario{
		{name: "Kill", mode: "kill", failAt: time.Second, duration: 20 * time.Second, movedBy: 10 * time.Second},
		{name: "Hang", mode: "hang", failAt: time.Second, duration: 20 * time.Second, movedBy: 10 * time.Second},
		{name: "Slow", mode: "slow", failAt: time.Second, duration: 20 * time.Second, movedBy: 10 * time.Second,
			args: []string{"--slow-delay", "2s"}},
		{name: "Auth", mode: "auth", failAt: time.Second, duration: 20 * time.Second, movedBy: 10 * time.Second},
		{name: "Partial", mode: "partial", failAt: time.Second, duration: 20 * time.Second, movedBy: 10 * time.Second,
			args: []string{"--fail-share", strconv.FormatFloat(chaosShare, 'f', -1, 64)}},
		// The control plane dies just before the provider does, and comes
		// back 3 s later on the same database and address.
		{name: "ControlPlaneKilled", mode: "kill", failAt: 2 * time.Second, duration: 60 * time.Second, movedBy: chaosReportBound,
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
		{name: "ControlPlaneStopped", mode: "kill", failAt: 2 * time.Second, duration: 60 * time.Second, movedBy: chaosReportBound,
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
		// Two replicas on a PostgreSQL cluster of the test's own, behind a
		// round-robin balancer; PostgreSQL dies (immediate shutdown) just
		// before the provider fails and comes back 10 s later.
		{name: "DatabaseStopped", mode: "kill", failAt: 2 * time.Second, duration: 60 * time.Second, movedBy: chaosReportBound,
			world: newReplicatedWorld,
			during: func(t *testing.T, w *chaosWorld, at time.Time) {
				sleepTill(at.Add(-300 * time.Millisecond))
				w.pg.stop(t)
				sleepTill(at.Add(10 * time.Second))
				w.pg.start(t)
			}},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) { runChaos(t, sc) })
	}
}

func runChaos(t *testing.T, sc chaosScenario) {
	newWorld := newChaosWorld
	if sc.world != nil {
		newWorld = sc.world
	}
	w := newWorld(t)
	args := append([]string{"--fail-provider", fakes.Agora, "--fail-mode", sc.mode,
		"--fail-at", sc.failAt.String(), "--duration", sc.duration.String()}, sc.args...)
	sim := startSimulate(t, w, args...)
	at := sim.failureAt(t)
	end := at.Add(sc.duration - sc.failAt) // when simulate ends its streams
	back := at
	if sc.during != nil {
		sc.during(t, w, at)
		back = time.Now()
	}

	// Every stream the failure hit moved, and the server knows it: none is
	// left on the failed provider (for partial, the share not cut stays).
	wantLeft := 0
	if sc.mode == "partial" {
		wantLeft = chaosStreams - expectedCut(chaosStreams, chaosProcs, chaosShare)
	}
	deadline := maxTime(back, time.Now()).Add(sc.movedBy)
	if end.Add(-time.Second).Before(deadline) {
		deadline = end.Add(-time.Second) // the streams are still running
	}
	var left int
	var err error
	if !poll(time.Until(deadline), func() bool {
		left, err = activeOn(w.url, fakes.Agora)
		return err == nil && left == wantLeft
	}) {
		t.Errorf("the server has %d active streams on %s %s after the failure (err %v), want %d",
			left, fakes.Agora, time.Since(at).Round(time.Millisecond), err, wantLeft)
	} else {
		t.Logf("the server had the moves %s after the failure, %s after the control plane was back",
			time.Since(at).Round(10*time.Millisecond), time.Since(back).Round(10*time.Millisecond))
	}

	// The run has shown what it had to: end it (simulate then reports as
	// at the end of --duration) once the streams' last states have reached
	// the simulated apps, which the SDK logs as it sends them: a line a
	// stream that failed over (the server may have a move before the app
	// has connected to the new provider).
	wantCut := chaosStreams
	if sc.mode == "partial" {
		wantCut = expectedCut(chaosStreams, chaosProcs, chaosShare)
	}
	failedOver := func() int { return strings.Count(sim.stderr.String(), chaosFailedOverLine) }
	if !poll(10*time.Second, func() bool { return failedOver() >= wantCut }) {
		t.Logf("simulate logged %d of %d failovers; ending the run anyway", failedOver(), wantCut)
	}
	if err := sim.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatal(err)
	}
	res := sim.result(t, time.Now().Add(90*time.Second))
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

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// expectedCut is how many connections --fail-mode partial cuts: each worker
// cuts its rounded share.
func expectedCut(streams, procs int, share float64) int {
	n := 0
	for i := range procs {
		n += int(math.Round(float64(simShare(streams, procs, i)) * share))
	}
	return n
}

// newReplicatedWorld is two replicas of the server on a private PostgreSQL
// cluster, behind a round-robin balancer in the test.
func newReplicatedWorld(t *testing.T) *chaosWorld {
	t.Helper()
	pg := startPrivatePostgres(t)
	reps := []*proc{startReplica(t, pg.dsn()), startReplica(t, pg.dsn())}
	var backends []*url.URL
	for _, r := range reps {
		u, err := url.Parse(r.url)
		if err != nil {
			t.Fatal(err)
		}
		backends = append(backends, u)
	}
	w := &chaosWorld{dir: t.TempDir(), pg: pg, url: roundRobin(t, backends)}
	w.register(t)
	return w
}

// roundRobin serves a balancer over backends and returns its URL: each
// request goes to the next backend, the event stream flushed as it comes.
func roundRobin(t *testing.T, backends []*url.URL) string {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	var next atomic.Uint64
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(backends[next.Add(1)%uint64(len(backends))])
			r.Out.Host = r.In.Host
		},
		Transport:     tr,
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0),
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		tr.CloseIdleConnections()
	})
	return srv.URL
}

// privatePostgres is a PostgreSQL cluster of the test's own, in a temporary
// directory and on a port of its own, so that stopping it disturbs nothing
// else on the machine. Its postmaster is a child of the test.
type privatePostgres struct {
	bin  string // directory of initdb and postgres
	dir  string // holds data/ and the socket
	port int
	cred *syscall.Credential // as root: the postgres user's
	cmd  *exec.Cmd
	done chan error
	out  *testutil.Buffer
}

// pgBinEnv names the directory of PostgreSQL's initdb and postgres, when
// they are not found on PATH or in /usr/lib/postgresql/*/bin.
const pgBinEnv = "SWITCHBOARD_TEST_PGBIN"

func pgBinDir() string {
	if d := os.Getenv(pgBinEnv); d != "" {
		return d
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("postgres"); err == nil {
			return filepath.Dir(p)
		}
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Strings(m)
	if len(m) == 0 {
		return ""
	}
	return filepath.Dir(m[len(m)-1])
}

func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	bin := pgBinDir()
	if bin == "" {
		t.Skipf("PostgreSQL's initdb and postgres not found: set %s to their directory", pgBinEnv)
	}
	pg := &privatePostgres{bin: bin}
	dir, err := os.MkdirTemp("", "switchboard-chaos-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	pg.dir = dir
	if os.Geteuid() == 0 { // initdb and postgres refuse to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("PostgreSQL cannot run as root and there is no postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		pg.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", filepath.Join(dir, "data"), "-U", "postgres", "-A", "trust",
		"--no-locale", "-E", "UTF8", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	// PostgreSQL cannot be told to take any free port; this one was free
	// a moment ago.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pg.port = ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	pg.start(t)
	t.Cleanup(func() { pg.stop(t) })
	return pg
}

func (pg *privatePostgres) dsn() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.port)
}

// start runs the postmaster and waits until it accepts connections.
func (pg *privatePostgres) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(filepath.Join(pg.bin, "postgres"), "-D", filepath.Join(pg.dir, "data"), "-p", strconv.Itoa(pg.port),
		"-k", pg.dir, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=100")
	pg.out = &testutil.Buffer{}
	cmd.Stdout, cmd.Stderr = pg.out, pg.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: pg.cred, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pg.cmd, pg.done = cmd, make(chan error, 1)
	go func() { pg.done <- cmd.Wait() }()
	db, err := sql.Open("pgx", pg.dsn())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if !poll(60*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			return true
		}
		if werr, ok := exited(pg.done); ok {
			t.Fatalf("postgres exited (%v):\n%s", werr, pg.out)
		}
		return false
	}) {
		t.Fatalf("postgres not ready: %v\n%s", err, pg.out)
	}
}

// stop shuts the postmaster down at once (SIGQUIT: immediate shutdown, as
// after a crash; the next start recovers) and waits for it to exit.
func (pg *privatePostgres) stop(t *testing.T) {
	t.Helper()
	if pg.cmd == nil {
		return
	}
	stopProcess(pg.cmd, pg.done, syscall.SIGQUIT, 30*time.Second)
	pg.cmd = nil
}
