package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/switchboardhq/switchboard"
)

// importRowsPerStatement bounds the rows of one multi-row INSERT of
// ImportStreams: big enough that statement overhead vanishes, small enough
// that SQLite (32,766) and PostgreSQL (65,535) take its parameters.
const importRowsPerStatement = 500

const (
	importStreamCols  = `id, room, user_id, role, region, quality, provider, status, owner, idempotency_key, started_at, last_heartbeat, ended_at, end_reason, migrations`
	importSegmentCols = `stream_id, seq, provider, quality, started_at, ended_at, end_reason`
	importTrailCols   = `stream_id, at, kind, provider, from_provider, reason, statuses, least_bad, stage, code, reported_at`
)

// ImportStreams stores streams with their segments and trail as given, in one
// transaction, with multi-row inserts: the way to write history in bulk
// (seeding a database, imports). There is no capacity check and no
// idempotency lookup; the active streams among them count toward their
// provider's active streams like any other.
//
// Each history must be consistent: a stream with an id, a provider, a known
// quality and status, and a start time; segments numbered from 0, each on a
// provider, the last one on the stream's provider and open exactly when the
// stream is active; an ended stream has its end time and reason (EndClient
// when empty). The migration count is the number of segments after the first,
// and trail entries get the stream's id. Errors: EInvalid (naming the history
// by index), EConflict when a stream id exists; either way nothing is stored.
func (s *Store) ImportStreams(ctx context.Context, hs []switchboard.StreamHistory) error {
	var nseg, ntrail int
	for i := range hs {
		if err := checkHistory(i, &hs[i]); err != nil {
			return err
		}
		nseg += len(hs[i].Segments)
		ntrail += len(hs[i].Trail)
	}
	if len(hs) == 0 {
		return nil
	}
	streams := make([]any, 0, len(hs)*15)
	segments := make([]any, 0, nseg*7)
	trail := make([]any, 0, ntrail*11)
	counts := map[string]*countChange{}
	count := func(p string) *countChange {
		c := counts[p]
		if c == nil {
			c = &countChange{provider: p}
			counts[p] = c
		}
		return c
	}
	for _, h := range hs {
		st := h.Stream
		streams = append(streams, st.ID, st.Room, st.UserID, string(st.Role), st.Region, string(st.Quality), st.Provider,
			string(st.Status), st.Owner, st.IdempotencyKey, dbTime(st.StartedAt), dbTime(st.LastHeartbeat),
			dbTimePtr(st.EndedAt), st.EndReason, st.Migrations)
		if st.Status == switchboard.StreamActive {
			count(st.Provider).active++
		}
		for _, g := range h.Segments {
			count(g.Provider).total++
			segments = append(segments, st.ID, g.Seq, g.Provider, string(g.Quality), dbTime(g.StartedAt), dbTimePtr(g.EndedAt), g.EndReason)
		}
		for _, e := range h.Trail {
			var statuses any
			if len(e.Statuses) > 0 {
				b, err := json.Marshal(e.Statuses)
				if err != nil {
					return fmt.Errorf("sqlstore: import streams: encode statuses: %w", err)
				}
				statuses = string(b)
			}
			trail = append(trail, st.ID, dbTime(e.At), e.Kind, e.Provider, e.From, e.Reason, statuses, e.LeastBad,
				string(e.Stage), e.Code, dbTimePtr(e.ReportedAt))
		}
	}
	changes := make([]countChange, 0, len(counts))
	for _, c := range counts {
		changes = append(changes, *c)
	}
	if s.d == postgresDialect {
		return wrap("import streams", s.copyIn(ctx, streams, segments, trail, changes))
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		err := s.bulkInsert(ctx, tx, "streams", importStreamCols, 15, streams)
		if s.d.isUnique(err) {
			return switchboard.Errorf(switchboard.EConflict, "a stream of the import exists already")
		}
		if err != nil {
			return err
		}
		if err := s.bulkInsert(ctx, tx, "stream_segments", importSegmentCols, 7, segments); err != nil {
			return err
		}
		if err := s.bulkInsert(ctx, tx, "stream_trail", importTrailCols, 11, trail); err != nil {
			return err
		}
		return s.addCounts(ctx, tx, changes...)
	})
	return wrap("import streams", err)
}

// checkHistory validates h (the i-th of an import) and fills in what may be
// left out: the trail's stream id, the end reason, the migration count.
func checkHistory(i int, h *switchboard.StreamHistory) error {
	st := &h.Stream
	field := func(name string) string { return fmt.Sprintf("streams[%d].%s", i, name) }
	switch {
	case st.ID == "":
		return switchboard.Invalid(field("id"), "is required")
	case st.Provider == "":
		return switchboard.Invalid(field("provider"), "is required")
	case !st.Quality.Valid():
		return st.Quality.Validate(field("quality"))
	case st.StartedAt.IsZero():
		return switchboard.Invalid(field("startedAt"), "is required")
	case len(h.Segments) == 0:
		return switchboard.Invalid(field("segments"), "a stream has at least one segment")
	}
	st.StartedAt = st.StartedAt.UTC()
	if st.LastHeartbeat = st.LastHeartbeat.UTC(); st.LastHeartbeat.Before(st.StartedAt) {
		st.LastHeartbeat = st.StartedAt
	}
	switch st.Status {
	case switchboard.StreamActive:
		if st.EndedAt != nil || st.EndReason != "" {
			return switchboard.Invalid(field("endedAt"), "an active stream has not ended")
		}
	case switchboard.StreamEnded:
		if st.EndedAt == nil || st.EndedAt.Before(st.StartedAt) {
			return switchboard.Invalid(field("endedAt"), "an ended stream ends at or after its start")
		}
		if st.EndReason == "" {
			st.EndReason = switchboard.EndClient
		}
	default:
		return switchboard.Invalid(field("status"), "must be active or ended")
	}
	last := len(h.Segments) - 1
	for j, g := range h.Segments {
		switch {
		case g.Seq != j:
			return switchboard.Invalid(field(fmt.Sprintf("segments[%d].seq", j)), "segments are numbered from 0 in order")
		case g.Provider == "":
			return switchboard.Invalid(field(fmt.Sprintf("segments[%d].provider", j)), "is required")
		case !g.Quality.Valid():
			return g.Quality.Validate(field(fmt.Sprintf("segments[%d].quality", j)))
		case (g.EndedAt == nil) != (j == last && st.Status == switchboard.StreamActive):
			return switchboard.Invalid(field(fmt.Sprintf("segments[%d].endedAt", j)), "only the last segment of an active stream is open")
		case g.EndedAt != nil && g.EndedAt.Before(g.StartedAt):
			return switchboard.Invalid(field(fmt.Sprintf("segments[%d].endedAt", j)), "a segment ends at or after its start")
		}
	}
	if h.Segments[last].Provider != st.Provider {
		return switchboard.Invalid(field("provider"), "is the provider of the last segment")
	}
	st.Migrations = last
	for j := range h.Trail {
		e := &h.Trail[j]
		if e.Kind == "" {
			return switchboard.Invalid(field(fmt.Sprintf("trail[%d].kind", j)), "is required")
		}
		if e.StreamID != "" && e.StreamID != st.ID {
			return switchboard.Invalid(field(fmt.Sprintf("trail[%d].streamId", j)), "is the stream's id")
		}
		e.StreamID = st.ID
	}
	return nil
}

// copyIn is ImportStreams on PostgreSQL: the rows go in with COPY, in one
// transaction with the counts, several times faster than multi-row INSERTs
// (which PostgreSQL parses and plans with thousands of parameters each).
func (s *Store) copyIn(ctx context.Context, streams, segments, trail []any, changes []countChange) error {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		sc, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("unexpected PostgreSQL driver connection %T", dc)
		}
		tx, err := sc.Conn().Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx)
		for _, t := range []struct {
			table, cols string
			vals        []any
		}{{"streams", importStreamCols, streams}, {"stream_segments", importSegmentCols, segments}, {"stream_trail", importTrailCols, trail}} {
			cols := strings.Split(t.cols, ", ")
			n := len(cols)
			_, err := tx.CopyFrom(ctx, pgx.Identifier{t.table}, cols, pgx.CopyFromSlice(len(t.vals)/n, func(i int) ([]any, error) {
				return t.vals[i*n : (i+1)*n], nil
			}))
			if s.d.isUnique(err) && t.table == "streams" {
				return switchboard.Errorf(switchboard.EConflict, "a stream of the import exists already")
			}
			if err != nil {
				return fmt.Errorf("%s: %w", t.table, err)
			}
		}
		slices.SortFunc(changes, func(a, b countChange) int { return strings.Compare(a.provider, b.provider) })
		for _, c := range changes {
			if _, err := tx.Exec(ctx, s.q(qAddCounts), c.provider, rand.IntN(s.d.countShards), c.active, c.total); err != nil {
				return fmt.Errorf("stream counts of %s: %w", c.provider, err)
			}
		}
		return tx.Commit(ctx)
	})
}

// bulkInsert inserts the rows of vals (ncols values each, in the order of
// cols) into table, importRowsPerStatement rows per statement.
func (s *Store) bulkInsert(ctx context.Context, tx *sql.Tx, table, cols string, ncols int, vals []any) error {
	rows := len(vals) / ncols
	var full *sql.Stmt
	defer func() {
		if full != nil {
			full.Close()
		}
	}()
	for done := 0; done < rows; {
		n := min(importRowsPerStatement, rows-done)
		args := vals[done*ncols : (done+n)*ncols]
		var err error
		if n == importRowsPerStatement {
			if full == nil {
				if full, err = tx.PrepareContext(ctx, s.insertRows(table, cols, ncols, n)); err != nil {
					return fmt.Errorf("%s: %w", table, err)
				}
			}
			_, err = full.ExecContext(ctx, args...)
		} else {
			_, err = tx.ExecContext(ctx, s.insertRows(table, cols, ncols, n), args...)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", table, err)
		}
		done += n
	}
	return nil
}

// insertStatements caches the multi-row INSERTs of bulkInsert, rebound for
// their dialect.
var insertStatements sync.Map // "dialect\x00table\x00rows" -> string

// insertRows returns INSERT INTO table (cols) VALUES (...), ... with n rows of
// ncols placeholders.
func (s *Store) insertRows(table, cols string, ncols, n int) string {
	key := fmt.Sprintf("%s\x00%s\x00%d", s.d.name, table, n)
	if q, ok := insertStatements.Load(key); ok {
		return q.(string)
	}
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", ncols), ", ") + ")"
	var b strings.Builder
	b.Grow(len(table) + len(cols) + 32 + n*(len(row)+2))
	b.WriteString("INSERT INTO " + table + " (" + cols + ") VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	q := s.q(b.String())
	insertStatements.Store(key, q)
	return q
}
