package health

import (
	"context"
	"fmt"
	"time"

	"github.com/switchboardhq/switchboard"
)

// failureUpdateTimeout bounds one update of a provider's health for a batch of
// client-reported failures, which does not end with the request that runs it.
const failureUpdateTimeout = 10 * time.Second

// failureBatch is client-reported failures of one provider that share one
// update of its health.
type failureBatch struct {
	n       int       // failures; set while the batch is pending, guarded by Checker.fmu
	at      time.Time // the latest failure's time; likewise
	waiters int       // callers waiting for it to be written; likewise
	done    chan struct{}
	h       switchboard.Health // set before done is closed
	err     error
}

// failureState is a provider's batches: the one being written and the one
// gathering the failures reported meanwhile. Guarded by Checker.fmu.
type failureState struct {
	running *failureBatch
	next    *failureBatch
}

// ReportClientFailure records a failure that a client reported for the
// provider name at the given time: it counts toward the error rate (see
// ObserveClientFailure). It returns the provider's health after the failure so
// that the caller can decide, for example, to Check the provider now.
//
// When a provider fails, every stream on it reports at once. The failures
// reported while one update of the provider's health is being written are
// gathered and written together by the next, one update for all of them
// instead of one each (each reads and writes the same row): the first of
// them to find the provider's update done writes it, the others wait for it
// and return its outcome. The update runs on a context of its own, so that
// the request that runs it may end first. A caller whose context ends stops
// waiting, and its failure is written with the others of its batch; the last
// caller of a batch not written yet stays to write it, so that no failure is
// lost.
func (c *Checker) ReportClientFailure(ctx context.Context, name string, at time.Time) (switchboard.Health, error) {
	c.fmu.Lock()
	st := c.failing[name]
	if st == nil {
		st = &failureState{}
		c.failing[name] = st
	}
	b := st.next
	if b == nil {
		b = &failureBatch{done: make(chan struct{})}
		st.next = b
	}
	b.n++
	b.waiters++
	if at.After(b.at) {
		b.at = at
	}
	running := st.running
	if running == nil {
		st.running, st.next = b, nil
	}
	c.fmu.Unlock()
	if running == nil {
		c.writeFailures(ctx, name, st, b)
		return b.outcome()
	}
	canceled := ctx.Done()
	for {
		select {
		case <-b.done:
			return b.outcome()
		case <-running.done:
			// The update that was running is done: the first of b's callers
			// to see it writes b; the others wait for b.
			c.fmu.Lock()
			mine := st.running == nil && st.next == b
			if mine {
				st.running, st.next = b, nil
			}
			c.fmu.Unlock()
			if mine {
				c.writeFailures(ctx, name, st, b)
				return b.outcome()
			}
			running = b
		case <-canceled:
			c.fmu.Lock()
			last := st.next == b && b.waiters == 1 // b pending, and no one else to write it
			if !last {
				b.waiters--
			}
			c.fmu.Unlock()
			if !last {
				return switchboard.Health{}, fmt.Errorf("report client failure of %s: %w", name, context.Cause(ctx))
			}
			canceled = nil
		}
	}
}

// writeFailures writes the failures of b, the provider's running batch, in
// one update of its health.
func (c *Checker) writeFailures(ctx context.Context, name string, st *failureState, b *failureBatch) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), failureUpdateTimeout)
	defer cancel()
	n, at := b.n, b.at // b is no longer pending: nothing adds to it
	h, err := c.update(ctx, name, at, func(h switchboard.Health, p switchboard.Provider) switchboard.Health {
		for range n {
			h = ObserveClientFailure(h, at, p.HealthCheck, p.Enabled)
		}
		return h
	})
	if err != nil {
		err = fmt.Errorf("report client failure of %s: %w", name, err)
	}
	b.h, b.err = h, err
	c.fmu.Lock()
	st.running = nil
	if st.next == nil {
		delete(c.failing, name)
	}
	c.fmu.Unlock()
	close(b.done)
}

// outcome is the health after the batch's update, or its error.
func (b *failureBatch) outcome() (switchboard.Health, error) {
	if b.err != nil {
		return switchboard.Health{}, b.err
	}
	return b.h, nil
}
