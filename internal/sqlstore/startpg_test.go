package sqlstore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/pgtest"
	"github.com/switchboardhq/switchboard/internal/storetest"
)

// holdStarts holds the group of starts of s while run queues n starts, then
// lets them go together, in one statement, and waits for them.
func holdStarts(t *testing.T, s *Store, n int, run func(i int)) {
	t.Helper()
	g := &s.group
	g.mu.Lock()
	g.running = true
	g.mu.Unlock()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { run(i) })
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		g.mu.Lock()
		queued := len(g.queue)
		if queued == n {
			close(g.queue[0].lead)
			g.mu.Unlock()
			break
		}
		g.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("%d starts queued, want %d", queued, n)
		}
		time.Sleep(time.Millisecond)
	}
	wg.Wait()
}

// Starts without a capacity limit that arrive together on PostgreSQL are
// written in one statement: each is stored with its segment, trail entry and
// count, a start with the key of an earlier stream returns it, and when one
// start of a group fails (an id taken, a key twice in the group) each runs
// again on its own, with the outcome it would have had alone.
func TestPostgresStartGroup(t *testing.T) {
	s := mustOpen(t, pgtest.DSN(t), newSealer(t))
	ctx := context.Background()
	for _, p := range []string{"agora", "other"} {
		if err := s.CreateProvider(ctx, storetest.AgoraProvider(t, p), switchboard.AuditEntry{}); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	reported := at.Add(time.Minute)
	statuses := map[string]switchboard.Status{"agora": switchboard.StatusHealthy, "other": switchboard.StatusCritical}
	stream := func(id, provider, key string) (switchboard.Stream, switchboard.TrailEntry) {
		return switchboard.Stream{ID: id, Room: "r", UserID: "u", Role: switchboard.RolePublisher, Quality: switchboard.QualityHD,
				Provider: provider, Owner: "o", IdempotencyKey: key, StartedAt: at},
			switchboard.TrailEntry{Kind: switchboard.TrailAssign, Provider: provider, Reason: "test " + id}
	}
	type outcome struct {
		got     switchboard.Stream
		created bool
		err     error
	}
	start := func(id, provider, key string, edit func(*switchboard.TrailEntry)) outcome {
		st, e := stream(id, provider, key)
		if edit != nil {
			edit(&e)
		}
		got, created, err := s.StartStream(ctx, st, e, 0)
		return outcome{got, created, err}
	}
	if o := start("taken", "agora", "k0", nil); o.err != nil || !o.created {
		t.Fatalf("first start: %+v", o)
	}
	groups := s.group.groups.Load()

	// A clean group: every start but one (an earlier key) is inserted.
	ids := []string{"a", "b", "c", "again", "d"}
	outs := make([]outcome, len(ids))
	holdStarts(t, s, len(ids), func(i int) {
		switch id := ids[i]; id {
		case "b":
			outs[i] = start(id, "other", "kb", func(e *switchboard.TrailEntry) { e.ReportedAt = &reported; e.LeastBad = true })
		case "c":
			outs[i] = start(id, "agora", "", func(e *switchboard.TrailEntry) { e.Statuses = statuses })
		case "again":
			outs[i] = start(id, "agora", "k0", nil)
		default:
			outs[i] = start(id, "agora", "", nil)
		}
	})
	if got := s.group.groups.Load() - groups; got != 1 {
		t.Errorf("the group took %d statements, want 1", got)
	}
	for i, id := range ids {
		o := outs[i]
		switch {
		case o.err != nil:
			t.Fatalf("start %s: %v", id, o.err)
		case id == "again" && (o.created || o.got.ID != "taken"):
			t.Fatalf("start with an earlier key: %+v, want the earlier stream", o)
		case id != "again" && (!o.created || o.got.ID != id):
			t.Fatalf("start %s: %+v", id, o)
		}
	}
	if _, err := s.GetStream(ctx, "again"); !switchboard.IsCode(err, switchboard.ENotFound) {
		t.Errorf("a start with an earlier key was stored: %v", err)
	}
	tr, err := s.StreamTrail(ctx, "b")
	if err != nil || len(tr) != 1 || tr[0].ReportedAt == nil || !tr[0].ReportedAt.Equal(reported) || !tr[0].LeastBad || tr[0].Reason != "test b" {
		t.Fatalf("trail of b: %+v %v", tr, err)
	}
	if tr, err := s.StreamTrail(ctx, "c"); err != nil || len(tr) != 1 || tr[0].Statuses["other"] != switchboard.StatusCritical || tr[0].ReportedAt != nil {
		t.Fatalf("trail of c: %+v %v", tr, err)
	}
	var named int
	if err := s.w.QueryRowContext(ctx, `SELECT COUNT(*) FROM stream_trail WHERE stream_id = 'c' AND statuses IS NULL AND statuses_digest IS NOT NULL`).Scan(&named); err != nil || named != 1 {
		t.Fatalf("trail of c: %d entries naming their statuses' set (%v), want 1", named, err)
	}
	if st, err := s.GetStream(ctx, "b"); err != nil || st.Provider != "other" || st.IdempotencyKey != "kb" {
		t.Fatalf("stream b: %+v %v", st, err)
	}

	// A group that fails: an id taken, and a key twice in the group.
	ids = []string{"e", "taken", "f", "g"}
	outs = make([]outcome, len(ids))
	holdStarts(t, s, len(ids), func(i int) {
		key := ""
		if ids[i] == "f" || ids[i] == "g" {
			key = "kfg"
		}
		outs[i] = start(ids[i], "agora", key, nil)
	})
	if outs[0].err != nil || !outs[0].created {
		t.Errorf("start e: %+v", outs[0])
	}
	if !switchboard.IsCode(outs[1].err, switchboard.EConflict) {
		t.Errorf("start of a taken id: %+v, want a conflict", outs[1])
	}
	f, g := outs[2], outs[3]
	if f.err != nil || g.err != nil || f.created == g.created || f.got.ID != g.got.ID {
		t.Errorf("two starts with one key: %+v and %+v, want one stream, created once", f, g)
	}

	// Every stream has its segment and trail entry, and the counts agree.
	want := map[string]int64{"agora": 6, "other": 1} // taken, a, c, d, e, f or g; b
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM streams s
		WHERE (SELECT COUNT(*) FROM stream_segments g WHERE g.stream_id = s.id) = 1
		AND (SELECT COUNT(*) FROM stream_trail r WHERE r.stream_id = s.id) = 1`).Scan(&n); err != nil || n != 7 {
		t.Errorf("%d streams with one segment and one trail entry, %v; want 7", n, err)
	}
	if got, err := s.ActiveCounts(ctx); err != nil || got["agora"] != want["agora"] || got["other"] != want["other"] {
		t.Errorf("active counts %v %v, want %v", got, err, want)
	}
}

// Many concurrent starts on PostgreSQL, some of them repeats of one key: each
// key gets one stream, every start reported created is stored, and the
// counts agree.
func TestPostgresConcurrentStarts(t *testing.T) {
	s := mustOpen(t, pgtest.DSN(t), newSealer(t))
	ctx := context.Background()
	if err := s.CreateProvider(ctx, storetest.AgoraProvider(t, "agora"), switchboard.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
	const workers, each = 24, 25
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	groups := s.group.groups.Load()
	var created atomic.Int64
	var mu sync.Mutex
	byKey := map[string]map[string]bool{}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("s-%d-%d", w, i)
				key := ""
				if i%4 == 0 {
					key = fmt.Sprintf("k-%d", i) // the same key in every worker
				}
				st := switchboard.Stream{ID: id, Room: "r", UserID: "u", Role: switchboard.RolePublisher, Quality: switchboard.QualityHD,
					Provider: "agora", Owner: "o", IdempotencyKey: key, StartedAt: at}
				got, ok, err := s.StartStream(ctx, st, switchboard.TrailEntry{Kind: switchboard.TrailAssign, Provider: "agora", Reason: "test"}, 0)
				if err != nil {
					t.Errorf("start %s: %v", id, err)
					return
				}
				if ok {
					created.Add(1)
				}
				if key != "" {
					mu.Lock()
					if byKey[key] == nil {
						byKey[key] = map[string]bool{}
					}
					byKey[key][got.ID] = true
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	for key, ids := range byKey {
		if len(ids) != 1 {
			t.Errorf("key %s: streams %v, want one", key, ids)
		}
	}
	keys := (each + 3) / 4
	if want := int64(workers*(each-keys) + keys); created.Load() != want {
		t.Errorf("%d starts created, want %d", created.Load(), want)
	}
	if got, err := s.ActiveCounts(ctx); err != nil || got["agora"] != created.Load() {
		t.Errorf("active counts %v %v, want %d", got, err, created.Load())
	}
	var n int64
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM streams s
		WHERE (SELECT COUNT(*) FROM stream_segments g WHERE g.stream_id = s.id) = 1
		AND (SELECT COUNT(*) FROM stream_trail r WHERE r.stream_id = s.id) = 1`).Scan(&n); err != nil || n != created.Load() {
		t.Errorf("%d streams with one segment and one trail entry, %v; want %d", n, err, created.Load())
	}
	t.Logf("%d starts in %d statements", workers*each, s.group.groups.Load()-groups)
}

// A group of starts adds its counts to one shard: a row per provider, so
// that the groups of other replicas running at the same time seldom wait for
// its commit on a row of the counts.
func TestPostgresStartGroupOneShard(t *testing.T) {
	s := mustOpen(t, pgtest.DSN(t), newSealer(t))
	ctx := context.Background()
	for _, p := range []string{"agora", "other"} {
		if err := s.CreateProvider(ctx, storetest.AgoraProvider(t, p), switchboard.AuditEntry{}); err != nil {
			t.Fatal(err)
		}
	}
	const n = 16
	errs := make([]error, n)
	holdStarts(t, s, n, func(i int) {
		p := "agora"
		if i%2 == 1 {
			p = "other"
		}
		id := fmt.Sprintf("one-shard-%d", i)
		_, _, errs[i] = s.StartStream(ctx, switchboard.Stream{ID: id, Room: "r", UserID: "u", Role: switchboard.RolePublisher,
			Quality: switchboard.QualityHD, Provider: p, Owner: "o", StartedAt: time.Now()},
			switchboard.TrailEntry{Kind: switchboard.TrailAssign, Provider: p, Reason: "test"}, 0)
	})
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
	}
	var rows, shards int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT shard) FROM provider_stream_counts WHERE active > 0`).Scan(&rows, &shards); err != nil {
		t.Fatal(err)
	}
	if rows != 2 || shards != 1 {
		t.Errorf("the group wrote %d rows of counts over %d shards, want a row per provider in one shard", rows, shards)
	}
	if got, err := s.ActiveCounts(ctx); err != nil || got["agora"] != n/2 || got["other"] != n/2 {
		t.Errorf("active counts %v %v, want %d each", got, err, n/2)
	}
}
