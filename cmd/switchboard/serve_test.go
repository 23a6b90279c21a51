package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/internal/providers/agora/agorafake"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

const (
	serveToken  = "sbt_serve-test-bootstrap-91f0"
	serveAppID  = "970CA35de60c44645bbae8a215061b33"
	serveCustID = "serve-customer-id-4a1b"
	serveSecret = "serve-customer-secret-7c2d"
)

// listenRE finds the address serve announces on stdout.
var listenRE = regexp.MustCompile(`switchboard listening on (http://\S+)`)

// announcedURL waits for a server started with --addr 127.0.0.1:0 to print
// the address it listens on. Letting the kernel pick the port in the server
// itself avoids the race of reserving a port first, which another process
// may take in between.
func announcedURL(t *testing.T, out *testutil.Buffer, done chan error) string {
	t.Helper()
	var url string
	if !poll(60*time.Second, func() bool {
		if m := listenRE.FindStringSubmatch(out.String()); m != nil {
			url = m[1]
			return true
		}
		if err, ok := exited(done); ok {
			t.Fatalf("server exited before listening: %v\n%s", err, out)
		}
		return false
	}) {
		t.Fatalf("server did not announce its address:\n%s", out)
	}
	return url
}

// inProcess is `switchboard serve` running in this process.
type inProcess struct {
	url    string
	cancel context.CancelFunc
	done   chan error
	logs   *testutil.Buffer
}

func startInProcess(t *testing.T, dir string) *inProcess {
	t.Helper()
	env := map[string]string{"SWITCHBOARD_BOOTSTRAP_TOKEN": serveToken}
	ctx, cancel := context.WithCancel(context.Background())
	s := &inProcess{cancel: cancel, done: make(chan error, 1), logs: &testutil.Buffer{}}
	go func() {
		s.done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--db", "sqlite:" + filepath.Join(dir, "sb.db")},
			func(k string) string { return env[k] }, s.logs, s.logs)
	}()
	s.url = announcedURL(t, s.logs, s.done)
	waitHealthy(t, s.url, s.done)
	return s
}

func (s *inProcess) stop(t *testing.T) {
	t.Helper()
	s.cancel()
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("serve returned %v after cancel", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// waitHealthy waits for the server at url to answer /healthz, failing t
// when the server exits first (done carries its result, left for others).
func waitHealthy(t *testing.T, url string, done chan error) time.Duration {
	t.Helper()
	start := time.Now()
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	if !poll(60*time.Second, func() bool {
		resp, err := hc.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return true
			}
		}
		if err, ok := exited(done); ok {
			t.Fatalf("server exited: %v", err)
		}
		return false
	}) {
		t.Fatal("server not healthy after 60s")
	}
	return time.Since(start)
}

func call(t *testing.T, method, url, token string, body any, out any) int {
	t.Helper()
	st, b, err := callErr(method, url, token, body)
	if err != nil {
		t.Fatal(err)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %d %s", method, url, st, b)
		}
	}
	return st
}

func callErr(method, url, token string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func agoraFake(t *testing.T) *agorafake.Fake {
	t.Helper()
	f, err := agorafake.New(agorafake.Config{AppID: serveAppID, CustomerID: serveCustID, CustomerSecret: serveSecret})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func agoraBody(name, url string) map[string]any {
	return map[string]any{"name": name, "kind": "agora", "config": map[string]any{"appId": serveAppID, "baseUrl": url},
		"credentials": map[string]any{"customerId": serveCustID, "customerSecret": serveSecret, "appCertificate": "c0ffee00c0ffee00c0ffee00c0ffee00"}}
}

// TestRestartKeepsDataAndCredentials stops the server and starts it again on
// the same directory: the provider is there and its credentials still decrypt
// (the probe authenticates with them).
func TestRestartKeepsDataAndCredentials(t *testing.T) {
	dir := t.TempDir()
	fake := agoraFake(t)
	s := startInProcess(t, dir)
	if st := call(t, "POST", s.url+"/api/streaming/providers", serveToken, agoraBody("agora", fake.URL()), nil); st != 201 {
		t.Fatalf("create: %d", st)
	}
	s.stop(t)
	if fi, err := os.Stat(filepath.Join(dir, "sb.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	s = startInProcess(t, dir)
	defer s.stop(t)
	var res struct {
		Healthy bool
		Stage   string
		Error   string
	}
	if st := call(t, "POST", s.url+"/api/streaming/providers/agora/health-check", serveToken, nil, &res); st != 200 || !res.Healthy {
		t.Fatalf("check after restart: %d %+v", st, res)
	}
}

// TestGracefulShutdownUnderLoad cancels the server while requests are in
// flight: slow requests that are inside their handlers when shutdown begins
// get whole answers, the load around them gets only whole answers or
// connection errors for connections the server never took, and serve
// returns nil without leaving a goroutine.
func TestGracefulShutdownUnderLoad(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() { testutil.CheckGoroutines(t, before) }) // runs last, after the fake closed
	fake := agoraFake(t)
	s := startInProcess(t, t.TempDir())
	const slow = 4
	for i := range slow {
		call(t, "POST", s.url+"/api/streaming/providers", serveToken, agoraBody(fmt.Sprintf("agora-%d", i), fake.URL()), nil)
	}
	fake.Faults().SetLatency(400 * time.Millisecond)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok, notTaken int
	var broken []error
	stop := make(chan struct{})
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr, Timeout: 20 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := strings.NewReader(fmt.Sprintf(`{"room":"r%d","userId":"u","role":"publisher"}`, i))
				req, _ := http.NewRequest("POST", s.url+"/api/streams", body)
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+serveToken)
				resp, err := hc.Do(req)
				mu.Lock()
				if err != nil {
					notTaken++ // refused, or reset/closed before any answer began
				} else {
					_, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					if rerr != nil || (resp.StatusCode != 201 && resp.StatusCode != 503) {
						broken = append(broken, fmt.Errorf("status %d %v", resp.StatusCode, rerr))
					} else {
						ok++
					}
				}
				mu.Unlock()
			}
		}()
	}
	// Slow requests: health checks that wait 400 ms on the fake provider,
	// each on a connection of its own.
	results := make(chan error, slow)
	start := fake.Faults().Requests()
	for i := range slow {
		go func() {
			var r struct{ Healthy bool }
			st, b, err := callFresh("POST", fmt.Sprintf("%s/api/streaming/providers/agora-%d/health-check", s.url, i), serveToken)
			if err == nil && (st != 200 || json.Unmarshal(b, &r) != nil) {
				err = fmt.Errorf("status %d body %s", st, b)
			}
			results <- err
		}()
	}
	// Shutdown begins once every slow request is inside its handler: the
	// fake has them all (each waits there 400 ms).
	poll(10*time.Second, func() bool { return fake.Faults().Requests()-start >= slow })
	s.stop(t)
	for range slow {
		if err := <-results; err != nil {
			t.Errorf("an in-flight request did not finish: %v", err)
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("load: %d whole answers, %d connections not taken", ok, notTaken)
	if len(broken) > 0 {
		t.Fatalf("%d answers broken by the shutdown, first: %v", len(broken), broken[0])
	}
}

// callFresh sends a request without a body on a new connection.
func callFresh(method, url, token string) (int, []byte, error) {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds switchboard once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "switchboard-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "switchboard")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type proc struct {
	cmd     *exec.Cmd
	url     string
	done    chan error
	out     *testutil.Buffer
	started time.Time
}

// execServe starts `switchboard serve` with args as a process in dir, with
// env added to its environment; done receives its exit.
func execServe(t *testing.T, dir string, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary(t), append([]string{"serve"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out := &testutil.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan error, 1), out: out, started: started}
	go func() { p.done <- cmd.Wait() }()
	return p
}

// stopProcess sends sig to cmd's process and waits for it to exit (done
// carries its exit), killing it when it has not within grace.
func stopProcess(cmd *exec.Cmd, done <-chan error, sig os.Signal, grace time.Duration) {
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-done
	}
}

func startProcess(t *testing.T, dir string) *proc {
	t.Helper()
	p := execServe(t, dir, []string{"SWITCHBOARD_BOOTSTRAP_TOKEN=" + serveToken}, "--addr", "127.0.0.1:0", "--db", "sqlite:sb.db")
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	p.url = announcedURL(t, p.out, p.done)
	return p
}

// TestStartsOnEmptyDirectoryQuickly measures how long `switchboard serve`
// takes, on an empty directory, to answer /healthz. The figure is logged (the
// README quotes it), not asserted: this machine is shared.
func TestStartsOnEmptyDirectoryQuickly(t *testing.T) {
	bin := binary(t)
	_ = bin
	var times []time.Duration
	for range 3 {
		dir := t.TempDir()
		p := startProcess(t, dir)
		waitHealthy(t, p.url, p.done)
		times = append(times, time.Since(p.started))
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		if err := <-p.done; err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.out)
		}
		p.done <- nil // for the cleanup
	}
	t.Logf("time from exec to /healthz 200 on an empty directory: %v", times)
}

// TestSigkillLosesNothingAcknowledged kills the server with SIGKILL while
// starts are in flight, restarts it on the same database and finds every
// stream whose start was answered 201, each whole (its trail holds the
// assignment).
func TestSigkillLosesNothingAcknowledged(t *testing.T) {
	dir := t.TempDir()
	fake := agoraFake(t)
	p := startProcess(t, dir)
	waitHealthy(t, p.url, p.done)
	call(t, "POST", p.url+"/api/streaming/providers", serveToken, agoraBody("agora", fake.URL()), nil)

	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				st, b, err := callErr("POST", p.url+"/api/streams", serveToken, map[string]any{"room": fmt.Sprintf("k%d-%d", w, i), "userId": "u", "role": "publisher"})
				if err != nil {
					return // the server died
				}
				if st == 201 {
					var a struct{ ID string }
					_ = json.Unmarshal(b, &a)
					mu.Lock()
					acked = append(acked, a.ID)
					mu.Unlock()
				}
			}
		}()
	}
	if !poll(60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 200
	}) {
		t.Fatal("200 starts not acknowledged within 60s")
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	<-p.done
	p.done <- nil
	t.Logf("%d starts acknowledged before SIGKILL", len(acked))

	q := startProcess(t, dir)
	waitHealthy(t, q.url, q.done)
	for _, id := range acked {
		var got struct {
			ID     string
			Status string
			Trail  []struct{ Kind string }
		}
		if st := call(t, "GET", q.url+"/api/streams/"+id, serveToken, nil, &got); st != 200 {
			t.Fatalf("acknowledged stream %s lost after SIGKILL: %d", id, st)
		}
		if len(got.Trail) == 0 || got.Trail[0].Kind != "assign" {
			t.Fatalf("stream %s half-written: %+v", id, got)
		}
	}
	// Nothing half-written: every stored stream has its assignment, and the
	// counters agree with the rows.
	var stats struct {
		Providers []struct {
			Name                        string
			ActiveStreams, TotalStreams int64
		}
	}
	call(t, "GET", q.url+"/api/streaming/stats", serveToken, nil, &stats)
	var list struct{ Streams []struct{ ID string } }
	call(t, "GET", q.url+"/api/streams?status=active&limit=500", serveToken, nil, &list)
	if len(stats.Providers) != 1 || stats.Providers[0].ActiveStreams < int64(len(acked)) {
		t.Fatalf("stats after restart: %+v, acknowledged %d", stats, len(acked))
	}
	if stats.Providers[0].ActiveStreams != stats.Providers[0].TotalStreams {
		t.Fatalf("active %d != total %d", stats.Providers[0].ActiveStreams, stats.Providers[0].TotalStreams)
	}
	_ = list
}

// TestPostgresNeedsSharedKey: replicas must share the credential key, so
// PostgreSQL without SWITCHBOARD_SECRET_KEY is refused before anything starts.
func TestPostgresNeedsSharedKey(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"serve", "--addr", "127.0.0.1:0", "--db", "postgres://nobody@127.0.0.1:1/none"},
		func(string) string { return "" }, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "SWITCHBOARD_SECRET_KEY") {
		t.Fatalf("serve without a key on PostgreSQL: %v", err)
	}
}

// pprofRE finds the profiler's address serve announces on stdout.
var pprofRE = regexp.MustCompile(`switchboard pprof on (http://\S+)`)

// TestPprofAddr starts serve with --pprof-addr on a loopback port and reads
// a heap profile from it, and checks that the API does not serve the
// profiler and that a non-loopback address is refused before anything starts.
func TestPprofAddr(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"SWITCHBOARD_BOOTSTRAP_TOKEN": serveToken}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &testutil.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--pprof-addr", "127.0.0.1:0", "--db", "sqlite:" + filepath.Join(dir, "sb.db")},
			func(k string) string { return env[k] }, logs, logs)
	}()
	url := announcedURL(t, logs, done)
	waitHealthy(t, url, done)
	m := pprofRE.FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no pprof address announced:\n%s", logs)
	}
	resp, err := http.Get(m[1] + "heap?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("heap profile")) {
		t.Fatalf("heap profile: %d %.200s", resp.StatusCode, body)
	}
	if resp, err := http.Get(url + "/debug/pprof/"); err != nil || resp.StatusCode == 200 {
		t.Fatalf("the API serves the profiler: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v after cancel", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop")
	}
	var stderr bytes.Buffer
	err = run(context.Background(), []string{"serve", "--pprof-addr", "0.0.0.0:6060", "--db", "sqlite:" + filepath.Join(dir, "other.db")},
		func(string) string { return "" }, io.Discard, &stderr)
	if err == nil || !strings.Contains(err.Error(), "pprof-addr") {
		t.Fatalf("--pprof-addr 0.0.0.0:6060: %v, want an error naming pprof-addr", err)
	}
	if _, statErr := os.Stat(filepath.Join(dir, "other.db")); statErr == nil {
		t.Error("a database was created despite the refused address")
	}
}
