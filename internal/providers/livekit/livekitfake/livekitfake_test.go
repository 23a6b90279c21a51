package livekitfake

import (
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/providers/fault"
	"github.com/switchboardhq/switchboard/internal/providers/livekit"
	"github.com/switchboardhq/switchboard/internal/providers/probe/probetest"
)

const (
	testKey    = "APIk3yForTests"
	testSecret = "s3cretS3cretS3cretS3cretS3cret-0123456789"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestMain(m *testing.M) { os.Exit(probetest.Main(m)) }

func mustFake(t *testing.T, cfg Config) *Fake {
	t.Helper()
	f, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	probetest.CloseAtEnd(t, f)
	return f
}

// TestFakeAnswers pins the fake to livekit-server's answers, which the probe's
// classification relies on.
func TestFakeAnswers(t *testing.T) {
	now := time.Now()
	mint := func(key, secret string, grant livekit.VideoGrant, at time.Time) string {
		t.Helper()
		tok, err := livekit.MintAPIToken(key, secret, grant, time.Minute, at)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	list := livekit.VideoGrant{RoomList: true}
	tests := []struct {
		name        string
		method      string
		path        string
		auth        string // the Authorization header
		contentType string
		mode        fault.Mode
		notReady    bool
		wantStatus  int
		wantBody    string // a prefix of the body
	}{
		{name: "health", method: "GET", path: "/", wantStatus: 200, wantBody: "OK"},
		{name: "health on any path", method: "GET", path: "/anything", wantStatus: 200, wantBody: "OK"},
		{name: "not ready", method: "GET", path: "/", notReady: true, wantStatus: 406, wantBody: "Not Ready"},
		{name: "list rooms", method: "POST", path: listRoomsPath, auth: "Bearer " + mint(testKey, testSecret, list, now),
			wantStatus: 200, wantBody: `{"rooms":[]}`},
		{name: "list rooms with charset", method: "POST", path: listRoomsPath, contentType: "application/json; charset=utf-8",
			auth: "Bearer " + mint(testKey, testSecret, list, now), wantStatus: 200, wantBody: `{"rooms":[]}`},
		{name: "GET is not routed", method: "GET", path: listRoomsPath, auth: "Bearer " + mint(testKey, testSecret, list, now),
			wantStatus: 404, wantBody: `{"code":"bad_route"`},
		{name: "unknown method", method: "POST", path: "/twirp/livekit.RoomService/Nope", auth: "Bearer " + mint(testKey, testSecret, list, now),
			wantStatus: 404, wantBody: `{"code":"bad_route"`},
		{name: "wrong content type", method: "POST", path: listRoomsPath, contentType: "text/plain",
			auth: "Bearer " + mint(testKey, testSecret, list, now), wantStatus: 404, wantBody: `{"code":"bad_route"`},
		{name: "no token", method: "POST", path: listRoomsPath, wantStatus: 401,
			wantBody: `{"code":"unauthenticated","msg":"permissions denied"}`},
		{name: "no grant", method: "POST", path: listRoomsPath, auth: "Bearer " + mint(testKey, testSecret, livekit.VideoGrant{RoomJoin: true}, now),
			wantStatus: 401, wantBody: `{"code":"unauthenticated","msg":"permissions denied"}`},
		{name: "not bearer", method: "POST", path: listRoomsPath, auth: "Basic Zm9vOmJhcg==", wantStatus: 401,
			wantBody: "invalid authorization header. Must start with Bearer "},
		{name: "garbled", method: "POST", path: listRoomsPath, auth: "Bearer garbage", wantStatus: 401,
			wantBody: "invalid authorization token"},
		{name: "unknown key", method: "POST", path: listRoomsPath, auth: "Bearer " + mint("APIother", testSecret, list, now),
			wantStatus: 401, wantBody: "invalid API key: APIother"},
		{name: "wrong secret", method: "POST", path: listRoomsPath, auth: "Bearer " + mint(testKey, "wrong", list, now),
			wantStatus: 401, wantBody: "invalid token: "},
		{name: "expired", method: "POST", path: listRoomsPath, auth: "Bearer " + mint(testKey, testSecret, list, now.Add(-time.Hour)),
			wantStatus: 401, wantBody: "invalid token: "},
		{name: "reject auth", method: "POST", path: listRoomsPath, auth: "Bearer " + mint(testKey, testSecret, list, now),
			mode: fault.RejectAuth, wantStatus: 401, wantBody: "invalid token: "},
		{name: "reject auth leaves health alone", method: "GET", path: "/", mode: fault.RejectAuth, wantStatus: 200, wantBody: "OK"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustFake(t, Config{APIKey: testKey, APISecret: testSecret})
			f.SetNotReady(tt.notReady)
			if tt.mode != "" {
				if err := f.Faults().Set(tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			var body io.Reader
			if tt.method == "POST" {
				body = strings.NewReader("{}")
			}
			req, err := http.NewRequestWithContext(context.Background(), tt.method, f.URL()+tt.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			ct := tt.contentType
			if ct == "" {
				ct = "application/json"
			}
			req.Header.Set("Content-Type", ct)
			status, b := probetest.Do(t, req)
			if status != tt.wantStatus || !strings.HasPrefix(b, tt.wantBody) {
				t.Fatalf("%s %s = %d %q; want %d %q...", tt.method, tt.path, status, b, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestFakeDefaultsToDevKeys(t *testing.T) {
	f := mustFake(t, Config{})
	a := livekit.Adapter{Client: probetest.Client(t)}
	p := switchboard.Provider{
		Name: "lk", Kind: switchboard.KindLiveKit, Enabled: true,
		Config:      switchboard.ProviderConfig{URL: f.URL()},
		Credentials: switchboard.Credentials{APIKey: livekit.DevAPIKey, APISecret: livekit.DevAPISecret},
	}
	got := a.Probe(context.Background(), p)
	if !got.OK {
		t.Fatalf("Probe = %+v, want OK with the dev key pair", got)
	}
}

func TestFakeRooms(t *testing.T) {
	f := mustFake(t, Config{APIKey: testKey, APISecret: testSecret, Now: func() time.Time { return t0 }})
	f.AddRoom("stage-1")
	tok, err := livekit.MintAPIToken(testKey, testSecret, livekit.VideoGrant{RoomList: true}, time.Minute, t0)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(context.Background(), "POST", f.URL()+listRoomsPath, strings.NewReader(`{"names":["stage-1"]}`))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	status, b := probetest.Do(t, req)
	want := `{"rooms":[{"sid":"RM_fake1","name":"stage-1","creation_time":"1772366400","num_participants":0}]}`
	if status != 200 || strings.TrimSpace(b) != want {
		t.Fatalf("ListRooms = %d %s; want 200 %s", status, b, want)
	}
}
