package client

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Reports of moves to a standby, and of the media failures that caused them,
// go out after the moves. When a provider drops every stream of a Client at
// once, the streams moving and the streams reporting share the process (and
// the control plane, which a stream without a usable standby needs): a
// report sent while other streams still move slows their moves and helps
// none. So a report waits until no stream of its Client is moving, then a
// random part of reportSpread (so that the reports of a mass failover come
// spread out), and waits again if moves began meanwhile; never longer than
// reportHoldMax after the move, so that a Client that keeps moving streams
// (a control plane down while every move retries) still reports. A Client
// with one stream reports as before: its own move has ended when its report
// waits.
const (
	reportSpread  = time.Second
	reportHoldMax = 5 * time.Second
)

// moveGate counts the streams of a Client that are moving.
type moveGate struct {
	mu   sync.Mutex
	n    int
	calm chan struct{} // closed while n == 0
}

func newMoveGate() *moveGate {
	calm := make(chan struct{})
	close(calm)
	return &moveGate{calm: calm}
}

// enter counts a move that begins, and returns what ends it, which may be
// called more than once: the move ends once the stream is live again (or
// lost), before the old connection is let go.
func (g *moveGate) enter() (settled func()) {
	g.mu.Lock()
	if g.n == 0 {
		g.calm = make(chan struct{})
	}
	g.n++
	g.mu.Unlock()
	return sync.OnceFunc(func() {
		g.mu.Lock()
		g.n--
		if g.n == 0 {
			close(g.calm)
		}
		g.mu.Unlock()
	})
}

// moving reports whether a stream is moving now.
func (g *moveGate) moving() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.n > 0
}

// waitCalm waits until no stream moves, or deadline passes. It returns false
// when ctx ends first.
func (g *moveGate) waitCalm(ctx context.Context, deadline time.Time) bool {
	g.mu.Lock()
	calm := g.calm
	g.mu.Unlock()
	select {
	case <-calm:
		return true
	default:
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-calm:
		return true
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// holdReport waits until a report of a move made at moved may go out (see
// reportSpread). It returns false when ctx ends first.
func (g *moveGate) holdReport(ctx context.Context, moved time.Time) bool {
	deadline := moved.Add(reportHoldMax)
	for {
		if !g.waitCalm(ctx, deadline) {
			return false
		}
		if !sleep(ctx, time.Duration(rand.Int64N(int64(reportSpread)))) {
			return false
		}
		if !g.moving() || !time.Now().Before(deadline) {
			return true
		}
	}
}
