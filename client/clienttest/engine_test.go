package clienttest

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/client"
)

func assignment(provider string) client.Assignment {
	return client.Assignment{StreamID: "st_1", Room: "r", Provider: client.Provider{Name: provider, Kind: "agora"}}
}

func TestEngine(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(e *Engine)
		wantKind client.MediaErrorKind // "" = connects
	}{
		{"up", func(*Engine) {}, ""},
		{"down", func(e *Engine) { e.Down("a", true) }, client.ConnectionLost},
		{"back up", func(e *Engine) { e.Down("a", true); e.Down("a", false) }, ""},
		{"rejects tokens", func(e *Engine) { e.RejectTokens("a", true) }, client.TokenRejected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := New(time.Millisecond)
			tt.setup(e)
			conn, err := e.Connect(context.Background(), assignment("a"), func(client.MediaError) {})
			var me client.MediaError
			switch {
			case tt.wantKind == "" && err != nil:
				t.Fatalf("Connect: %v", err)
			case tt.wantKind != "" && (!errors.As(err, &me) || me.Kind != tt.wantKind):
				t.Fatalf("Connect error = %v, want %s", err, tt.wantKind)
			case tt.wantKind == "":
				if got := e.Active("a"); got != 1 {
					t.Errorf("Active = %d, want 1", got)
				}
				_ = conn.Disconnect(context.Background())
				_ = conn.Disconnect(context.Background())
				if got := e.Active("a"); got != 0 {
					t.Errorf("Active after Disconnect = %d, want 0", got)
				}
			}
		})
	}
}

func TestFailAndStall(t *testing.T) {
	e := New(0)
	var lost atomic.Int32
	report := func(me client.MediaError) {
		if me.Kind == client.ConnectionLost {
			lost.Add(1)
		}
	}
	var conns []client.Connection
	for _, p := range []string{"a", "a", "b"} {
		c, err := e.Connect(context.Background(), assignment(p), report)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if n := e.Fail("a"); n != 2 || lost.Load() != 2 {
		t.Errorf("Fail dropped %d, reported %d; want 2 and 2", n, lost.Load())
	}
	if n := e.Stall("b"); n != 1 {
		t.Errorf("Stall = %d, want 1", n)
	}
	b := conns[2].(client.MediaActivity)
	at := b.LastMedia()
	time.Sleep(5 * time.Millisecond)
	if got := b.LastMedia(); !got.Equal(at) {
		t.Errorf("a stalled connection's LastMedia moved from %v to %v", at, got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := New(time.Hour).Connect(ctx, assignment("a"), report); !errors.Is(err, context.Canceled) {
		t.Errorf("Connect with a cancelled context = %v, want context.Canceled", err)
	}
	if got := e.Connects(); got != 3 {
		t.Errorf("Connects = %d, want 3", got)
	}
}
