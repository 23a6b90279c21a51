package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/switchboardhq/switchboard"
)

var _ switchboard.StreamStore = (*Store)(nil)

// Stream listing limits.
const (
	defaultStreamsLimit = 50
	maxStreamsLimit     = 500
)

// Segment end reason of a stream that moved to another provider.
const segmentMigrated = "migrated"

const streamColumns = `s.id, s.room, s.user_id, s.role, s.region, s.quality, s.provider, s.status,
	s.owner, s.idempotency_key, s.started_at, s.last_heartbeat, s.ended_at, s.end_reason, s.migrations`

const selectStream = `SELECT ` + streamColumns + ` FROM streams s`

// returningStream is streamColumns without the table alias, for the
// RETURNING clause of an UPDATE of streams.
const returningStream = ` RETURNING id, room, user_id, role, region, quality, provider, status,
	owner, idempotency_key, started_at, last_heartbeat, ended_at, end_reason, migrations`

// selectByKey finds a stream by its owner's idempotency key. The condition on
// the empty key lets SQLite use the partial unique index on (owner,
// idempotency_key), which holds only streams with a key: without it, it walks
// every stream of the owner, a cost that grows with the owner's history.
const selectByKey = selectStream + ` WHERE s.owner = ? AND s.idempotency_key = ? AND s.idempotency_key <> ''`

// errDuplicateStream is returned by StartStream's transaction when the insert
// hit a unique index: the stream id, or its owner's idempotency key, exists.
var errDuplicateStream = errors.New("duplicate stream")

func streamNotFound(id string) error {
	return switchboard.Errorf(switchboard.ENotFound, "stream %s not found", id)
}

func streamEnded(id string) error {
	return switchboard.Errorf(switchboard.EConflict, "stream %s has ended", id)
}

func scanStream(sc scanner) (switchboard.Stream, error) {
	var (
		st                    switchboard.Stream
		role, quality, status string
		started, heartbeat    int64
		ended                 sql.NullInt64
	)
	err := sc.Scan(&st.ID, &st.Room, &st.UserID, &role, &st.Region, &quality, &st.Provider, &status,
		&st.Owner, &st.IdempotencyKey, &started, &heartbeat, &ended, &st.EndReason, &st.Migrations)
	if err != nil {
		return st, err
	}
	st.Role, st.Quality, st.Status = switchboard.StreamRole(role), switchboard.Quality(quality), switchboard.StreamStatus(status)
	st.StartedAt, st.LastHeartbeat, st.EndedAt = goTime(started), goTime(heartbeat), goTimePtr(ended)
	return st, nil
}

// qStreamByID reads a stream by its id.
const qStreamByID = selectStream + ` WHERE s.id = ?`

// getStream reads a stream in tx (or, with a *sql.DB, outside one).
func (s *Store) getStream(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, id string) (switchboard.Stream, error) {
	st, err := scanStream(q.QueryRowContext(ctx, s.q(qStreamByID), id))
	if errors.Is(err, sql.ErrNoRows) {
		return st, streamNotFound(id)
	}
	return st, err
}

// lockStream reads a stream in a write transaction, locking its row until tx
// ends (on PostgreSQL; SQLite's one writer already excludes other writers).
func (s *Store) lockStream(ctx context.Context, tx *sql.Tx, id string) (switchboard.Stream, error) {
	st, err := scanStream(s.txRow(ctx, tx, qStreamByID+s.d.lockRow, id))
	if errors.Is(err, sql.ErrNoRows) {
		return st, streamNotFound(id)
	}
	return st, err
}

// activeStream reads, and locks, a stream that must be active: ENotFound,
// EConflict.
func (s *Store) activeStream(ctx context.Context, tx *sql.Tx, id string) (switchboard.Stream, error) {
	st, err := s.lockStream(ctx, tx, id)
	if err != nil {
		return st, err
	}
	if st.Status != switchboard.StreamActive {
		return st, streamEnded(id)
	}
	return st, nil
}

// checkCapacity fails with EUnavailable when provider already has maxActive
// active streams (maxActive <= 0: no limit). Inside a write transaction the
// count is exact: SQLite has one writer at a time, and on PostgreSQL the
// provider's capacity lock, held until tx ends, queues the writers that count.
// The count is the provider's row of provider_stream_counts, which every
// change of a stream's provider or status keeps in its own transaction: a
// few rows, whatever the number of streams.
func (s *Store) checkCapacity(ctx context.Context, tx *sql.Tx, provider string, maxActive int) error {
	if maxActive <= 0 {
		return nil
	}
	if err := s.lockKey(ctx, tx, "switchboard.capacity:"+provider); err != nil {
		return err
	}
	var n int64
	if err := s.txRow(ctx, tx, qCapacity, provider).Scan(&n); err != nil {
		return err
	}
	if n >= int64(maxActive) {
		return switchboard.Errorf(switchboard.EUnavailable, "provider %s is at capacity (%d active streams)", provider, n)
	}
	return nil
}

const qCapacity = `SELECT COALESCE(SUM(active), 0) FROM provider_stream_counts WHERE provider = ?`

// countChange is a change to a provider's stream counts.
type countChange struct {
	provider      string
	active, total int64
}

// addCounts applies changes to provider_stream_counts in tx, on one shard
// chosen at random (always 0 on SQLite), in the order of the providers' names,
// so that concurrent writers on PostgreSQL take the rows in the same order and
// do not deadlock. Called last in a transaction, so that the rows stay locked
// for as short a time as possible.
func (s *Store) addCounts(ctx context.Context, tx *sql.Tx, changes ...countChange) error {
	if len(changes) > 1 {
		slices.SortFunc(changes, func(a, b countChange) int { return strings.Compare(a.provider, b.provider) })
	}
	shard := 0
	if s.d.countShards > 1 {
		shard = rand.IntN(s.d.countShards)
	}
	for _, c := range changes {
		if c.active == 0 && c.total == 0 {
			continue
		}
		if _, err := s.txExec(ctx, tx, qAddCounts, c.provider, shard, c.active, c.total); err != nil {
			return fmt.Errorf("stream counts of %s: %w", c.provider, err)
		}
	}
	return nil
}

const qAddCounts = `INSERT INTO provider_stream_counts (provider, shard, active, total)
	VALUES (?, ?, ?, ?)
	ON CONFLICT (provider, shard) DO UPDATE SET
		active = provider_stream_counts.active + excluded.active,
		total = provider_stream_counts.total + excluded.total`

const qInsertTrail = `INSERT INTO stream_trail
	(stream_id, at, kind, provider, from_provider, reason, statuses, least_bad, stage, code, reported_at, statuses_digest)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func (s *Store) insertTrail(ctx context.Context, tx *sql.Tx, e switchboard.TrailEntry) error {
	statuses, digest, err := s.trailStatuses(e.Statuses)
	if err != nil {
		return err
	}
	var reported any
	if e.ReportedAt != nil {
		reported = dbTime(*e.ReportedAt)
	}
	_, err = s.txExec(ctx, tx, qInsertTrail,
		e.StreamID, dbTime(e.At), e.Kind, e.Provider, e.From, e.Reason, statuses, e.LeastBad, string(e.Stage), e.Code, reported, digest)
	return err
}

const qInsertSegment = `INSERT INTO stream_segments (stream_id, seq, provider, quality, started_at) VALUES (?, ?, ?, ?, ?)`

func (s *Store) insertSegment(ctx context.Context, tx *sql.Tx, streamID string, seq int, provider string, q switchboard.Quality, at time.Time) error {
	_, err := s.txExec(ctx, tx, qInsertSegment, streamID, seq, provider, string(q), dbTime(at))
	return err
}

// closeSegmentSQL ends the open segment of a stream (args: the end time
// twice, the reason, the stream id, its migration count) at that time, or at
// its start if that is earlier: a segment never has a negative length.
//
// The open segment of an active stream is the one whose seq is the stream's
// migration count (every start and migration keeps them in step, in one
// transaction), so the update names it by its unique key (stream_id, seq).
// Selecting it by ended_at IS NULL instead lets PostgreSQL choose the index on
// ended_at, when its statistics say there are few open segments, and walk
// every open segment: one per live stream.
const closeSegmentSQL = `UPDATE stream_segments
	SET ended_at = CASE WHEN started_at > ? THEN started_at ELSE ? END, end_reason = ?
	WHERE stream_id = ? AND seq = ?`

// closeSegment ends the open segment of st at at, or at its start if at is
// earlier.
func (s *Store) closeSegment(ctx context.Context, tx *sql.Tx, st switchboard.Stream, at time.Time, reason string) error {
	t := dbTime(at)
	_, err := s.txExec(ctx, tx, closeSegmentSQL, t, t, reason, st.ID, st.Migrations)
	return err
}

const qInsertStream = `INSERT INTO streams (id, room, user_id, role, region, quality, provider,
	status, owner, idempotency_key, started_at, last_heartbeat, ended_at, end_reason, migrations)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, '', 0)`

// StartStream stores s as a new active stream on s.Provider, with its first
// segment and first trail entry, in one transaction. A zero s.StartedAt is the
// clock's time; s.LastHeartbeat is at least s.StartedAt; the status is active
// and the end fields and migration count are reset. first gets the stream's id,
// and defaults to kind assign on s.Provider at the start time.
//
// When s.IdempotencyKey is set and s.Owner already has a stream with that key,
// it returns that stream and created false, changing nothing (even when the
// provider is now at capacity). When maxActive > 0 and s.Provider already has
// maxActive active streams it fails with EUnavailable. Errors: EInvalid (no
// id, no provider, an unknown quality), EConflict (the id exists), EUnavailable.
func (s *Store) StartStream(ctx context.Context, st switchboard.Stream, first switchboard.TrailEntry, maxActive int) (switchboard.Stream, bool, error) {
	st, first, err := s.newStream(st, first)
	if err != nil {
		return switchboard.Stream{}, false, err
	}
	if err := s.storeStatuses(ctx, first.Statuses); err != nil {
		return switchboard.Stream{}, false, wrap("start stream", err)
	}
	var (
		got     switchboard.Stream
		created bool
	)
	if s.d == sqliteDialect {
		// Concurrent starts share a transaction (see writeGroup).
		op := &groupOp{st: st, first: first, max: maxActive}
		s.group.run(ctx, s, op)
		got, created, err = op.got, op.created, op.err
	} else if maxActive <= 0 {
		// Nothing to count first: concurrent starts share one statement (see
		// qStartsPG), a start on its own is one statement (see qStartPG).
		op := &groupOp{st: st, first: first}
		s.group.run(ctx, s, op)
		got, created, err = op.got, op.created, op.err
		if op.retry {
			got, created, err = s.startOnPool(ctx, st, first)
		}
	} else {
		err = s.write(ctx, func(tx *sql.Tx) error {
			var err error
			got, created, err = s.startInTx(ctx, tx, st, first, maxActive) // write may run fn again
			return err
		})
	}
	if errors.Is(err, errDuplicateStream) {
		// Another start won the race (a backstop: the lookup above, under the
		// key's lock, normally finds it). The failed transaction is gone, so
		// read outside it.
		if st.IdempotencyKey != "" {
			existing, found, err := s.streamByKey(ctx, nil, st.Owner, st.IdempotencyKey)
			if err != nil {
				return switchboard.Stream{}, false, wrap("start stream", err)
			}
			if found {
				return existing, false, nil
			}
		}
		return switchboard.Stream{}, false, switchboard.Errorf(switchboard.EConflict, "stream %s already exists", st.ID)
	}
	if err != nil {
		return switchboard.Stream{}, false, wrap("start stream", err)
	}
	return got, created, nil
}

// startInTx inserts st with its first trail entry in tx, or returns the
// stream started earlier with st's idempotency key (created false).
func (s *Store) startInTx(ctx context.Context, tx *sql.Tx, st switchboard.Stream, first switchboard.TrailEntry, maxActive int) (switchboard.Stream, bool, error) {
	got, created, _, err := s.startOne(ctx, tx, st, first, maxActive)
	return got, created, err
}

// startOne is startInTx, and says whether a failure left tx as it was: clean
// is true when the start wrote nothing before it was refused (its provider
// at capacity, its id or key taken: SQLite undoes the one failed insert, and
// such a failure leaves the transaction open), so that the other starts of
// its group can go on in tx without a savepoint.
func (s *Store) startOne(ctx context.Context, tx *sql.Tx, st switchboard.Stream, first switchboard.TrailEntry, maxActive int) (got switchboard.Stream, created, clean bool, err error) {
	if st.IdempotencyKey != "" {
		// Starts with the same key queue here, so that the later one finds
		// the earlier (a no-op on SQLite, whose one writer queues them all).
		if err := s.lockKey(ctx, tx, "switchboard.stream-key:"+st.Owner+"\n"+st.IdempotencyKey); err != nil {
			return switchboard.Stream{}, false, false, err
		}
		existing, found, err := s.streamByKey(ctx, tx, st.Owner, st.IdempotencyKey)
		if found || err != nil {
			return existing, false, false, err
		}
	}
	if clean, err := s.insertStream(ctx, tx, st, first, maxActive); err != nil {
		return switchboard.Stream{}, false, clean, err
	}
	return st, true, false, nil
}

// newStream checks the stream that StartStream is given and fills in what it
// leaves to the store, in st and in its first trail entry.
func (s *Store) newStream(st switchboard.Stream, first switchboard.TrailEntry) (switchboard.Stream, switchboard.TrailEntry, error) {
	switch {
	case st.ID == "":
		return st, first, switchboard.Invalid("id", "is required")
	case st.Provider == "":
		return st, first, switchboard.Invalid("provider", "is required")
	case !st.Quality.Valid():
		return st, first, st.Quality.Validate("quality")
	}
	st.StartedAt = s.nowOr(st.StartedAt)
	st.LastHeartbeat = st.LastHeartbeat.UTC()
	if st.LastHeartbeat.Before(st.StartedAt) {
		st.LastHeartbeat = st.StartedAt
	}
	st.Status, st.EndedAt, st.EndReason, st.Migrations = switchboard.StreamActive, nil, "", 0
	first.StreamID = st.ID
	if first.At.IsZero() {
		first.At = st.StartedAt
	}
	first.At = first.At.UTC()
	if first.Kind == "" {
		first.Kind = switchboard.TrailAssign
	}
	if first.Provider == "" {
		first.Provider = st.Provider
	}
	return st, first, nil
}

// streamByKey finds the stream that owner started with the idempotency key:
// in the write transaction tx, or on the readers when tx is nil. found is
// false when there is none.
func (s *Store) streamByKey(ctx context.Context, tx *sql.Tx, owner, key string) (st switchboard.Stream, found bool, err error) {
	var row *sql.Row
	if tx != nil {
		row = s.txRow(ctx, tx, selectByKey, owner, key)
	} else {
		row = s.readRow(ctx, selectByKey, owner, key)
	}
	st, err = scanStream(row)
	if errors.Is(err, sql.ErrNoRows) {
		return switchboard.Stream{}, false, nil
	}
	return st, err == nil, err
}

// insertStream stores st, checked by newStream, with its first segment and
// first trail entry, in tx: errDuplicateStream when its id or its owner's
// idempotency key exists, EUnavailable when its provider is at maxActive.
// clean is true when it failed for one of those two reasons, having changed
// nothing.
func (s *Store) insertStream(ctx context.Context, tx *sql.Tx, st switchboard.Stream, first switchboard.TrailEntry, maxActive int) (clean bool, err error) {
	if err := s.checkCapacity(ctx, tx, st.Provider, maxActive); err != nil {
		return switchboard.IsCode(err, switchboard.EUnavailable), err
	}
	if s.d == postgresDialect {
		// The four inserts in one round trip. The key was looked up under
		// its lock: a stream found now is a duplicate all the same.
		_, found, err := s.startPG(ctx, tx, st, first)
		if err == nil && found {
			return true, errDuplicateStream
		}
		return false, err
	}
	_, err = s.txExec(ctx, tx, qInsertStream,
		st.ID, st.Room, st.UserID, string(st.Role), st.Region, string(st.Quality), st.Provider,
		string(st.Status), st.Owner, st.IdempotencyKey, dbTime(st.StartedAt), dbTime(st.LastHeartbeat))
	if s.d.isUnique(err) {
		// A single-row insert checks every unique index before it writes.
		return true, errDuplicateStream
	}
	if err != nil {
		return false, err
	}
	if err := s.insertSegment(ctx, tx, st.ID, 0, st.Provider, st.Quality, st.StartedAt); err != nil {
		return false, err
	}
	if err := s.insertTrail(ctx, tx, first); err != nil {
		return false, err
	}
	return false, s.addCounts(ctx, tx, countChange{provider: st.Provider, active: 1, total: 1})
}

// GetStream returns a stream. Errors: ENotFound.
func (s *Store) GetStream(ctx context.Context, id string) (switchboard.Stream, error) {
	// Prepared (readRow): a heartbeat whose stream is not in memory reads it
	// here, and SQLite parsing the query was most of the read.
	st, err := scanStream(s.readRow(ctx, qStreamByID, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = streamNotFound(id)
	}
	if err != nil {
		return switchboard.Stream{}, wrap("get stream", err)
	}
	return st, nil
}

// StreamTrail returns a stream's trail in the order it was recorded (its
// first entry is the assignment). Errors: ENotFound.
func (s *Store) StreamTrail(ctx context.Context, id string) ([]switchboard.TrailEntry, error) {
	es := []switchboard.TrailEntry{}
	err := s.read(ctx, func(tx *sql.Tx) error {
		if _, err := s.getStream(ctx, tx, id); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, s.q(`SELECT t.id, t.stream_id, t.at, t.kind, t.provider, t.from_provider, t.reason,
			COALESCE(t.statuses, ss.statuses), t.least_bad, t.stage, t.code, t.reported_at
			FROM stream_trail t LEFT JOIN status_sets ss ON ss.digest = t.statuses_digest
			WHERE t.stream_id = ? ORDER BY t.id`), id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				e        switchboard.TrailEntry
				at       int64
				statuses sql.NullString
				stage    string
				reported sql.NullInt64
			)
			if err := rows.Scan(&e.ID, &e.StreamID, &at, &e.Kind, &e.Provider, &e.From, &e.Reason,
				&statuses, &e.LeastBad, &stage, &e.Code, &reported); err != nil {
				return err
			}
			e.At, e.Stage, e.ReportedAt = goTime(at), switchboard.Stage(stage), goTimePtr(reported)
			if statuses.Valid {
				if err := json.Unmarshal([]byte(statuses.String), &e.Statuses); err != nil {
					return fmt.Errorf("trail entry %d: statuses: %w", e.ID, err)
				}
			}
			es = append(es, e)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrap("stream trail", err)
	}
	return es, nil
}

// qStreamWasOn looks at the segments of one stream. The condition on seq,
// always true, makes SQLite walk the index on (stream_id, seq), a few entries;
// without it, it prefers the index on (provider, ended_at) and walks every
// segment the provider ever had.
const qStreamWasOn = `SELECT EXISTS (SELECT 1 FROM stream_segments WHERE stream_id = ? AND seq >= 0 AND provider = ?)`

// StreamWasOn reports whether the stream id has been on provider: assigned to
// it at its start or by a migration (false for an unknown stream). It reads the
// stream's segments through their index, not its trail, which every reported
// failure makes longer.
func (s *Store) StreamWasOn(ctx context.Context, id, provider string) (bool, error) {
	var on bool
	if err := s.readRow(ctx, qStreamWasOn, id, provider).Scan(&on); err != nil {
		return false, wrap("stream was on", err)
	}
	return on, nil
}

// ListStreams returns the streams f selects, newest first (by start time, then
// id): at most f.Limit (50 when <= 0, at most 500). Errors: EInvalid for an
// unknown f.Status.
func (s *Store) ListStreams(ctx context.Context, f switchboard.StreamFilter) ([]switchboard.Stream, error) {
	switch f.Status {
	case "", switchboard.StreamActive, switchboard.StreamEnded:
	default:
		return nil, switchboard.Invalid("status", "must be active or ended")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = defaultStreamsLimit
	}
	limit = min(limit, maxStreamsLimit)
	query, args := listStreamsSQL(s.d, f)
	rows, err := s.r.QueryContext(ctx, s.q(query), append(args, limit)...)
	if err != nil {
		return nil, wrap("list streams", err)
	}
	defer rows.Close()
	sts := []switchboard.Stream{}
	for rows.Next() {
		st, err := scanStream(rows)
		if err != nil {
			return nil, wrap("list streams", err)
		}
		sts = append(sts, st)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("list streams", err)
	}
	return sts, nil
}

// listStreamsSQL is ListStreams' query for f (f.Status checked) and its
// arguments but the last, the limit.
func listStreamsSQL(d *dialect, f switchboard.StreamFilter) (string, []any) {
	query := selectStream
	if f.Status == switchboard.StreamActive && f.Provider != "" {
		query += d.liveByProvider
	}
	query += ` WHERE 1 = 1`
	var args []any
	if f.Status != "" {
		// Written out, not bound: only then may the planners walk the
		// partial index of live streams (streams_heartbeat_active), which
		// holds their providers.
		query += ` AND s.status = '` + string(f.Status) + `'`
	}
	if f.Provider != "" {
		query += ` AND s.provider = ?`
		args = append(args, f.Provider)
	}
	if f.Owner != "" {
		query += ` AND s.owner = ?`
		args = append(args, f.Owner)
	}
	if f.IdempotencyKey != "" {
		query += ` AND s.idempotency_key = ? AND s.idempotency_key <> ''` // see selectByKey
		args = append(args, f.IdempotencyKey)
	}
	if c := f.Before; c != nil {
		t := dbTime(c.StartedAt)
		query += ` AND (s.started_at < ? OR (s.started_at = ? AND s.id < ?))`
		args = append(args, t, t, c.ID)
	}
	return query + ` ORDER BY s.started_at DESC, s.id DESC LIMIT ?`, args
}

// qHeartbeat moves the last heartbeat of an active stream. The status is
// checked in the SET, not the WHERE, so that the row is found by its primary
// key: with status = 'active' in the WHERE, PostgreSQL may choose the partial
// index of active streams and walk all of them.
const qHeartbeat = `UPDATE streams
	SET last_heartbeat = CASE WHEN status = 'active' AND last_heartbeat < ? THEN ? ELSE last_heartbeat END
	WHERE id = ?` + returningStream

// Heartbeat records that an active stream is alive at at (the clock's time
// when zero) and returns the stream. The last heartbeat never moves back: a
// heartbeat older than the last one changes nothing. Errors: ENotFound,
// EConflict when ended.
func (s *Store) Heartbeat(ctx context.Context, id string, at time.Time) (switchboard.Stream, error) {
	t := dbTime(s.nowOr(at))
	var st switchboard.Stream
	err := s.write(ctx, func(tx *sql.Tx) error {
		// One statement: the update finds (and on PostgreSQL locks) the row
		// through the primary key and returns it; an ended stream is left as
		// it was.
		var err error
		st, err = scanStream(s.txRow(ctx, tx, qHeartbeat, t, t, id))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return streamNotFound(id)
		case err != nil:
			return err
		case st.Status != switchboard.StreamActive:
			return streamEnded(id)
		}
		return nil
	})
	if err != nil {
		return switchboard.Stream{}, wrap("heartbeat", err)
	}
	return st, nil
}

const qHeartbeatBatch = `UPDATE streams SET last_heartbeat = ?
	WHERE id = ? AND status = 'active' AND last_heartbeat < ?`

// RecordHeartbeats records, in one transaction, that each stream of beats is
// alive at its time, as Heartbeat does for one: the last heartbeat never
// moves back, and ended or unknown streams are left as they are (no error:
// a heartbeat acknowledged from memory may race the stream's end). The
// streams are written in the order of their ids: replicas flush their
// batches together, a stream's heartbeats may reach several of them, and
// batches that took the same rows in different orders would wait for each
// other until PostgreSQL ended one as a deadlock (a second each, holding
// those rows from every other writer meanwhile).
func (s *Store) RecordHeartbeats(ctx context.Context, beats map[string]time.Time) error {
	if len(beats) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(beats))
	err := s.write(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			at := beats[id]
			t := dbTime(s.nowOr(at))
			if _, err := s.txExec(ctx, tx, qHeartbeatBatch, t, id, t); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap("record heartbeats", err)
}

// AppendTrail adds e to the trail of the active stream e.StreamID. A zero e.At
// is the clock's time. Errors: EInvalid (no kind), ENotFound, EConflict when
// the stream has ended.
func (s *Store) AppendTrail(ctx context.Context, e switchboard.TrailEntry) error {
	if e.Kind == "" {
		return switchboard.Invalid("kind", "is required")
	}
	e.At = s.nowOr(e.At)
	// Failure reports come in storms too: on SQLite they share transactions.
	err := s.grouped(ctx, func(ctx context.Context, tx *sql.Tx) (clean bool, err error) {
		if _, err := s.activeStream(ctx, tx, e.StreamID); err != nil {
			return true, err
		}
		return false, s.insertTrail(ctx, tx, e)
	})
	return wrap("append trail", err)
}

const (
	qCloseSegmentReturning = closeSegmentSQL + ` RETURNING seq, ended_at`
	qMoveStream            = `UPDATE streams SET provider = ?, migrations = migrations + 1,
	last_heartbeat = CASE WHEN last_heartbeat < ? THEN ? ELSE last_heartbeat END WHERE id = ?` + returningStream
)

// MigrateStream moves the active stream id to e.Provider at e.At (the clock's
// time when zero), in one transaction: the segment on the current provider
// ends with reason "migrated", one on e.Provider starts, the migration count
// grows by one, the last heartbeat becomes at least e.At (the client that asked
// is alive) and the trail gets e, with From the provider left and kind migrate
// by default. maxActive is e.Provider's capacity, as in StartStream.
// Errors: EInvalid (no provider, or the current one), ENotFound, EConflict
// when ended, EUnavailable.
func (s *Store) MigrateStream(ctx context.Context, id string, e switchboard.TrailEntry, maxActive int) (switchboard.Stream, error) {
	if e.Provider == "" {
		return switchboard.Stream{}, switchboard.Invalid("provider", "is required: the provider to move to")
	}
	e.StreamID, e.At = id, s.nowOr(e.At)
	if e.Kind == "" {
		e.Kind = switchboard.TrailMigrate
	}
	var moved switchboard.Stream
	// Moves come in storms (a provider's streams failing over to their
	// standbys together): on SQLite they share transactions, with the starts.
	err := s.grouped(ctx, func(ctx context.Context, tx *sql.Tx) (clean bool, err error) {
		st, err := s.activeStream(ctx, tx, id)
		if err != nil {
			return true, err
		}
		if st.Provider == e.Provider {
			return true, switchboard.Invalid("provider", "the stream is already on %s", e.Provider)
		}
		if err := s.checkCapacity(ctx, tx, e.Provider, maxActive); err != nil {
			return true, err
		}
		// The open segment ends at e.At, never before it started, and the
		// new one starts where it ended.
		var seq int
		var ended int64
		t := dbTime(e.At)
		if err := s.txRow(ctx, tx, qCloseSegmentReturning, t, t, segmentMigrated, id, st.Migrations).Scan(&seq, &ended); err != nil {
			return false, fmt.Errorf("open segment of stream %s: %w", id, err)
		}
		if err := s.insertSegment(ctx, tx, id, seq+1, e.Provider, st.Quality, goTime(ended)); err != nil {
			return false, err
		}
		if moved, err = scanStream(s.txRow(ctx, tx, qMoveStream, e.Provider, ended, ended, id)); err != nil {
			return false, err
		}
		e.From = st.Provider
		if err := s.insertTrail(ctx, tx, e); err != nil {
			return false, err
		}
		return false, s.addCounts(ctx, tx, countChange{provider: st.Provider, active: -1},
			countChange{provider: e.Provider, active: 1, total: 1})
	})
	if err != nil {
		return switchboard.Stream{}, wrap("migrate stream", err)
	}
	return moved, nil
}

const qEndStream = `UPDATE streams SET status = 'ended', ended_at = ?, end_reason = ? WHERE id = ?`

// endStream ends the active stream st at at (not before it started) with
// reason: its open segment closes, and the trail gets an end entry.
func (s *Store) endStream(ctx context.Context, tx *sql.Tx, st switchboard.Stream, at time.Time, reason string) (switchboard.Stream, error) {
	if at.Before(st.StartedAt) {
		at = st.StartedAt
	}
	if err := s.closeSegment(ctx, tx, st, at, reason); err != nil {
		return st, err
	}
	if _, err := s.txExec(ctx, tx, qEndStream, dbTime(at), reason, st.ID); err != nil {
		return st, err
	}
	if err := s.insertTrail(ctx, tx, switchboard.TrailEntry{StreamID: st.ID, At: at, Kind: switchboard.TrailEnd,
		Provider: st.Provider, Reason: reason}); err != nil {
		return st, err
	}
	st.Status, st.EndedAt, st.EndReason = switchboard.StreamEnded, &at, reason
	return st, nil
}

// EndStream ends the active stream id at at (the clock's time when zero, and
// never before the stream started) with reason (EndClient when empty): its
// segment closes with that reason and the trail gets an end entry. It reports
// whether this call ended the stream: ending an ended stream returns it
// unchanged and false. Errors: ENotFound.
func (s *Store) EndStream(ctx context.Context, id string, at time.Time, reason string) (switchboard.Stream, bool, error) {
	at = s.nowOr(at)
	if reason == "" {
		reason = switchboard.EndClient
	}
	var (
		st    switchboard.Stream
		ended bool
	)
	// Ends come in storms too (an event's audience leaving together): on
	// SQLite they share transactions.
	err := s.grouped(ctx, func(ctx context.Context, tx *sql.Tx) (clean bool, err error) {
		ended = false // the group may run fn again
		if st, err = s.lockStream(ctx, tx, id); err != nil || st.Status != switchboard.StreamActive {
			return true, err
		}
		if st, err = s.endStream(ctx, tx, st, at, reason); err != nil {
			return false, err
		}
		if err := s.addCounts(ctx, tx, countChange{provider: st.Provider, active: -1}); err != nil {
			return false, err
		}
		ended = true
		return false, nil
	})
	if err != nil {
		return switchboard.Stream{}, false, wrap("end stream", err)
	}
	return st, ended, nil
}

// abandonBatch bounds the streams one transaction of AbandonStale ends.
const abandonBatch = 500

// AbandonStale ends every active stream whose last heartbeat is before
// cutoff, at its last heartbeat with reason EndAbandoned, and returns them as
// ended, oldest heartbeat first. It finds them in one read, then ends them
// in transactions of at most abandonBatch streams (s.abandonBatch in tests),
// each reading its streams again so that one that sent a heartbeat meanwhile
// stays active: ending them all in one transaction held the one SQLite
// writer for as long as 200,000 streams took to end (the benchmark's starts,
// abandoned two minutes later), and every start waited. On an error it
// returns the streams already ended with it.
func (s *Store) AbandonStale(ctx context.Context, cutoff time.Time) ([]switchboard.Stream, error) {
	var ids []string
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q(`SELECT s.id FROM streams s WHERE s.status = 'active' AND s.last_heartbeat < ?
			ORDER BY s.last_heartbeat, s.id`), dbTime(cutoff))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrap("abandon stale streams", err)
	}
	if s.abandonHook != nil {
		s.abandonHook()
	}
	batch := abandonBatch
	if s.abandonBatch > 0 {
		batch = s.abandonBatch
	}
	ended := []switchboard.Stream{}
	for len(ids) > 0 {
		n := min(len(ids), batch)
		got, err := s.abandon(ctx, ids[:n], cutoff)
		if err != nil {
			return ended, wrap("abandon stale streams", err)
		}
		ended = append(ended, got...)
		ids = ids[n:]
	}
	return ended, nil
}

// abandon ends, in one transaction, those of the streams ids that are still
// active with a last heartbeat before cutoff, in the order of ids.
func (s *Store) abandon(ctx context.Context, ids []string, cutoff time.Time) ([]switchboard.Stream, error) {
	var ended []switchboard.Stream
	err := s.write(ctx, func(tx *sql.Tx) error {
		ended = ended[:0] // write may run fn again
		args := make([]any, 0, len(ids)+1)
		args = append(args, dbTime(cutoff))
		for _, id := range ids {
			args = append(args, id)
		}
		rows, err := tx.QueryContext(ctx, s.q(selectStream+` WHERE s.status = 'active' AND s.last_heartbeat < ?
			AND s.id IN (?`+strings.Repeat(", ?", len(ids)-1)+`)
			ORDER BY s.last_heartbeat, s.id`+s.d.lockRow), args...)
		if err != nil {
			return err
		}
		var stale []switchboard.Stream
		for rows.Next() {
			st, err := scanStream(rows)
			if err != nil {
				rows.Close()
				return err
			}
			stale = append(stale, st)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		gone := map[string]int64{}
		for _, st := range stale {
			st, err := s.endStream(ctx, tx, st, st.LastHeartbeat, switchboard.EndAbandoned)
			if err != nil {
				return fmt.Errorf("stream %s: %w", st.ID, err)
			}
			ended = append(ended, st)
			gone[st.Provider]--
		}
		changes := make([]countChange, 0, len(gone))
		for p, n := range gone {
			changes = append(changes, countChange{provider: p, active: n})
		}
		return s.addCounts(ctx, tx, changes...)
	})
	if err != nil {
		return nil, err
	}
	return ended, nil
}

// ActiveCounts returns the number of active streams per provider; providers
// with none are missing.
//
// It reads provider_stream_counts: a few rows per provider, however many
// streams are live or have been.
func (s *Store) ActiveCounts(ctx context.Context) (map[string]int64, error) {
	counts := map[string]int64{}
	if err := s.groupCounts(ctx, s.r, counts, activeCountsSQL); err != nil {
		return nil, wrap("active counts", err)
	}
	return counts, nil
}

const activeCountsSQL = `SELECT provider, SUM(active) FROM provider_stream_counts
	GROUP BY provider HAVING SUM(active) <> 0`

// groupCounts adds the (provider, count) rows of query to into.
func (s *Store) groupCounts(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, into map[string]int64, query string, args ...any) error {
	rows, err := q.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			name string
			n    int64
		)
		if err := rows.Scan(&name, &n); err != nil {
			return err
		}
		into[name] += n
	}
	return rows.Err()
}

// usageSum adds up durations without overflow: a month of thousands of streams
// is more nanoseconds than an int64 holds.
type usageSum struct{ secs, nanos int64 }

func (u *usageSum) add(d time.Duration) {
	u.secs += int64(d / time.Second)
	u.nanos += int64(d % time.Second)
}

func (u usageSum) seconds() float64 { return float64(u.secs) + float64(u.nanos)/1e9 }

// Usage reports, ordered by name, every provider that has had a stream (deleted
// providers included): its active streams now, its assignments ever (starts
// and migrations in) and, within [from, to), its stream seconds per quality
// (qualities without any are missing), the migrations to it and the migrations
// away from it. A segment counts for the part of it inside the period; an open
// segment runs up to its stream's last heartbeat. All of it is read from one
// snapshot.
func (s *Store) Usage(ctx context.Context, from, to time.Time) ([]switchboard.ProviderUsage, error) {
	us := usages{}
	f, t := dbTime(from), dbTime(to)
	err := s.read(ctx, func(tx *sql.Tx) error {
		if err := s.usageCounts(ctx, tx, us, f, t); err != nil {
			return err
		}
		return s.usageSeconds(ctx, tx, us, f, t)
	})
	if err != nil {
		return nil, wrap("usage", err)
	}
	return us.sorted(), nil
}

// usages are the providers' usage that Usage gathers, by name.
type usages map[string]*switchboard.ProviderUsage

// of returns the usage of provider name, adding it when missing.
func (us usages) of(name string) *switchboard.ProviderUsage {
	u := us[name]
	if u == nil {
		u = &switchboard.ProviderUsage{Provider: name, Seconds: map[switchboard.Quality]float64{}}
		us[name] = u
	}
	return u
}

// sorted returns the usages ordered by provider name.
func (us usages) sorted() []switchboard.ProviderUsage {
	out := make([]switchboard.ProviderUsage, 0, len(us))
	for _, u := range us {
		out = append(out, *u)
	}
	slices.SortFunc(out, func(a, b switchboard.ProviderUsage) int { return strings.Compare(a.Provider, b.Provider) })
	return out
}

// usageCounts reads into us, in tx, the streams of every provider now and
// ever, and its failovers in and out within [f, t) (stored times).
func (s *Store) usageCounts(ctx context.Context, tx *sql.Tx, us usages, f, t int64) error {
	counts := []struct {
		query string
		args  []any
		field func(*switchboard.ProviderUsage) *int64
	}{
		// The counts of streams now and ever are kept (see addCounts):
		// reading them does not grow with the history.
		{`SELECT provider, SUM(total) FROM provider_stream_counts GROUP BY provider HAVING SUM(total) <> 0`, nil,
			func(u *switchboard.ProviderUsage) *int64 { return &u.TotalStreams }},
		{activeCountsSQL, nil,
			func(u *switchboard.ProviderUsage) *int64 { return &u.ActiveStreams }},
		{`SELECT provider, COUNT(*) FROM stream_segments WHERE started_at >= ? AND started_at < ? AND seq > 0
			GROUP BY provider`, []any{f, t},
			func(u *switchboard.ProviderUsage) *int64 { return &u.FailoversIn }},
		{`SELECT provider, COUNT(*) FROM stream_segments WHERE ended_at >= ? AND ended_at < ? AND end_reason = ?
			GROUP BY provider`, []any{f, t, segmentMigrated},
			func(u *switchboard.ProviderUsage) *int64 { return &u.FailoversOut }},
	}
	for _, c := range counts {
		m := map[string]int64{}
		if err := s.groupCounts(ctx, tx, m, c.query, c.args...); err != nil {
			return err
		}
		for name, n := range m {
			*c.field(us.of(name)) = n
		}
	}
	return nil
}

// usageSeconds adds to us, from tx, the stream seconds per quality of every
// provider within [f, t) (stored times).
//
// It reads only the segments that overlap the period, each half found through
// the index on ended_at (a range, then NULL), so that neither reads the
// history before the period; the overlap is computed here.
func (s *Store) usageSeconds(ctx context.Context, tx *sql.Tx, us usages, f, t int64) error {
	rows, err := tx.QueryContext(ctx, s.q(`SELECT g.provider, g.quality, g.started_at, g.ended_at
		FROM stream_segments g WHERE g.ended_at > ? AND g.started_at < ?
		UNION ALL
		SELECT g.provider, g.quality, g.started_at, st.last_heartbeat
		FROM stream_segments g JOIN streams st ON st.id = g.stream_id
		WHERE g.ended_at IS NULL AND g.started_at < ? AND st.last_heartbeat > ?`), f, t, t, f)
	if err != nil {
		return err
	}
	defer rows.Close()
	type key struct {
		provider string
		quality  switchboard.Quality
	}
	sums := map[key]*usageSum{}
	for rows.Next() {
		var (
			name, quality string
			start, end    int64
		)
		if err := rows.Scan(&name, &quality, &start, &end); err != nil {
			return err
		}
		start, end = max(start, f), min(end, t)
		if end <= start {
			continue
		}
		k := key{name, switchboard.Quality(quality)}
		if sums[k] == nil {
			sums[k] = &usageSum{}
		}
		sums[k].add(time.Duration(end - start))
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for k, sum := range sums {
		us.of(k.provider).Seconds[k.quality] = sum.seconds()
	}
	return nil
}

// SaveMonthlyUsage stores the frozen usage of past months in one transaction,
// replacing what was stored for the same provider and month. Errors: EInvalid
// (no provider, a month that is not YYYY-MM).
func (s *Store) SaveMonthlyUsage(ctx context.Context, us []switchboard.MonthlyUsage) error {
	type row struct {
		u       switchboard.MonthlyUsage
		minutes string
	}
	rows := make([]row, len(us))
	for i, u := range us {
		if u.Provider == "" {
			return switchboard.Invalid(fmt.Sprintf("usage[%d].provider", i), "is required")
		}
		if m, err := time.Parse("2006-01", u.Month); err != nil || m.Format("2006-01") != u.Month {
			return switchboard.Invalid(fmt.Sprintf("usage[%d].month", i), "must be a month as YYYY-MM")
		}
		minutes := u.Minutes
		if minutes == nil {
			minutes = map[switchboard.Quality]float64{}
		}
		b, err := json.Marshal(minutes)
		if err != nil {
			return switchboard.Invalid(fmt.Sprintf("usage[%d].minutes", i), "cannot be encoded: %v", err)
		}
		rows[i] = row{u, string(b)}
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		for _, r := range rows {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO usage_monthly (provider, month, minutes, cost, currency)
				VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (provider, month) DO UPDATE SET
					minutes = excluded.minutes, cost = excluded.cost, currency = excluded.currency`),
				r.u.Provider, r.u.Month, r.minutes, r.u.Cost, r.u.Currency); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap("save monthly usage", err)
}

// MonthlyUsageOf returns the frozen months of provider, or of all providers
// when provider is "", newest first (then by provider).
func (s *Store) MonthlyUsageOf(ctx context.Context, provider string) ([]switchboard.MonthlyUsage, error) {
	query := `SELECT provider, month, minutes, cost, currency FROM usage_monthly`
	var args []any
	if provider != "" {
		query += ` WHERE provider = ?`
		args = append(args, provider)
	}
	rows, err := s.r.QueryContext(ctx, s.q(query+` ORDER BY month DESC, provider`), args...)
	if err != nil {
		return nil, wrap("monthly usage", err)
	}
	defer rows.Close()
	us := []switchboard.MonthlyUsage{}
	for rows.Next() {
		var (
			u       switchboard.MonthlyUsage
			minutes string
		)
		if err := rows.Scan(&u.Provider, &u.Month, &minutes, &u.Cost, &u.Currency); err != nil {
			return nil, wrap("monthly usage", err)
		}
		if err := json.Unmarshal([]byte(minutes), &u.Minutes); err != nil {
			return nil, wrap("monthly usage", fmt.Errorf("%s %s: minutes: %w", u.Provider, u.Month, err))
		}
		us = append(us, u)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("monthly usage", err)
	}
	return us, nil
}

// MarkJobRan records that job ran for period at at (the clock's time when
// zero) and reports whether this call recorded it: false when it had run
// already, so that of concurrent callers (or replicas) exactly one gets true.
func (s *Store) MarkJobRan(ctx context.Context, job, period string, at time.Time) (bool, error) {
	if job == "" {
		return false, switchboard.Invalid("job", "is required")
	}
	t := dbTime(s.nowOr(at))
	var recorded bool
	err := s.write(ctx, func(tx *sql.Tx) error {
		recorded = false // write may run fn again
		res, err := tx.ExecContext(ctx, s.q(`INSERT INTO job_runs (job, period, at) VALUES (?, ?, ?)
			ON CONFLICT (job, period) DO NOTHING`), job, period, t)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		recorded = n == 1
		return err
	})
	if err != nil {
		return false, wrap("mark job ran", err)
	}
	return recorded, nil
}

// JobRan reports whether job ran for period.
func (s *Store) JobRan(ctx context.Context, job, period string) (bool, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM job_runs WHERE job = ? AND period = ?`), job, period).
		Scan(&n); err != nil {
		return false, wrap("job ran", err)
	}
	return n > 0, nil
}
