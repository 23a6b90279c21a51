package testutil

import (
	"sync"
	"time"
)

// Clock is a settable switchboard.Clock, safe for concurrent use. A zero Clock
// tells the wall time, in UTC, until it is Set or Advanced; NewClock returns one
// fixed at a given time, which moves only when told to.
type Clock struct {
	mu  sync.Mutex
	now time.Time // guarded by mu; zero: the wall clock
}

// NewClock returns a Clock fixed at t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now returns the time the clock is set to, or the wall time in UTC when it is
// not set.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		return time.Now().UTC()
	}
	return c.now
}

// Set fixes the clock at t; the zero time returns it to the wall clock.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// Advance moves the clock d forward. A clock that tells the wall time is fixed
// at the wall time plus d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.now.IsZero() {
		c.now = time.Now().UTC()
	}
	c.now = c.now.Add(d)
}
