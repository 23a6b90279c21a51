package zegocloudfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/internal/providers/probe/probetest"
	"github.com/switchboardhq/switchboard/internal/providers/zegocloud"
)

const (
	testAppID  = uint32(1234567890)
	testSecret = "0123456789abcdef0123456789abcdef"
)

func TestMain(m *testing.M) { os.Exit(probetest.Main(m)) }

// newFake starts a fake with the clock now, closed at the end of the test.
func newFake(t *testing.T, now func() time.Time) *Fake {
	t.Helper()
	f, err := New(Config{AppID: testAppID, ServerSecret: testSecret, Rooms: map[string]int{"lobby": 4}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	probetest.CloseAtEnd(t, f)
	return f
}

func TestFakeAnswers(t *testing.T) {
	probetest.CheckGoroutines(t)
	now := time.Unix(1_700_000_000, 0)
	f := newFake(t, func() time.Time { return now })
	signed := func(mut func(url.Values)) string {
		q, err := zegocloud.SignedQuery("DescribeUserNum", testAppID, testSecret, now, bytes.NewReader(make([]byte, 64)))
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
		{"ok", signed(nil), zegocloud.CodeOK},
		{"no action", signed(func(q url.Values) { q.Del("Action") }), zegocloud.CodeNoAction},
		{"unsupported action", signed(func(q url.Values) { q.Set("Action", "Nope") }), zegocloud.CodeUnsupportedAction},
		{"no nonce", signed(func(q url.Values) { q.Del("SignatureNonce") }), zegocloud.CodeNoSignatureNonce},
		{"no signature", signed(func(q url.Values) { q.Del("Signature") }), zegocloud.CodeNoSignature},
		{"no timestamp", signed(func(q url.Values) { q.Del("Timestamp") }), zegocloud.CodeNoTimestamp},
		{"bad timestamp", signed(func(q url.Values) { q.Set("Timestamp", "x") }), zegocloud.CodeBadTimestamp},
		{"old timestamp", signed(func(q url.Values) { q.Set("Timestamp", "1699999000") }), zegocloud.CodeSignatureExpired},
		{"no version", signed(func(q url.Values) { q.Del("SignatureVersion") }), zegocloud.CodeNoSignatureVersion},
		{"bad version", signed(func(q url.Values) { q.Set("SignatureVersion", "1.0") }), zegocloud.CodeBadSignatureVer},
		{"bad app id", signed(func(q url.Values) { q.Set("AppId", "x") }), zegocloud.CodeBadAppIDFormat},
		{"unknown app id", signed(func(q url.Values) { q.Set("AppId", "7") }), zegocloud.CodeNoSecret},
		{"bad signature", signed(func(q url.Values) { q.Set("Signature", strings.Repeat("0", 32)) }), zegocloud.CodeSignatureInvalid},
		{"changed nonce", signed(func(q url.Values) { q.Set("SignatureNonce", "ffffffffffffffff") }), zegocloud.CodeSignatureInvalid},
		{"no rooms", signed(func(q url.Values) { q.Del("RoomId[]") }), zegocloud.CodeBadParameter},
		{"eleven rooms", signed(func(q url.Values) { q["RoomId[]"] = strings.Split("a b c d e f g h i j k", " ") }), zegocloud.CodeBadParameter},
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
			if tt.code == zegocloud.CodeOK {
				want := []userCount{{RoomID: "lobby", UserCount: 4}, {RoomID: "empty"}}
				if fmt.Sprint(env.Data.UserCountList) != fmt.Sprint(want) {
					t.Errorf("UserCountList = %v, want %v", env.Data.UserCountList, want)
				}
			}
		})
	}
}

func TestNewInvalid(t *testing.T) {
	for _, cfg := range []Config{{ServerSecret: testSecret}, {AppID: 1, ServerSecret: "short"}} {
		if f, err := New(cfg); err == nil {
			f.Close()
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}
