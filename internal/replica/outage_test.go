package replica

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

// flakyLog is an event log that fails, as a database out of reach does,
// while down is set; failed signals every refused append.
type flakyLog struct {
	EventLog
	down   atomic.Bool
	failed chan struct{}
}

func (f *flakyLog) AppendEvents(ctx context.Context, replica string, evs []switchboard.Event) ([]uint64, error) {
	if f.down.Load() {
		notify(f.failed)
		return nil, errBroken
	}
	return f.EventLog.AppendEvents(ctx, replica, evs)
}

func (f *flakyLog) EventsAfter(ctx context.Context, after uint64, limit int) ([]switchboard.Event, error) {
	if f.down.Load() {
		return nil, errBroken
	}
	return f.EventLog.EventsAfter(ctx, after, limit)
}

func (f *flakyLog) PruneEvents(ctx context.Context, before time.Time) error {
	if f.down.Load() {
		return errBroken
	}
	return f.EventLog.PruneEvents(ctx, before)
}

// Events published while the database is out of reach are held and reach
// every replica, in order and with the same ids, once it is back.
func TestEventsHeldWhileTheLogIsDown(t *testing.T) {
	st := openStore(t)
	testutil.LeakCheck(t)
	ctx, wg := running(t)

	flaky := &flakyLog{EventLog: st, failed: make(chan struct{}, 1)}
	positioned := make(chan struct{}, 2)
	const n = 25
	busA, busB := &testutil.Bus{}, &testutil.Bus{}
	optsA, deliveredA := applied(n)
	optsB, deliveredB := applied(n)
	a := NewEvents(signalling{EventLog: flaky, positioned: positioned}, busA, optsA)
	b := NewEvents(signalling{EventLog: st, positioned: positioned}, busB, optsB)
	wg.Go(func() { a.Run(ctx) })
	wg.Go(func() { b.Run(ctx) })
	receive(t, positioned, "the starting positions", 10*time.Second)
	receive(t, positioned, "the starting positions", 10*time.Second)

	flaky.down.Store(true)
	for i := range n {
		a.Publish(switchboard.Event{Type: "provider.updated", Audience: switchboard.RoleAdmin, Data: map[string]int{"i": i}})
	}
	receive(t, flaky.failed, "a refused append", 10*time.Second)
	if got := busA.Events(); len(got) != 0 {
		t.Fatalf("%d events published locally only while the log was down; want them held", len(got))
	}
	flaky.down.Store(false)
	back := time.Now()
	for range n {
		receive(t, deliveredB, "the held events on the other replica", 10*time.Second)
	}
	t.Logf("%d events held while the log was down reached the other replica %s after it came back", n, time.Since(back).Round(time.Millisecond))
	for range n {
		receive(t, deliveredA, "the held events on the publishing replica", 10*time.Second)
	}
	gotA, gotB := busA.Events(), busB.Events()
	if len(gotA) != n || len(gotB) != n {
		t.Fatalf("replicas got %d and %d events, want %d each", len(gotA), len(gotB), n)
	}
	for i := range n {
		var d struct{ I int }
		if err := json.Unmarshal(gotB[i].Data.(json.RawMessage), &d); err != nil || d.I != i {
			t.Errorf("event %d on the other replica has data %s, want i=%d: order lost", i, gotB[i].Data, i)
		}
		if gotA[i].ID != gotB[i].ID || gotA[i].ID == 0 {
			t.Errorf("event %d has id %d on one replica and %d on the other", i, gotA[i].ID, gotB[i].ID)
		}
		if i > 0 && gotB[i].ID <= gotB[i-1].ID {
			t.Errorf("ids not increasing: %d then %d", gotB[i-1].ID, gotB[i].ID)
		}
	}
}

// SetLease takes effect at the next renewal: the lease in the store then
// lasts the new TTL, and the renewal period is a third of it.
func TestLeaderSetLease(t *testing.T) {
	st := openStore(t)
	testutil.LeakCheck(t)
	l := NewLeader(st, LeaderOptions{TTL: 3 * time.Second, RetryInterval: 200 * time.Millisecond})
	if ttl, renew := l.Lease(); ttl != 3*time.Second || renew != time.Second {
		t.Fatalf("Lease() = %s, %s; want 3s renewed every 1s", ttl, renew)
	}
	campaigned := campaigns(l)
	ctx, wg := running(t)
	wg.Go(func() { l.Run(ctx) })
	awaitCampaign(t, campaigned, "leadership", 10*time.Second, func(c campaign) bool { return c.leading })
	l.SetLease(30 * time.Second)
	if ttl, renew := l.Lease(); ttl != 30*time.Second || renew != 10*time.Second {
		t.Fatalf("Lease() after SetLease = %s, %s; want 30s renewed every 10s", ttl, renew)
	}
	// The renewal already scheduled (within 1s) takes the new lease.
	awaitCampaign(t, campaigned, "a renewal", 10*time.Second, func(c campaign) bool { return c.held })
	_, expires, err := st.Lease(context.Background(), "scheduler")
	if err != nil {
		t.Fatal(err)
	}
	if left := time.Until(expires); left < 25*time.Second {
		t.Errorf("the lease expires in %s after a renewal with a 30s lease", left)
	}
}

func TestLeaderDefaults(t *testing.T) {
	l := NewLeader(nil, LeaderOptions{})
	if ttl, renew := l.Lease(); ttl != 10*time.Second || renew != ttl/3 {
		t.Errorf("default lease %s renewed every %s; want 10s, every third of it", ttl, renew)
	}
}
