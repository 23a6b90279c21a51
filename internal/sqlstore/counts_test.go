package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/pgtest"
)

// migrateTo applies the migrations up to version upTo only, as an older build
// would have.
func migrateTo(t *testing.T, s *Store, upTo int) {
	t.Helper()
	ctx := context.Background()
	ms, err := s.d.migrationFiles()
	if err != nil {
		t.Fatal(err)
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.d.migrationsTable); err != nil {
			return err
		}
		for _, m := range ms {
			if m.version > upTo {
				break
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 0)`),
				m.version, m.name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The counts of a database written before provider_stream_counts existed are
// computed from its streams when the migration adds the table.
func testCountsBackfill(t *testing.T, dsn string, raw func() (*Store, error)) {
	ctx := context.Background()
	old, err := raw()
	if err != nil {
		t.Fatal(err)
	}
	migrateTo(t, old, 3)
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	// x: on a, ended. y: a then b, live. z: b, live. w: a then c, ended.
	streams := []struct {
		id, provider, status string
		segments             []string
	}{
		{"x", "a", "ended", []string{"a"}},
		{"y", "b", "active", []string{"a", "b"}},
		{"z", "b", "active", []string{"b"}},
		{"w", "c", "ended", []string{"a", "c"}},
	}
	err = old.write(ctx, func(tx *sql.Tx) error {
		for _, st := range streams {
			if _, err := tx.ExecContext(ctx, old.q(`INSERT INTO streams (id, room, user_id, role, quality, provider, status,
				owner, started_at, last_heartbeat) VALUES (?, 'r', 'u', 'publisher', 'hd', ?, ?, 'o', ?, ?)`),
				st.id, st.provider, st.status, dbTime(at), dbTime(at)); err != nil {
				return err
			}
			for i, p := range st.segments {
				var ended any
				if i < len(st.segments)-1 || st.status == "ended" {
					ended = dbTime(at)
				}
				if _, err := tx.ExecContext(ctx, old.q(`INSERT INTO stream_segments (stream_id, seq, provider, quality, started_at, ended_at)
					VALUES (?, ?, ?, 'hd', ?, ?)`), st.id, i, p, dbTime(at), ended); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	old.Close()

	s := mustOpen(t, dsn, newSealer(t))
	got, err := s.ActiveCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]int64{"b": 2}; !reflect.DeepEqual(got, want) {
		t.Errorf("ActiveCounts = %v, want %v", got, want)
	}
	us, err := s.Usage(ctx, at, at.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	total := map[string]int64{}
	for _, u := range us {
		total[u.Provider] = u.TotalStreams
	}
	if want := map[string]int64{"a": 3, "b": 2, "c": 1}; !reflect.DeepEqual(total, want) {
		t.Errorf("TotalStreams = %v, want %v", total, want)
	}
	// And they go on from there.
	if _, _, err := s.EndStream(ctx, "y", at.Add(time.Minute), switchboard.EndClient); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.ActiveCounts(ctx); !reflect.DeepEqual(got, map[string]int64{"b": 1}) {
		t.Errorf("ActiveCounts after an end = %v", got)
	}
}

func TestCountsBackfill(t *testing.T) {
	dsn, path := tempDSN(t)
	testCountsBackfill(t, dsn, func() (*Store, error) { return openSQLite(context.Background(), path) })
}

func TestPostgresCountsBackfill(t *testing.T) {
	dsn := pgtest.DSN(t)
	testCountsBackfill(t, dsn, func() (*Store, error) { return openPostgres(context.Background(), dsn) })
}

// Every statement of the hot paths is prepared when an SQLite store opens
// (a query that did not prepare would silently run unprepared).
func TestHotStatementsPrepared(t *testing.T) {
	dsn, _ := tempDSN(t)
	s := mustOpen(t, dsn, newSealer(t))
	for _, p := range []struct {
		db      *sql.DB
		queries []string
	}{{s.r, hotReads}, {s.w, hotWrites}} {
		for _, q := range p.queries {
			if s.prepared(p.db, q) == nil {
				t.Errorf("not prepared: %s", q)
			}
		}
	}
}

// The queries of the hot paths find their rows through an index, whose cost
// does not grow with the history: SQLite's plan for each walks no table and
// none of the indexes that hold a provider's or an owner's whole history.
// (SQLite plans without statistics, so the plans do not depend on the data.)
func TestHotQueryPlans(t *testing.T) {
	dsn, _ := tempDSN(t)
	s := mustOpen(t, dsn, newSealer(t))
	queries := append(append([]string{}, hotReads...), hotWrites...)
	queries = append(queries, activeCountsSQL)
	bad := []string{"SCAN streams", "SCAN s\n", "SCAN stream_segments", "SCAN stream_trail", "SCAN api_tokens",
		"streams_owner_started", "stream_segments_provider", "stream_segments_started",
		"stream_segments_ended", "TEMP B-TREE"}
	for _, q := range queries {
		plan := sqlitePlan(t, s, q)
		for _, b := range bad {
			if strings.Contains(plan, b) {
				t.Errorf("plan of\n%s\nhas %q:\n%s", q, strings.TrimSpace(b), plan)
			}
		}
	}
}

// sqlitePlan is SQLite's plan for query (its parameters all NULL), a line
// per step.
func sqlitePlan(t *testing.T, s *Store, query string) string {
	t.Helper()
	rows, err := s.r.Query(`EXPLAIN QUERY PLAN `+query, make([]any, strings.Count(query, "?"))...)
	if err != nil {
		t.Fatalf("EXPLAIN %s: %v", query, err)
	}
	defer rows.Close()
	var plan strings.Builder
	for rows.Next() {
		var id, parent, notused int
		var detail string
		if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
			t.Fatal(err)
		}
		plan.WriteString(detail + "\n")
	}
	return plan.String()
}

// A provider's live streams (drains and preemptive moves ask for them every
// second or so, a report for its open segments) are found in the index of
// live streams, whatever the history: not by walking every stream, newest
// first, to the oldest once the provider has none left, nor every open
// segment of every provider.
func TestLiveByProviderPlan(t *testing.T) {
	dsn, _ := tempDSN(t)
	s := mustOpen(t, dsn, newSealer(t))
	list, _ := listStreamsSQL(s.d, switchboard.StreamFilter{Status: switchboard.StreamActive, Provider: "p"})
	for _, q := range []string{list, streamsDuringSQL(s.d)} {
		plan := sqlitePlan(t, s, q)
		if !strings.Contains(plan, "streams_heartbeat_active") || strings.Contains(plan, "streams_started") || strings.Contains(plan, "stream_segments_ended") {
			t.Errorf("plan of\n%s\ndoes not read a provider's live streams from the index of live streams:\n%s", q, plan)
		}
	}
}

// On PostgreSQL too, the hot queries find their rows by a unique key, even
// with statistics taken when no stream was live (which make the indexes of
// live streams and open segments look empty, and so cheapest to walk), and in
// the generic plans that prepared statements end up with.
func TestPostgresHotQueryPlans(t *testing.T) {
	dsn := pgtest.DSN(t)
	s := mustOpen(t, dsn, newSealer(t))
	ctx := context.Background()
	at := time.Now().Add(-time.Hour)
	mk := func(id string, active bool) switchboard.StreamHistory {
		st := switchboard.Stream{ID: id, Room: "r", UserID: "u", Role: switchboard.RolePublisher, Quality: switchboard.QualityHD,
			Provider: "b", Status: switchboard.StreamEnded, Owner: "o", IdempotencyKey: "k" + id, StartedAt: at}
		end := at.Add(time.Minute)
		segs := []switchboard.StreamSegment{
			{Seq: 0, Provider: "a", Quality: st.Quality, StartedAt: at, EndedAt: &at, EndReason: segmentMigrated},
			{Seq: 1, Provider: "b", Quality: st.Quality, StartedAt: at, EndedAt: &end, EndReason: switchboard.EndClient}}
		if active {
			st.Status, segs[1].EndedAt, segs[1].EndReason = switchboard.StreamActive, nil, ""
		} else {
			st.EndedAt = &end
		}
		return switchboard.StreamHistory{Stream: st, Segments: segs,
			Trail: []switchboard.TrailEntry{{At: at, Kind: switchboard.TrailAssign, Provider: "a"}}}
	}
	var hs []switchboard.StreamHistory
	for i := range 5000 {
		hs = append(hs, mk(fmt.Sprintf("ended-%d", i), false))
	}
	if err := s.ImportStreams(ctx, hs); err != nil {
		t.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	hs = hs[:0]
	for i := range 500 {
		hs = append(hs, mk(fmt.Sprintf("live-%d", i), true))
	}
	if err := s.ImportStreams(ctx, hs); err != nil {
		t.Fatal(err)
	}

	conn, err := s.w.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
		t.Fatal(err)
	}
	lock := postgresDialect.lockRow
	queries := []string{qStreamByID, qStreamByID + lock, selectByKey, qStreamWasOn, qTokenByHash, qCapacity, activeCountsSQL,
		qHeartbeat, closeSegmentSQL, qCloseSegmentReturning, qMoveStream, qEndStream, qHealthOf + lock, qWriteHealth}
	bad := []string{"Seq Scan on streams", "Seq Scan on stream_segments", "Seq Scan on stream_trail", "streams_heartbeat_active",
		"stream_segments_ended", "stream_segments_provider", "stream_segments_started", "streams_owner_started"}
	for i, q := range queries {
		name := fmt.Sprintf("hot%d", i)
		if _, err := conn.ExecContext(ctx, `PREPARE `+name+` AS `+postgresDialect.rebind(q)); err != nil {
			t.Fatalf("PREPARE %s: %v", q, err)
		}
		exec := `EXPLAIN EXECUTE ` + name
		if n := strings.Count(q, "?"); n > 0 {
			exec += `(` + strings.TrimSuffix(strings.Repeat("NULL, ", n), ", ") + `)`
		}
		rows, err := conn.QueryContext(ctx, exec)
		if err != nil {
			t.Fatalf("EXPLAIN %s: %v", q, err)
		}
		var plan strings.Builder
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				t.Fatal(err)
			}
			plan.WriteString(line + "\n")
		}
		rows.Close()
		for _, b := range bad {
			if strings.Contains(plan.String(), b) {
				t.Errorf("plan of\n%s\nhas %q:\n%s", q, b, plan.String())
			}
		}
	}
}
