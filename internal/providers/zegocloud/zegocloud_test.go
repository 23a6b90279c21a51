package zegocloud

import (
	"encoding/hex"
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
			probetest.AssertNoSecret(t, res.Message, testSecret, signature)
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
			probetest.AssertNoSecret(t, err.Error(), testSecret)
		})
	}
}
