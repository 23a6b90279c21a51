package sqlstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/pgtest"
	"github.com/switchboardhq/switchboard/internal/storetest"
)

// testRecordHeartbeats: a batch moves the last heartbeat of each active
// stream forward, never back, and leaves ended and unknown streams alone.
func testRecordHeartbeats(t *testing.T, s *Store) {
	ctx := context.Background()
	if err := s.CreateProvider(ctx, storetest.AgoraProvider(t, "agora"), switchboard.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, id := range []string{"live1", "live2", "gone"} {
		st := switchboard.Stream{ID: id, Room: "room-" + id, UserID: "u", Role: switchboard.RolePublisher, Quality: switchboard.QualityHD,
			Provider: "agora", Status: switchboard.StreamActive, Owner: "o", StartedAt: at, LastHeartbeat: at}
		if _, _, err := s.StartStream(ctx, st, switchboard.TrailEntry{StreamID: id, At: at, Kind: switchboard.TrailAssign, Provider: "agora", Reason: "test"}, 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.EndStream(ctx, "gone", at.Add(time.Second), switchboard.EndClient); err != nil {
		t.Fatal(err)
	}
	later := at.Add(time.Minute)
	if err := s.RecordHeartbeats(ctx, map[string]time.Time{"live1": later, "live2": at.Add(-time.Hour), "gone": later, "nope": later}); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]time.Time{"live1": later, "live2": at, "gone": at} {
		got, err := s.GetStream(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !got.LastHeartbeat.Equal(want) {
			t.Errorf("%s: last heartbeat %v, want %v", id, got.LastHeartbeat, want)
		}
	}
	if err := s.RecordHeartbeats(ctx, nil); err != nil {
		t.Errorf("empty batch: %v", err)
	}
}

func TestRecordHeartbeats(t *testing.T) {
	dsn, _ := tempDSN(t)
	testRecordHeartbeats(t, mustOpen(t, dsn, newSealer(t)))
}

func TestPostgresRecordHeartbeats(t *testing.T) {
	testRecordHeartbeats(t, mustOpen(t, pgtest.DSN(t), newSealer(t)))
}

// TestPostgresRecordHeartbeatsTogether: replicas flush their heartbeats at
// the same time, and a stream's heartbeats reach several of them (a load
// balancer spreads an SDK's requests): their batches, each one transaction,
// update the same rows. Taken in whatever order, two batches wait for each
// other's row locks, and PostgreSQL ends one as a deadlock; the batches must
// take the rows in one order.
func TestPostgresRecordHeartbeatsTogether(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	stores := []*Store{mustOpen(t, dsn, newSealer(t)), mustOpen(t, dsn, newSealer(t))}
	if err := stores[0].CreateProvider(ctx, storetest.AgoraProvider(t, "agora"), switchboard.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	var ids []string
	for i := range 200 {
		id := fmt.Sprintf("st-%03d", i)
		ids = append(ids, id)
		st := switchboard.Stream{ID: id, Room: "room-" + id, UserID: "u", Role: switchboard.RolePublisher, Quality: switchboard.QualityHD,
			Provider: "agora", Status: switchboard.StreamActive, Owner: "o", StartedAt: at, LastHeartbeat: at}
		if _, _, err := stores[0].StartStream(ctx, st, switchboard.TrailEntry{StreamID: id, At: at, Kind: switchboard.TrailAssign, Provider: "agora", Reason: "test"}, 0); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 20 {
		var wg sync.WaitGroup
		errs := make([]error, len(stores))
		for i, s := range stores {
			beats := map[string]time.Time{}
			for j, id := range ids {
				beats[id] = at.Add(time.Duration(round*len(stores)+i+j) * time.Millisecond)
			}
			wg.Go(func() { errs[i] = s.RecordHeartbeats(ctx, beats) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d, replica %d: %v", round, i, err)
			}
		}
	}
	if n := stores[0].WriteRetries() + stores[1].WriteRetries(); n != 0 {
		t.Errorf("%d batches lost a deadlock and were written again, want none", n)
	}
}
