package zegocloud_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/providers/fault"
	"github.com/switchboardhq/switchboard/internal/providers/probe/probetest"
	"github.com/switchboardhq/switchboard/internal/providers/zegocloud"
	"github.com/switchboardhq/switchboard/internal/providers/zegocloud/zegocloudfake"
)

const (
	testAppID  = uint32(1234567890)
	testSecret = "0123456789abcdef0123456789abcdef"
)

// newFake starts a fake with the clock now (nil: time.Now), closed at the end
// of the test, and an adapter with a client of its own.
func newFake(t *testing.T, now func() time.Time) (*zegocloudfake.Fake, *zegocloud.Adapter) {
	t.Helper()
	f, err := zegocloudfake.New(zegocloudfake.Config{AppID: testAppID, ServerSecret: testSecret, Rooms: map[string]int{"lobby": 4}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	probetest.CloseAtEnd(t, f)
	return f, &zegocloud.Adapter{Client: probetest.Client(t)}
}

// TestProbeSuite runs the probe suite that every provider kind passes.
func TestProbeSuite(t *testing.T) {
	probetest.Run(t, probetest.Kind{
		Adapter: func(c *http.Client, now func() time.Time) switchboard.Prober {
			return &zegocloud.Adapter{Client: c, Now: now}
		},
		Fake: func(t *testing.T) (switchboard.Provider, *fault.Server) {
			f, _ := newFake(t, nil)
			return f.Provider("zego-test"), f.Faults()
		},
		At: func(base string) switchboard.Provider {
			return switchboard.Provider{Name: "z", Kind: switchboard.KindZegocloud,
				Config:      switchboard.ProviderConfig{AppID: fmt.Sprint(testAppID), BaseURL: base},
				Credentials: switchboard.Credentials{ServerSecret: testSecret}}
		},
		Messages: map[fault.Mode]string{
			fault.Refuse:     "cannot reach",
			fault.ServerErr:  "HTTP 503",
			fault.RejectAuth: "100000005",
		},
		RequestSecrets: func(r *http.Request) []string { return r.URL.Query()["Signature"] },
	})
}

func TestProbe(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*switchboard.Provider, *zegocloud.Adapter)
		stage   switchboard.Stage
		message string
	}{
		{name: "wrong secret", stage: switchboard.StageAuth, message: "signature invalid",
			mutate: func(p *switchboard.Provider, _ *zegocloud.Adapter) {
				p.Credentials.ServerSecret = strings.Repeat("w", 32)
			}},
		{name: "unknown app", stage: switchboard.StageAuth, message: "100000010",
			mutate: func(p *switchboard.Provider, _ *zegocloud.Adapter) { p.Config.AppID = "42" }},
		{name: "clock skew", stage: switchboard.StageAuth, message: "signature expired",
			mutate: func(_ *switchboard.Provider, a *zegocloud.Adapter) {
				a.Now = func() time.Time { return time.Now().Add(11 * time.Minute) }
			}},
		{name: "small skew",
			mutate: func(_ *switchboard.Provider, a *zegocloud.Adapter) {
				a.Now = func() time.Time { return time.Now().Add(-9 * time.Minute) }
			}},
		{name: "missing secret", stage: switchboard.StageAuth, message: "not set",
			mutate: func(p *switchboard.Provider, _ *zegocloud.Adapter) { p.Credentials.ServerSecret = "" }},
		{name: "short secret", stage: switchboard.StageAuth, message: "32 characters",
			mutate: func(p *switchboard.Provider, _ *zegocloud.Adapter) { p.Credentials.ServerSecret = "short-secret" }},
		{name: "bad app id", stage: switchboard.StageAuth, message: "AppID",
			mutate: func(p *switchboard.Provider, _ *zegocloud.Adapter) { p.Config.AppID = "abc" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probetest.CheckGoroutines(t)
			f, a := newFake(t, nil)
			p := f.Provider("zego-test")
			if tt.mutate != nil {
				tt.mutate(&p, a)
			}
			res, _ := probetest.ProbeWithin(a, p, 5*time.Second)
			if res.OK != (tt.stage == "") || res.Stage != tt.stage {
				t.Fatalf("result = %+v, want stage %q", res, tt.stage)
			}
			if !strings.Contains(res.Message, tt.message) {
				t.Errorf("message %q lacks %q", res.Message, tt.message)
			}
			if tt.stage == "" && res.Latency <= 0 {
				t.Errorf("latency %v, want > 0", res.Latency)
			}
			if res.At.IsZero() {
				t.Error("At is zero")
			}
			probetest.AssertNoSecret(t, res.Message, append(p.Credentials.Values(), testSecret)...)
		})
	}
}
