package agora_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/providers/agora"
	"github.com/switchboardhq/switchboard/internal/providers/agora/agorafake"
	"github.com/switchboardhq/switchboard/internal/providers/fault"
	"github.com/switchboardhq/switchboard/internal/providers/probe"
	"github.com/switchboardhq/switchboard/internal/providers/probe/probetest"
)

const (
	testAppID    = "0123456789abcdef0123456789abcdef"
	testCustomer = "cust-4f1d2a9b7c"
	testSecret   = "secret-9e8d7c6b5a4f3e2d"
	testCert     = "fedcba9876543210fedcba9876543210"
)

func TestMain(m *testing.M) { os.Exit(probetest.Main(m)) }

// newFake starts a fake, closed at the end of the test, and an adapter with a
// client of its own.
func newFake(t *testing.T) (*agorafake.Fake, *agora.Adapter) {
	t.Helper()
	f, err := agorafake.New(agorafake.Config{AppID: testAppID, CustomerID: testCustomer, CustomerSecret: testSecret,
		AppCertificate: testCert, Channels: []agorafake.Channel{{Name: "lobby", UserCount: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	probetest.CloseAtEnd(t, f)
	return f, &agora.Adapter{Client: probetest.Client(t)}
}

// TestProbeSuite runs the probe suite that every provider kind passes.
func TestProbeSuite(t *testing.T) {
	probetest.Run(t, probetest.Kind{
		Adapter: func(c *http.Client, now func() time.Time) switchboard.Prober {
			return &agora.Adapter{Client: c, Now: now}
		},
		Fake: func(t *testing.T) (switchboard.Provider, *fault.Server) {
			f, _ := newFake(t)
			return f.Provider("agora-test"), f.Faults()
		},
		At: func(base string) switchboard.Provider {
			return switchboard.Provider{Name: "a", Kind: switchboard.KindAgora,
				Config:      switchboard.ProviderConfig{AppID: testAppID, BaseURL: base},
				Credentials: switchboard.Credentials{CustomerID: testCustomer, CustomerSecret: testSecret}}
		},
		Messages: map[fault.Mode]string{
			fault.Refuse:     "cannot reach",
			fault.ServerErr:  "HTTP 503",
			fault.RejectAuth: "customer ID or customer secret rejected",
		},
	})
}

// assertNoSecret fails if msg holds any credential of p, or their Basic form.
func assertNoSecret(t *testing.T, msg string, p switchboard.Provider) {
	t.Helper()
	probetest.AssertNoSecret(t, msg, append(p.Credentials.Values(),
		base64.StdEncoding.EncodeToString([]byte(p.Credentials.CustomerID+":"+p.Credentials.CustomerSecret)))...)
}

func TestProbe(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*switchboard.Provider)
		stage   switchboard.Stage
		message string // a substring of the message
	}{
		{name: "wrong secret", stage: switchboard.StageAuth, message: "customer ID or customer secret rejected",
			mutate: func(p *switchboard.Provider) { p.Credentials.CustomerSecret = "wrong-secret-value" }},
		{name: "wrong customer", stage: switchboard.StageAuth, message: "rejected",
			mutate: func(p *switchboard.Provider) { p.Credentials.CustomerID = "wrong-customer-id" }},
		{name: "unknown app id", stage: switchboard.StageAuth, message: "App ID not found",
			mutate: func(p *switchboard.Provider) { p.Config.AppID = strings.Repeat("9", 32) }},
		{name: "malformed app id", stage: switchboard.StageAuth, message: "App ID",
			mutate: func(p *switchboard.Provider) { p.Config.AppID = "not-an-app-id" }},
		{name: "missing secret", stage: switchboard.StageAuth, message: "not set",
			mutate: func(p *switchboard.Provider) { p.Credentials.CustomerSecret = "" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probetest.CheckGoroutines(t)
			f, a := newFake(t)
			p := f.Provider("agora-test")
			if tt.mutate != nil {
				tt.mutate(&p)
			}
			a.Now = func() time.Time { return time.Unix(1_700_000_000, 0) }
			res, _ := probetest.ProbeWithin(a, p, 5*time.Second)
			if res.OK != (tt.stage == "") || res.Stage != tt.stage {
				t.Fatalf("result = %+v, want stage %q", res, tt.stage)
			}
			if !strings.Contains(res.Message, tt.message) {
				t.Errorf("message %q lacks %q", res.Message, tt.message)
			}
			if !res.At.Equal(time.Unix(1_700_000_000, 0)) {
				t.Errorf("At = %v, want the injected clock", res.At)
			}
			if tt.stage == "" && res.Latency <= 0 {
				t.Errorf("latency %v, want > 0", res.Latency)
			}
			assertNoSecret(t, res.Message, p)
			assertNoSecret(t, res.Message, f.Provider("x"))
		})
	}
}

// TestProbeStatuses drives the probe against a plain loopback server answering
// what the fake does not: rate limits, other 400s, redirects, odd bodies.
func TestProbeStatuses(t *testing.T) {
	tests := []struct {
		status int
		body   string
		stage  switchboard.Stage
	}{
		{http.StatusOK, `{"success":true,"data":{"channels":[],"total_size":0}}`, ""},
		{http.StatusCreated, `{"success":true}`, ""},
		{http.StatusOK, `{"success":false}`, switchboard.StageOperation},
		{http.StatusOK, `<html>`, switchboard.StageOperation},
		{http.StatusBadRequest, `{"message":"invalid appid"}`, switchboard.StageAuth},
		{http.StatusBadRequest, `{"message":"page_size too large"}`, switchboard.StageOperation},
		{http.StatusBadRequest, `{"message":"invalid appid for ` + testSecret + `"}`, switchboard.StageAuth}, // echoed secrets are redacted
		{http.StatusForbidden, ``, switchboard.StageAuth},
		{http.StatusNotFound, ``, switchboard.StageOperation},
		{http.StatusTooManyRequests, `{"message":"too many requests"}`, switchboard.StageOperation},
		{http.StatusInternalServerError, ``, switchboard.StageOperation},
		{http.StatusFound, ``, switchboard.StageOperation},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.status), func(t *testing.T) {
			probetest.CheckGoroutines(t)
			srv, err := fault.Start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.status == http.StatusFound {
					w.Header().Set("Location", "/elsewhere")
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tt.status)
				_, _ = io.WriteString(w, tt.body)
			}))
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			p := switchboard.Provider{Name: "a", Kind: switchboard.KindAgora,
				Config:      switchboard.ProviderConfig{AppID: testAppID, BaseURL: srv.URL()},
				Credentials: switchboard.Credentials{CustomerID: testCustomer, CustomerSecret: testSecret}}
			a := &agora.Adapter{} // the default client, which must not follow the redirect
			res, _ := probetest.ProbeWithin(a, p, 5*time.Second)
			probe.Client(nil).CloseIdleConnections()
			if res.OK != (tt.stage == "") || res.Stage != tt.stage {
				t.Fatalf("result = %+v, want stage %q", res, tt.stage)
			}
			assertNoSecret(t, res.Message, p)
		})
	}
}

func TestMintToken(t *testing.T) {
	p := switchboard.Provider{Name: "agora-test", Kind: switchboard.KindAgora,
		Config:      switchboard.ProviderConfig{AppID: testAppID},
		Credentials: switchboard.Credentials{AppCertificate: testCert}}
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name      string
		req       switchboard.TokenRequest
		uid       string
		expire    uint32
		privCount int
	}{
		{"numeric subscriber", switchboard.TokenRequest{Room: "lobby", UserID: "42"}, "42", 3600, 1},
		{"numeric publisher", switchboard.TokenRequest{Room: "lobby", UserID: "4294967295", Publisher: true, TTL: 10 * time.Minute}, "4294967295", 600, 4},
		{"any user", switchboard.TokenRequest{Room: "lobby"}, "", 3600, 1},
		{"uid zero", switchboard.TokenRequest{Room: "lobby", UserID: "0"}, "", 3600, 1},
		{"account", switchboard.TokenRequest{Room: "lobby", UserID: "alice@example.com", Publisher: true}, "alice@example.com", 3600, 4},
		{"leading zero stays an account", switchboard.TokenRequest{Room: "lobby", UserID: "007"}, "007", 3600, 1},
		{"too large for uint32", switchboard.TokenRequest{Room: "lobby", UserID: "4294967296"}, "4294967296", 3600, 1},
		{"24 hours", switchboard.TokenRequest{Room: "lobby", UserID: "1", TTL: 24 * time.Hour}, "1", 86400, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &agora.Adapter{Rand: bytes.NewReader(bytes.Repeat([]byte{0x5a}, 64))}
			jt, err := a.MintToken(p, tt.req, now)
			if err != nil {
				t.Fatal(err)
			}
			at, err := agora.Parse(jt.Token)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if err := at.Verify(testCert); err != nil {
				t.Fatal(err)
			}
			s, _ := at.Service(agora.ServiceRTC)
			if s.UID != tt.uid || s.ChannelName != tt.req.Room || len(s.Privileges) != tt.privCount {
				t.Errorf("service = %+v", s)
			}
			if at.Expire != tt.expire || at.IssueTs != uint32(now.Unix()) || s.Privileges[agora.PrivilegeJoinChannel] != tt.expire {
				t.Errorf("issue %d expire %d privileges %v", at.IssueTs, at.Expire, s.Privileges)
			}
			if at.Salt < 1 || at.Salt >= agora.MaxSalt {
				t.Errorf("salt %d out of range", at.Salt)
			}
			if want := now.Add(time.Duration(tt.expire) * time.Second); !jt.ExpiresAt.Equal(want) {
				t.Errorf("ExpiresAt = %v, want %v", jt.ExpiresAt, want)
			}
		})
	}
}

func TestMintTokenInvalid(t *testing.T) {
	good := switchboard.Provider{Name: "agora-test", Kind: switchboard.KindAgora,
		Config:      switchboard.ProviderConfig{AppID: testAppID},
		Credentials: switchboard.Credentials{AppCertificate: testCert}}
	noCert := good
	noCert.Credentials = switchboard.Credentials{}
	badApp := good
	badApp.Config.AppID = "xyz"
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name string
		p    switchboard.Provider
		req  switchboard.TokenRequest
		now  time.Time
		code string
	}{
		{"no certificate", noCert, switchboard.TokenRequest{Room: "r"}, now, switchboard.EUnavailable},
		{"bad app id", badApp, switchboard.TokenRequest{Room: "r"}, now, switchboard.EInvalid},
		{"no room", good, switchboard.TokenRequest{}, now, switchboard.EInvalid},
		{"bad room", good, switchboard.TokenRequest{Room: "a/b"}, now, switchboard.EInvalid},
		{"ttl above 24h", good, switchboard.TokenRequest{Room: "r", TTL: 24*time.Hour + time.Second}, now, switchboard.EInvalid},
		{"ttl below 1s", good, switchboard.TokenRequest{Room: "r", TTL: time.Millisecond}, now, switchboard.EInvalid},
		{"negative ttl", good, switchboard.TokenRequest{Room: "r", TTL: -time.Hour}, now, switchboard.EInvalid},
		{"long account", good, switchboard.TokenRequest{Room: "r", UserID: strings.Repeat("u", 256)}, now, switchboard.EInvalid},
		{"time before 1970", good, switchboard.TokenRequest{Room: "r"}, time.Unix(-5, 0), switchboard.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := (&agora.Adapter{}).MintToken(tt.p, tt.req, tt.now)
			if !switchboard.IsCode(err, tt.code) {
				t.Fatalf("err = %v, want code %s", err, tt.code)
			}
			if strings.Contains(err.Error(), testCert) {
				t.Errorf("error %q holds the certificate", err)
			}
		})
	}
}

func TestNewSalt(t *testing.T) {
	for _, src := range []io.Reader{nil, bytes.NewReader(bytes.Repeat([]byte{0x12, 0x34, 0x56, 0x78}, 16)), bytes.NewReader(make([]byte, 64))} {
		s, err := agora.NewSalt(src)
		if err != nil {
			t.Fatal(err)
		}
		if s < 1 || s >= agora.MaxSalt {
			t.Errorf("salt %d out of [1, %d)", s, agora.MaxSalt)
		}
	}
	if _, err := agora.NewSalt(bytes.NewReader(nil)); err == nil {
		t.Error("empty source accepted")
	}
}
