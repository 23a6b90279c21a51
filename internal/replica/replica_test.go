package replica

import (
	"context"
	"database/sql"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/pgtest"
)

func openDB(t *testing.T) (*sql.DB, string) {
	t.Helper()
	dsn := pgtest.DSN(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := EnsureSchema(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return db, dsn
}

// checkGoroutines fails t when goroutines started during the test outlive it.
func checkGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		for range 100 {
			if runtime.NumGoroutine() <= before {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("goroutines: %d before, %d after", before, runtime.NumGoroutine())
	})
}

// busFunc records published events.
type recorder struct {
	mu  sync.Mutex
	evs []switchboard.Event
}

func (r *recorder) Publish(e switchboard.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, e)
}

func (r *recorder) events() []switchboard.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]switchboard.Event(nil), r.evs...)
}

func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEventsAcrossReplicas(t *testing.T) {
	db, dsn := openDB(t)
	checkGoroutines(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })

	buses := make([]*recorder, 3)
	evs := make([]*Events, 3)
	for i := range evs {
		buses[i] = &recorder{}
		evs[i] = NewEvents(db, buses[i], EventsOptions{DSN: dsn})
		wg.Go(func() { evs[i].Run(ctx) })
	}
	waitFor(t, "listeners", 10*time.Second, func() bool {
		return evs[0].Listening() && evs[1].Listening() && evs[2].Listening()
	})
	const n = 30
	for i := range n {
		evs[i%3].Publish(switchboard.Event{Type: "provider.updated", Audience: switchboard.RoleAdmin, Data: map[string]int{"i": i}})
	}
	for i, b := range buses {
		waitFor(t, "events on every replica", 10*time.Second, func() bool { return len(b.events()) >= n })
		got := b.events()
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
				if got[j].ID != buses[0].events()[j].ID {
					t.Fatalf("replica %d event %d has id %d, replica 0 has %d", i, j, got[j].ID, buses[0].events()[j].ID)
				}
			}
		}
	}
}

// Without LISTEN (a connection that cannot be made) the log is polled.
func TestEventsPollingFallback(t *testing.T) {
	db, _ := openDB(t)
	checkGoroutines(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	a, b := &recorder{}, &recorder{}
	ea := NewEvents(db, a, EventsOptions{DSN: "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"})
	eb := NewEvents(db, b, EventsOptions{DSN: "postgres://nobody@127.0.0.1:1/none?connect_timeout=1"})
	wg.Go(func() { ea.Run(ctx) })
	wg.Go(func() { eb.Run(ctx) })
	time.Sleep(200 * time.Millisecond) // let both read their starting position
	start := time.Now()
	ea.Publish(switchboard.Event{Type: "provider.status", Data: "x"})
	waitFor(t, "the polled event", 5*time.Second, func() bool { return len(b.events()) == 1 })
	t.Logf("delivered by polling in %s", time.Since(start))
	if ea.Listening() {
		t.Error("Listening() = true without a LISTEN connection")
	}
}

func TestLeaderOneAtATime(t *testing.T) {
	db, _ := openDB(t)
	checkGoroutines(t)
	opts := LeaderOptions{TTL: 3 * time.Second, RenewInterval: time.Second, RetryInterval: 200 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	type node struct {
		l      *Leader
		cancel context.CancelFunc
	}
	var running sync.Map // which nodes run work now
	var mu sync.Mutex
	maxConcurrent, concurrent := 0, 0
	nodes := make([]node, 3)
	for i := range nodes {
		nctx, ncancel := context.WithCancel(ctx)
		o := opts
		l := NewLeader(db, o)
		nodes[i] = node{l, ncancel}
		wg.Go(func() { l.Run(nctx) })
		wg.Go(func() {
			l.RunWhileLeader(nctx, func(ctx context.Context) error {
				mu.Lock()
				concurrent++
				maxConcurrent = max(maxConcurrent, concurrent)
				mu.Unlock()
				running.Store(i, true)
				<-ctx.Done()
				running.Delete(i)
				mu.Lock()
				concurrent--
				mu.Unlock()
				return nil
			})
		})
	}
	leader := func() int {
		for i, n := range nodes {
			if n.l.IsLeader() {
				return i
			}
		}
		return -1
	}
	waitFor(t, "a leader", 10*time.Second, func() bool { return leader() >= 0 })
	first := leader()
	// A graceful stop hands over at once.
	nodes[first].cancel()
	start := time.Now()
	waitFor(t, "a new leader", 10*time.Second, func() bool { l := leader(); return l >= 0 && l != first })
	t.Logf("handover after a graceful stop took %s", time.Since(start))
	time.Sleep(2 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	if maxConcurrent != 1 {
		t.Errorf("%d replicas ran leader work at once, want 1", maxConcurrent)
	}
}

// A leader that cannot reach the database steps down before its lease ends.
func TestLeaderStepsDownWhenRenewalFails(t *testing.T) {
	db, dsn := openDB(t)
	checkGoroutines(t)
	own, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	ttl := 3 * time.Second
	l := NewLeader(own, LeaderOptions{TTL: ttl, RenewInterval: time.Second, RetryInterval: 200 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { l.Run(ctx) })
	defer func() { cancel(); wg.Wait() }()
	waitFor(t, "leadership", 10*time.Second, l.IsLeader)
	own.Close() // every renewal fails from now on
	lost := time.Now()
	waitFor(t, "stepping down", 2*ttl, func() bool { return !l.IsLeader() })
	var expires time.Time
	if err := db.QueryRow(`SELECT expires_at FROM switchboard_leases WHERE name = 'scheduler'`).Scan(&expires); err != nil {
		t.Fatal(err)
	}
	if now := time.Now(); !now.Before(expires) {
		t.Errorf("stepped down at %s, after the lease expired at %s", now, expires)
	}
	t.Logf("stepped down %s after losing the database", time.Since(lost))
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
	db, dsn := openDB(t)
	checkGoroutines(t)
	local := &recorder{}
	ev := NewEvents(db, local, EventsOptions{DSN: dsn, ReplicaID: "stopping"})
	const n = 20
	for i := range n {
		ev.Publish(switchboard.Event{Type: "test.stop", At: time.Now(), Data: map[string]int{"i": i}})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // stopped before it could write anything
	if err := ev.Run(ctx); err != nil {
		t.Fatal(err)
	}
	var got int
	if err := db.QueryRow(`SELECT COUNT(*) FROM switchboard_events WHERE replica = 'stopping'`).Scan(&got); err != nil {
		t.Fatal(err)
	}
	if got != n {
		t.Fatalf("%d events in the log after Run returned, want %d", got, n)
	}
}
