package storetest

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
)

// history is a stream with one segment per provider of ps, moving every ten
// minutes from at; ended (at its last move plus ten minutes) unless active.
func history(id string, at time.Time, active bool, ps ...string) switchboard.StreamHistory {
	st := newStream(id, ps[len(ps)-1], "o", at)
	st.IdempotencyKey = "key-" + id
	h := switchboard.StreamHistory{Trail: []switchboard.TrailEntry{{At: at, Kind: switchboard.TrailAssign, Provider: ps[0], Reason: "seed"}}}
	for i, p := range ps {
		g := switchboard.StreamSegment{Seq: i, Provider: p, Quality: st.Quality, StartedAt: at.Add(time.Duration(i) * 10 * time.Minute)}
		if i < len(ps)-1 {
			end := g.StartedAt.Add(10 * time.Minute)
			g.EndedAt, g.EndReason = &end, "migrated"
			h.Trail = append(h.Trail, switchboard.TrailEntry{At: end, Kind: switchboard.TrailMigrate, Provider: ps[i+1], From: p,
				Reason: "failover", Statuses: map[string]switchboard.Status{p: switchboard.StatusCritical}})
		} else if !active {
			end := g.StartedAt.Add(10 * time.Minute)
			g.EndedAt, g.EndReason = &end, switchboard.EndClient
			st.Status, st.EndedAt, st.LastHeartbeat = switchboard.StreamEnded, &end, end
			h.Trail = append(h.Trail, switchboard.TrailEntry{At: end, Kind: switchboard.TrailEnd, Provider: p, Reason: switchboard.EndClient})
		}
		h.Segments = append(h.Segments, g)
	}
	h.Stream = st
	return h
}

func testImportStreams(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustStart(t, s, newStream("live", "agora", "o", s0), 0)
	hs := []switchboard.StreamHistory{
		history("old1", s0.Add(-48*time.Hour), false, "agora"),
		history("old2", s0.Add(-24*time.Hour), false, "agora", "zego", "agora"),
		history("now1", s0.Add(-5*time.Minute), true, "zego"),
	}
	if err := s.ImportStreams(ctx, hs); err != nil {
		t.Fatalf("ImportStreams: %v", err)
	}
	// The stream as stored: the migration count and the end reason filled in.
	old2 := hs[1].Stream
	old2.Migrations, old2.EndReason = 2, switchboard.EndClient
	equalStream(t, mustStream(t, s, "old2"), old2)
	if got := trailKinds(mustTrail(t, s, "old2")); !reflect.DeepEqual(got, []string{"assign", "migrate", "migrate", "end"}) {
		t.Errorf("trail of old2 = %v", got)
	}
	if es := mustTrail(t, s, "old2"); es[1].From != "agora" || es[1].Statuses["agora"] != switchboard.StatusCritical || es[1].StreamID != "old2" {
		t.Errorf("migration of old2 = %+v", es[1])
	}
	equalStream(t, mustStream(t, s, "now1"), hs[2].Stream)
	if got, want := mustActiveCounts(t, s), map[string]int64{"agora": 1, "zego": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("ActiveCounts = %v, want %v", got, want)
	}
	u := mustUsage(t, s, s0.Add(-72*time.Hour), s0)
	if u["agora"].TotalStreams != 4 || u["zego"].TotalStreams != 2 || u["zego"].ActiveStreams != 1 {
		t.Errorf("Usage = %+v", u)
	}
	// A retried start of an imported stream finds it by its key.
	retry := newStream("again", "agora", "o", s0)
	retry.IdempotencyKey = "key-now1"
	got, created, err := s.StartStream(ctx, retry, assignEntry(retry), 0)
	if err != nil || created || got.ID != "now1" {
		t.Errorf("StartStream with an imported key = %s, %v, %v; want now1, not created", got.ID, created, err)
	}
	// An imported live stream lives on: it moves, and capacity counts it.
	moved := mustMigrate(t, s, "now1", "agora", s0)
	if moved.Migrations != 1 || moved.Provider != "agora" {
		t.Errorf("migrated import = %+v", moved)
	}
	full := newStream("full", "agora", "o", s0)
	_, _, err = s.StartStream(ctx, full, assignEntry(full), 2)
	wantCode(t, err, switchboard.EUnavailable)

	// A batch with a stream that exists changes nothing.
	dup := []switchboard.StreamHistory{history("fresh", s0, true, "agora"), history("old1", s0, false, "zego")}
	wantCode(t, s.ImportStreams(ctx, dup), switchboard.EConflict)
	_, err = s.GetStream(ctx, "fresh")
	wantCode(t, err, switchboard.ENotFound)
	if got, want := mustActiveCounts(t, s), map[string]int64{"agora": 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("ActiveCounts after a refused import = %v, want %v", got, want)
	}

	// Inconsistent histories are refused.
	for name, change := range map[string]func(h *switchboard.StreamHistory){
		"no id":                 func(h *switchboard.StreamHistory) { h.Stream.ID = "" },
		"no segments":           func(h *switchboard.StreamHistory) { h.Segments = nil },
		"gap in seq":            func(h *switchboard.StreamHistory) { h.Segments[1].Seq = 5 },
		"last on another":       func(h *switchboard.StreamHistory) { h.Stream.Provider = "zego" },
		"ended without end":     func(h *switchboard.StreamHistory) { h.Stream.EndedAt = nil },
		"open segment of ended": func(h *switchboard.StreamHistory) { h.Segments[1].EndedAt = nil },
		"unknown status":        func(h *switchboard.StreamHistory) { h.Stream.Status = "paused" },
		"trail of another":      func(h *switchboard.StreamHistory) { h.Trail[0].StreamID = "x" },
	} {
		h := history("bad", s0, false, "zego", "agora")
		change(&h)
		if err := s.ImportStreams(ctx, []switchboard.StreamHistory{h}); switchboard.ErrorCode(err) != switchboard.EInvalid {
			t.Errorf("%s: ImportStreams = %v, want EInvalid", name, err)
		}
	}
	_, err = s.GetStream(ctx, "bad")
	wantCode(t, err, switchboard.ENotFound)
}

func testStreamWasOn(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustStart(t, s, newStream("w", "agora", "o", s0), 0)
	mustMigrate(t, s, "w", "zego", s0.Add(time.Minute))
	if err := s.AppendTrail(ctx, switchboard.TrailEntry{StreamID: "w", At: s0.Add(2 * time.Minute), Kind: switchboard.TrailFailure,
		Provider: "other", Stage: switchboard.StageConnect}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		id, provider string
		want         bool
	}{
		{"w", "agora", true},
		{"w", "zego", true},
		{"w", "other", false}, // a failure reported on it is not an assignment
		{"missing", "agora", false},
	} {
		got, err := s.StreamWasOn(ctx, tt.id, tt.provider)
		if err != nil || got != tt.want {
			t.Errorf("StreamWasOn(%s, %s) = %v, %v; want %v", tt.id, tt.provider, got, err, tt.want)
		}
	}
}

// testCountsFollowStreams checks the active and total counts against the
// streams through every kind of change, abandonment included.
func testCountsFollowStreams(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	for i, p := range []string{"a", "a", "b", "b", "c"} {
		st := newStream(string(rune('p'+i)), p, "o", s0)
		mustStart(t, s, st, 0)
	}
	mustMigrate(t, s, "p", "b", s0.Add(time.Minute))
	mustMigrate(t, s, "p", "c", s0.Add(2*time.Minute))
	mustEnd(t, s, "r", s0.Add(3*time.Minute))
	mustHeartbeat(t, s, "q", s0.Add(10*time.Minute))
	if _, err := s.AbandonStale(ctx, s0.Add(5*time.Minute)); err != nil { // p, s, t
		t.Fatal(err)
	}
	if got, want := mustActiveCounts(t, s), map[string]int64{"a": 1}; !reflect.DeepEqual(got, want) {
		t.Errorf("ActiveCounts = %v, want %v", got, want)
	}
	u := mustUsage(t, s, s0, s0.Add(time.Hour))
	for p, want := range map[string]int64{"a": 2, "b": 3, "c": 2} {
		if u[p].TotalStreams != want {
			t.Errorf("TotalStreams of %s = %d, want %d", p, u[p].TotalStreams, want)
		}
	}
}
