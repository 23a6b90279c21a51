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

// TestStartGroupFailsAfterWriting: in one group, a start refused before it
// wrote (its id taken) and one that fails after it wrote its stream (its
// first segment's key taken by a stray row) fail alone; the group's other
// starts are stored with their segment, trail and counts, and nothing of the
// failed ones is.
func TestStartGroupFailsAfterWriting(t *testing.T) {
	dsn, _ := tempDSN(t)
	s := mustOpen(t, dsn, newSealer(t))
	ctx := context.Background()
	if err := s.CreateProvider(ctx, storetest.AgoraProvider(t, "agora"), switchboard.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	stream := func(id string) (switchboard.Stream, switchboard.TrailEntry) {
		return switchboard.Stream{ID: id, Room: "r", UserID: "u", Role: switchboard.RolePublisher, Quality: switchboard.QualityHD,
				Provider: "agora", Owner: "o", StartedAt: at},
			switchboard.TrailEntry{Kind: switchboard.TrailAssign, Provider: "agora", Reason: "test"}
	}
	st, e := stream("taken")
	if _, _, err := s.StartStream(ctx, st, e, 0); err != nil {
		t.Fatal(err)
	}
	// A segment of a stream that does not exist, written with the foreign
	// keys off on the writer's one connection.
	for _, q := range []string{`PRAGMA foreign_keys = OFF`,
		`INSERT INTO stream_segments (stream_id, seq, provider, quality, started_at) VALUES ('stray', 0, 'agora', 'hd', 0)`,
		`PRAGMA foreign_keys = ON`} {
		if _, err := s.w.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	// Hold the group while every start queues, then let them go as one.
	g := &s.group
	g.mu.Lock()
	g.running = true
	g.mu.Unlock()
	ids := []string{"a", "b", "taken", "c", "stray", "d"}
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			st, e := stream(id)
			_, _, errs[i] = s.StartStream(ctx, st, e, 0)
		})
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		g.mu.Lock()
		n := len(g.queue)
		if n == len(ids) {
			close(g.queue[0].lead)
			g.mu.Unlock()
			break
		}
		g.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("%d starts queued, want %d", n, len(ids))
		}
		time.Sleep(time.Millisecond)
	}
	wg.Wait()

	for i, id := range ids {
		switch id {
		case "taken":
			if !switchboard.IsCode(errs[i], switchboard.EConflict) {
				t.Fatalf("start of a taken id: %v, want a conflict", errs[i])
			}
		case "stray":
			if errs[i] == nil {
				t.Fatal("start whose segment cannot be written succeeded")
			}
			if _, err := s.GetStream(ctx, id); !switchboard.IsCode(err, switchboard.ENotFound) {
				t.Fatalf("failed start %s is stored: %v", id, err)
			}
		default:
			if errs[i] != nil {
				t.Fatalf("start %s: %v", id, errs[i])
			}
			if tr, err := s.StreamTrail(ctx, id); err != nil || len(tr) != 1 {
				t.Fatalf("trail of %s: %v %v", id, tr, err)
			}
			var segs int
			if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM stream_segments WHERE stream_id = ?`, id).Scan(&segs); err != nil || segs != 1 {
				t.Fatalf("segments of %s: %d %v", id, segs, err)
			}
		}
	}
	var trails int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM stream_trail WHERE stream_id = 'stray'`).Scan(&trails); err != nil || trails != 0 {
		t.Fatalf("trail of the failed start: %d %v", trails, err)
	}
	// The first start and the four of the group.
	if got, err := s.ActiveCounts(ctx); err != nil || got["agora"] != 5 {
		t.Fatalf("active counts %v %v, want 5", got, err)
	}
}

// TestGroupFill: on PostgreSQL the writer of a group waits for the starts
// still arriving, step by step, until enough are queued or two steps in a
// row bring none, and not at all on a quiet server.
func TestGroupFill(t *testing.T) {
	// fill runs fill on a group whose last group held last starts and with
	// one start queued, arrive(step) more starts coming during each step
	// (the lock is not held meanwhile), and returns the starts queued and
	// the steps waited.
	fill := func(last int, arrive func(step int) int) (queued, steps int) {
		g := &writeGroup{last: last, queue: []*groupOp{{}}}
		g.sleep = func(time.Duration) {
			steps++
			g.mu.Lock()
			for range arrive(steps) {
				g.queue = append(g.queue, &groupOp{})
			}
			g.mu.Unlock()
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		g.fill()
		return len(g.queue), steps
	}
	for _, c := range []struct {
		name          string
		last          int
		arrive        func(step int) int
		queued, steps int
	}{
		{"after a group of one, no wait", 1, func(int) int { return 3 }, 1, 0},
		{"three a step, up to the target", 10, func(int) int { return 3 }, pgFillTarget, 5},
		// Empty, one, empty, empty.
		{"dried up", 10, func(step int) int { return map[int]int{2: 1}[step] }, 2, 4},
		{"one a step, bounded", 10, func(int) int { return 1 }, 1 + pgFillSteps, pgFillSteps},
	} {
		if queued, steps := fill(c.last, c.arrive); queued != c.queued || steps != c.steps {
			t.Errorf("%s: %d queued after %d steps; want %d after %d", c.name, queued, steps, c.queued, c.steps)
		}
	}
}

// TestWriteGroupMoves: on SQLite, moves, failure reports, ends and quality
// samples queued together share one transaction with starts; each has the
// outcome it would have had alone: a move to the provider the stream is on,
// a move or report of an ended stream, samples on an unknown provider and a
// move that fails after it wrote (its new segment's key taken by a stray
// row) fail alone, of two ends of one stream one ends it, and the others
// are stored with their segments, trail entries, samples and counts.
func TestWriteGroupMoves(t *testing.T) {
	dsn, _ := tempDSN(t)
	s := mustOpen(t, dsn, newSealer(t))
	ctx := context.Background()
	for _, p := range []string{"agora", "zego"} {
		if err := s.CreateProvider(ctx, storetest.AgoraProvider(t, p), switchboard.AuditEntry{}); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	start := func(id string) error {
		st := switchboard.Stream{ID: id, Room: "r", UserID: "u", Role: switchboard.RolePublisher, Quality: switchboard.QualityHD,
			Provider: "agora", Owner: "o", StartedAt: at}
		_, _, err := s.StartStream(ctx, st, switchboard.TrailEntry{Kind: switchboard.TrailAssign, Provider: "agora", Reason: "test"}, 0)
		return err
	}
	for _, id := range []string{"m1", "m2", "m3", "m4", "m5", "m6", "e1"} {
		if err := start(id); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.EndStream(ctx, "e1", at.Add(time.Second), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO stream_segments (stream_id, seq, provider, quality, started_at, ended_at)
		VALUES ('m5', 1, 'zego', 'hd', 0, 0)`); err != nil {
		t.Fatal(err)
	}
	moveAt := at.Add(time.Minute)
	move := func(id, to string) error {
		_, err := s.MigrateStream(ctx, id, switchboard.TrailEntry{At: moveAt, Provider: to, Reason: "standby"}, 0)
		return err
	}
	report := func(id string) error {
		return s.AppendTrail(ctx, switchboard.TrailEntry{StreamID: id, At: moveAt, Kind: switchboard.TrailFailure, Provider: "agora",
			Reason: "media lost", Stage: "media", Code: "connection_lost"})
	}
	samples := []switchboard.QualitySample{{At: moveAt, RTTMs: 40, BitrateKbps: 900, FPS: 30}}
	var ends atomic.Int32
	end := func(id string) error {
		_, ended, err := s.EndStream(ctx, id, moveAt, "")
		if ended {
			ends.Add(1)
		}
		return err
	}
	ops := []struct {
		name string
		run  func() error
		want func(error) bool
	}{
		{"start n1", func() error { return start("n1") }, nil},
		{"move m1", func() error { return move("m1", "zego") }, nil},
		{"move m2 where it is", func() error { return move("m2", "agora") }, func(err error) bool { return switchboard.IsCode(err, switchboard.EInvalid) }},
		{"move e1 ended", func() error { return move("e1", "zego") }, func(err error) bool { return switchboard.IsCode(err, switchboard.EConflict) }},
		{"report m3", func() error { return report("m3") }, nil},
		{"report e1 ended", func() error { return report("e1") }, func(err error) bool { return switchboard.IsCode(err, switchboard.EConflict) }},
		{"move m5 fails after writing", func() error { return move("m5", "zego") }, func(err error) bool { return err != nil }},
		{"move m4", func() error { return move("m4", "zego") }, nil},
		{"start n2", func() error { return start("n2") }, nil},
		{"end m6", func() error { return end("m6") }, nil},
		{"quality of m2", func() error { return s.RecordQuality(ctx, "m2", "agora", "eu", samples) }, nil},
		{"quality on no provider", func() error { return s.RecordQuality(ctx, "m3", "nope", "eu", samples) },
			func(err error) bool { return switchboard.IsCode(err, switchboard.ENotFound) }},
		{"end m6 again", func() error { return end("m6") }, nil},
	}
	errs := make([]error, len(ops))
	groups := s.group.groups.Load()
	holdStarts(t, s, len(ops), func(i int) { errs[i] = ops[i].run() })
	if got := s.group.groups.Load() - groups; got != 1 {
		t.Errorf("the writes took %d transactions, want 1", got)
	}
	for i, op := range ops {
		ok := errs[i] == nil
		if op.want != nil {
			ok = op.want(errs[i])
		}
		if !ok {
			t.Errorf("%s: %v", op.name, errs[i])
		}
	}
	check := func(id, provider string, segments, trail int) {
		t.Helper()
		st, err := s.GetStream(ctx, id)
		if err != nil || st.Provider != provider {
			t.Fatalf("%s: %+v %v, want it on %s", id, st, err, provider)
		}
		var n int
		if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM stream_segments WHERE stream_id = ?`, id).Scan(&n); err != nil || n != segments {
			t.Fatalf("segments of %s: %d %v, want %d", id, n, err, segments)
		}
		if tr, err := s.StreamTrail(ctx, id); err != nil || len(tr) != trail {
			t.Fatalf("trail of %s: %v %v, want %d entries", id, tr, err, trail)
		}
	}
	check("n1", "agora", 1, 1)
	check("n2", "agora", 1, 1)
	check("m1", "zego", 2, 2)
	check("m4", "zego", 2, 2)
	check("m2", "agora", 1, 1)
	check("m3", "agora", 1, 2)
	check("m5", "agora", 2, 1) // its first segment and the stray row
	check("m6", "agora", 1, 2)
	if st, err := s.GetStream(ctx, "m6"); err != nil || st.Status != switchboard.StreamEnded || ends.Load() != 1 {
		t.Fatalf("m6 after two ends: %+v %v, ended by %d of them", st, err, ends.Load())
	}
	if st, err := s.GetStream(ctx, "m5"); err != nil || st.Migrations != 0 {
		t.Fatalf("m5 after its failed move: %+v %v", st, err)
	}
	var open int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM stream_segments WHERE stream_id = 'm5' AND seq = 0 AND ended_at IS NULL`).Scan(&open); err != nil || open != 1 {
		t.Fatalf("m5's segment on agora is not open after its failed move: %d %v", open, err)
	}
	var quality int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM quality_streams WHERE stream_id = 'm2' AND provider = 'agora'`).Scan(&quality); err != nil || quality != 1 {
		t.Fatalf("quality of m2: %d rows %v", quality, err)
	}
	if got, err := s.ActiveCounts(ctx); err != nil || got["agora"] != 5 || got["zego"] != 2 {
		t.Fatalf("active counts %v %v, want agora 5, zego 2", got, err)
	}
}

// TestWriteGroupHealthUpdates: client-reported failures of one provider
// from many goroutines share transactions on SQLite, and none is lost: each
// update folds the health the one before it wrote.
func TestWriteGroupHealthUpdates(t *testing.T) {
	dsn, _ := tempDSN(t)
	s := mustOpen(t, dsn, newSealer(t))
	ctx := context.Background()
	if err := s.CreateProvider(ctx, storetest.AgoraProvider(t, "agora"), switchboard.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
	const workers, each = 32, 10
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if _, _, err := s.UpdateHealth(ctx, "agora", time.Time{}, func(h switchboard.Health) switchboard.Health {
					h.TotalRequests++
					h.FailedRequests++
					return h
				}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	rec, err := s.GetProvider(ctx, "agora")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Health.TotalRequests != workers*each || rec.Health.FailedRequests != workers*each {
		t.Fatalf("requests %d, failed %d, want %d each", rec.Health.TotalRequests, rec.Health.FailedRequests, workers*each)
	}
}
