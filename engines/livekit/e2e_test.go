package livekit

// The end-to-end failover test: two real livekit-server processes as two
// providers of a real `switchboard serve`, a publisher and a viewer moved from
// a killed (SIGKILL) or hung (SIGSTOP) server to the other one. It runs only
// with LIVEKIT_E2E=1 (see scripts/test-livekit) and re-executes itself in a
// network namespace of its own where only loopback is up, so that no media
// packet can leave the machine.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/stdr"
	protologger "github.com/livekit/protocol/logger"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/switchboardhq/switchboard/client"
)

const (
	livekitVersion = "v1.9.11"
	livekitModule  = "github.com/livekit/livekit-server/cmd/server"

	envE2E      = "LIVEKIT_E2E"             // 1 runs the test
	envInNetns  = "LIVEKIT_E2E_IN_NETNS"    // set in the re-executed child
	envServer   = "LIVEKIT_SERVER_BIN"      // a livekit-server binary to use instead of building one
	envSB       = "LIVEKIT_E2E_SWITCHBOARD" // the switchboard binary, built by the parent
	envIters    = "LIVEKIT_E2E_ITERATIONS"  // iterations per mode (default 10)
	bootToken   = "sb_e2e_bootstrap_token_0123456789abcdef"
	apiKey      = "APIe2eSwitchboard"
	apiSecret   = "e2e-secret-0123456789abcdefghijklmnopqrstuvwxyz" // 32+ characters, as LiveKit requires
	sbAddr      = "127.0.0.1:18080"
	stunAddr    = "127.0.0.1:3479" // nothing listens here: no STUN in the namespace
	frame       = 20 * time.Millisecond
	viewerStall = 300 * time.Millisecond
	room        = "e2e-room"
)

// TestFailoverE2E is the entry point: outside the namespace it builds the
// binaries (which needs the network) and re-executes the test under
// `unshare -n`; inside, it runs the scenario.
func TestFailoverE2E(t *testing.T) {
	if os.Getenv(envE2E) != "1" {
		t.Skip("set " + envE2E + "=1 (or run scripts/test-livekit) to run the LiveKit end-to-end test")
	}
	if os.Getenv(envInNetns) == "1" {
		runScenario(t)
		return
	}
	runInNetns(t, "TestFailoverE2E")
}

// runInNetns builds the binaries the scenario needs (which needs the network)
// and runs the test named name again in a network namespace of its own.
func runInNetns(t *testing.T, name string) {
	t.Helper()
	lk := livekitServer(t)
	sbBin := filepath.Join(t.TempDir(), "switchboard")
	build := exec.Command("go", "build", "-o", sbBin, "./cmd/switchboard")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build switchboard: %v\n%s", err, out)
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Fatalf("unshare (util-linux) is required: %v", err)
	}
	// Besides loopback, the namespace gets a veth pair whose two ends are both
	// inside it: WebRTC clients (pion, Chromium) never offer loopback
	// addresses as ICE candidates, so a client needs one other local address
	// (the kernel routes its packets to 127.0.0.1 over lo). No route leads out
	// of the namespace.
	setup := "ip link set lo up && ip link add sb0 type veth peer name sb1 && " +
		"ip addr add 10.203.0.1/30 dev sb0 && ip link set sb0 up && ip link set sb1 up"
	args := []string{"-n", "--", "sh", "-c", setup + ` && exec "$0" "$@"`,
		os.Args[0], "-test.run", "^" + name + "$", "-test.v", "-test.count=1", "-test.timeout=15m"}
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), envInNetns+"=1", envServer+"="+lk, envSB+"="+sbBin)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil {
		t.Fatalf("the test in its network namespace failed: %v", err)
	}
}

// livekitServer returns the livekit-server binary: $LIVEKIT_SERVER_BIN, or the
// one in the cache directory, built there with go install when missing.
func livekitServer(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(envServer); p != "" {
		return p
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		t.Fatalf("cache directory: %v", err)
	}
	dir := filepath.Join(cache, "switchboard", "livekit-server-"+livekitVersion)
	bin := filepath.Join(dir, "server")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	t.Logf("building livekit-server %s into %s (a few minutes, once per machine)", livekitVersion, dir)
	start := time.Now()
	cmd := exec.Command("go", "install", livekitModule+"@"+livekitVersion)
	cmd.Dir = dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go install %s@%s: %v\n%s", livekitModule, livekitVersion, err, out)
	}
	t.Logf("built livekit-server in %s", time.Since(start).Round(time.Second))
	return bin
}

// lkServer is one livekit-server process and its fixed configuration.
type lkServer struct {
	name      string // provider name
	httpPort  int
	udpPort   int
	bin, conf string
	logPath   string
	cmd       *exec.Cmd
	exited    chan struct{}
}

func (s *lkServer) url() string { return fmt.Sprintf("http://127.0.0.1:%d", s.httpPort) }

func newLKServer(t *testing.T, bin, name string, httpPort, udpPort int) *lkServer {
	t.Helper()
	dir := t.TempDir()
	s := &lkServer{name: name, httpPort: httpPort, udpPort: udpPort, bin: bin,
		conf: filepath.Join(dir, "livekit.yaml"), logPath: filepath.Join(dir, "livekit.log")}
	yaml := fmt.Sprintf(`port: %d
bind_addresses: ["127.0.0.1"]
rtc:
  udp_port: %d
  tcp_port: 0
  node_ip: 127.0.0.1
  use_external_ip: false
  use_ice_lite: true
  enable_loopback_candidate: true
  interfaces:
    includes: [lo]
  stun_servers: ["%s"]
keys:
  %s: %s
logging:
  level: warn
`, httpPort, udpPort, stunAddr, apiKey, apiSecret)
	if err := os.WriteFile(s.conf, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return s
}

// start runs the server and waits until GET / answers 200.
func (s *lkServer) start(t *testing.T) {
	t.Helper()
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(s.bin, "--config", s.conf)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", s.name, err)
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		_ = cmd.Wait()
		_ = logf.Close()
		close(done)
	}(s.cmd, s.exited)
	waitHTTP(t, s.url()+"/", 200, 20*time.Second, s.exited)
}

// signal sends sig to the server's process, by its PID.
func (s *lkServer) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := syscall.Kill(s.cmd.Process.Pid, sig); err != nil {
		t.Fatalf("signal %s %v: %v", s.name, sig, err)
	}
}

// stop kills the server (stopped or not) and waits for it to exit.
func (s *lkServer) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.exited:
	default:
		_ = syscall.Kill(s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.exited
	}
}

func waitHTTP(t *testing.T, u string, want int, limit time.Duration, exited <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(limit)
	hc := &http.Client{Timeout: time.Second}
	for {
		resp, err := hc.Get(u)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
		}
		select {
		case <-exited:
			t.Fatalf("%s: process exited before answering", u)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer %d within %s (last error %v)", u, want, limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// api calls the control plane with the bootstrap token.
type api struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func (a api) do(method, path string, body, out any, want int) {
	a.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bootToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		a.t.Fatalf("%s %s: %d, want %d: %s", method, path, resp.StatusCode, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			a.t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
}

type checkResult struct {
	Healthy bool   `json:"healthy"` // this probe succeeded
	Usable  bool   `json:"usable"`
	Status  string `json:"status"`
	Stage   string `json:"stage"`
	Error   string `json:"error"`
}

func (a api) check(name string) checkResult {
	a.t.Helper()
	var r checkResult
	a.do("POST", "/api/streaming/providers/"+name+"/health-check", nil, &r, 200)
	return r
}

// recover checks name until it is healthy again (two successes after a failure).
func (a api) recover(name string) {
	a.t.Helper()
	for i := 0; i < 5; i++ {
		if r := a.check(name); r.Healthy && r.Usable {
			return
		}
	}
	a.t.Fatalf("%s did not recover", name)
}

// assignment is the control plane's answer to start and migrate.
type assignment struct {
	ID             string          `json:"id"`
	Room           string          `json:"room"`
	UserID         string          `json:"userId"`
	Role           client.Role     `json:"role"`
	Provider       client.Provider `json:"provider"`
	Token          string          `json:"token"`
	TokenExpiresAt *time.Time      `json:"tokenExpiresAt"`
}

func (a assignment) forEngine() client.Assignment {
	out := client.Assignment{StreamID: a.ID, Room: a.Room, UserID: a.UserID, Role: a.Role, Provider: a.Provider, Token: a.Token}
	if a.TokenExpiresAt != nil {
		out.TokenExpiresAt = *a.TokenExpiresAt
	}
	return out
}

// member is a publisher's connection driven without the SDK, for the hot
// standby: a stream of its own from the control plane, connected by the
// engine. Its media errors are ignored: the test replaces it after each fault.
type member struct {
	t      *testing.T
	api    api
	engine *Engine
	id     string // stream id
	on     string // provider
	conn   client.Connection
}

func (m *member) start(ctx context.Context, user, role string, exclude ...string) {
	m.t.Helper()
	var a assignment
	m.api.do("POST", "/api/streams", map[string]any{"room": room, "userId": user, "role": role, "exclude": exclude}, &a, 201)
	conn, err := m.engine.Connect(ctx, a.forEngine(), func(client.MediaError) {})
	if err != nil {
		m.t.Fatalf("connect %s to %s: %v", a.UserID, a.Provider.Name, err)
	}
	m.id, m.on, m.conn = a.ID, a.Provider.Name, conn
}

// close disconnects and ends the stream.
func (m *member) close() {
	if c := m.conn; c != nil {
		m.conn = nil
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = c.Disconnect(ctx)
		cancel()
		m.api.do("POST", "/api/streams/"+m.id+"/end", nil, nil, 200)
	}
}

// other returns the provider that is not p.
func other(p string) string {
	if p == "lk-a" {
		return "lk-b"
	}
	return "lk-a"
}

// moves follows a stream's states and keeps its migrations.
type moves struct {
	mu       sync.Mutex
	migrated []client.Migrated
}

func follow(s *client.Stream) *moves {
	m := &moves{}
	go func() {
		for st := range s.States() { // closed when the stream ends
			if mg, ok := st.(client.Migrated); ok {
				m.mu.Lock()
				m.migrated = append(m.migrated, mg)
				m.mu.Unlock()
			}
		}
	}()
	return m
}

// last waits until the stream's last migration went to provider to and
// returns it (the zero Migrated when there is none within limit).
func (m *moves) last(to string, limit time.Duration) client.Migrated {
	var mg client.Migrated
	waitFor(limit, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		if n := len(m.migrated); n > 0 && m.migrated[n-1].To == to {
			mg = m.migrated[n-1]
			return true
		}
		return false
	})
	return mg
}

// recorder keeps, per provider, when the viewer last received a packet.
type recorder struct {
	mu    sync.Mutex
	last  map[string]time.Time
	since time.Time            // packets after since count as first packets
	first map[string]time.Time // first packet per provider after since
}

func (r *recorder) packet(p Packet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.last[p.Provider] = p.At
	if !r.since.IsZero() && p.At.After(r.since) {
		if _, ok := r.first[p.Provider]; !ok {
			r.first[p.Provider] = p.At
		}
	}
}

func (r *recorder) mark(at time.Time) {
	r.mu.Lock()
	r.since, r.first = at, map[string]time.Time{}
	r.mu.Unlock()
}

func (r *recorder) lastVia(p string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.last[p]
}

func (r *recorder) firstVia(p string) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first[p]
}

// waitFor polls cond every 10 ms until it holds or limit passes.
func waitFor(limit time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// opusSource writes a synthetic Opus frame to track every 20 ms until ctx ends.
func opusSource(ctx context.Context, track *webrtc.TrackLocalStaticSample, wg *sync.WaitGroup) {
	defer wg.Done()
	// TOC 0xfc: CELT fullband, 20 ms, mono, one frame; the server does not decode it.
	payload := append([]byte{0xfc}, make([]byte, 60)...)
	tick := time.NewTicker(frame)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			_ = track.WriteSample(media.Sample{Data: payload, Duration: frame})
		}
	}
}

// scenarioParams reads what the parent test passes into the namespace: the
// livekit-server and switchboard binaries, and the faults per mode.
func scenarioParams(t *testing.T) (lkBin, sbBin string, iters int) {
	t.Helper()
	lkBin, sbBin = os.Getenv(envServer), os.Getenv(envSB)
	if lkBin == "" || sbBin == "" {
		t.Fatal("the parent test passes the binaries")
	}
	iters = 10
	if v := os.Getenv(envIters); v != "" {
		if _, err := fmt.Sscan(v, &iters); err != nil || iters < 1 {
			t.Fatalf("%s=%q is not a positive number", envIters, v)
		}
	}
	return lkBin, sbBin, iters
}

func runScenario(t *testing.T) {
	lkBin, sbBin, iters := scenarioParams(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	servers, cp := startCluster(t, lkBin, sbBin)

	// The control plane's probe against the real servers.
	t.Run("probe", func(t *testing.T) {
		cp := cp
		cp.t = t
		for _, name := range []string{"lk-a", "lk-b"} {
			if r := cp.check(name); !r.Healthy || r.Stage != "" {
				t.Errorf("%s: healthy server checked %+v", name, r)
			}
		}
		cp.do("POST", "/api/streaming/providers",
			providerBody("lk-wrong", 9, servers["lk-a"].url(), "wrong-secret-0123456789abcdefghijklmnop"), nil, 201)
		// One failure is below the failure threshold: the verdict is the stage.
		if r := cp.check("lk-wrong"); r.Stage != "auth" {
			t.Errorf("wrong secret: %+v, want stage auth", r)
		}
		cp.do("DELETE", "/api/streaming/providers/lk-wrong", nil, nil, 204)

		// The real server refuses a token whose signature is wrong: TokenRejected.
		var as assignment
		cp.do("POST", "/api/streams", map[string]any{"room": room, "userId": "intruder", "role": "subscriber"}, &as, 201)
		bad := as.forEngine()
		bad.Token = bad.Token[:len(bad.Token)-4] + "AAAA"
		_, err := NewEngine().Connect(context.Background(), bad, func(client.MediaError) {})
		var me client.MediaError
		if !errors.As(err, &me) || me.Kind != client.TokenRejected || strings.Contains(err.Error(), "eyJ") {
			t.Errorf("forged token: %v, want a TokenRejected MediaError without the token", err)
		}
		cp.do("POST", "/api/streams/"+as.ID+"/end", nil, nil, 200)

		a := servers["lk-a"]
		a.signal(t, syscall.SIGKILL)
		<-a.exited
		var r checkResult
		for range 3 {
			r = cp.check("lk-a")
		}
		if r.Healthy || r.Usable || r.Status != "CRITICAL" {
			t.Errorf("killed server after 3 checks: %+v, want CRITICAL", r)
		}
		t.Logf("killed server: status %s, stage %s", r.Status, r.Stage)
		a.start(t)
		cp.recover("lk-a")
	})
	if t.Failed() {
		return
	}

	// Media: a publisher of a synthetic Opus track and a viewer.
	track, err := webrtc.NewTrackLocalStaticSample(
		webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "e2e")
	if err != nil {
		t.Fatal(err)
	}
	var srcWG sync.WaitGroup
	srcWG.Add(1)
	srcCtx, stopSrc := context.WithCancel(ctx)
	go opusSource(srcCtx, track, &srcWG)
	defer func() { stopSrc(); srcWG.Wait() }()

	rec := &recorder{last: map[string]time.Time{}, first: map[string]time.Time{}}
	pubEngine := NewEngine(WithTracks(track), WithAutoSubscribe(false))
	viewEngine := NewEngine(WithPacketHandler(rec.packet), WithMediaTimeout(viewerStall))
	if os.Getenv("LIVEKIT_E2E_SDK_LOG") == "1" { // debugging only: these logs carry tokens
		stdr.SetVerbosity(1)
		lksdk.SetLogger(protologger.LogRLogger(stdr.New(log.New(os.Stderr, "", log.Lmicroseconds))))
	}

	// The publisher and the viewer join through the SDK, each with its own
	// Client as two apps would.
	newSDK := func(e *Engine) *client.Client {
		c, err := client.New(cp.base, bootToken, client.WithEngine(client.KindLiveKit, e), client.WithConnectTimeout(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	startSDK := func(c *client.Client, user string, role client.Role) (*client.Stream, *moves) {
		s, err := c.Start(ctx, room, client.WithUserID(user), client.WithRole(role))
		if err != nil {
			t.Fatalf("start %s: %v", user, err)
		}
		return s, follow(s)
	}
	pubSDK, viewSDK := newSDK(pubEngine), newSDK(viewEngine)
	pubStream, pubMoves := startSDK(pubSDK, "publisher-1", client.RolePublisher)
	view, viewMoves := startSDK(viewSDK, "viewer-1", client.RoleSubscriber)
	if pubStream.Provider() != view.Provider() {
		t.Fatalf("publisher on %s, viewer on %s", pubStream.Provider(), view.Provider())
	}

	// In hang mode the publisher keeps a hot standby, which the SDK does not
	// offer: it drives the engine itself, one connection per server. A hung
	// server is noticed by its viewers at once (the media watchdog), by a
	// publisher only after about 15 seconds, when LiveKit gives up.
	pubs := map[string]*member{}
	newPub := func(exclude ...string) {
		m := &member{t: t, api: cp, engine: pubEngine}
		m.start(ctx, "publisher-1", "publisher", exclude...)
		pubs[m.on] = m
	}
	defer func() {
		for _, m := range pubs {
			m.close()
		}
	}()

	type result struct {
		gaps     []time.Duration
		failures int
	}
	results := map[string]*result{}
	for _, mode := range []struct {
		name    string
		sig     syscall.Signal
		standby bool
	}{{"kill", syscall.SIGKILL, false}, {"hang", syscall.SIGSTOP, true}} {
		res := &result{}
		results[mode.name] = res
		if mode.standby {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_ = pubStream.Close(cctx)
			cancel()
			on := view.Provider()
			newPub(other(on))
			newPub(on)
		}
		for i := 1; i <= iters; i++ {
			from := view.Provider()
			to := other(from)
			if !waitFor(10*time.Second, func() bool { return time.Since(rec.lastVia(from)) < 100*time.Millisecond }) {
				t.Fatalf("%s %d: no media via %s before the fault", mode.name, i, from)
			}
			// Steady media before the fault: packets still arrive via from
			// 200 ms after it was first seen.
			steady := time.Now()
			if !waitFor(10*time.Second, func() bool { return rec.lastVia(from).Sub(steady) >= 200*time.Millisecond }) {
				t.Fatalf("%s %d: media via %s stopped before the fault", mode.name, i, from)
			}
			faultAt := time.Now()
			rec.mark(faultAt)
			servers[from].signal(t, mode.sig)

			resumed := waitFor(20*time.Second, func() bool { return !rec.firstVia(to).IsZero() })
			vm := viewMoves.last(to, 5*time.Second)
			var pm client.Migrated
			if !mode.standby {
				pm = pubMoves.last(to, 5*time.Second)
			}
			last, first := rec.lastVia(from), rec.firstVia(to)
			if !resumed || view.Provider() != to || (!mode.standby && pubStream.Provider() != to) {
				res.failures++
				t.Errorf("%s %d: %s → %s did not resume (viewer on %s: %v; publisher on %s: %v)", mode.name, i, from, to,
					view.Provider(), view.Err(), pubStream.Provider(), pubStream.Err())
			} else {
				gap := first.Sub(last)
				res.gaps = append(res.gaps, gap)
				// The SDK's own gap runs from the media error to the new connection
				// being up; the rest is LiveKit routing media on the new server.
				t.Logf("%s %d: %s → %s gap %4d ms: last packet %2d ms before the fault; viewer moved for %s, "+
					"reconnected in %d ms (publisher %d ms), first packet %d ms after the fault",
					mode.name, i, from, to, gap.Milliseconds(), faultAt.Sub(last).Milliseconds(), vm.Reason,
					vm.Gap.Milliseconds(), pm.Gap.Milliseconds(), first.Sub(faultAt).Milliseconds())
			}
			// Bring the failed server back for the next iteration; in hang mode
			// the publisher drops its connection to it and makes a new standby
			// there.
			if mode.standby {
				pubs[from].close()
				delete(pubs, from)
			}
			servers[from].stop()
			servers[from].start(t)
			cp.recover(from)
			if mode.standby {
				newPub(to)
			}
		}
	}
	for _, mode := range []string{"kill", "hang"} {
		r := results[mode]
		med, p95, mx := summary(r.gaps)
		t.Logf("SUMMARY %s: n=%d median=%d ms p95=%d ms max=%d ms, not resumed=%d",
			mode, len(r.gaps), med.Milliseconds(), p95.Milliseconds(), mx.Milliseconds(), r.failures)
		if r.failures != 0 {
			t.Errorf("%s: %d iterations without resumption", mode, r.failures)
		}
	}
}

// startCluster starts two livekit-server processes and a `switchboard serve`
// with them as the providers lk-a (priority 1) and lk-b (priority 2); all of
// it stops when the test ends. On failure the servers' logs are printed.
func startCluster(t *testing.T, lkBin, sbBin string) (map[string]*lkServer, api) {
	t.Helper()
	servers := map[string]*lkServer{
		"lk-a": newLKServer(t, lkBin, "lk-a", 7880, 7882),
		"lk-b": newLKServer(t, lkBin, "lk-b", 7890, 7892),
	}
	for _, s := range servers {
		s.start(t)
		t.Cleanup(s.stop)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, s := range servers {
				b, _ := os.ReadFile(s.logPath)
				t.Logf("%s log (last 4 KiB):\n%s", s.name, tail(b, 4096))
			}
		}
	})

	// The control plane.
	dir := t.TempDir()
	sbLog := filepath.Join(dir, "switchboard.log")
	logf, err := os.Create(sbLog)
	if err != nil {
		t.Fatal(err)
	}
	sb := exec.Command(sbBin, "serve")
	sb.Env = append(os.Environ(), "SWITCHBOARD_BOOTSTRAP_TOKEN="+bootToken, "SWITCHBOARD_ADDR="+sbAddr,
		"SWITCHBOARD_DB=sqlite:"+filepath.Join(dir, "switchboard.db"), "SWITCHBOARD_LOG_LEVEL=warn")
	sb.Stdout, sb.Stderr = logf, logf
	sb.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := sb.Start(); err != nil {
		t.Fatalf("start switchboard: %v", err)
	}
	sbExited := make(chan struct{})
	go func() { _ = sb.Wait(); _ = logf.Close(); close(sbExited) }()
	t.Cleanup(func() {
		_ = syscall.Kill(sb.Process.Pid, syscall.SIGTERM)
		select {
		case <-sbExited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(sb.Process.Pid, syscall.SIGKILL)
			<-sbExited
		}
	})
	waitHTTP(t, "http://"+sbAddr+"/readyz", 200, 20*time.Second, sbExited)
	cp := api{t: t, base: "http://" + sbAddr, hc: &http.Client{Timeout: 10 * time.Second}}
	cp.do("POST", "/api/streaming/providers", providerBody("lk-a", 1, servers["lk-a"].url(), apiSecret), nil, 201)
	cp.do("POST", "/api/streaming/providers", providerBody("lk-b", 2, servers["lk-b"].url(), apiSecret), nil, 201)
	return servers, cp
}

// providerBody is the request that adds a LiveKit provider; its scheduled
// checks are an hour apart, so that only the test's own checks count.
func providerBody(name string, prio int, url, secret string) map[string]any {
	return map[string]any{"name": name, "kind": "livekit", "priority": prio,
		"config":      map[string]any{"url": url},
		"credentials": map[string]any{"apiKey": apiKey, "apiSecret": secret},
		"healthCheck": map[string]any{"interval": "1h", "timeout": "2s"}}
}

// summary returns the median, the 95th percentile (nearest rank) and the max.
func summary(ds []time.Duration) (med, p95, mx time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(q float64) time.Duration {
		i := int(q*float64(len(s))+0.999999) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	return rank(0.5), rank(0.95), s[len(s)-1]
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		out.WriteString("  " + jwtRE.ReplaceAllString(sc.Text(), "[REDACTED]") + "\n")
	}
	return out.String()
}
