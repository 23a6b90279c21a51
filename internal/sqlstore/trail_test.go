package sqlstore

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/storetest"
)

// TestTrailStatusesShared: starts that share one statuses map each record
// it, and a different map of the same size, or a map equal to it, is
// recorded as itself rather than as the one encoded before.
func TestTrailStatusesShared(t *testing.T) {
	dsn, _ := tempDSN(t)
	s := mustOpen(t, dsn, newSealer(t))
	ctx := context.Background()
	if err := s.CreateProvider(ctx, storetest.AgoraProvider(t, "agora"), switchboard.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	shared := map[string]switchboard.Status{"agora": switchboard.StatusHealthy, "zego": switchboard.StatusCritical}
	other := map[string]switchboard.Status{"agora": switchboard.StatusWarning, "zego": switchboard.StatusExcellent}
	steps := []map[string]switchboard.Status{shared, shared, other, shared, maps.Clone(other), nil, shared}
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
}
