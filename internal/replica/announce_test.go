package replica

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

// memLog is an event log in memory whose announcements the test makes: it
// appends nothing by itself, and counts the reads of the log.
type memLog struct {
	mu       sync.Mutex
	evs      []switchboard.Event
	reads    atomic.Int64
	notified chan func([]switchboard.Event)
}

func newMemLog() *memLog { return &memLog{notified: make(chan func([]switchboard.Event), 1)} }

// add puts events with the given ids in the log, as committed appends do.
func (m *memLog) add(ids ...uint64) []switchboard.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	var added []switchboard.Event
	for _, id := range ids {
		ev := switchboard.Event{ID: id, Type: "test", Data: json.RawMessage(`{}`)}
		m.evs = append(m.evs, ev)
		added = append(added, ev)
	}
	return added
}

func (m *memLog) AppendEvents(context.Context, string, []switchboard.Event) ([]uint64, error) {
	panic("not used")
}

func (m *memLog) EventsAfter(_ context.Context, after uint64, limit int) ([]switchboard.Event, error) {
	m.reads.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []switchboard.Event
	for _, ev := range m.evs {
		if ev.ID > after && len(out) < limit {
			out = append(out, ev)
		}
	}
	return out, nil
}

func (m *memLog) LastEventID(context.Context) (uint64, error)  { return 0, nil }
func (m *memLog) PruneEvents(context.Context, time.Time) error { return nil }

func (m *memLog) ListenEvents(ctx context.Context, listening func(), notified func([]switchboard.Event)) error {
	listening()
	m.notified <- notified
	<-ctx.Done()
	return ctx.Err()
}

// Events that announcements carry are delivered from them, in order and once,
// without reading the log, as long as their ids follow each other; on a gap,
// an announcement without events (an event too large, an earlier version's),
// the log is read, and what was delivered already is not delivered again.
func TestEventsDeliveredFromAnnouncements(t *testing.T) {
	testutil.LeakCheck(t)
	ctx, wg := running(t)
	m := newMemLog()
	bus := &testutil.Bus{}
	delivered := make(chan uint64, 100)
	ev := NewEvents(m, bus, EventsOptions{SafetyInterval: time.Hour, PollInterval: time.Hour,
		OnEvent: func(e switchboard.Event) { delivered <- e.ID }})
	wg.Go(func() { ev.Run(ctx) })
	announce := receive(t, m.notified, "the LISTEN connection", 5*time.Second)

	// The reads when the replica starts and when it starts listening.
	deadline := time.Now().Add(5 * time.Second)
	for m.reads.Load() < 1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	reads := m.reads.Load()
	expect := func(what string, ids ...uint64) {
		t.Helper()
		for _, want := range ids {
			if got := receive(t, delivered, what, 5*time.Second); got != want {
				t.Fatalf("%s: delivered %d, want %d", what, got, want)
			}
		}
	}
	readsNow := func(what string, want int64) {
		t.Helper()
		if got := m.reads.Load() - reads; got != want {
			t.Errorf("%s: %d reads of the log, want %d", what, got, want)
		}
		reads = m.reads.Load()
	}

	// Announced together, and in two announcements of one append (chunks).
	announce(m.add(1, 2, 3))
	announce(m.add(4, 5))
	announce(m.add(6))
	expect("announced events", 1, 2, 3, 4, 5, 6)
	readsNow("announced events", 0)

	// An announcement seen twice, or a part of it, delivers nothing twice.
	announce(m.evs[4:6])
	announce(m.add(7))
	expect("after a repeated announcement", 7)
	readsNow("a repeated announcement", 0)

	// A gap: 8 was not announced (a lost notification). The log has it.
	m.add(8)
	announce(m.add(9))
	expect("events across a gap", 8, 9)
	readsNow("a gap", 1)
	announce(m.evs[7:9]) // the announcement of 9, late: already delivered
	announce(m.add(10))
	expect("after the gap", 10)
	readsNow("after the gap", 0)

	// An id that no append will commit (an append that failed): 11 is
	// missing for good, and the log read finds 12.
	announce(m.add(12))
	expect("across a missing id", 12)
	readsNow("a missing id", 1)

	// An event announced by id only (too large for a notification).
	m.add(13)
	announce(nil)
	expect("an event announced by id only", 13)
	readsNow("an event announced by id only", 1)
	announce(m.add(14))
	expect("after an event announced by id only", 14)
	readsNow("after an event announced by id only", 0)

	select {
	case id := <-delivered:
		t.Fatalf("event %d delivered again", id)
	case <-time.After(50 * time.Millisecond):
	}
	var ids []uint64
	for _, e := range bus.Events() {
		ids = append(ids, e.ID)
	}
	if want := []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13, 14}; !slices.Equal(ids, want) {
		t.Fatalf("bus got %v, want %v", ids, want)
	}
}

// countingLog counts the reads of a log.
type countingLog struct {
	EventLog
	reads atomic.Int64
}

func (c *countingLog) EventsAfter(ctx context.Context, after uint64, limit int) ([]switchboard.Event, error) {
	c.reads.Add(1)
	return c.EventLog.EventsAfter(ctx, after, limit)
}

// On PostgreSQL, events reach the other replica from the announcements,
// without reading the log, but for an event too large for an announcement;
// and appends to another schema's log wake neither replica.
func TestEventsAnnouncedOnPostgres(t *testing.T) {
	st, other := openStore(t), openStore(t)
	testutil.LeakCheck(t)
	ctx, wg := running(t)
	listening := make(chan struct{}, 2)
	logs := []*countingLog{{EventLog: st}, {EventLog: st}}
	buses := []*testutil.Bus{{}, {}}
	delivered := make(chan switchboard.Event, 100)
	evs := make([]*Events, 2)
	for i := range evs {
		opts := EventsOptions{SafetyInterval: time.Hour}
		if i == 1 {
			opts.OnEvent = func(e switchboard.Event) { delivered <- e }
		}
		evs[i] = NewEvents(signalling{EventLog: logs[i], listening: listening}, buses[i], opts)
		wg.Go(func() { evs[i].Run(ctx) })
	}
	for range evs {
		receive(t, listening, "listeners", 10*time.Second)
	}
	time.Sleep(100 * time.Millisecond) // the reads of the log at start
	reads := logs[1].reads.Load()

	const n = 50
	for i := range n {
		evs[0].Publish(switchboard.Event{Type: "provider.updated", Data: map[string]int{"i": i}})
	}
	for i := range n {
		e := receive(t, delivered, "announced events", 10*time.Second)
		var d struct{ I int }
		if err := json.Unmarshal(e.Data.(json.RawMessage), &d); err != nil || d.I != i {
			t.Fatalf("event %d delivered as %s (%v)", i, e.Data, err)
		}
	}
	if got := logs[1].reads.Load() - reads; got != 0 {
		t.Errorf("%d reads of the log for announced events, want 0", got)
	}

	// Appends to another schema: no announcement reaches these replicas.
	for i := range 5 {
		if _, err := other.AppendEvent(ctx, "elsewhere", switchboard.Event{Type: "other.schema", Data: i}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond)
	if got := logs[1].reads.Load() - reads; got != 0 {
		t.Errorf("%d reads of the log after appends to another schema, want 0", got)
	}

	// Too large for an announcement: announced by id, read from the log.
	evs[0].Publish(switchboard.Event{Type: "large", Data: strings.Repeat("x", 10_000)})
	if e := receive(t, delivered, "the large event", 10*time.Second); e.Type != "large" || len(e.Data.(json.RawMessage)) != 10_002 {
		t.Fatalf("large event delivered as %s of %d bytes", e.Type, len(e.Data.(json.RawMessage)))
	}
	if got := logs[1].reads.Load() - reads; got != 1 {
		t.Errorf("%d reads of the log for an event announced by id, want 1", got)
	}
	// The publisher receives its own large event the same way.
	for deadline := time.Now().Add(10 * time.Second); len(buses[0].Events()) < n+1 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if a, b := buses[0].Events(), buses[1].Events(); len(a) != n+1 || len(b) != n+1 {
		t.Fatalf("replicas got %d and %d events, want %d", len(a), len(b), n+1)
	} else {
		for i := range a {
			if a[i].ID != b[i].ID {
				t.Fatalf("event %d: id %d on one replica, %d on the other", i, a[i].ID, b[i].ID)
			}
		}
	}
}
