package sqlstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/storetest"
)

// TestStartGroup starts streams from many goroutines at once, so that they
// share transactions: a start refused in a group (the provider full, an id
// taken) leaves the others of its group in, and every start reported created
// is stored, with counts that agree.
func TestStartGroup(t *testing.T) {
	dsn, _ := tempDSN(t)
	s := mustOpen(t, dsn, newSealer(t))
	ctx := context.Background()
	if err := s.CreateProvider(ctx, storetest.AgoraProvider(t, "agora"), switchboard.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
	const workers, each, capacity = 32, 20, 500
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var created, full, taken atomic.Int64
	var mu sync.Mutex
	ids := map[string]bool{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				// Every fifth id is also started by the next worker.
				id := fmt.Sprintf("s-%d-%d", w, i)
				if i%5 == 0 && w > 0 {
					id = fmt.Sprintf("s-%d-%d", w-1, i)
				}
				st := switchboard.Stream{ID: id, Room: "r", UserID: "u", Role: switchboard.RolePublisher, Quality: switchboard.QualityHD,
					Provider: "agora", Status: switchboard.StreamActive, Owner: "o", StartedAt: at, LastHeartbeat: at}
				_, ok, err := s.StartStream(ctx, st, switchboard.TrailEntry{StreamID: id, At: at, Kind: switchboard.TrailAssign, Provider: "agora", Reason: "test"}, capacity)
				switch {
				case err == nil && ok:
					created.Add(1)
					mu.Lock()
					ids[id] = true
					mu.Unlock()
				case switchboard.IsCode(err, switchboard.EUnavailable):
					full.Add(1)
				case switchboard.IsCode(err, switchboard.EConflict):
					taken.Add(1)
				default:
					t.Errorf("start %s: %v %v", id, ok, err)
				}
			}
		})
	}
	wg.Wait()
	if created.Load() != capacity || int(created.Load()) != len(ids) {
		t.Fatalf("created %d (%d ids), want the capacity %d; full %d, taken %d", created.Load(), len(ids), capacity, full.Load(), taken.Load())
	}
	if created.Load()+full.Load()+taken.Load() != workers*each {
		t.Fatalf("created %d + full %d + taken %d != %d", created.Load(), full.Load(), taken.Load(), workers*each)
	}
	for id := range ids {
		if _, err := s.GetStream(ctx, id); err != nil {
			t.Fatalf("created %s not stored: %v", id, err)
		}
		if tr, err := s.StreamTrail(ctx, id); err != nil || len(tr) != 1 {
			t.Fatalf("trail of %s: %v %v", id, tr, err)
		}
	}
	if got, err := s.ActiveCounts(ctx); err != nil || got["agora"] != capacity {
		t.Fatalf("active counts %v %v, want %d", got, err, capacity)
	}
}
