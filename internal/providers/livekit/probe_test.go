package livekit_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/providers/fault"
	"github.com/switchboardhq/switchboard/internal/providers/livekit"
	"github.com/switchboardhq/switchboard/internal/providers/livekit/livekitfake"
	"github.com/switchboardhq/switchboard/internal/providers/probe/probetest"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

const (
	testKey    = "APIk3yForTests"
	testSecret = "s3cretS3cretS3cretS3cretS3cret-0123456789"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustFake(t *testing.T, cfg livekitfake.Config) *livekitfake.Fake {
	t.Helper()
	f, err := livekitfake.New(cfg)
	if err != nil {
		t.Fatalf("livekitfake.New: %v", err)
	}
	probetest.CloseAtEnd(t, f)
	return f
}

// newAdapter returns an adapter with a client of its own, whose idle
// connections close with the test.
func newAdapter(t *testing.T) livekit.Adapter {
	t.Helper()
	return livekit.Adapter{Client: probetest.Client(t)}
}

func provider(url, key, secret string) switchboard.Provider {
	return switchboard.Provider{
		Name: "lk", Kind: switchboard.KindLiveKit, Enabled: true,
		Config:      switchboard.ProviderConfig{URL: url},
		Credentials: switchboard.Credentials{APIKey: key, APISecret: secret},
	}
}

// TestProbeSuite runs the probe suite that every provider kind passes.
func TestProbeSuite(t *testing.T) {
	probetest.Run(t, probetest.Kind{
		Adapter: func(c *http.Client, now func() time.Time) switchboard.Prober {
			return livekit.Adapter{Client: c, Clock: probetest.Clock(now)}
		},
		Fake: func(t *testing.T) (switchboard.Provider, *fault.Server) {
			f := mustFake(t, livekitfake.Config{APIKey: testKey, APISecret: testSecret})
			return provider(f.URL(), testKey, testSecret), f.Faults()
		},
		At: func(base string) switchboard.Provider { return provider(base, testKey, testSecret) },
		Messages: map[fault.Mode]string{
			fault.OK:         "ready; 0 rooms",
			fault.Refuse:     "health check",
			fault.ServerErr:  "503",
			fault.RejectAuth: "invalid token",
		},
	})
}

// scenario is one probe against a fake; the table is shared by the stage test
// and the leak test.
type scenario struct {
	name      string
	setup     func(t *testing.T, f *livekitfake.Fake, a *livekit.Adapter, p *switchboard.Provider)
	wantOK    bool
	wantStage switchboard.Stage
	wantMsg   string // a substring of the message
	dev       bool   // fake and provider use the --dev key pair
}

func scenarios() []scenario {
	return []scenario{
		{name: "rooms counted", setup: func(_ *testing.T, f *livekitfake.Fake, _ *livekit.Adapter, _ *switchboard.Provider) {
			f.AddRoom("a")
			f.AddRoom("b")
		}, wantOK: true, wantMsg: "2 rooms"},
		{name: "ws url", setup: func(_ *testing.T, _ *livekitfake.Fake, _ *livekit.Adapter, p *switchboard.Provider) {
			p.Config.URL = strings.Replace(p.Config.URL, "http://", "ws://", 1) + "/"
		}, wantOK: true},
		{name: "dev secret warns", dev: true, wantOK: true, wantMsg: "API secret of at least 32 characters"},
		{name: "dev secret wrong", dev: true, setup: func(_ *testing.T, _ *livekitfake.Fake, _ *livekit.Adapter, p *switchboard.Provider) {
			p.Credentials.APISecret = "secreT"
		}, wantStage: switchboard.StageAuth, wantMsg: "invalid token (wrong API secret?)"},
		{name: "not ready", setup: func(_ *testing.T, f *livekitfake.Fake, _ *livekit.Adapter, _ *switchboard.Provider) {
			f.SetNotReady(true)
		}, wantStage: switchboard.StageOperation, wantMsg: "not ready"},
		{name: "wrong secret", setup: func(_ *testing.T, _ *livekitfake.Fake, _ *livekit.Adapter, p *switchboard.Provider) {
			p.Credentials.APISecret = "a-wrong-secret-that-is-long-enough-0000"
		}, wantStage: switchboard.StageAuth, wantMsg: "wrong API secret"},
		{name: "unknown key", setup: func(_ *testing.T, _ *livekitfake.Fake, _ *livekit.Adapter, p *switchboard.Provider) {
			p.Credentials.APIKey = "APIunknownKey123"
		}, wantStage: switchboard.StageAuth, wantMsg: "invalid API key"},
		{name: "no credentials", setup: func(_ *testing.T, _ *livekitfake.Fake, _ *livekit.Adapter, p *switchboard.Provider) {
			p.Credentials = switchboard.Credentials{}
		}, wantStage: switchboard.StageAuth, wantMsg: "required"},
		{name: "clock skew", setup: func(_ *testing.T, _ *livekitfake.Fake, a *livekit.Adapter, _ *switchboard.Provider) {
			a.Clock = testutil.NewClock(time.Now().Add(-2 * time.Hour))
		}, wantStage: switchboard.StageAuth, wantMsg: "clocks"},
		{name: "bad url", setup: func(_ *testing.T, _ *livekitfake.Fake, _ *livekit.Adapter, p *switchboard.Provider) {
			p.Config.URL = "ftp://example.com"
		}, wantStage: switchboard.StageConnect, wantMsg: "config.url"},
	}
}

// start starts the fake of s and returns it with an adapter and a provider
// pointing at it, after s.setup.
func (s scenario) start(t *testing.T) (*livekitfake.Fake, livekit.Adapter, switchboard.Provider) {
	t.Helper()
	key, secret := testKey, testSecret
	if s.dev {
		key, secret = livekit.DevAPIKey, livekit.DevAPISecret
	}
	f := mustFake(t, livekitfake.Config{APIKey: key, APISecret: secret})
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
		{"default ttl", switchboard.TokenRequest{Room: "r1", UserID: "u1"}, livekit.DefaultTokenTTL, ""},
		{"no user", switchboard.TokenRequest{Room: "r1"}, 0, switchboard.EInvalid},
		{"no room", switchboard.TokenRequest{UserID: "u1"}, 0, switchboard.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jt, err := livekit.Adapter{}.MintToken(p, tt.req, t0)
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
			c, err := livekit.VerifyTokenAt(jt.Token, testKey, testSecret, t0)
			if err != nil {
				t.Fatalf("VerifyTokenAt: %v", err)
			}
			if c.Subject != tt.req.UserID || c.Video.Room != tt.req.Room || *c.Video.CanPublish != tt.req.Publisher ||
				!c.ExpiresAt.Equal(jt.ExpiresAt) {
				t.Errorf("claims = %+v, video %+v; want %+v", c, c.Video, tt.req)
			}
		})
	}

	_, err := livekit.Adapter{}.MintToken(provider("http://127.0.0.1:1", "", ""), switchboard.TokenRequest{Room: "r", UserID: "u"}, t0)
	if !switchboard.IsCode(err, switchboard.EUnavailable) {
		t.Fatalf("MintToken without credentials: err = %v, want EUnavailable", err)
	}
}
