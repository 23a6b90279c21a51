package zegocloud

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/providers/fault"
	"github.com/switchboardhq/switchboard/internal/providers/probe"
	"github.com/switchboardhq/switchboard/internal/providers/probe/probetest"
)

const testAppID = uint32(1234567890)

func TestMain(m *testing.M) { os.Exit(probetest.Main(m)) }

// newFake starts a fake with the clock now (nil: time.Now), closed at the end
// of the test, and an adapter with a client of its own.
func newFake(t *testing.T, now func() time.Time) (*Fake, *Adapter) {
	t.Helper()
	f, err := NewFake(FakeConfig{AppID: testAppID, ServerSecret: testSecret, Rooms: map[string]int{"lobby": 4}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	probetest.CloseAtEnd(t, f)
	return f, &Adapter{Client: probetest.Client(t)}
}

// TestProbeSuite runs the probe suite that every provider kind passes.
func TestProbeSuite(t *testing.T) {
	probetest.Run(t, probetest.Kind{
		Adapter: func(c *http.Client, now func() time.Time) switchboard.Prober {
			return &Adapter{Client: c, Now: now}
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

func assertNoSecret(t *testing.T, msg string, secrets ...string) {
	t.Helper()
	probetest.AssertNoSecret(t, msg, secrets...)
}

func TestProbe(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*switchboard.Provider, *Adapter)
		stage   switchboard.Stage
		message string
	}{
		{name: "wrong secret", stage: switchboard.StageAuth, message: "signature invalid",
			mutate: func(p *switchboard.Provider, _ *Adapter) { p.Credentials.ServerSecret = strings.Repeat("w", 32) }},
		{name: "unknown app", stage: switchboard.StageAuth, message: "100000010",
			mutate: func(p *switchboard.Provider, _ *Adapter) { p.Config.AppID = "42" }},
		{name: "clock skew", stage: switchboard.StageAuth, message: "signature expired",
			mutate: func(_ *switchboard.Provider, a *Adapter) {
				a.Now = func() time.Time { return time.Now().Add(11 * time.Minute) }
			}},
		{name: "small skew",
			mutate: func(_ *switchboard.Provider, a *Adapter) {
				a.Now = func() time.Time { return time.Now().Add(-9 * time.Minute) }
			}},
		{name: "missing secret", stage: switchboard.StageAuth, message: "not set",
			mutate: func(p *switchboard.Provider, _ *Adapter) { p.Credentials.ServerSecret = "" }},
		{name: "short secret", stage: switchboard.StageAuth, message: "32 characters",
			mutate: func(p *switchboard.Provider, _ *Adapter) { p.Credentials.ServerSecret = "short-secret" }},
		{name: "bad app id", stage: switchboard.StageAuth, message: "AppID",
			mutate: func(p *switchboard.Provider, _ *Adapter) { p.Config.AppID = "abc" }},
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
			assertNoSecret(t, res.Message, append(p.Credentials.Values(), testSecret)...)
		})
	}
}

// TestProbeAnswers drives the probe against a plain loopback server answering
// what the fake does not, including a message that echoes the signed query.
func TestProbeAnswers(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	nonce := hex.EncodeToString([]byte{0, 7, 14, 21, 28, 35, 42, 49}) // the first 8 bytes of seqRand
	signature := Sign(testAppID, nonce, testSecret, now.Unix())
	tests := []struct {
		name   string
		status int
		body   string // %s is replaced by the raw query
		stage  switchboard.Stage
	}{
		{"ok", 200, `{"Code":0,"Message":"success","RequestId":"r","Data":{"UserCountList":[]}}`, ""},
		{"busy", 200, `{"Code":1,"Message":"busy"}`, switchboard.StageOperation},
		{"rate limited code", 200, `{"Code":7,"Message":"too fast"}`, switchboard.StageOperation},
		{"verify failed", 200, `{"Code":3,"Message":"verify failed"}`, switchboard.StageAuth},
		{"not production", 200, `{"Code":100000016,"Message":"not formal"}`, switchboard.StageAuth},
		{"unknown code", 200, `{"Code":123,"Message":"odd"}`, switchboard.StageOperation},
		{"echoed query", 200, `{"Code":100000005,"Message":"bad %s"}`, switchboard.StageAuth},
		{"no code", 200, `{"Message":"hello"}`, switchboard.StageOperation},
		{"html", 200, `<html>`, switchboard.StageOperation},
		{"429", 429, ``, switchboard.StageOperation},
		{"401 plain", 401, `unauthorized`, switchboard.StageAuth},
		{"500 with envelope", 500, `{"Code":0}`, switchboard.StageOperation},
		{"404 with code 0", 404, `{"Code":0}`, switchboard.StageOperation},
		{"redirect", 302, ``, switchboard.StageOperation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			probetest.CheckGoroutines(t)
			var gotQuery url.Values
			srv, err := fault.Start(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotQuery = r.URL.Query()
				if tt.status == 302 {
					w.Header().Set("Location", "/elsewhere")
				}
				w.WriteHeader(tt.status)
				fmt.Fprint(w, strings.ReplaceAll(tt.body, "%s", r.URL.RawQuery))
			}))
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			p := switchboard.Provider{Name: "z", Kind: switchboard.KindZegocloud,
				Config:      switchboard.ProviderConfig{AppID: fmt.Sprint(testAppID), BaseURL: srv.URL() + "/"},
				Credentials: switchboard.Credentials{ServerSecret: testSecret}}
			a := &Adapter{Now: func() time.Time { return now }, Rand: seqRand()}
			res, _ := probetest.ProbeWithin(a, p, 5*time.Second)
			probe.Client(nil).CloseIdleConnections()
			if res.OK != (tt.stage == "") || res.Stage != tt.stage {
				t.Fatalf("result = %+v, want stage %q", res, tt.stage)
			}
			if !res.At.Equal(now) {
				t.Errorf("At = %v, want %v", res.At, now)
			}
			assertNoSecret(t, res.Message, testSecret, signature)
			want := url.Values{
				"Action": {"DescribeUserNum"}, "AppId": {fmt.Sprint(testAppID)}, "SignatureNonce": {nonce},
				"Timestamp": {"1700000000"}, "SignatureVersion": {"2.0"}, "Signature": {signature},
				"RoomId[]": {ProbeRoom},
			}
			for k, v := range want {
				if gotQuery.Get(k) != v[0] {
					t.Errorf("query %s = %q, want %q", k, gotQuery.Get(k), v[0])
				}
			}
		})
	}
}

func TestFakeAnswers(t *testing.T) {
	probetest.CheckGoroutines(t)
	now := time.Unix(1_700_000_000, 0)
	f, _ := newFake(t, func() time.Time { return now })
	signed := func(mut func(url.Values)) string {
		q, err := SignedQuery("DescribeUserNum", testAppID, testSecret, now, seqRand())
		if err != nil {
			t.Fatal(err)
		}
		q["RoomId[]"] = []string{"lobby", "empty"}
		if mut != nil {
			mut(q)
		}
		return q.Encode()
	}
	tests := []struct {
		name  string
		query string
		code  int64
	}{
		{"ok", signed(nil), CodeOK},
		{"no action", signed(func(q url.Values) { q.Del("Action") }), CodeNoAction},
		{"unsupported action", signed(func(q url.Values) { q.Set("Action", "Nope") }), CodeUnsupportedAction},
		{"no nonce", signed(func(q url.Values) { q.Del("SignatureNonce") }), CodeNoSignatureNonce},
		{"no signature", signed(func(q url.Values) { q.Del("Signature") }), CodeNoSignature},
		{"no timestamp", signed(func(q url.Values) { q.Del("Timestamp") }), CodeNoTimestamp},
		{"bad timestamp", signed(func(q url.Values) { q.Set("Timestamp", "x") }), CodeBadTimestamp},
		{"old timestamp", signed(func(q url.Values) { q.Set("Timestamp", "1699999000") }), CodeSignatureExpired},
		{"no version", signed(func(q url.Values) { q.Del("SignatureVersion") }), CodeNoSignatureVersion},
		{"bad version", signed(func(q url.Values) { q.Set("SignatureVersion", "1.0") }), CodeBadSignatureVer},
		{"bad app id", signed(func(q url.Values) { q.Set("AppId", "x") }), CodeBadAppIDFormat},
		{"unknown app id", signed(func(q url.Values) { q.Set("AppId", "7") }), CodeNoSecret},
		{"bad signature", signed(func(q url.Values) { q.Set("Signature", strings.Repeat("0", 32)) }), CodeSignatureInvalid},
		{"changed nonce", signed(func(q url.Values) { q.Set("SignatureNonce", "ffffffffffffffff") }), CodeSignatureInvalid},
		{"no rooms", signed(func(q url.Values) { q.Del("RoomId[]") }), CodeBadParameter},
		{"eleven rooms", signed(func(q url.Values) { q["RoomId[]"] = strings.Split("a b c d e f g h i j k", " ") }), CodeBadParameter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, f.URL()+"/?"+tt.query, nil)
			_, body := probetest.Do(t, req)
			var env struct {
				Code      int64
				RequestID string `json:"RequestId"`
				Data      struct {
					UserCountList []userCount
				}
			}
			if err := json.Unmarshal([]byte(body), &env); err != nil {
				t.Fatalf("%s: %v", body, err)
			}
			if env.Code != tt.code || env.RequestID == "" {
				t.Fatalf("answer %s, want code %d", body, tt.code)
			}
			if tt.code == CodeOK {
				want := []userCount{{RoomID: "lobby", UserCount: 4}, {RoomID: "empty"}}
				if fmt.Sprint(env.Data.UserCountList) != fmt.Sprint(want) {
					t.Errorf("UserCountList = %v, want %v", env.Data.UserCountList, want)
				}
			}
		})
	}
}

func TestNewFakeInvalid(t *testing.T) {
	for _, cfg := range []FakeConfig{{ServerSecret: testSecret}, {AppID: 1, ServerSecret: "short"}} {
		if f, err := NewFake(cfg); err == nil {
			f.Close()
			t.Errorf("NewFake(%+v) succeeded", cfg)
		}
	}
}

func TestMintToken(t *testing.T) {
	p := switchboard.Provider{Name: "zego-test", Kind: switchboard.KindZegocloud,
		Config:      switchboard.ProviderConfig{AppID: fmt.Sprint(testAppID)},
		Credentials: switchboard.Credentials{ServerSecret: testSecret}}
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name    string
		req     switchboard.TokenRequest
		ttl     int64
		payload string
	}{
		{"no room", switchboard.TokenRequest{UserID: "alice"}, 3600, ""},
		{"subscriber", switchboard.TokenRequest{UserID: "bob", Room: "r1", TTL: 10 * time.Minute}, 600,
			`{"room_id":"r1","privilege":{"1":1,"2":0},"stream_id_list":null}`},
		{"publisher", switchboard.TokenRequest{UserID: "carol", Room: "r1", Publisher: true, TTL: 24 * time.Hour}, 86400,
			`{"room_id":"r1","privilege":{"1":1,"2":1},"stream_id_list":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jt, err := (&Adapter{}).MintToken(p, tt.req, now)
			if err != nil {
				t.Fatal(err)
			}
			c, err := Decrypt04(jt.Token, testSecret)
			if err != nil {
				t.Fatal(err)
			}
			if c.AppID != testAppID || c.UserID != tt.req.UserID || c.CTime != now.Unix() || c.Expire != now.Unix()+tt.ttl || c.Payload != tt.payload {
				t.Errorf("claims = %+v", c)
			}
			if !jt.ExpiresAt.Equal(c.ExpiresAt()) {
				t.Errorf("ExpiresAt = %v, want %v", jt.ExpiresAt, c.ExpiresAt())
			}
		})
	}
}

func TestMintTokenInvalid(t *testing.T) {
	good := switchboard.Provider{Name: "zego-test", Kind: switchboard.KindZegocloud,
		Config:      switchboard.ProviderConfig{AppID: fmt.Sprint(testAppID)},
		Credentials: switchboard.Credentials{ServerSecret: testSecret}}
	noSecret := good
	noSecret.Credentials = switchboard.Credentials{}
	badApp := good
	badApp.Config.AppID = "0"
	tests := []struct {
		name string
		p    switchboard.Provider
		req  switchboard.TokenRequest
		code string
	}{
		{"no secret", noSecret, switchboard.TokenRequest{UserID: "u"}, switchboard.EUnavailable},
		{"bad app id", badApp, switchboard.TokenRequest{UserID: "u"}, switchboard.EInvalid},
		{"no user", good, switchboard.TokenRequest{}, switchboard.EInvalid},
		{"long user", good, switchboard.TokenRequest{UserID: strings.Repeat("u", 65)}, switchboard.EInvalid},
		{"long room", good, switchboard.TokenRequest{UserID: "u", Room: strings.Repeat("r", 129)}, switchboard.EInvalid},
		{"ttl above max", good, switchboard.TokenRequest{UserID: "u", TTL: MaxTTL + time.Second}, switchboard.EInvalid},
		{"ttl below 1s", good, switchboard.TokenRequest{UserID: "u", TTL: time.Millisecond}, switchboard.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := (&Adapter{}).MintToken(tt.p, tt.req, time.Unix(1_700_000_000, 0))
			if !switchboard.IsCode(err, tt.code) {
				t.Fatalf("err = %v, want code %s", err, tt.code)
			}
			assertNoSecret(t, err.Error(), testSecret)
		})
	}
}
