// Package clienttest provides a simulated client.MediaEngine, for the tests
// of apps that embed the SDK (and for Switchboard's own tests, simulate
// command and demo): connections succeed after a configurable delay unless
// their provider is marked down, and a provider can be made to fail the way
// real ones do: drop every connection at once (Fail, Cut), drop only some
// (Cut with a share), reject tokens (Cut with TokenRejected, RejectTokens),
// stop carrying media without a word (Stall, Hang) or fall behind (Slow).
package clienttest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboardhq/switchboard/client"
)

// ErrDown is the error of a connect to a provider marked down.
var ErrDown = errors.New("simulated provider is down")

// Engine is a simulated media engine for every provider kind. It is safe for
// concurrent use; the zero value is not: create it with New.
type Engine struct {
	delay    time.Duration
	connects atomic.Int64

	mu sync.Mutex
	// The fields below are guarded by mu.
	down   map[string]bool
	reject map[string]bool
	hang   map[string]bool               // connects wait until their context ends
	slow   map[string]time.Duration      // connects take this much longer; media lags by it
	conns  map[string]map[*Conn]struct{} // live connections by provider
	// quality overrides the synthetic quality of a provider's connections.
	quality map[string]client.QualitySample
}

// New returns an engine whose connects take delay.
func New(delay time.Duration) *Engine {
	return &Engine{
		delay: delay, down: map[string]bool{}, reject: map[string]bool{}, hang: map[string]bool{},
		slow: map[string]time.Duration{}, conns: map[string]map[*Conn]struct{}{},
	}
}

// Connect implements client.MediaEngine: it waits the engine's delay and
// connects, unless the provider is down (a ConnectionLost error), rejects
// tokens (TokenRejected) or hangs (the connect waits until ctx ends). A
// connect to a slow provider takes its extra delay too, and its media lags.
func (e *Engine) Connect(ctx context.Context, a client.Assignment, report func(client.MediaError)) (client.Connection, error) {
	e.connects.Add(1)
	name := a.Provider.Name
	e.mu.Lock()
	lag := e.slow[name]
	e.mu.Unlock()
	if err := wait(ctx, e.delay+lag); err != nil {
		return nil, fmt.Errorf("simulated connect to %s: %w", name, err)
	}
	e.mu.Lock()
	if e.hang[name] {
		e.mu.Unlock()
		<-ctx.Done()
		return nil, fmt.Errorf("simulated connect to %s: no answer: %w", name, ctx.Err())
	}
	defer e.mu.Unlock()
	if e.down[name] {
		return nil, client.MediaError{Kind: client.ConnectionLost, Err: ErrDown}
	}
	if e.reject[name] {
		return nil, client.MediaError{Kind: client.TokenRejected, Err: errors.New("simulated provider rejected the token")}
	}
	c := &Conn{e: e, provider: name, report: report, room: a.Room, streamID: a.StreamID}
	now := time.Now().UnixNano()
	c.lastMedia.Store(now)
	if lag := e.slow[name]; lag > 0 {
		c.slowUntil.Store(now + int64(lag))
	}
	if e.conns[name] == nil {
		e.conns[name] = map[*Conn]struct{}{}
	}
	e.conns[name][c] = struct{}{}
	return c, nil
}

// wait waits d or until ctx ends.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Down marks a provider down (connects fail) or up again.
func (e *Engine) Down(provider string, down bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.down[provider] = down
}

// RejectTokens makes connects to a provider fail with TokenRejected, or not.
func (e *Engine) RejectTokens(provider string, reject bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reject[provider] = reject
}

// Fail drops every connection on provider: each reports ConnectionLost at once.
// It returns how many connections were dropped.
func (e *Engine) Fail(provider string) int {
	return len(e.Cut(provider, client.ConnectionLost, 1))
}

// Cut ends a share (from 0 to 1) of the connections on provider, picked at
// random: each reports a media error of kind at once and carries no more
// media; the others keep working. It returns the connections it ended.
// Connects are not affected: combine it with Down or RejectTokens for that.
func (e *Engine) Cut(provider string, kind client.MediaErrorKind, share float64) []*Conn {
	e.mu.Lock()
	all := make([]*Conn, 0, len(e.conns[provider]))
	for c := range e.conns[provider] {
		all = append(all, c)
	}
	n := len(all)
	if share < 1 {
		n = int(math.Round(max(share, 0) * float64(len(all))))
		rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })
	}
	cut := all[:n]
	for _, c := range cut {
		delete(e.conns[provider], c)
	}
	e.mu.Unlock()
	for _, c := range cut {
		c.dead.Store(true)
		c.report(client.MediaError{Kind: kind, Err: fmt.Errorf("simulated %s on %s", kind, provider)})
	}
	return cut
}

// Stall makes every connection on provider stop carrying media without
// reporting anything, as a hung provider does; only a watchdog notices.
func (e *Engine) Stall(provider string) int {
	return len(e.stall(provider))
}

func (e *Engine) stall(provider string) []*Conn {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*Conn, 0, len(e.conns[provider]))
	for c := range e.conns[provider] {
		c.stalled.Store(true)
		out = append(out, c)
	}
	return out
}

// Hang makes provider go silent: its connections stop carrying media without
// any error (as Stall) and connects to it wait, unanswered, until their
// context ends. It returns the connections it stalled. Recover ends it for
// new connects.
func (e *Engine) Hang(provider string) []*Conn {
	e.mu.Lock()
	e.hang[provider] = true
	e.mu.Unlock()
	return e.stall(provider)
}

// Slow makes provider fall behind by lag: connects to it take lag longer,
// and media on its connections arrives lag late, so that from now (or, for
// a new connection, from its connect) no packet arrives for lag; a watchdog
// shorter than lag notices. It returns the connections it slowed. Slow with
// a lag of zero, or Recover, ends it for new connects.
func (e *Engine) Slow(provider string, lag time.Duration) []*Conn {
	e.mu.Lock()
	defer e.mu.Unlock()
	if lag <= 0 {
		delete(e.slow, provider)
		return nil
	}
	e.slow[provider] = lag
	now := time.Now().UnixNano()
	out := make([]*Conn, 0, len(e.conns[provider]))
	for c := range e.conns[provider] {
		c.LastMedia() // media flowed until now
		c.slowUntil.Store(now + int64(lag))
		out = append(out, c)
	}
	return out
}

// Recover makes provider accept connects again: it is no longer down,
// rejecting tokens, hung or slow. Connections already hit stay as they are.
func (e *Engine) Recover(provider string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.down, provider)
	delete(e.reject, provider)
	delete(e.hang, provider)
	delete(e.slow, provider)
}

// Active is the number of live connections on provider.
func (e *Engine) Active(provider string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.conns[provider])
}

// Connects counts the connect attempts so far.
func (e *Engine) Connects() int64 { return e.connects.Load() }

// Conn is a simulated connection. It implements client.MediaActivity: media
// flows until the connection is dropped, stalled or disconnected, and
// pauses while its provider is slow.
type Conn struct {
	e         *Engine
	provider  string
	room      string
	streamID  string
	report    func(client.MediaError)
	lastMedia atomic.Int64 // unix ns
	slowUntil atomic.Int64 // unix ns: no packet arrives before
	dead      atomic.Bool
	stalled   atomic.Bool
	closed    atomic.Bool
}

// Provider is the provider of the connection.
func (c *Conn) Provider() string { return c.provider }

// Room is the room the connection joined.
func (c *Conn) Room() string { return c.room }

// StreamID is the id of the stream the connection was made for.
func (c *Conn) StreamID() string { return c.streamID }

// Disconnect implements client.Connection.
func (c *Conn) Disconnect(context.Context) error {
	if c.closed.Swap(true) {
		return nil
	}
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	delete(c.e.conns[c.provider], c)
	return nil
}

// LastMedia implements client.MediaActivity.
func (c *Conn) LastMedia() time.Time {
	if !c.dead.Load() && !c.stalled.Load() && !c.closed.Load() {
		if now := time.Now().UnixNano(); now >= c.slowUntil.Load() {
			c.lastMedia.Store(now)
		}
	}
	return time.Unix(0, c.lastMedia.Load())
}

// DefaultQuality is the synthetic quality of a connection whose provider
// has none set with SetQuality: good audio and video.
var DefaultQuality = client.QualitySample{RTTMs: 40, PacketLoss: 0.001, JitterMs: 5, BitrateKbps: 1500, FPS: 30}

// SetQuality sets the quality that the connections to provider report from
// now on.
func (e *Engine) SetQuality(provider string, q client.QualitySample) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.quality == nil {
		e.quality = map[string]client.QualitySample{}
	}
	e.quality[provider] = q
}

// Quality implements client.QualityReporter: the synthetic quality of the
// connection's provider while media flows, nothing once the connection is
// dropped, stalled or closed.
func (c *Conn) Quality() (client.QualitySample, bool) {
	if c.dead.Load() || c.stalled.Load() || c.closed.Load() {
		return client.QualitySample{}, false
	}
	c.e.mu.Lock()
	defer c.e.mu.Unlock()
	if q, ok := c.e.quality[c.provider]; ok {
		return q, true
	}
	return DefaultQuality, true
}

var (
	_ client.MediaEngine     = (*Engine)(nil)
	_ client.MediaActivity   = (*Conn)(nil)
	_ client.QualityReporter = (*Conn)(nil)
)
