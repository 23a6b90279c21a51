package replica

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/pgtest"
	"github.com/switchboardhq/switchboard/internal/secrets"
	"github.com/switchboardhq/switchboard/internal/sqlstore"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

// openStore opens a store on a PostgreSQL schema of the test's own.
func openStore(t *testing.T) *sqlstore.Store {
	t.Helper()
	key := make([]byte, secrets.KeySize)
	rand.Read(key)
	sealer, err := secrets.NewAESGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(context.Background(), pgtest.DSN(t), sealer, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// running returns a context that ends, and a group whose goroutines are
// waited for, when the test ends.
func running(t *testing.T) (context.Context, *sync.WaitGroup) {
	ctx, cancel := context.WithCancel(context.Background())
	wg := &sync.WaitGroup{}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return ctx, wg
}

// receive waits up to within for what to arrive on ch.
func receive[T any](t *testing.T, ch <-chan T, what string, within time.Duration) T {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case v := <-ch:
		return v
	case <-timer.C:
		t.Fatalf("timed out after %s waiting for %s", within, what)
		panic("unreachable")
	}
}

// signalling is an event log that tells the test when a replica has read
// where the log starts for it and when its LISTEN connection is up.
type signalling struct {
	EventLog
	positioned, listening chan<- struct{}
	// noListen makes every LISTEN connection fail.
	noListen bool
}

func (s signalling) LastEventID(ctx context.Context) (uint64, error) {
	id, err := s.EventLog.LastEventID(ctx)
	if err == nil {
		notify(s.positioned)
	}
	return id, err
}

func (s signalling) ListenEvents(ctx context.Context, listening func(), notified func([]switchboard.Event)) error {
	if s.noListen {
		return errors.New("no LISTEN connection")
	}
	return s.EventLog.ListenEvents(ctx, func() {
		listening()
		notify(s.listening)
	}, notified)
}

// notify sends on ch, if there is room: its buffer holds as many signals as
// the test waits for, and later ones (a reconnection) must not block.
func notify[T any](ch chan<- T) {
	var zero T
	select {
	case ch <- zero:
	default:
	}
}

// applied returns EventsOptions whose OnEvent signals every event delivered
// to the local bus on the returned channel, up to n of them (the bus
// has them all).
func applied(n int) (EventsOptions, <-chan struct{}) {
	ch := make(chan struct{}, n)
	return EventsOptions{OnEvent: func(switchboard.Event) { notify(ch) }}, ch
}

func TestEventsAcrossReplicas(t *testing.T) {
	st := openStore(t)
	testutil.LeakCheck(t)
	ctx, wg := running(t)

	const n = 30
	listening := make(chan struct{}, 3)
	buses := make([]*testutil.Bus, 3)
	evs := make([]*Events, 3)
	delivered := make([]<-chan struct{}, 3)
	for i := range evs {
		buses[i] = &testutil.Bus{}
		var opts EventsOptions
		opts, delivered[i] = applied(n)
		evs[i] = NewEvents(signalling{EventLog: st, listening: listening}, buses[i], opts)
		wg.Go(func() { evs[i].Run(ctx) })
	}
	for range evs {
		receive(t, listening, "listeners", 10*time.Second)
	}
	for i := range n {
		evs[i%3].Publish(switchboard.Event{Type: "provider.updated", Audience: switchboard.RoleAdmin, Data: map[string]int{"i": i}})
	}
	for i, b := range buses {
		for range n {
			receive(t, delivered[i], "events on every replica", 10*time.Second)
		}
		got := b.Events()
		if len(got) != n {
			t.Fatalf("replica %d got %d events, want %d", i, len(got), n)
		}
		for j := 1; j < n; j++ {
			if got[j].ID <= got[j-1].ID {
				t.Fatalf("replica %d: ids not increasing: %d then %d", i, got[j-1].ID, got[j].ID)
			}
		}
		if i > 0 {
			for j := range got {
				if got[j].ID != buses[0].Events()[j].ID {
					t.Fatalf("replica %d event %d has id %d, replica 0 has %d", i, j, got[j].ID, buses[0].Events()[j].ID)
				}
			}
		}
	}
}

// An event appended after the position a replica read at its start, while
// it has not started reading (a server that serves its first event stream
// before its runners are scheduled), is delivered once it reads; one
// appended before is not.
func TestEventsBeginAfterThePosition(t *testing.T) {
	st := openStore(t)
	testutil.LeakCheck(t)
	ctx, wg := running(t)
	if _, err := st.AppendEvent(ctx, "other", switchboard.Event{Type: "provider.created", Data: map[string]string{"n": "before"}}); err != nil {
		t.Fatal(err)
	}
	bus := &testutil.Bus{}
	opts, delivered := applied(2)
	ev := NewEvents(st, bus, opts)
	from, err := LogPosition(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev.BeginAfter(from)
	id, err := st.AppendEvent(ctx, "other", switchboard.Event{Type: "provider.updated", Data: map[string]string{"n": "after"}})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() { ev.Run(ctx) })
	receive(t, delivered, "the event appended after the position", 10*time.Second)
	got := bus.Events()
	if len(got) != 1 || got[0].ID != id || got[0].Type != "provider.updated" {
		t.Fatalf("delivered %+v, want only the event %d appended after the position", got, id)
	}
}

// Without LISTEN (a connection that cannot be made) the log is polled.
func TestEventsPollingFallback(t *testing.T) {
	st := openStore(t)
	testutil.LeakCheck(t)
	ctx, wg := running(t)
	positioned := make(chan struct{}, 2)
	log := signalling{EventLog: st, positioned: positioned, noListen: true}
	a, b := &testutil.Bus{}, &testutil.Bus{}
	opts, delivered := applied(1)
	ea := NewEvents(log, a, EventsOptions{})
	eb := NewEvents(log, b, opts)
	wg.Go(func() { ea.Run(ctx) })
	wg.Go(func() { eb.Run(ctx) })
	// Both read their starting position: an event published before would be
	// history to them.
	receive(t, positioned, "the starting positions", 5*time.Second)
	receive(t, positioned, "the starting positions", 5*time.Second)
	start := time.Now()
	ea.Publish(switchboard.Event{Type: "provider.status", Data: "x"})
	receive(t, delivered, "the polled event", 5*time.Second)
	t.Logf("delivered by polling in %s", time.Since(start))
	if got := b.Events(); len(got) != 1 {
		t.Errorf("replica b got %d events, want 1", len(got))
	}
	if ea.Listening() {
		t.Error("Listening() = true without a LISTEN connection")
	}
}

// campaigns gives every leader of ls the channel on which they report each
// attempt to take or renew the lease.
func campaigns(ls ...*Leader) <-chan campaign {
	ch := make(chan campaign)
	for _, l := range ls {
		l.campaigned = ch
	}
	return ch
}

// awaitCampaign receives campaigns from ch until done returns true for one,
// and returns it.
func awaitCampaign(t *testing.T, ch <-chan campaign, what string, within time.Duration, done func(campaign) bool) campaign {
	t.Helper()
	timer := time.NewTimer(within)
	defer timer.Stop()
	for {
		select {
		case c := <-ch:
			if done(c) {
				return c
			}
		case <-timer.C:
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
	}
}

func TestLeaderOneAtATime(t *testing.T) {
	st := openStore(t)
	testutil.LeakCheck(t)
	opts := LeaderOptions{TTL: 3 * time.Second, RenewInterval: time.Second, RetryInterval: 200 * time.Millisecond}
	ctx, wg := running(t)
	var mu sync.Mutex
	maxConcurrent, concurrent := 0, 0
	leaders := make([]*Leader, 3)
	cancels := map[string]context.CancelFunc{}
	for i := range leaders {
		leaders[i] = NewLeader(st, opts)
	}
	campaigned := campaigns(leaders...)
	for _, l := range leaders {
		nctx, ncancel := context.WithCancel(ctx)
		cancels[l.ID()] = ncancel
		wg.Go(func() { l.Run(nctx) })
		wg.Go(func() {
			l.RunWhileLeader(nctx, func(ctx context.Context) error {
				mu.Lock()
				concurrent++
				maxConcurrent = max(maxConcurrent, concurrent)
				mu.Unlock()
				<-ctx.Done()
				mu.Lock()
				concurrent--
				mu.Unlock()
				return nil
			})
		})
	}
	first := awaitCampaign(t, campaigned, "a leader", 10*time.Second, func(c campaign) bool { return c.leading }).id
	// A graceful stop hands over at once.
	cancels[first]()
	start := time.Now()
	second := awaitCampaign(t, campaigned, "a new leader", 10*time.Second, func(c campaign) bool {
		return c.leading && c.id != first
	}).id
	t.Logf("handover after a graceful stop took %s", time.Since(start))
	// The new leader renews its lease twice, and meanwhile the remaining
	// follower is refused it at every attempt.
	renewals, refusals := 0, 0
	awaitCampaign(t, campaigned, "two renewals and two refusals", 10*time.Second, func(c campaign) bool {
		switch {
		case c.id == first:
		case c.id == second && c.held:
			renewals++
		case c.id != second && c.leading:
			t.Errorf("%s leads while %s does", c.id, second)
		case c.id != second && c.err == nil:
			refusals++
		}
		return renewals >= 2 && refusals >= 2
	})
	mu.Lock()
	defer mu.Unlock()
	if maxConcurrent != 1 {
		t.Errorf("%d replicas ran leader work at once, want 1", maxConcurrent)
	}
}

// breakable leases fail once broken, as a database out of reach does.
type breakable struct {
	Leases
	broken atomic.Bool
}

var errBroken = errors.New("the database is out of reach")

func (b *breakable) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if b.broken.Load() {
		return false, errBroken
	}
	return b.Leases.AcquireLease(ctx, name, holder, ttl)
}

func (b *breakable) ReleaseLease(ctx context.Context, name, holder string) error {
	if b.broken.Load() {
		return errBroken
	}
	return b.Leases.ReleaseLease(ctx, name, holder)
}

// A leader that cannot reach the database steps down before its lease ends.
func TestLeaderStepsDownWhenRenewalFails(t *testing.T) {
	st := openStore(t)
	testutil.LeakCheck(t)
	own := &breakable{Leases: st}
	ttl := 3 * time.Second
	l := NewLeader(own, LeaderOptions{TTL: ttl, RenewInterval: time.Second, RetryInterval: 200 * time.Millisecond})
	campaigned := campaigns(l)
	ctx, wg := running(t)
	wg.Go(func() { l.Run(ctx) })
	awaitCampaign(t, campaigned, "leadership", 10*time.Second, func(c campaign) bool { return c.leading })
	own.broken.Store(true) // every renewal fails from now on
	lost := time.Now()
	awaitCampaign(t, campaigned, "stepping down", 2*ttl, func(c campaign) bool { return !c.leading })
	now := time.Now()
	_, expires, err := st.Lease(context.Background(), "scheduler")
	if err != nil {
		t.Fatal(err)
	}
	if !now.Before(expires) {
		t.Errorf("stepped down at %s, after the lease expired at %s", now, expires)
	}
	t.Logf("stepped down %s after losing the database", now.Sub(lost))
}

func TestSolo(t *testing.T) {
	ran := false
	if err := (Solo{}).RunWhileLeader(context.Background(), func(context.Context) error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("Solo ran=%v err=%v", ran, err)
	}
}

// TestEventsWrittenAtStop shows that events published before Run's context
// ends are in the log when Run returns: a server publishes the events of the
// requests it drains while it shuts down, and other replicas must see them.
func TestEventsWrittenAtStop(t *testing.T) {
	st := openStore(t)
	testutil.LeakCheck(t)
	local := &testutil.Bus{}
	ev := NewEvents(st, local, EventsOptions{ReplicaID: "stopping"})
	const n = 20
	for i := range n {
		ev.Publish(switchboard.Event{Type: "test.stop", At: time.Now(), Data: map[string]int{"i": i}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // stopped before it could write anything
	if err := ev.Run(ctx); err != nil {
		t.Fatal(err)
	}
	// The schema is the test's own: every event in the log is one of these.
	logged, err := st.EventsAfter(context.Background(), 0, 10*n)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(logged); got != n {
		t.Fatalf("%d events in the log after Run returned, want %d", got, n)
	}
}

// A sustained burst of events, faster than one transaction per event could
// append them, reaches the other replica whole and in order: what is queued
// is appended together, so the queue does not fill and no event stays local.
func TestEventsBurstReachesEveryReplica(t *testing.T) {
	st := openStore(t)
	testutil.LeakCheck(t)
	ctx, wg := running(t)

	const n = 10_000 // over 2 s: more than QueueSize
	listening := make(chan struct{}, 2)
	var counts [2]atomic.Int64
	done := make(chan struct{}, 2)
	buses := []*testutil.Bus{{}, {}}
	evs := make([]*Events, 2)
	for i := range evs {
		opts := EventsOptions{OnEvent: func(switchboard.Event) {
			if counts[i].Add(1) == n {
				done <- struct{}{}
			}
		}}
		evs[i] = NewEvents(signalling{EventLog: st, listening: listening}, buses[i], opts)
		wg.Go(func() { evs[i].Run(ctx) })
	}
	for range evs {
		receive(t, listening, "listeners", 10*time.Second)
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for i := 0; i < n; i += 5 {
		<-tick.C
		for j := i; j < i+5; j++ {
			evs[0].Publish(switchboard.Event{Type: "stream.started", Audience: switchboard.RoleAdmin, Data: map[string]int{"i": j}})
		}
	}
	for range evs {
		receive(t, done, "every event on both replicas", 30*time.Second)
	}
	a, b := buses[0].Events(), buses[1].Events()
	if len(a) != n || len(b) != n {
		t.Fatalf("replicas got %d and %d events, want %d each", len(a), len(b), n)
	}
	for j := range b {
		var d struct{ I int }
		if err := json.Unmarshal(b[j].Data.(json.RawMessage), &d); err != nil || d.I != j {
			t.Fatalf("event %d on the other replica is %s (%v)", j, b[j].Data, err)
		}
		if b[j].ID != a[j].ID || (j > 0 && b[j].ID <= b[j-1].ID) {
			t.Fatalf("event %d: ids %d here, %d on the publisher", j, b[j].ID, a[j].ID)
		}
	}
}
