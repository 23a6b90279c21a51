package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/pgtest"
)

func TestPostgresLeases(t *testing.T) {
	s := mustOpen(t, pgtest.DSN(t), newSealer(t))
	ctx := context.Background()
	if !s.SupportsReplicas() {
		t.Fatal("SupportsReplicas() = false on PostgreSQL")
	}
	if _, _, err := s.Lease(ctx, "scheduler"); !switchboard.IsCode(err, switchboard.ENotFound) {
		t.Errorf("Lease before any holder: %v, want not found", err)
	}
	take := func(holder string, want bool) {
		t.Helper()
		held, err := s.AcquireLease(ctx, "scheduler", holder, time.Minute)
		if err != nil || held != want {
			t.Fatalf("AcquireLease(%s) = %v, %v; want %v", holder, held, err, want)
		}
	}
	take("a", true)
	take("b", false) // held by a, not expired
	take("a", true)  // renewed
	holder, expires, err := s.Lease(ctx, "scheduler")
	if err != nil || holder != "a" || time.Until(expires) < 50*time.Second {
		t.Fatalf("Lease = %s until %s, %v; want a for about a minute", holder, expires, err)
	}
	if err := s.ReleaseLease(ctx, "scheduler", "b"); err != nil { // not b's: no change
		t.Fatal(err)
	}
	take("b", false)
	if err := s.ReleaseLease(ctx, "scheduler", "a"); err != nil {
		t.Fatal(err)
	}
	take("b", true)
}

func TestPostgresEventLog(t *testing.T) {
	s := mustOpen(t, pgtest.DSN(t), newSealer(t))
	ctx := context.Background()
	if last, err := s.LastEventID(ctx); err != nil || last != 0 {
		t.Fatalf("LastEventID of an empty log = %d, %v", last, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	listening, notified := make(chan struct{}), make(chan struct{}, 10)
	stopped := make(chan error, 1)
	go func() {
		stopped <- s.ListenEvents(ctx, func() { close(listening) }, func([]switchboard.Event) { notified <- struct{}{} })
	}()
	<-listening

	at := time.Date(2025, 1, 31, 10, 0, 0, 0, time.UTC)
	var ids []uint64
	for i, typ := range []string{"provider.updated", "stream.started", "stream.ended"} {
		id, err := s.AppendEvent(ctx, "r1", switchboard.Event{ID: 99, Type: typ, At: at.Add(time.Duration(i) * time.Hour),
			Audience: switchboard.RoleAdmin, Owner: "token:t" + strconv.Itoa(i), Data: map[string]int{"i": i}})
		if err != nil {
			t.Fatalf("AppendEvent: %v", err)
		}
		if len(ids) > 0 && id <= ids[len(ids)-1] {
			t.Fatalf("ids %v then %d: not increasing", ids, id)
		}
		ids = append(ids, id)
		<-notified
	}
	if last, err := s.LastEventID(ctx); err != nil || last != ids[2] {
		t.Errorf("LastEventID = %d, %v; want %d", last, err, ids[2])
	}
	evs, err := s.EventsAfter(ctx, ids[0], 10)
	if err != nil || len(evs) != 2 {
		t.Fatalf("EventsAfter(%d) = %+v, %v; want 2 events", ids[0], evs, err)
	}
	e := evs[0]
	if e.ID != ids[1] || e.Type != "stream.started" || !e.At.Equal(at.Add(time.Hour)) || e.At.Location() != time.UTC ||
		e.Audience != switchboard.RoleAdmin || e.Owner != "token:t1" || string(e.Data.(json.RawMessage)) != `{"i":1}` {
		t.Errorf("event = %+v", e)
	}
	if evs, _ := s.EventsAfter(ctx, 0, 1); len(evs) != 1 || evs[0].ID != ids[0] {
		t.Errorf("EventsAfter(0, limit 1) = %+v", evs)
	}
	if err := s.PruneEvents(ctx, at.Add(90*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if evs, _ := s.EventsAfter(ctx, 0, 10); len(evs) != 1 || evs[0].ID != ids[2] {
		t.Errorf("after pruning: %+v, want the last event only", evs)
	}
	// An event appended late with an older time stays while a newer one is
	// before it; with none newer than the time, every event goes.
	late, err := s.AppendEvent(ctx, "r1", switchboard.Event{Type: "stream.ended", At: at, Data: map[string]int{}})
	if err != nil {
		t.Fatal(err)
	}
	<-notified
	if err := s.PruneEvents(ctx, at.Add(90*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if evs, _ := s.EventsAfter(ctx, 0, 10); len(evs) != 2 || evs[0].ID != ids[2] || evs[1].ID != late {
		t.Errorf("after pruning with a late event: %+v, want the last two", evs)
	}
	if err := s.PruneEvents(ctx, at.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if evs, _ := s.EventsAfter(ctx, 0, 10); len(evs) != 0 {
		t.Errorf("after pruning past the newest: %+v, want none", evs)
	}
	cancel()
	if err := <-stopped; !errors.Is(err, context.Canceled) {
		t.Errorf("ListenEvents after its context ended: %v", err)
	}
}

// A database on which earlier versions ran replicas has their tables, created
// outside the migrations: the migration that now creates them keeps them and
// what they hold.
func TestPostgresReplicaTablesExisted(t *testing.T) {
	dsn := pgtest.DSN(t)
	sealer := newSealer(t)
	ctx := context.Background()
	s := mustOpen(t, dsn, sealer)
	id, err := s.AppendEvent(ctx, "old", switchboard.Event{Type: "provider.created", Data: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AcquireLease(ctx, "scheduler", "old", time.Minute); err != nil {
		t.Fatal(err)
	}
	// As an earlier version left it: migrated up to 0004, with the tables.
	if _, err := s.w.ExecContext(ctx, `DELETE FROM schema_migrations WHERE version = 5`); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s = mustOpen(t, dsn, sealer)
	if evs, err := s.EventsAfter(ctx, 0, 10); err != nil || len(evs) != 1 || evs[0].ID != id {
		t.Errorf("events after the migration = %+v, %v; want the one appended before", evs, err)
	}
	if holder, _, err := s.Lease(ctx, "scheduler"); err != nil || holder != "old" {
		t.Errorf("lease after the migration = %q, %v; want old's", holder, err)
	}
	var n int
	if err := s.w.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = 5`).Scan(&n); err != nil || n != 1 {
		t.Errorf("migration 5 recorded %d times, %v", n, err)
	}
}

// SQLite serves one node: it has no leases and no event log.
func TestSQLiteHasNoReplicas(t *testing.T) {
	s := mustOpen(t, "sqlite::memory:", newSealer(t))
	ctx := context.Background()
	if s.SupportsReplicas() {
		t.Error("SupportsReplicas() = true on SQLite")
	}
	if _, err := s.AcquireLease(ctx, "scheduler", "a", time.Minute); !errors.Is(err, errNoReplicas) {
		t.Errorf("AcquireLease: %v, want %v", err, errNoReplicas)
	}
	if _, err := s.AppendEvent(ctx, "a", switchboard.Event{Type: "x"}); !errors.Is(err, errNoReplicas) {
		t.Errorf("AppendEvent: %v, want %v", err, errNoReplicas)
	}
}

func TestDSNKinds(t *testing.T) {
	for _, c := range []struct {
		dsn        string
		singleNode bool
		file       string
	}{
		{"sqlite:data/sb.db", true, "data/sb.db"},
		{"sqlite::memory:", true, ""},
		{"postgres://u@h/db", false, ""},
		{"postgresql://u@h/db", false, ""},
		{"mysql://u@h/db", false, ""},
	} {
		if got := SingleNode(c.dsn); got != c.singleNode {
			t.Errorf("SingleNode(%s) = %v", c.dsn, got)
		}
		if got, ok := SQLiteFile(c.dsn); got != c.file || ok != (c.file != "") {
			t.Errorf("SQLiteFile(%s) = %q, %v", c.dsn, got, ok)
		}
	}
}

// Batches appended together from several sessions each get consecutive ids
// in their own order (the lock holds the others off), the log reads them back
// in that order, and each batch is announced.
func TestPostgresAppendEventsBatches(t *testing.T) {
	s := mustOpen(t, pgtest.DSN(t), newSealer(t))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listening, notified := make(chan struct{}), make(chan struct{}, 100)
	stopped := make(chan error, 1)
	go func() {
		stopped <- s.ListenEvents(ctx, func() { close(listening) }, func([]switchboard.Event) { notified <- struct{}{} })
	}()
	<-listening

	const writers, batches, size = 4, 5, 40
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			for b := range batches {
				evs := make([]switchboard.Event, size)
				for i := range evs {
					evs[i] = switchboard.Event{Type: "stream.started", Audience: switchboard.RoleAdmin,
						Data: map[string]int{"w": w, "b": b, "i": i}}
				}
				ids, err := s.AppendEvents(ctx, "r"+strconv.Itoa(w), evs)
				if err == nil && len(ids) != size {
					err = fmt.Errorf("%d ids for %d events", len(ids), size)
				}
				for i := 1; err == nil && i < len(ids); i++ {
					if ids[i] != ids[i-1]+1 {
						err = fmt.Errorf("batch ids %v are not consecutive", ids)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	evs, err := s.EventsAfter(ctx, 0, writers*batches*size+1)
	if err != nil || len(evs) != writers*batches*size {
		t.Fatalf("EventsAfter = %d events, %v; want %d", len(evs), err, writers*batches*size)
	}
	type pos struct{ W, B, I int }
	for k := 0; k < len(evs); k += size {
		var first pos
		for i, e := range evs[k : k+size] {
			var p pos
			if err := json.Unmarshal(e.Data.(json.RawMessage), &p); err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first = p
			}
			if p.W != first.W || p.B != first.B || p.I != i {
				t.Fatalf("event %d of the log is %+v: batches interleaved or out of order", k+i, p)
			}
			if i > 0 && e.ID != evs[k+i-1].ID+1 {
				t.Fatalf("event %d of the log has id %d after %d", k+i, e.ID, evs[k+i-1].ID)
			}
		}
	}
	for range writers * batches {
		select {
		case <-notified:
		case <-time.After(10 * time.Second):
			t.Fatal("fewer announcements than batches")
		}
	}
	if ids, err := s.AppendEvents(ctx, "r", nil); err != nil || ids != nil {
		t.Errorf("AppendEvents of none = %v, %v", ids, err)
	}
	cancel()
	<-stopped
}
