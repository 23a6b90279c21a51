// Package probetest is the suite that the health probe of every provider kind
// passes against its loopback fake, and the test helpers the kinds share.
//
// The suite checks what every probe promises whatever it asks: each fault of
// the fake fails at its stage, a hanging server is a timeout by the deadline, a
// client's own timeout is a timeout too, the latency is one round trip, results
// carry the injected clock, redirects are never followed, and no message holds
// a credential even when a server echoes the request back. What a kind asks,
// and what its messages say, its own tests check.
package probetest

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/providers/fault"
	"github.com/switchboardhq/switchboard/internal/providers/probe"
)

// Kind describes one provider kind to the suite.
type Kind struct {
	// Adapter returns the probe under test, sending with client (nil means the
	// adapter's default client) and stamping results with now.
	Adapter func(client *http.Client, now func() time.Time) switchboard.Prober
	// Fake starts the kind's fake, closed when t ends, and returns a provider
	// with good credentials that points at it, and the fake's fault injector.
	Fake func(t *testing.T) (switchboard.Provider, *fault.Server)
	// At returns a provider with good credentials that points at base, a server
	// other than the fake.
	At func(base string) switchboard.Provider
	// Messages are substrings that the message of a probe must hold, by the
	// mode of the fake; a mode without one is not checked.
	Messages map[fault.Mode]string
	// RequestSecrets names what a request of the probe carries that is as secret
	// as the credentials (a signature, say), beyond the credentials and the
	// Authorization header that the suite knows; nil means nothing more.
	RequestSecrets func(r *http.Request) []string
}

// Run runs the suite for k.
func Run(t *testing.T, k Kind) {
	t.Run("faults", k.testFaults)
	t.Run("hang", k.testHang)
	t.Run("client timeout", k.testClientTimeout)
	t.Run("latency", k.testLatency)
	t.Run("no deadline", k.testNoDeadline)
	t.Run("redirect", k.testRedirect)
	t.Run("echoed request", k.testEcho)
}

func (k Kind) testFaults(t *testing.T) {
	tests := []struct {
		mode  fault.Mode
		stage switchboard.Stage
	}{
		{fault.OK, ""},
		{fault.Refuse, switchboard.StageConnect},
		{fault.ServerErr, switchboard.StageOperation},
		{fault.RejectAuth, switchboard.StageAuth},
	}
	for _, tt := range tests {
		t.Run(string(tt.mode), func(t *testing.T) {
			CheckGoroutines(t)
			p, faults := k.Fake(t)
			if err := faults.Set(tt.mode); err != nil {
				t.Fatalf("Set(%s): %v", tt.mode, err)
			}
			at := time.Now().Truncate(time.Second)
			res, _ := ProbeWithin(k.Adapter(Client(t), func() time.Time { return at }), p, 5*time.Second)
			if res.OK != (tt.stage == "") || res.Stage != tt.stage {
				t.Fatalf("result = %+v, want stage %q", res, tt.stage)
			}
			if want := k.Messages[tt.mode]; !strings.Contains(res.Message, want) {
				t.Errorf("message %q lacks %q", res.Message, want)
			}
			if !res.At.Equal(at) {
				t.Errorf("At = %v, want the injected %v", res.At, at)
			}
			if res.OK && res.Latency <= 0 {
				t.Errorf("latency = %v, want > 0", res.Latency)
			}
			AssertNoSecret(t, res.Message, p.Credentials.Values()...)
		})
	}
}

func (k Kind) testHang(t *testing.T) {
	CheckGoroutines(t)
	p, faults := k.Fake(t)
	if err := faults.Set(fault.Hang); err != nil {
		t.Fatal(err)
	}
	res, took := ProbeWithin(k.Adapter(Client(t), nil), p, 200*time.Millisecond)
	if res.OK || res.Stage != switchboard.StageTimeout {
		t.Fatalf("result = %+v, want a timeout", res)
	}
	t.Logf("hung probe returned %v after its start, deadline 200ms: %s", took, res.Message)
	if took > 2*time.Second {
		t.Errorf("probe returned after %v, want promptly at the 200ms deadline", took)
	}
}

// testClientTimeout checks that a client's own timeout, under a context
// without deadline, counts as a timeout too.
func (k Kind) testClientTimeout(t *testing.T) {
	CheckGoroutines(t)
	p, faults := k.Fake(t)
	if err := faults.Set(fault.Hang); err != nil {
		t.Fatal(err)
	}
	c := Client(t)
	c.Timeout = 200 * time.Millisecond
	res := k.Adapter(c, nil).Probe(context.Background(), p)
	if res.OK || res.Stage != switchboard.StageTimeout {
		t.Fatalf("result = %+v, want a timeout", res)
	}
}

// testLatency checks that the latency is one round trip: the fake adds 100 ms
// to every request. The best of three probes is compared, with a bound loose
// enough for a busy machine and tight enough to catch two round trips.
func (k Kind) testLatency(t *testing.T) {
	CheckGoroutines(t)
	const added = 100 * time.Millisecond
	p, faults := k.Fake(t)
	faults.SetLatency(added)
	a := k.Adapter(Client(t), nil)
	best := time.Duration(1 << 62)
	for range 3 {
		res, _ := ProbeWithin(a, p, 5*time.Second)
		if !res.OK {
			t.Fatalf("result = %+v, want OK", res)
		}
		best = min(best, res.Latency)
	}
	t.Logf("best latency %v for %v added", best, added)
	if best < added || best > added+added/2 {
		t.Errorf("best latency = %v, want %v and at most half as much again", best, added)
	}
}

// testNoDeadline probes with the default client and a context without
// deadline, as a caller may.
func (k Kind) testNoDeadline(t *testing.T) {
	CheckGoroutines(t)
	p, _ := k.Fake(t)
	t.Cleanup(probe.Client(nil).CloseIdleConnections)
	if res := k.Adapter(nil, nil).Probe(context.Background(), p); !res.OK {
		t.Fatalf("result = %+v, want OK", res)
	}
}

// testRedirect checks that neither the default client nor a caller's client,
// whose policy follows redirects, follows one.
func (k Kind) testRedirect(t *testing.T) {
	for name, custom := range map[string]bool{"default client": false, "own client": true} {
		t.Run(name, func(t *testing.T) {
			CheckGoroutines(t)
			var targetHits atomic.Int64
			srv, err := fault.Start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/elsewhere" {
					targetHits.Add(1)
					return
				}
				http.Redirect(w, r, "/elsewhere", http.StatusFound)
			}))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.Close() })
			var c *http.Client
			if custom {
				c = Client(t)
			} else {
				t.Cleanup(probe.Client(nil).CloseIdleConnections)
			}
			res, _ := ProbeWithin(k.Adapter(c, nil), k.At(srv.URL()), 5*time.Second)
			if res.OK || res.Stage != switchboard.StageOperation {
				t.Errorf("result = %+v, want an operation failure", res)
			}
			if n := targetHits.Load(); n != 0 {
				t.Errorf("redirect target hit %d times, want 0", n)
			}
		})
	}
}

// testEcho probes a server that answers every request (but a bare GET /, which
// it answers 200 OK) with the request quoted in the places error answers keep
// their message, behind padding that moves the secrets across the lengths at
// which messages are cut. No message may hold a credential, the Authorization
// header or, by RequestSecrets, anything else the request carried in secret.
func (k Kind) testEcho(t *testing.T) {
	for _, status := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusInternalServerError} {
		for _, pad := range []int{0, 40, 60, 100, 105} {
			t.Run(fmt.Sprintf("%d pad %d", status, pad), func(t *testing.T) {
				CheckGoroutines(t)
				var mu sync.Mutex
				var secrets []string
				srv, err := fault.Start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.Method == http.MethodGet && r.URL.Path == "/" && r.URL.RawQuery == "" {
						_, _ = w.Write([]byte("OK"))
						return
					}
					auth := r.Header.Get("Authorization")
					mu.Lock()
					if _, cred, ok := strings.Cut(auth, " "); ok {
						secrets = append(secrets, auth, cred)
					}
					if k.RequestSecrets != nil {
						secrets = append(secrets, k.RequestSecrets(r)...)
					}
					mu.Unlock()
					var headers strings.Builder
					_ = r.Header.Write(&headers)
					echo := strings.Repeat(".", pad) + "Authorization: " + auth + " query: " + r.URL.RawQuery + " headers: " + headers.String()
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(status)
					_ = json.NewEncoder(w).Encode(map[string]any{"Code": 100000005, "Message": echo, "msg": echo})
				}))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = srv.Close() })
				p := k.At(srv.URL())
				res, _ := ProbeWithin(k.Adapter(Client(t), nil), p, 5*time.Second)
				if res.OK {
					t.Fatalf("result = %+v, want a failure", res)
				}
				mu.Lock()
				defer mu.Unlock()
				AssertNoSecret(t, res.Message, append(secrets, p.Credentials.Values()...)...)
			})
		}
	}
}

// ProbeWithin probes p with a, under a context that ends after timeout, and
// says how long the probe took.
func ProbeWithin(a switchboard.Prober, p switchboard.Provider, timeout time.Duration) (switchboard.ProbeResult, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	res := a.Probe(ctx, p)
	return res, time.Since(start)
}

// Client returns a client with a transport of its own, whose idle connections
// close when t ends.
func Client(t testing.TB) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// Clock returns now as a switchboard.Clock, for adapters that take one; nil
// gives nil, the adapter's default.
func Clock(now func() time.Time) switchboard.Clock {
	if now == nil {
		return nil
	}
	return clockFunc(now)
}

type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }

// CloseAtEnd closes c when t ends, and fails t if that fails.
func CloseAtEnd(t testing.TB, c io.Closer) {
	t.Helper()
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
}

// Do sends req, to a fake say, with a client of its own and returns the
// answer's status and body.
func Do(t testing.TB, req *http.Request) (int, string) {
	t.Helper()
	resp, err := Client(t).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", req.Method, req.URL.Path, err)
	}
	return resp.StatusCode, string(b)
}

// AssertNoSecret fails t if msg holds any non-empty secret, or any of its
// first 8 bytes, for secrets of 12 bytes or more, which a cut message might
// leave behind.
func AssertNoSecret(t testing.TB, msg string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if strings.Contains(msg, s) || (len(s) >= 12 && strings.Contains(msg, s[:8])) {
			t.Errorf("message %q holds a secret", msg)
			return
		}
	}
}

// CheckGoroutines fails t if goroutines started during it outlive it. Call it
// first in a test, so that its cleanup runs last.
func CheckGoroutines(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		if n, stacks := settle(before); n > before {
			t.Errorf("%d goroutines before, %d after:\n%s", before, n, stacks)
		}
	})
}

// Main runs the tests of m and fails the run if a goroutine outlives them:
// every probe and every fake must stop with its context or its Close. Call it
// from TestMain as os.Exit(probetest.Main(m)). A fuzzing run is not checked,
// since the fuzzing engine keeps goroutines of its own.
func Main(m *testing.M) int {
	before := runtime.NumGoroutine()
	code := m.Run()
	if fuzz := flag.Lookup("test.fuzz"); code != 0 || (fuzz != nil && fuzz.Value.String() != "") {
		return code
	}
	probe.Client(nil).CloseIdleConnections()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	if n, stacks := settle(before); n > before {
		fmt.Fprintf(os.Stderr, "goroutines leaked: %d before, %d after\n%s\n", before, n, stacks)
		return 1
	}
	return 0
}

// settle waits up to 5 s for the number of goroutines to fall to want, and
// returns the number and, when it did not, the stacks of all goroutines.
func settle(want int) (int, []byte) {
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	n := runtime.NumGoroutine()
	if n <= want {
		return n, nil
	}
	buf := make([]byte, 1<<20)
	return n, buf[:runtime.Stack(buf, true)]
}
