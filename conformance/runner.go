package conformance

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/internal/testutil"
)

// bootstrapToken is the superadmin token of the control planes the runner starts.
const bootstrapToken = "sbt_conformance-kit-bootstrap-8e21a4"

// waitLimit bounds the wait for a server to listen: it ends a run that would
// hang, and is no assertion on speed.
const waitLimit = 30 * time.Second

// instanceOwner is the owner of a stream started by an SDK that names its
// instance: the token and a digest of the instance.
var instanceOwner = regexp.MustCompile(`^token:[^/]+/[0-9a-f]{24}$`)

// Run plays sc against the SDK whose test service listens at serviceURL,
// with a control plane run from the switchboard binary bin.
func Run(t *testing.T, bin, serviceURL string, sc Scenario) {
	t.Helper()
	env := startEnv(t, bin)
	for _, p := range sc.Providers {
		env.addProvider(t, p)
	}
	var tok struct {
		Token string `json:"token"`
	}
	env.must(t, "POST", "/api/auth/tokens", map[string]string{"name": "conformance", "role": "client"}, &tok)
	if len(sc.Settings) > 0 {
		env.must(t, "PUT", "/api/settings", sc.Settings, nil)
	}

	svc := service{base: strings.TrimRight(serviceURL, "/")}
	opts := map[string]any{"failoverTimeoutMs": 5000}
	if len(sc.Client) > 0 {
		if err := json.Unmarshal(sc.Client, &opts); err != nil {
			t.Fatalf("client options: %v", err)
		}
	}
	opts["serverUrl"], opts["token"] = env.proxyURL, tok.Token
	var created struct {
		ID string `json:"id"`
	}
	if code, err := svc.do("POST", "/clients", opts, &created); err != nil || code != http.StatusCreated {
		t.Fatalf("create client: %d %v", code, err)
	}
	clientPath := "/clients/" + created.ID
	closed := false
	t.Cleanup(func() {
		if !closed {
			_, _ = svc.do("DELETE", clientPath, nil, nil)
		}
	})
	streams := map[string]streamRef{}
	groups := map[string][]streamRef{}
	stream := func(name string) streamRef {
		s, ok := streams[name]
		if !ok {
			t.Fatalf("no stream %q was started", name)
		}
		return s
	}
	for i, st := range sc.Steps {
		step := fmt.Sprintf("step %d", i+1)
		switch {
		case st.Start != nil && st.Start.Count > 0:
			group := make([]streamRef, 0, st.Start.Count)
			for n := 1; n <= st.Start.Count; n++ {
				one := *st.Start
				one.Room, one.UserID, one.Count = fmt.Sprintf("%s-%d", one.Room, n), fmt.Sprintf("%s-%d", one.UserID, n), 0
				var out streamRef
				code, err := svc.do("POST", clientPath+"/streams", one, &out)
				if err != nil || code != http.StatusCreated {
					t.Fatalf("%s: start %s #%d: %d %v", step, st.Start.As, n, code, err)
				}
				group = append(group, out)
			}
			groups[st.Start.As] = group
		case st.Start != nil:
			var out streamRef
			code, err := svc.do("POST", clientPath+"/streams", st.Start, &out)
			if err != nil || code != http.StatusCreated {
				t.Fatalf("%s: start %s: %d %v", step, st.Start.As, code, err)
			}
			streams[st.Start.As] = out
		case st.StartFails != nil:
			var out struct {
				Error struct{ Type, Message string } `json:"error"`
			}
			code, err := svc.do("POST", clientPath+"/streams", st.StartFails, &out)
			if err != nil || code == http.StatusCreated || out.Error.Type != st.StartFails.Error {
				t.Fatalf("%s: start want %s, got %d %+v %v", step, st.StartFails.Error, code, out.Error, err)
			}
		case st.ExpectProvider != nil:
			v := getStream(t, svc, clientPath, stream(st.ExpectProvider.Stream))
			if v.Provider != st.ExpectProvider.Provider {
				t.Fatalf("%s: stream %s on %q, want %q", step, st.ExpectProvider.Stream, v.Provider, st.ExpectProvider.Provider)
			}
		case st.ExpectStates != nil:
			// A test service may record states as its SDK delivers them,
			// a moment after the call that caused them answered: wait for
			// as many as expected, then compare the whole sequence.
			ref := stream(st.ExpectStates.Stream)
			var v streamView
			waitFor(t, step+": states of "+st.ExpectStates.Stream, func() bool {
				v = getStream(t, svc, clientPath, ref)
				return len(v.States) >= len(st.ExpectStates.Types)
			})
			if got := v.types(); !slices.Equal(got, st.ExpectStates.Types) {
				t.Fatalf("%s: states %v, want %v", step, got, st.ExpectStates.Types)
			}
		case st.ExpectLastState != nil:
			v := getStream(t, svc, clientPath, stream(st.ExpectLastState.Stream))
			if len(v.States) == 0 || !v.States[len(v.States)-1].matches(*st.ExpectLastState) {
				t.Fatalf("%s: last state of %v, want %+v", step, v.types(), *st.ExpectLastState)
			}
		case st.WaitState != nil:
			ref := stream(st.WaitState.Stream)
			waitFor(t, step+": state "+st.WaitState.Type, func() bool {
				for _, s := range getStream(t, svc, clientPath, ref).States {
					if s.matches(*st.WaitState) {
						return true
					}
				}
				return false
			})
		case st.ExpectServer != nil:
			ref := stream(st.ExpectServer.Stream)
			want := st.ExpectServer
			// The server learns of moves and failures asynchronously (reports are spread over a second).
			waitFor(t, step+": the server's view of "+want.Stream, func() bool {
				var v struct {
					Provider string `json:"provider"`
					Status   string `json:"status"`
					Owner    string `json:"owner"`
					Trail    []struct {
						Kind, Provider, Stage string
					} `json:"trail"`
				}
				env.must(t, "GET", "/api/streams/"+ref.StreamID, nil, &v)
				if want.Owned && !instanceOwner.MatchString(v.Owner) {
					t.Fatalf("%s: the stream's owner is %q: the SDK does not name its instance (X-Switchboard-Instance)", step, v.Owner)
				}
				if (want.Provider != "" && v.Provider != want.Provider) || (want.Status != "" && v.Status != want.Status) {
					return false
				}
				if want.Failure == nil {
					return true
				}
				return slices.ContainsFunc(v.Trail, func(e struct{ Kind, Provider, Stage string }) bool {
					return e.Kind == "failure" && e.Provider == want.Failure.Provider && e.Stage == want.Failure.Stage
				})
			})
		case st.ExpectLog != nil:
			waitFor(t, step+": log line "+st.ExpectLog.Contains, func() bool {
				var v struct {
					Logs []string `json:"logs"`
				}
				if _, err := svc.do("GET", clientPath, nil, &v); err != nil {
					t.Fatalf("%s: %v", step, err)
				}
				return slices.ContainsFunc(v.Logs, func(l string) bool { return strings.Contains(l, st.ExpectLog.Contains) })
			})
		case st.Fault != nil:
			if code, err := svc.do("POST", clientPath+"/faults", st.Fault, nil); err != nil || code != http.StatusOK {
				t.Fatalf("%s: fault: %d %v", step, code, err)
			}
		case st.Health != nil:
			env.setHealth(st.Health.Provider, st.Health.Up)
			var res struct {
				Status string `json:"status"`
			}
			env.must(t, "POST", "/api/streaming/providers/"+st.Health.Provider+"/health-check", nil, &res)
			if up := res.Status != "CRITICAL"; up != st.Health.Up {
				t.Fatalf("%s: %s is %s after the probe", step, st.Health.Provider, res.Status)
			}
		case st.WaitEvents != nil:
			waitFor(t, fmt.Sprintf("%s: events connected %v", step, st.WaitEvents.Connected), func() bool {
				var v struct {
					EventsConnected bool `json:"eventsConnected"`
				}
				if _, err := svc.do("GET", clientPath, nil, &v); err != nil {
					t.Fatalf("%s: %v", step, err)
				}
				return v.EventsConnected == st.WaitEvents.Connected
			})
		case st.End != nil:
			ref := stream(st.End.Stream)
			if code, err := svc.do("POST", clientPath+"/streams/"+ref.ID+"/end", nil, nil); err != nil || code != http.StatusOK {
				t.Fatalf("%s: end: %d %v", step, code, err)
			}
		case st.Close != nil:
			closed = true
			if code, err := svc.do("DELETE", clientPath, nil, nil); err != nil || code != http.StatusOK {
				t.Fatalf("%s: close: %d %v", step, code, err)
			}
		case len(st.PutSettings) > 0:
			env.must(t, "PUT", "/api/settings", st.PutSettings, nil)
		case st.Reorder != nil:
			env.must(t, "PUT", "/api/streaming/providers/priorities", map[string]any{"order": st.Reorder.Order}, nil)
		case st.WaitConfig != nil:
			want := st.WaitConfig
			waitFor(t, fmt.Sprintf("%s: configuration %+v", step, *want), func() bool {
				var v struct {
					Config struct {
						MaxRetries  int `json:"maxRetries"`
						MaxFailures int `json:"maxFailures"`
						Providers   []struct {
							Name string `json:"name"`
						} `json:"providers"`
					} `json:"config"`
				}
				if _, err := svc.do("GET", clientPath, nil, &v); err != nil {
					t.Fatalf("%s: %v", step, err)
				}
				c := v.Config
				return (want.First == "" || (len(c.Providers) > 0 && c.Providers[0].Name == want.First)) &&
					(want.MaxRetries == 0 || c.MaxRetries == want.MaxRetries) && (want.MaxFailures == 0 || c.MaxFailures == want.MaxFailures)
			})
		case st.BlockEvents != nil:
			env.blockEvents(st.BlockEvents.Blocked)
		case st.WaitStreams != nil:
			want := st.WaitStreams
			group, ok := groups[want.Group]
			if !ok {
				t.Fatalf("%s: no group %q was started", step, want.Group)
			}
			var n int
			var last []string
			deadline := time.Now().Add(testutil.Patience)
			for {
				n, last = 0, last[:0]
				for _, ref := range group {
					v := getStream(t, svc, clientPath, ref)
					if len(v.States) == 0 {
						last = append(last, "none")
						continue
					}
					s := v.States[len(v.States)-1]
					last = append(last, s.Type+" "+s.Provider+s.Error)
					if s.Type == want.Type && (want.Provider == "" || s.Provider == want.Provider) &&
						(want.Error == "" || strings.Contains(s.Error, want.Error)) {
						n++
					}
				}
				if n >= want.Count {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: timed out after %v waiting for %d streams of %s to be %s: %d are; last states: %q",
						step, testutil.Patience, want.Count, want.Group, want.Type, n, last)
				}
				time.Sleep(20 * time.Millisecond)
			}
			if n != want.Count {
				t.Fatalf("%s: %d streams of %s are %s, want %d; last states: %q", step, n, want.Group, want.Type, want.Count, last)
			}
		case st.ExpectAttempts != nil:
			if got := env.attemptsOn(st.ExpectAttempts.Provider); got != st.ExpectAttempts.Count {
				t.Fatalf("%s: %d attempts on %s, want %d (all: %v)", step, got, st.ExpectAttempts.Provider, st.ExpectAttempts.Count, env.allAttempts())
			}
		case st.ServerStreams != nil:
			want := st.ServerStreams
			q := url.Values{"status": {want.Status}, "limit": {"500"}}
			if want.Provider != "" {
				q.Set("provider", want.Provider)
			}
			var n int
			waitFor(t, fmt.Sprintf("%s: %d %s streams on the server", step, want.Count, want.Status), func() bool {
				var v struct {
					Streams []json.RawMessage `json:"streams"`
				}
				env.must(t, "GET", "/api/streams?"+q.Encode(), nil, &v)
				n = len(v.Streams)
				return n == want.Count
			})
		case st.KillServer != nil:
			env.kill(t)
		case st.RestartServer != nil:
			env.start(t)
		}
	}
}

type streamRef struct {
	ID       string `json:"id"`
	StreamID string `json:"streamId"`
}

type stateView struct {
	Type     string `json:"type"`
	Provider string `json:"provider"`
	From     string `json:"from"`
	To       string `json:"to"`
	Error    string `json:"error"`
}

func (s stateView) matches(w StateStep) bool {
	return s.Type == w.Type && (w.From == "" || s.From == w.From) && (w.To == "" || s.To == w.To)
}

type streamView struct {
	Provider string      `json:"provider"`
	Ended    bool        `json:"ended"`
	States   []stateView `json:"states"`
}

func (v streamView) types() []string {
	out := make([]string, len(v.States))
	for i, s := range v.States {
		out[i] = s.Type
	}
	return out
}

func getStream(t *testing.T, svc service, clientPath string, ref streamRef) streamView {
	t.Helper()
	var v streamView
	if code, err := svc.do("GET", clientPath+"/streams/"+ref.ID, nil, &v); err != nil || code != http.StatusOK {
		t.Fatalf("read stream: %d %v", code, err)
	}
	return v
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testutil.Eventually(t, what, cond)
}

// service is a client of an SDK's test service.
type service struct{ base string }

var serviceHTTP = &http.Client{Timeout: 60 * time.Second}

func (s service) do(method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, body)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := serviceHTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, err
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %w: %s", method, path, err, b)
		}
	}
	return resp.StatusCode, nil
}

// env is one control plane (`switchboard serve` on a SQLite file) and the
// loopback health endpoint of its providers.
type env struct {
	bin, dir string
	url      string
	cmd      *exec.Cmd
	exited   chan struct{}
	health   *http.Server
	healthLn net.Listener
	proxy    *httptest.Server
	proxyURL string
	mu       sync.Mutex
	down     map[string]bool
	blocked  bool
	cuts     map[*http.Request]context.CancelFunc // open event streams through the proxy
	attempts map[string]int                       // assignments answered through the proxy, by provider
}

func startEnv(t *testing.T, bin string) *env {
	t.Helper()
	e := &env{bin: bin, dir: t.TempDir(), down: map[string]bool{}, cuts: map[*http.Request]context.CancelFunc{}, attempts: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.healthLn = ln
	e.health = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		down := e.down[strings.TrimPrefix(r.URL.Path, "/health/")]
		e.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = e.health.Serve(ln) }()
	t.Cleanup(func() {
		e.kill(t)
		_ = e.health.Close()
	})
	e.start(t)
	// The SDK talks to the control plane through a proxy that can block its
	// event stream; it forwards to wherever the server listens now.
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			u, _ := url.Parse(e.url)
			r.SetURL(u)
		},
		FlushInterval:  -1,
		ModifyResponse: e.countAttempt,
		// Cut streams and a killed server are the scenarios' doing, not news.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	e.proxy = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/events" {
			rp.ServeHTTP(w, r)
			return
		}
		e.mu.Lock()
		if e.blocked {
			e.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, `{"error":{"code":"unavailable","message":"event stream blocked by the conformance kit","field":""}}`)
			return
		}
		ctx, cancel := context.WithCancel(r.Context())
		r = r.WithContext(ctx)
		e.cuts[r] = cancel
		e.mu.Unlock()
		defer func() {
			e.mu.Lock()
			delete(e.cuts, r)
			e.mu.Unlock()
			cancel()
		}()
		rp.ServeHTTP(w, r)
	}))
	e.proxyURL = e.proxy.URL
	t.Cleanup(func() {
		e.blockEvents(true)
		e.proxy.Close()
	})
	return e
}

// assigning matches the SDK's calls whose answer is an assignment: a start
// and a migrate.
var assigning = regexp.MustCompile(`^/api/streams(/[^/]+/migrate)?$`)

// countAttempt counts, by provider, the assignments the control plane answers
// through the proxy: each is an attempt of the SDK on that provider.
func (e *env) countAttempt(resp *http.Response) error {
	r := resp.Request
	if r.Method != http.MethodPost || !assigning.MatchString(r.URL.Path) || resp.StatusCode/100 != 2 {
		return nil
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	if err != nil {
		return err
	}
	var a struct {
		Provider struct {
			Name string `json:"name"`
		} `json:"provider"`
	}
	if json.Unmarshal(b, &a) == nil && a.Provider.Name != "" {
		e.mu.Lock()
		e.attempts[a.Provider.Name]++
		e.mu.Unlock()
	}
	return nil
}

func (e *env) attemptsOn(provider string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.attempts[provider]
}

func (e *env) allAttempts() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.attempts)
}

// blockEvents blocks the event stream at the proxy (cutting the open ones), or lets it through.
func (e *env) blockEvents(blocked bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.blocked = blocked
	if blocked {
		for r, cancel := range e.cuts {
			cancel()
			delete(e.cuts, r)
		}
	}
}

var listening = regexp.MustCompile(`switchboard listening on (http://\S+)`)

// start starts the server, on the address it had before if it ran already.
func (e *env) start(t *testing.T) {
	t.Helper()
	addr := "127.0.0.1:0"
	if e.url != "" {
		addr = strings.TrimPrefix(e.url, "http://")
	}
	cmd := exec.Command(e.bin, "serve", "--addr", addr, "--db", "sqlite:"+filepath.Join(e.dir, "switchboard.db"), "--public-rate-limit", "0")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + e.dir, "SWITCHBOARD_BOOTSTRAP_TOKEN=" + bootstrapToken, "SWITCHBOARD_ADMIN_PASSWORD=conformance-kit-admin-password"}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e.cmd, e.exited = cmd, make(chan struct{})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		_ = cmd.Wait()
		close(e.exited)
	}()
	select {
	case u := <-found:
		e.url = u
	case <-e.exited:
		t.Fatalf("switchboard serve exited: %s", stderr.String())
	case <-time.After(waitLimit):
		t.Fatalf("switchboard serve did not listen: %s", stderr.String())
	}
}

// kill stops the server with SIGKILL and waits for it to be gone.
func (e *env) kill(t *testing.T) {
	t.Helper()
	if e.cmd == nil {
		return
	}
	_ = e.cmd.Process.Kill()
	<-e.exited
	e.cmd = nil
}

func (e *env) setHealth(provider string, up bool) {
	e.mu.Lock()
	e.down[provider] = !up
	e.mu.Unlock()
}

func (e *env) addProvider(t *testing.T, p ProviderSpec) {
	t.Helper()
	e.must(t, "POST", "/api/streaming/providers", map[string]any{
		"name": p.Name, "kind": "http", "priority": p.Priority,
		"config":      map[string]any{"url": "http://" + e.healthLn.Addr().String() + "/health/" + p.Name},
		"healthCheck": map[string]any{"interval": "1h", "timeout": "2s", "failureThreshold": 1, "successThreshold": 1},
	}, nil)
	var res struct {
		Status string `json:"status"`
	}
	e.must(t, "POST", "/api/streaming/providers/"+p.Name+"/health-check", nil, &res)
	if res.Status == "CRITICAL" {
		t.Fatalf("provider %s is CRITICAL after its first probe", p.Name)
	}
}

// must makes an API call with the bootstrap token and fails the test on an error answer.
func (e *env) must(t *testing.T, method, path string, in, out any) {
	t.Helper()
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, e.url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+bootstrapToken)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}
