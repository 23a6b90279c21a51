package livekit

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	lksdk "github.com/livekit/server-sdk-go/v2"

	"github.com/switchboardhq/switchboard/client"
)

// A join token shaped like LiveKit's (not valid anywhere).
const testToken = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ0ZXN0LXVzZXIifQ.c2lnbmF0dXJlLW5vdC12YWxpZA"

func TestSignalURL(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"http://127.0.0.1:7880", "ws://127.0.0.1:7880", true},
		{"https://lk.example.test", "wss://lk.example.test", true},
		{"ws://127.0.0.1:7880/", "ws://127.0.0.1:7880/", true},
		{"wss://lk.example.test/base", "wss://lk.example.test/base", true},
		{"ftp://lk.example.test", "", false},
		{"127.0.0.1:7880", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := signalURL(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Fatalf("signalURL(%q) = %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestStalled(t *testing.T) {
	now := time.Unix(1000, 0)
	tests := []struct {
		name  string
		last  time.Time
		limit time.Duration
		want  bool
	}{
		{"no media yet", time.Time{}, time.Second, false},
		{"watchdog off", now.Add(-time.Hour), 0, false},
		{"recent", now.Add(-100 * time.Millisecond), 300 * time.Millisecond, false},
		{"at the limit", now.Add(-300 * time.Millisecond), 300 * time.Millisecond, false},
		{"past the limit", now.Add(-301 * time.Millisecond), 300 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var last int64
			if !tt.last.IsZero() {
				last = tt.last.UnixNano()
			}
			if _, got := stalled(now, last, tt.limit); got != tt.want {
				t.Fatalf("stalled = %v, want %v", got, tt.want)
			}
		})
	}
}

// checkGoroutines fails t if goroutines started during the test are still
// running after a settle period.
func checkGoroutines(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		var now int
		for range 100 {
			// The LiveKit SDK validates tokens with http.DefaultClient, whose
			// idle keep-alive connections have goroutines of their own.
			http.DefaultClient.CloseIdleConnections()
			if now = runtime.NumGoroutine(); now <= before {
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		buf := make([]byte, 1<<20)
		t.Errorf("goroutines: %d before, %d after\n%s", before, now, buf[:runtime.Stack(buf, true)])
	})
}

func testAssignment(url string) client.Assignment {
	return client.Assignment{StreamID: "st_1", Room: "room", UserID: "user", Role: client.RolePublisher,
		Provider: client.Provider{Name: "lk", Kind: client.KindLiveKit, URL: url}, Token: testToken}
}

// TestConnectErrors connects to real loopback servers that refuse the token,
// to a closed port and to a bad URL: each fails at once with the MediaError
// kind the SDK acts on, and no error carries the token.
func TestConnectErrors(t *testing.T) {
	// Like livekit-server, this one refuses the websocket with 401 and explains
	// why on /rtc/validate, echoing the token.
	rejecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "invalid token: "+r.URL.Query().Get("access_token")+", error: signature is invalid", http.StatusUnauthorized)
	}))
	defer rejecting.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	tests := []struct {
		name, url string
		want      client.MediaErrorKind
	}{
		{"token rejected", rejecting.URL, client.TokenRejected},
		{"nothing listening", closed, client.ConnectionLost},
		{"bad URL", "ftp://example.test", client.ConnectionLost},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkGoroutines(t)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			conn, err := NewEngine().Connect(ctx, testAssignment(tt.url), func(client.MediaError) {})
			if conn != nil {
				t.Fatal("Connect returned a connection with an error")
			}
			var me client.MediaError
			if !errors.As(err, &me) || me.Kind != tt.want {
				t.Fatalf("Connect error = %v, want a MediaError of kind %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "eyJ") {
				t.Fatalf("error carries the token: %v", err)
			}
		})
	}
}

// TestConnectCancel: a server that accepts connections but never answers
// cannot hold Connect beyond its context.
func TestConnectCancel(t *testing.T) {
	checkGoroutines(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c // held open, never answered
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = NewEngine().Connect(ctx, testAssignment("http://"+ln.Addr().String()), func(client.MediaError) {})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect error = %v, want the context's", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Connect returned %s after its deadline", d)
	}
	// Closing the server ends the abandoned join in the background.
	ln.Close()
	for c := range accepted {
		c.Close()
	}
}

// A track subscribed after the connection closed starts no reader (here it
// would read a nil track and panic), and Disconnect's wait is not raced.
func TestNoReaderAfterClose(t *testing.T) {
	c := &Conn{provider: "lk", done: make(chan struct{}), log: slog.New(slog.DiscardHandler)}
	c.close()
	c.callbacks().ParticipantCallback.OnTrackSubscribed(nil, nil, &lksdk.RemoteParticipant{})
	c.wg.Wait()
}
