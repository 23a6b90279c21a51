package sqlstore

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/pgtest"
	"github.com/switchboardhq/switchboard/internal/storetest"
)

// TestTrailStatusesShared: starts that share one statuses map each record
// it, and a different map of the same size, or a map equal to it, is
// recorded as itself rather than as the one stored before. Each distinct set
// is stored once and the starts' entries name it; an entry whose map is not
// the one last stored keeps its statuses inline, and reads the same.
func TestTrailStatusesShared(t *testing.T) {
	dsn, _ := tempDSN(t)
	testTrailStatusesShared(t, mustOpen(t, dsn, newSealer(t)))
}

func TestPostgresTrailStatusesShared(t *testing.T) {
	testTrailStatusesShared(t, mustOpen(t, pgtest.DSN(t), newSealer(t)))
}

func testTrailStatusesShared(t *testing.T, s *Store) {
	ctx := context.Background()
	if err := s.CreateProvider(ctx, storetest.AgoraProvider(t, "agora"), switchboard.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	shared := map[string]switchboard.Status{"agora": switchboard.StatusHealthy, "zego": switchboard.StatusCritical}
	other := map[string]switchboard.Status{"agora": switchboard.StatusWarning, "zego": switchboard.StatusExcellent}
	steps := []map[string]switchboard.Status{shared, shared, other, shared, maps.Clone(shared), maps.Clone(other), nil, shared}
	for i, m := range steps {
		id := fmt.Sprintf("s-%d", i)
		st := switchboard.Stream{ID: id, Room: "r", UserID: "u", Role: switchboard.RolePublisher, Quality: switchboard.QualityHD,
			Provider: "agora", Status: switchboard.StreamActive, Owner: "o", StartedAt: at, LastHeartbeat: at}
		if _, _, err := s.StartStream(ctx, st, switchboard.TrailEntry{StreamID: id, At: at, Kind: switchboard.TrailAssign, Provider: "agora", Reason: "test", Statuses: m}, 0); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range steps {
		es, err := s.StreamTrail(ctx, fmt.Sprintf("s-%d", i))
		if err != nil || len(es) != 1 {
			t.Fatalf("trail of s-%d: %v %v", i, es, err)
		}
		if !maps.Equal(es[0].Statuses, want) {
			t.Errorf("s-%d recorded statuses %v, want %v", i, es[0].Statuses, want)
		}
	}
	// Two distinct sets (other and its clone are one), each stored once, and
	// no start's entry holds its statuses inline.
	var sets, inline, named int
	if err := s.w.QueryRowContext(ctx, `SELECT COUNT(*) FROM status_sets`).Scan(&sets); err != nil {
		t.Fatal(err)
	}
	if err := s.w.QueryRowContext(ctx, `SELECT COUNT(statuses), COUNT(statuses_digest) FROM stream_trail`).Scan(&inline, &named); err != nil {
		t.Fatal(err)
	}
	if sets != 2 || inline != 0 || named != len(steps)-1 {
		t.Errorf("%d status sets, %d entries inline, %d by digest; want 2, 0, %d", sets, inline, named, len(steps)-1)
	}
	// An entry appended with a map that is not the one last stored (shared
	// is, after the last start) is written inline and reads the same.
	third := map[string]switchboard.Status{"agora": switchboard.StatusCritical, "zego": switchboard.StatusHealthy}
	if err := s.AppendTrail(ctx, switchboard.TrailEntry{StreamID: "s-0", At: at, Kind: switchboard.TrailFailure, Provider: "agora", Reason: "test", Statuses: third}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendTrail(ctx, switchboard.TrailEntry{StreamID: "s-0", At: at, Kind: switchboard.TrailFailure, Provider: "agora", Reason: "test", Statuses: shared}); err != nil {
		t.Fatal(err)
	}
	es, err := s.StreamTrail(ctx, "s-0")
	if err != nil || len(es) != 3 {
		t.Fatalf("trail of s-0: %v %v", es, err)
	}
	for i, want := range []map[string]switchboard.Status{shared, third, shared} {
		if !maps.Equal(es[i].Statuses, want) {
			t.Errorf("s-0 entry %d: statuses %v, want %v", i, es[i].Statuses, want)
		}
	}
	if err := s.w.QueryRowContext(ctx, `SELECT COUNT(statuses), COUNT(statuses_digest) FROM stream_trail`).Scan(&inline, &named); err != nil {
		t.Fatal(err)
	}
	if inline != 1 || named != len(steps) {
		t.Errorf("after appends: %d entries inline, %d by digest; want 1, %d", inline, named, len(steps))
	}
}
