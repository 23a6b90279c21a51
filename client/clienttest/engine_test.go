package clienttest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchboardhq/switchboard/client"
)

func assignment(provider string) client.Assignment {
	return client.Assignment{StreamID: "st_1", Room: "r", Provider: client.Provider{Name: provider, Kind: client.KindAgora}}
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
	// The bubble's clock moves only when every goroutine waits: each
	// time.Sleep below advances it by exactly that much, at once.
	synctest.Test(t, func(t *testing.T) {
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
	})
}

// connectN connects n streams to provider.
func connectN(t *testing.T, e *Engine, provider string, n int, report func(client.MediaError)) []*Conn {
	t.Helper()
	var out []*Conn
	for i := range n {
		a := assignment(provider)
		a.Room = fmt.Sprintf("r%d", i)
		c, err := e.Connect(context.Background(), a, report)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c.(*Conn))
	}
	return out
}

func TestCut(t *testing.T) {
	// The bubble's clock moves only when every goroutine waits: each
	// time.Sleep below advances it by exactly that much, at once.
	synctest.Test(t, func(t *testing.T) {
		e := New(0)
		var mu sync.Mutex
		kinds := map[client.MediaErrorKind]int{}
		report := func(me client.MediaError) {
			mu.Lock()
			kinds[me.Kind]++
			mu.Unlock()
		}
		conns := connectN(t, e, "a", 10, report)
		cut := e.Cut("a", client.ConnectionLost, 0.3)
		if len(cut) != 3 || e.Active("a") != 7 || kinds[client.ConnectionLost] != 3 {
			t.Fatalf("Cut 0.3 of 10: cut %d, active %d, reported %v; want 3, 7, 3", len(cut), e.Active("a"), kinds)
		}
		rooms := map[string]bool{}
		for _, c := range cut {
			rooms[c.Room()] = true
			if c.Provider() != "a" || c.StreamID() != "st_1" {
				t.Errorf("cut connection %s/%s", c.Provider(), c.StreamID())
			}
			at := c.LastMedia()
			time.Sleep(2 * time.Millisecond)
			if !c.LastMedia().Equal(at) {
				t.Error("a cut connection still carries media")
			}
		}
		for _, c := range conns {
			if !rooms[c.Room()] {
				at := c.LastMedia()
				time.Sleep(2 * time.Millisecond)
				if !c.LastMedia().After(at) {
					t.Error("a connection that was not cut stopped carrying media")
				}
			}
		}
		if cut := e.Cut("a", client.TokenRejected, 1); len(cut) != 7 || kinds[client.TokenRejected] != 7 || e.Active("a") != 0 {
			t.Errorf("Cut all: cut %d, reported %v, active %d", len(cut), kinds, e.Active("a"))
		}
		if cut := e.Cut("none", client.ConnectionLost, 1); len(cut) != 0 {
			t.Errorf("Cut of a provider without connections: %d", len(cut))
		}
	})
}

func TestHangAndRecover(t *testing.T) {
	// The bubble's clock moves only when every goroutine waits: each
	// time.Sleep below advances it by exactly that much, at once.
	synctest.Test(t, func(t *testing.T) {
		e := New(0)
		conns := connectN(t, e, "a", 2, func(client.MediaError) { t.Error("a hung provider reported an error") })
		if hung := e.Hang("a"); len(hung) != 2 {
			t.Fatalf("Hang stalled %d, want 2", len(hung))
		}
		at := conns[0].LastMedia()
		time.Sleep(2 * time.Millisecond)
		if !conns[0].LastMedia().Equal(at) {
			t.Error("a hung connection still carries media")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := e.Connect(ctx, assignment("a"), func(client.MediaError) {}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Connect to a hung provider = %v, want its context's deadline", err)
		}
		if d := time.Since(start); d != 20*time.Millisecond {
			t.Errorf("Connect to a hung provider returned after %v, want when its context ended", d)
		}
		e.Recover("a")
		if _, err := e.Connect(context.Background(), assignment("a"), func(client.MediaError) {}); err != nil {
			t.Errorf("Connect after Recover: %v", err)
		}
	})
}

func TestSlow(t *testing.T) {
	// The bubble's clock moves only when every goroutine waits: each
	// time.Sleep below advances it by exactly that much, at once.
	synctest.Test(t, func(t *testing.T) {
		e := New(0)
		conns := connectN(t, e, "a", 1, func(client.MediaError) { t.Error("a slow provider reported an error") })
		const lag = 200 * time.Millisecond
		at := conns[0].LastMedia()
		if slowed := e.Slow("a", lag); len(slowed) != 1 {
			t.Fatalf("Slow = %d, want 1", len(slowed))
		}
		time.Sleep(lag / 4)
		if got := conns[0].LastMedia(); !got.Equal(at) {
			t.Errorf("media arrived %v into a lag of %v", got.Sub(at), lag)
		}
		time.Sleep(lag)
		if got := conns[0].LastMedia(); !got.Equal(time.Now()) {
			t.Errorf("media still late after the lag: last %v ago", time.Since(got))
		}

		start := time.Now()
		c, err := e.Connect(context.Background(), assignment("a"), func(client.MediaError) {})
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d != lag {
			t.Errorf("Connect to a slow provider took %v, want %v", d, lag)
		}
		fresh := c.(*Conn)
		at = fresh.LastMedia()
		time.Sleep(lag / 4)
		if got := fresh.LastMedia(); !got.Equal(at) {
			t.Error("a new connection to a slow provider got media before the lag")
		}

		e.Slow("a", 0)
		start = time.Now()
		if _, err := e.Connect(context.Background(), assignment("a"), func(client.MediaError) {}); err != nil {
			t.Errorf("Connect after the provider recovered: %v", err)
		} else if d := time.Since(start); d != 0 {
			t.Errorf("Connect after the provider recovered took %v, the lag is %v", d, lag)
		}
	})
}
