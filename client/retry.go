package client

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"
)

// ErrRetryBudget is returned (wrapped) when an attempt was not made because
// the Client's retry budget was spent: too many retries were already in flight
// for the streams it runs.
var ErrRetryBudget = errors.New("client: retry budget exhausted")

// maxBackoff caps every exponential backoff of the SDK.
const maxBackoff = 30 * time.Second

// backoff returns the delay before retry n (1 for the first retry): "full
// jitter", uniform in [0, min(maxBackoff, base·2^(n-1))), so that clients that
// failed together do not retry together.
func backoff(base time.Duration, n int) time.Duration {
	if base <= 0 {
		base = 100 * time.Millisecond
	}
	ceil := base
	for i := 1; i < n && ceil < maxBackoff; i++ {
		ceil *= 2
	}
	ceil = min(ceil, maxBackoff)
	return time.Duration(rand.Int64N(int64(ceil)) + 1)
}

// retryDelay is the delay before retry n after err: the jittered backoff, or
// the server's Retry-After when it asks for longer (with up to half of it
// again as jitter, so that the clients it shed do not all come back at once).
func retryDelay(err error, base time.Duration, n int) time.Duration {
	d := backoff(base, n)
	if ra := retryAfterOf(err); ra > d {
		d = ra + time.Duration(rand.Int64N(int64(ra)/2+1))
	}
	return d
}

// sleep waits for d or until ctx ends, and reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// Defaults of the retry budget: Envoy's budget_percent 20 % with a minimum of 3
// concurrent retries.
const (
	defaultBudgetRatio = 0.2
	minBudgetRetries   = 3
)

// budget is the retry budget a Client shares among all its streams, after
// Envoy's retry budgets: the retries in flight may be at most ratio × the
// operations in flight (live streams and starts), and never fewer than min.
// Without it an outage of one provider turns into a retry storm on the backup.
type budget struct {
	mu       sync.Mutex
	ratio    float64 // guarded by mu
	min      int     // guarded by mu
	active   int     // guarded by mu: operations in flight
	retrying int     // guarded by mu: retries in flight
}

func newBudget() *budget { return &budget{ratio: defaultBudgetRatio, min: minBudgetRetries} }

// setRatio applies the ratio served by the control plane; a value outside
// (0, 1] keeps the default.
func (b *budget) setRatio(r float64) {
	if r <= 0 || r > 1 {
		r = defaultBudgetRatio
	}
	b.mu.Lock()
	b.ratio = r
	b.mu.Unlock()
}

// begin counts one operation in flight until the returned function is called.
func (b *budget) begin() (end func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.active++
	return b.release(&b.active)
}

// release returns a function that takes one off *n, under b.mu, the first
// time it is called.
func (b *budget) release(n *int) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			b.mu.Lock()
			(*n)--
			b.mu.Unlock()
		})
	}
}

// acquire takes a retry from the budget. When ok, release must be called once
// the retry has been made.
func (b *budget) acquire() (release func(), ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	limit := max(b.min, int(b.ratio*float64(b.active)))
	if b.retrying >= limit {
		return nil, false
	}
	b.retrying++
	return b.release(&b.retrying), true
}

// retrySlot is the budget slot held by the retry in progress, if any: a retry
// counts against the budget from its backoff to its outcome.
type retrySlot struct{ release func() }

// take frees the slot held and takes a new one from b; it reports whether b
// had one to give.
func (r *retrySlot) take(b *budget) bool {
	r.free()
	rel, ok := b.acquire()
	if ok {
		r.release = rel
	}
	return ok
}

// free gives the slot held back, if any.
func (r *retrySlot) free() {
	if r.release != nil {
		r.release()
		r.release = nil
	}
}
