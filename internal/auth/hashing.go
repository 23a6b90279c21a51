package auth

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Each Argon2id hash holds argonMemory (64 MiB) and two threads for about a
// tenth of a second or more. Without a bound, a burst of logins from a few
// dozen addresses (each within its own rate limit) made a server hash 64
// passwords at once: 4 GiB of memory, every core busy, and the API's other
// requests shed while the logins held their slots. Hashing bounds that
// work per process.

// ErrBusy is what Hashing.Acquire returns when no hashing slot came free in
// time, or too many requests already wait for one.
var ErrBusy = errors.New("auth: password hashing busy")

// DefaultHashSlots is how many passwords a process hashes at once by
// default: one per two cores (each hash runs two lanes), from 1 to 4, so
// at most 256 MiB of hashing memory.
func DefaultHashSlots() int { return min(max(runtime.GOMAXPROCS(0)/2, 1), 4) }

// Defaults of NewHashing.
const (
	// DefaultHashWait is how long a request waits for a hashing slot.
	DefaultHashWait = 2 * time.Second
	// hashQueuePerSlot bounds the requests that wait, per slot; those
	// beyond are refused at once rather than holding a request slot of the
	// server for the whole wait.
	hashQueuePerSlot = 4
)

// Hashing bounds the password hashes (HashPassword, VerifyPassword) that
// run at once. The zero value is not usable; use NewHashing.
type Hashing struct {
	slots    chan struct{}
	wait     time.Duration
	maxQueue int64
	queued   atomic.Int64
}

// NewHashing returns a bound of slots hashes at once (DefaultHashSlots when
// slots ≤ 0), each request waiting at most wait for one (DefaultHashWait
// when wait ≤ 0), and at most 4 waiting per slot.
func NewHashing(slots int, wait time.Duration) *Hashing {
	if slots <= 0 {
		slots = DefaultHashSlots()
	}
	if wait <= 0 {
		wait = DefaultHashWait
	}
	return &Hashing{slots: make(chan struct{}, slots), wait: wait, maxQueue: int64(slots * hashQueuePerSlot)}
}

// Acquire takes a hashing slot, given back by the first call of release.
// It returns ErrBusy when no slot came free within the wait or the line is
// full, and ctx's error when ctx ended first.
func (h *Hashing) Acquire(ctx context.Context) (release func(), err error) {
	release = sync.OnceFunc(func() { <-h.slots })
	select {
	case h.slots <- struct{}{}:
		return release, nil
	default:
	}
	if h.queued.Add(1) > h.maxQueue {
		h.queued.Add(-1)
		return nil, ErrBusy
	}
	defer h.queued.Add(-1)
	t := time.NewTimer(h.wait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return release, nil
	case <-t.C:
		return nil, ErrBusy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// InUse returns how many slots are taken and how many requests wait for one.
func (h *Hashing) InUse() (hashing, waiting int) {
	return len(h.slots), int(h.queued.Load())
}
