package httpcheck

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/providers/fault"
	"github.com/switchboardhq/switchboard/internal/providers/probe/probetest"
)

func TestMain(m *testing.M) { os.Exit(probetest.Main(m)) }

const (
	secretHeader = "X-Api-Key"
	secretValue  = "hdr-s3cret-Value-0123456789abcdef"
)

// upstream is a provider's HTTP endpoint: /health needs the secret header,
// /redirect redirects to /target, /big answers 8 MiB, /status/{code} answers code
// and /echo echoes the request headers in a 500.
type upstream struct {
	*fault.Server
	targetHits atomic.Int64
}

func startUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	mux := http.NewServeMux()
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if fault.AuthRejected(r) || r.Header.Get(secretHeader) != secretValue {
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
			h(w, r)
		}
	}
	mux.HandleFunc("GET /health", auth(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	mux.HandleFunc("POST /health", auth(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	mux.HandleFunc("GET /vhost", func(w http.ResponseWriter, r *http.Request) {
		if r.Host != "provider.internal" {
			http.Error(w, "unknown host", http.StatusMisdirectedRequest)
		}
	})
	mux.HandleFunc("GET /redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/target", http.StatusFound)
	})
	mux.HandleFunc("GET /target", func(w http.ResponseWriter, r *http.Request) { u.targetHits.Add(1) })
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("x", 64<<10))
		for range 128 {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("GET /forbidden", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "forbidden", http.StatusForbidden)
	})
	mux.HandleFunc("GET /echo", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
		_ = r.Header.Write(w)
	})
	s, err := fault.Start(mux)
	if err != nil {
		t.Fatalf("fault.Start: %v", err)
	}
	probetest.CloseAtEnd(t, s)
	u.Server = s
	return u
}

func newAdapter(t *testing.T) Adapter {
	t.Helper()
	return Adapter{Client: probetest.Client(t)}
}

// TestProbeSuite runs the probe suite that every provider kind passes.
func TestProbeSuite(t *testing.T) {
	probetest.Run(t, probetest.Kind{
		Adapter: func(c *http.Client, now func() time.Time) switchboard.Prober {
			return Adapter{Client: c, Clock: probetest.Clock(now)}
		},
		Fake: func(t *testing.T) (switchboard.Provider, *fault.Server) {
			u := startUpstream(t)
			return provider(u.URL()), u.Server
		},
		At: provider,
		Messages: map[fault.Mode]string{
			fault.OK:         "GET answered 200",
			fault.Refuse:     "refused",
			fault.ServerErr:  "503",
			fault.RejectAuth: "401",
		},
	})
}

func provider(url string) switchboard.Provider {
	return switchboard.Provider{
		Name: "edge", Kind: switchboard.KindHTTP, Enabled: true,
		Config:      switchboard.ProviderConfig{URL: url + "/health"},
		Credentials: switchboard.Credentials{Headers: map[string]string{secretHeader: secretValue}},
	}
}

type scenario struct {
	name      string
	setup     func(t *testing.T, u *upstream, p *switchboard.Provider)
	wantOK    bool
	wantStage switchboard.Stage
	wantMsg   string
}

func scenarios() []scenario {
	path := func(s string) func(*testing.T, *upstream, *switchboard.Provider) {
		return func(_ *testing.T, u *upstream, p *switchboard.Provider) { p.Config.URL = u.URL() + s }
	}
	return []scenario{
		{name: "post expecting 204", setup: func(_ *testing.T, _ *upstream, p *switchboard.Provider) {
			p.Config.Method, p.Config.ExpectStatus = http.MethodPost, []int{200, 204}
		}, wantOK: true, wantMsg: "POST answered 204"},
		{name: "host header", setup: func(_ *testing.T, u *upstream, p *switchboard.Provider) {
			p.Config.URL = u.URL() + "/vhost"
			p.Credentials.Headers = map[string]string{"Host": "provider.internal"}
		}, wantOK: true},
		{name: "missing header", setup: func(_ *testing.T, _ *upstream, p *switchboard.Provider) {
			p.Credentials.Headers = nil
		}, wantStage: switchboard.StageAuth, wantMsg: "401"},
		{name: "wrong header", setup: func(_ *testing.T, _ *upstream, p *switchboard.Provider) {
			p.Credentials.Headers = map[string]string{secretHeader: "wrong-value-0000000000"}
		}, wantStage: switchboard.StageAuth, wantMsg: "401"},
		{name: "forbidden", setup: path("/forbidden"), wantStage: switchboard.StageAuth, wantMsg: "403"},
		{name: "401 expected", setup: func(_ *testing.T, _ *upstream, p *switchboard.Provider) {
			p.Credentials.Headers, p.Config.ExpectStatus = nil, []int{401}
		}, wantOK: true, wantMsg: "401"},
		{name: "not found", setup: path("/nope"), wantStage: switchboard.StageOperation, wantMsg: "404 Not Found, expected 200"},
		{name: "echoed headers", setup: path("/echo"), wantStage: switchboard.StageOperation, wantMsg: "500"},
		{name: "redirect not followed", setup: path("/redirect"), wantStage: switchboard.StageOperation, wantMsg: "302"},
		{name: "redirect expected", setup: func(_ *testing.T, u *upstream, p *switchboard.Provider) {
			p.Config.URL, p.Config.ExpectStatus = u.URL()+"/redirect", []int{302}
		}, wantOK: true},
		{name: "big body", setup: path("/big"), wantOK: true},
		{name: "bad url", setup: func(_ *testing.T, _ *upstream, p *switchboard.Provider) {
			p.Config.URL = "ftp://example.com"
		}, wantStage: switchboard.StageConnect, wantMsg: "config.url"},
		{name: "bad method", setup: func(_ *testing.T, _ *upstream, p *switchboard.Provider) {
			p.Config.Method = "BAD METHOD"
		}, wantStage: switchboard.StageConnect, wantMsg: "config.method"},
	}
}

func TestProbe(t *testing.T) {
	for _, tt := range scenarios() {
		t.Run(tt.name, func(t *testing.T) {
			u := startUpstream(t)
			p := provider(u.URL())
			if tt.setup != nil {
				tt.setup(t, u, &p)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			got := newAdapter(t).Probe(ctx, p)
			if got.OK != tt.wantOK || got.Stage != tt.wantStage || !strings.Contains(got.Message, tt.wantMsg) {
				t.Fatalf("Probe = %+v; want ok %v, stage %q, message containing %q", got, tt.wantOK, tt.wantStage, tt.wantMsg)
			}
			if got.At.IsZero() {
				t.Error("At is zero")
			}
			if n := u.targetHits.Load(); n != 0 {
				t.Errorf("redirect target hit %d times, want 0", n)
			}
		})
	}
}

// failingTransport fails every request with an error that quotes the request's
// headers, as a careless proxy library might.
type failingTransport struct{}

func (failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("proxy refused request with headers %v", r.Header)
}

// TestProbeNeverLeaksHeaders checks every scenario, an upstream that echoes the
// headers and a transport whose errors quote them: no message holds a header value.
func TestProbeNeverLeaksHeaders(t *testing.T) {
	var messages []string
	for _, tt := range scenarios() {
		u := startUpstream(t)
		p := provider(u.URL())
		if tt.setup != nil {
			tt.setup(t, u, &p)
		}
		p.Credentials.Headers = map[string]string{secretHeader: secretValue, "Authorization": "Bearer tok-" + secretValue}
		messages = append(messages, newAdapter(t).Probe(context.Background(), p).Message)
	}
	p := provider("http://127.0.0.1:1")
	p.Credentials.Headers["Authorization"] = "Bearer tok-" + secretValue
	got := Adapter{Client: &http.Client{Transport: failingTransport{}}}.Probe(context.Background(), p)
	if got.Stage != switchboard.StageConnect || !strings.Contains(got.Message, "[REDACTED]") {
		t.Errorf("failing transport: Probe = %+v, want a connect failure with the headers redacted", got)
	}
	messages = append(messages, got.Message)
	for _, m := range messages {
		if strings.Contains(m, secretValue) || strings.Contains(m, "s3cret") {
			t.Errorf("message %q holds a header value", m)
		}
	}
}

func TestMintToken(t *testing.T) {
	jt, err := Adapter{}.MintToken(provider("http://127.0.0.1:1"),
		switchboard.TokenRequest{Room: "r", UserID: "u", TTL: time.Hour}, time.Now())
	if err != nil || jt != (switchboard.JoinToken{}) {
		t.Fatalf("MintToken = %+v, %v; want an empty token and no error", jt, err)
	}
}
