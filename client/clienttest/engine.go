// Package clienttest provides a simulated client.MediaEngine, for the tests
// of apps that embed the SDK (and for Switchboard's own tests, simulate
// command and demo): connections succeed after a configurable delay unless
// their provider is marked down, and a provider can be made to drop every
// connection at once or to stop carrying media without a word.
package clienttest

import (
	"context"
	"errors"
	"fmt"
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
	conns  map[string]map[*Conn]struct{} // live connections by provider
}

// New returns an engine whose connects take delay.
func New(delay time.Duration) *Engine {
	return &Engine{delay: delay, down: map[string]bool{}, reject: map[string]bool{}, conns: map[string]map[*Conn]struct{}{}}
}

// Connect implements client.MediaEngine: it waits the engine's delay and
// connects, unless the provider is down (a ConnectionLost error) or rejects
// tokens (TokenRejected).
func (e *Engine) Connect(ctx context.Context, a client.Assignment, report func(client.MediaError)) (client.Connection, error) {
	e.connects.Add(1)
	if e.delay > 0 {
		t := time.NewTimer(e.delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("simulated connect to %s: %w", a.Provider.Name, ctx.Err())
		case <-t.C:
		}
	}
	name := a.Provider.Name
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.down[name] {
		return nil, client.MediaError{Kind: client.ConnectionLost, Err: ErrDown}
	}
	if e.reject[name] {
		return nil, client.MediaError{Kind: client.TokenRejected, Err: errors.New("simulated provider rejected the token")}
	}
	c := &Conn{e: e, provider: name, report: report, room: a.Room}
	c.lastMedia.Store(time.Now().UnixNano())
	if e.conns[name] == nil {
		e.conns[name] = map[*Conn]struct{}{}
	}
	e.conns[name][c] = struct{}{}
	return c, nil
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
	e.mu.Lock()
	var dropped []*Conn
	for c := range e.conns[provider] {
		dropped = append(dropped, c)
	}
	delete(e.conns, provider)
	e.mu.Unlock()
	for _, c := range dropped {
		c.dead.Store(true)
		c.report(client.MediaError{Kind: client.ConnectionLost, Err: errors.New("simulated connection lost")})
	}
	return len(dropped)
}

// Stall makes every connection on provider stop carrying media without
// reporting anything, as a hung provider does; only a watchdog notices.
func (e *Engine) Stall(provider string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	for c := range e.conns[provider] {
		c.stalled.Store(true)
	}
	return len(e.conns[provider])
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
// flows until the connection is dropped, stalled or disconnected.
type Conn struct {
	e         *Engine
	provider  string
	room      string
	report    func(client.MediaError)
	lastMedia atomic.Int64 // unix ns
	dead      atomic.Bool
	stalled   atomic.Bool
	closed    atomic.Bool
}

// Provider is the provider of the connection.
func (c *Conn) Provider() string { return c.provider }

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
		c.lastMedia.Store(time.Now().UnixNano())
	}
	return time.Unix(0, c.lastMedia.Load())
}

var (
	_ client.MediaEngine   = (*Engine)(nil)
	_ client.MediaActivity = (*Conn)(nil)
)
