package livekit

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/providers/fault"
)

// TestMain fails the run when a goroutine outlives the tests: every probe and
// every fake must stop with its context or its Close.
func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	// The fuzzing engine starts a signal-handling goroutine of its own.
	fuzzing := flag.Lookup("test.fuzz") != nil && flag.Lookup("test.fuzz").Value.String() != ""
	if code == 0 && !fuzzing {
		http.DefaultTransport.(*http.Transport).CloseIdleConnections()
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			fmt.Fprintf(os.Stderr, "goroutines leaked: %d before, %d after\n%s\n", before, n, buf[:runtime.Stack(buf, true)])
			code = 1
		}
	}
	os.Exit(code)
}

func mustFake(t *testing.T, cfg FakeConfig) *Fake {
	t.Helper()
	f, err := NewFake(cfg)
	if err != nil {
		t.Fatalf("NewFake: %v", err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// newAdapter returns an adapter with a client of its own, whose idle
// connections close with the test.
func newAdapter(t *testing.T) Adapter {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return Adapter{Client: &http.Client{Transport: tr}}
}

func provider(url, key, secret string) switchboard.Provider {
	return switchboard.Provider{
		Name: "lk", Kind: switchboard.KindLiveKit, Enabled: true,
		Config:      switchboard.ProviderConfig{URL: url},
		Credentials: switchboard.Credentials{APIKey: key, APISecret: secret},
	}
}

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

// scenario is one probe against a fake; the table is shared by the stage test
// and the leak test.
type scenario struct {
	name      string
	setup     func(t *testing.T, f *Fake, a *Adapter, p *switchboard.Provider)
	wantOK    bool
	wantStage switchboard.Stage
	wantMsg   string // a substring of the message
	dev       bool   // fake and provider use the --dev key pair
}

func scenarios() []scenario {
	setMode := func(m fault.Mode) func(*testing.T, *Fake, *Adapter, *switchboard.Provider) {
		return func(t *testing.T, f *Fake, _ *Adapter, _ *switchboard.Provider) {
			if err := f.Faults().Set(m); err != nil {
				t.Fatalf("Set(%s): %v", m, err)
			}
		}
	}
	return []scenario{
		{name: "healthy", wantOK: true, wantMsg: "ready; 0 rooms"},
		{name: "rooms counted", setup: func(_ *testing.T, f *Fake, _ *Adapter, _ *switchboard.Provider) {
			f.AddRoom("a")
			f.AddRoom("b")
		}, wantOK: true, wantMsg: "2 rooms"},
		{name: "ws url", setup: func(_ *testing.T, _ *Fake, _ *Adapter, p *switchboard.Provider) {
			p.Config.URL = strings.Replace(p.Config.URL, "http://", "ws://", 1) + "/"
		}, wantOK: true},
		{name: "dev secret warns", dev: true, wantOK: true, wantMsg: "API secret of at least 32 characters"},
		{name: "dev secret wrong", dev: true, setup: func(_ *testing.T, _ *Fake, _ *Adapter, p *switchboard.Provider) {
			p.Credentials.APISecret = "secreT"
		}, wantStage: switchboard.StageAuth, wantMsg: "invalid token (wrong API secret?)"},
		{name: "refused", setup: setMode(fault.Refuse), wantStage: switchboard.StageConnect, wantMsg: "health check"},
		{name: "server error", setup: setMode(fault.ServerErr), wantStage: switchboard.StageOperation, wantMsg: "503"},
		{name: "not ready", setup: func(_ *testing.T, f *Fake, _ *Adapter, _ *switchboard.Provider) {
			f.SetNotReady(true)
		}, wantStage: switchboard.StageOperation, wantMsg: "not ready"},
		{name: "reject auth", setup: setMode(fault.RejectAuth), wantStage: switchboard.StageAuth, wantMsg: "invalid token"},
		{name: "wrong secret", setup: func(_ *testing.T, _ *Fake, _ *Adapter, p *switchboard.Provider) {
			p.Credentials.APISecret = "a-wrong-secret-that-is-long-enough-0000"
		}, wantStage: switchboard.StageAuth, wantMsg: "wrong API secret"},
		{name: "unknown key", setup: func(_ *testing.T, _ *Fake, _ *Adapter, p *switchboard.Provider) {
			p.Credentials.APIKey = "APIunknownKey123"
		}, wantStage: switchboard.StageAuth, wantMsg: "invalid API key"},
		{name: "no credentials", setup: func(_ *testing.T, _ *Fake, _ *Adapter, p *switchboard.Provider) {
			p.Credentials = switchboard.Credentials{}
		}, wantStage: switchboard.StageAuth, wantMsg: "required"},
		{name: "clock skew", setup: func(_ *testing.T, _ *Fake, a *Adapter, _ *switchboard.Provider) {
			a.Clock = fixedClock{time.Now().Add(-2 * time.Hour)}
		}, wantStage: switchboard.StageAuth, wantMsg: "clocks"},
		{name: "bad url", setup: func(_ *testing.T, _ *Fake, _ *Adapter, p *switchboard.Provider) {
			p.Config.URL = "ftp://example.com"
		}, wantStage: switchboard.StageConnect, wantMsg: "config.url"},
	}
}

// start starts the fake of s and returns it with an adapter and a provider
// pointing at it, after s.setup.
func (s scenario) start(t *testing.T) (*Fake, Adapter, switchboard.Provider) {
	t.Helper()
	key, secret := testKey, testSecret
	if s.dev {
		key, secret = DevAPIKey, DevAPISecret
	}
	f := mustFake(t, FakeConfig{APIKey: key, APISecret: secret})
	a := newAdapter(t)
	p := provider(f.URL(), key, secret)
	if s.setup != nil {
		s.setup(t, f, &a, &p)
	}
	return f, a, p
}

func TestProbe(t *testing.T) {
	for _, tt := range scenarios() {
		t.Run(tt.name, func(t *testing.T) {
			_, a, p := tt.start(t)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			before := time.Now()
			got := a.Probe(ctx, p)
			if got.OK != tt.wantOK || got.Stage != tt.wantStage || !strings.Contains(got.Message, tt.wantMsg) {
				t.Fatalf("Probe = %+v; want ok %v, stage %q, message containing %q", got, tt.wantOK, tt.wantStage, tt.wantMsg)
			}
			if tt.wantOK && got.Latency <= 0 {
				t.Errorf("latency = %v, want > 0", got.Latency)
			}
			if a.Clock == nil && (got.At.Before(before.Add(-time.Second)) || got.At.After(time.Now())) {
				t.Errorf("At = %v, want the time of the probe", got.At)
			}
		})
	}
}

func TestProbeTimeout(t *testing.T) {
	f := mustFake(t, FakeConfig{APIKey: testKey, APISecret: testSecret})
	if err := f.Faults().Set(fault.Hang); err != nil {
		t.Fatal(err)
	}
	a := newAdapter(t)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	got := a.Probe(ctx, provider(f.URL(), testKey, testSecret))
	elapsed := time.Since(start)
	if got.OK || got.Stage != switchboard.StageTimeout {
		t.Fatalf("Probe = %+v, want stage timeout", got)
	}
	t.Logf("returned %v after the start, deadline 200ms", elapsed)
	if elapsed > 2*time.Second {
		t.Fatalf("Probe returned after %v, want promptly at the 200ms deadline", elapsed)
	}
}

// TestProbeLatency checks that the latency is one round trip of the health
// check: the fake adds 100 ms to each request, and the probe makes two. The best
// of three probes is compared, so that a busy machine does not fail the test.
func TestProbeLatency(t *testing.T) {
	const added = 100 * time.Millisecond
	f := mustFake(t, FakeConfig{APIKey: testKey, APISecret: testSecret})
	f.Faults().SetLatency(added)
	a := newAdapter(t)
	best := time.Duration(1 << 62)
	for range 3 {
		got := a.Probe(context.Background(), provider(f.URL(), testKey, testSecret))
		if !got.OK {
			t.Fatalf("Probe = %+v, want OK", got)
		}
		t.Logf("latency %v", got.Latency)
		best = min(best, got.Latency)
	}
	if best < added || best > added+added/10 {
		t.Fatalf("best latency = %v, want %v within 10%%", best, added)
	}
}

// TestProbeNeverLeaksSecrets runs every scenario, including those where the
// fake echoes the API key or the token as livekit-server does, and a server
// that echoes the whole request, and checks that no message holds a secret.
func TestProbeNeverLeaksSecrets(t *testing.T) {
	var messages []string
	var secrets []string
	for _, tt := range scenarios() {
		if tt.dev {
			continue // "secret" is a word of the messages, not a leak
		}
		_, a, p := tt.start(t)
		got := a.Probe(context.Background(), p)
		messages = append(messages, got.Message)
		secrets = append(secrets, p.Credentials.Values()...)
	}

	// A proxy that answers 500 and echoes the request headers in its body.
	echo, err := fault.Start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			_, _ = w.Write([]byte("OK"))
			return
		}
		w.WriteHeader(http.StatusBadGateway)
		_, _ = fmt.Fprintf(w, "%s", strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	a := newAdapter(t)
	got := a.Probe(context.Background(), provider(echo.URL(), testKey, testSecret))
	if got.Stage != switchboard.StageOperation || !strings.Contains(got.Message, "[REDACTED]") {
		t.Errorf("echoing proxy: Probe = %+v, want an operation failure with the token redacted", got)
	}
	messages = append(messages, got.Message)
	secrets = append(secrets, testKey, testSecret)

	for _, m := range messages {
		for _, s := range secrets {
			if strings.Contains(m, s) {
				t.Errorf("message %q holds a secret", m)
			}
		}
		if strings.Contains(m, "eyJ") {
			t.Errorf("message %q holds a JWT", m)
		}
	}
}

func TestMintToken(t *testing.T) {
	p := provider("http://127.0.0.1:1", testKey, testSecret)
	tests := []struct {
		name     string
		req      switchboard.TokenRequest
		wantTTL  time.Duration
		wantCode string
	}{
		{"publisher", switchboard.TokenRequest{Room: "r1", UserID: "u1", Publisher: true, TTL: 10 * time.Minute}, 10 * time.Minute, ""},
		{"default ttl", switchboard.TokenRequest{Room: "r1", UserID: "u1"}, DefaultTokenTTL, ""},
		{"no user", switchboard.TokenRequest{Room: "r1"}, 0, switchboard.EInvalid},
		{"no room", switchboard.TokenRequest{UserID: "u1"}, 0, switchboard.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jt, err := Adapter{}.MintToken(p, tt.req, t0)
			if tt.wantCode != "" {
				if !switchboard.IsCode(err, tt.wantCode) {
					t.Fatalf("MintToken err = %v, want code %s", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("MintToken: %v", err)
			}
			if !jt.ExpiresAt.Equal(t0.Add(tt.wantTTL)) {
				t.Errorf("ExpiresAt = %v, want %v", jt.ExpiresAt, t0.Add(tt.wantTTL))
			}
			c, err := VerifyTokenAt(jt.Token, testKey, testSecret, t0)
			if err != nil {
				t.Fatalf("VerifyTokenAt: %v", err)
			}
			if c.Subject != tt.req.UserID || c.Video.Room != tt.req.Room || *c.Video.CanPublish != tt.req.Publisher ||
				!c.ExpiresAt.Equal(jt.ExpiresAt) {
				t.Errorf("claims = %+v, video %+v; want %+v", c, c.Video, tt.req)
			}
		})
	}

	_, err := Adapter{}.MintToken(provider("http://127.0.0.1:1", "", ""), switchboard.TokenRequest{Room: "r", UserID: "u"}, t0)
	if !switchboard.IsCode(err, switchboard.EUnavailable) {
		t.Fatalf("MintToken without credentials: err = %v, want EUnavailable", err)
	}
}

func TestBaseURL(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"http://lk:7880", "http://lk:7880", false},
		{"https://lk.example.com/", "https://lk.example.com", false},
		{"ws://lk:7880", "http://lk:7880", false},
		{"wss://lk.example.com/livekit/?x=1#f", "https://lk.example.com/livekit", false},
		{"ftp://lk", "", true},
		{"lk:7880", "", true},
		{"https://user:pw@lk", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := BaseURL(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("BaseURL(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestAuthReason(t *testing.T) {
	tests := []struct{ body, want string }{
		{`{"code":"unauthenticated","msg":"permissions denied"}`, "permissions denied"},
		{"invalid API key: " + testKey, "invalid API key"},
		{"invalid token: eyJ.x.y, error: go-jose/go-jose: error in cryptographic primitive", "wrong API secret"},
		{"invalid token: eyJ.x.y, error: validation failed, token is expired (exp)", "clocks"},
		{"invalid authorization token", "invalid authorization token"},
		{"<html>nope</html>", "credentials rejected"},
	}
	for _, tt := range tests {
		if got := authReason([]byte(tt.body)); !strings.Contains(got, tt.want) || strings.Contains(got, testKey) {
			t.Errorf("authReason(%q) = %q, want it to contain %q", tt.body, got, tt.want)
		}
	}
}
