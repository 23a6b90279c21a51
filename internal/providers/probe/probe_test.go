package probe_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/providers/probe"
	"github.com/switchboardhq/switchboard/internal/providers/probe/probetest"
)

func TestMain(m *testing.M) { os.Exit(probetest.Main(m)) }

func TestClientNeverFollowsRedirects(t *testing.T) {
	var targetHits atomic.Int64
	mux := http.NewServeMux()
	mux.HandleFunc("/from", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/to", http.StatusFound) })
	mux.HandleFunc("/to", func(http.ResponseWriter, *http.Request) { targetHits.Add(1) })
	srv := httptest.NewServer(mux)
	defer srv.Close()

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	follows := &http.Client{Transport: tr} // the net/http default policy follows
	for name, c := range map[string]*http.Client{"default": nil, "custom": follows} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/from", nil)
			status, _, err := probe.Send(probe.Client(c), req, 1<<10)
			if err != nil || status != http.StatusFound {
				t.Fatalf("probe.Send = %d, %v; want 302", status, err)
			}
		})
	}
	probe.Client(nil).CloseIdleConnections()
	if n := targetHits.Load(); n != 0 {
		t.Errorf("redirect target hit %d times", n)
	}
	if follows.CheckRedirect != nil {
		t.Error("probe.Client changed the caller's client")
	}
	if probe.Client(nil).Timeout != probe.DefaultTimeout {
		t.Errorf("default client timeout = %v, want %v", probe.Client(nil).Timeout, probe.DefaultTimeout)
	}
}

func TestSend(t *testing.T) {
	var gotUA atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotUA.Store(r.Header.Get("User-Agent"))
		switch r.URL.Path {
		case "/big":
			_, _ = w.Write([]byte(strings.Repeat("x", 10_000)))
		case "/cut":
			// Promise more than is sent, then drop the connection.
			w.Header().Set("Content-Length", "1000")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("partial"))
			w.(http.Flusher).Flush()
			conn, _, _ := w.(http.Hijacker).Hijack()
			conn.Close()
		default:
			w.WriteHeader(http.StatusTeapot)
			_, _ = w.Write([]byte("short"))
		}
	}))
	defer srv.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}

	tests := []struct {
		path, ua   string
		wantStatus int
		wantLen    int
		wantRead   bool
		wantUA     string
	}{
		{path: "/", wantStatus: 418, wantLen: 5, wantUA: "switchboard/" + switchboard.Version},
		{path: "/", ua: "custom/1", wantStatus: 418, wantLen: 5, wantUA: "custom/1"},
		{path: "/big", wantStatus: 200, wantLen: 4096, wantUA: "switchboard/" + switchboard.Version},
		{path: "/cut", wantStatus: 200, wantRead: true, wantUA: "switchboard/" + switchboard.Version},
	}
	for _, tt := range tests {
		t.Run(tt.path+tt.ua, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+tt.path, nil)
			if tt.ua != "" {
				req.Header.Set("User-Agent", tt.ua)
			}
			status, body, err := probe.Send(c, req, 4096)
			var re *probe.ReadError
			if errors.As(err, &re) != tt.wantRead || (err != nil && !tt.wantRead) {
				t.Fatalf("err = %v, want a read error: %v", err, tt.wantRead)
			}
			if status != tt.wantStatus || len(body) != tt.wantLen {
				t.Errorf("probe.Send = %d with %d bytes, want %d with %d", status, len(body), tt.wantStatus, tt.wantLen)
			}
			if got := gotUA.Load(); got != tt.wantUA {
				t.Errorf("User-Agent = %v, want %s", got, tt.wantUA)
			}
		})
	}
}

type timeoutError struct{}

func (timeoutError) Error() string   { return "i/o timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }

var _ net.Error = timeoutError{}

func TestStageAndReason(t *testing.T) {
	expired, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel()
	cancelled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	live := context.Background()
	urlErr := &url.Error{Op: "Get", URL: "http://h/?Signature=s3cret", Err: errors.New("connection refused")}

	tests := []struct {
		name       string
		ctx        context.Context
		err        error
		wantStage  switchboard.Stage
		wantReason string
	}{
		{"deadline", expired, urlErr, switchboard.StageTimeout, "no answer before the probe deadline"},
		{"cancelled", cancelled, urlErr, switchboard.StageTimeout, "probe cancelled"},
		{"client timeout", live, &url.Error{Op: "Get", URL: "http://h/", Err: timeoutError{}}, switchboard.StageTimeout, "i/o timeout"},
		{"refused", live, urlErr, switchboard.StageConnect, "connection refused"},
		{"read error", live, &probe.ReadError{errors.New("unexpected EOF")}, switchboard.StageConnect, "read answer: unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := probe.Stage(tt.ctx, tt.err); got != tt.wantStage {
				t.Errorf("probe.Stage = %q, want %q", got, tt.wantStage)
			}
			if got := probe.Reason(tt.ctx, tt.err); got != tt.wantReason {
				t.Errorf("probe.Reason = %q, want %q", got, tt.wantReason)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct {
		in      string
		secrets []string
		want    string
	}{
		{"key abc and abcdef", []string{"abc", "abcdef"}, "key [REDACTED] and [REDACTED]"},
		{"key abc and abcdef", []string{"abcdef", "abc"}, "key [REDACTED] and [REDACTED]"},
		{"nothing here", []string{"", "zzz"}, "nothing here"},
		{"no secrets", nil, "no secrets"},
	}
	for _, tt := range tests {
		if got := probe.Redact(tt.in, tt.secrets...); got != tt.want {
			t.Errorf("probe.Redact(%q, %q) = %q, want %q", tt.in, tt.secrets, got, tt.want)
		}
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"longer text", 6, "longer…"},
		{"héllo", 2, "h…"}, // é is two bytes: never cut inside it
		{"ééé", 3, "é…"},
	}
	for _, tt := range tests {
		if got := probe.Truncate(tt.in, tt.n); got != tt.want {
			t.Errorf("probe.Truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestWithFallbackTimeout(t *testing.T) {
	ctx, cancel := probe.WithFallbackTimeout(context.Background(), time.Hour)
	defer cancel()
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > time.Hour {
		t.Errorf("no deadline: got %v, %v; want one within an hour", d, ok)
	}
	want := time.Now().Add(time.Minute)
	parent, cancelParent := context.WithDeadline(context.Background(), want)
	defer cancelParent()
	ctx2, cancel2 := probe.WithFallbackTimeout(parent, time.Hour)
	defer cancel2()
	if d, _ := ctx2.Deadline(); !d.Equal(want) {
		t.Errorf("deadline = %v, want the parent's %v", d, want)
	}
}

func TestResult(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	live := context.Background()
	expired, cancel := context.WithDeadline(live, time.Now().Add(-time.Second))
	defer cancel()
	tests := []struct {
		name      string
		run       func(r *probe.Result) switchboard.ProbeResult
		wantOK    bool
		wantStage switchboard.Stage
		wantMsg   string
	}{
		{"pass", func(r *probe.Result) switchboard.ProbeResult { return r.Pass("ready") }, true, "", "ready"},
		{"fail redacts", func(r *probe.Result) switchboard.ProbeResult {
			return r.Fail(switchboard.StageAuth, "key %s rejected", "cust-secret-1")
		}, false, switchboard.StageAuth, "key [REDACTED] rejected"},
		{"protected later", func(r *probe.Result) switchboard.ProbeResult {
			r.Protect("sig-0123456789")
			return r.Fail(switchboard.StageOperation, "bad sig-0123456789")
		}, false, switchboard.StageOperation, "bad [REDACTED]"},
		{"quote redacts before it cuts", func(r *probe.Result) switchboard.ProbeResult {
			return r.Fail(switchboard.StageOperation, "said %s", r.Quote("0123456789 cust-secret-1", 14))
		}, false, switchboard.StageOperation, "said 0123456789 [RE…"},
		{"exchange timeout", func(r *probe.Result) switchboard.ProbeResult {
			return r.FailExchange(expired, errors.New("context deadline exceeded"))
		}, false, switchboard.StageTimeout, "no answer before the probe deadline"},
		{"exchange read", func(r *probe.Result) switchboard.ProbeResult {
			return r.FailExchange(live, &probe.ReadError{errors.New("unexpected EOF")})
		}, false, switchboard.StageOperation, "read answer: unexpected EOF"},
		{"exchange connect", func(r *probe.Result) switchboard.ProbeResult {
			return r.FailExchange(live, &url.Error{Op: "Get", URL: "http://h/?k=cust-secret-1", Err: fmt.Errorf("dial cust-secret-1: refused")})
		}, false, switchboard.StageConnect, "cannot reach the API: dial [REDACTED]: refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := probe.NewResult(at, "cust-secret-1")
			r.SetLatency(time.Millisecond)
			got := tt.run(r)
			if got.OK != tt.wantOK || got.Stage != tt.wantStage || got.Message != tt.wantMsg {
				t.Errorf("result = %+v; want ok %v, stage %q, message %q", got, tt.wantOK, tt.wantStage, tt.wantMsg)
			}
			if !got.At.Equal(at) || got.Latency != time.Millisecond {
				t.Errorf("At, Latency = %v, %v; want %v, 1ms", got.At, got.Latency, at)
			}
		})
	}
}
