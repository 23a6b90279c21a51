package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"

	"github.com/switchboardhq/switchboard"
)

// qStartPG is a stream start on PostgreSQL in one statement: the stream, its
// first segment, its first trail entry and its provider's count, unless its
// owner already has a stream with its idempotency key, which it then returns
// (and changes nothing). Run on its own, it is a transaction of its own, in
// one round trip instead of the six of BEGIN, four statements and COMMIT:
// those round trips, each a wake-up of the server's backend and of the
// replica, were most of a start's CPU on both sides.
//
// Without a lock on the key, two starts with the same key that run together
// both find no stream; the later insert then waits for the earlier on the
// unique index and fails when it commits, and StartStream reads the winner
// (errDuplicateStream). The foreign keys of the segment and the trail entry
// are checked at the end of the statement, when the stream is there.
//
// Arguments: the stream's 12 columns of qInsertStream, then the trail entry's
// 10 of qInsertTrail after stream_id, then the count's shard, then the trail
// entry's statuses digest.
const qStartPG = `WITH existing AS (
		SELECT ` + streamColumns + ` FROM streams s
		WHERE $10::text <> '' AND s.owner = $9::text AND s.idempotency_key = $10::text AND s.idempotency_key <> ''),
	st AS (
		INSERT INTO streams (id, room, user_id, role, region, quality, provider,
			status, owner, idempotency_key, started_at, last_heartbeat, ended_at, end_reason, migrations)
		SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text,
			$8::text, $9::text, $10::text, $11::bigint, $12::bigint, NULL, '', 0
		WHERE NOT EXISTS (SELECT 1 FROM existing)
		RETURNING id),
	seg AS (
		INSERT INTO stream_segments (stream_id, seq, provider, quality, started_at)
		SELECT id, 0, $7::text, $6::text, $11::bigint FROM st),
	trail AS (
		INSERT INTO stream_trail
			(stream_id, at, kind, provider, from_provider, reason, statuses, least_bad, stage, code, reported_at, statuses_digest)
		SELECT id, $13::bigint, $14::text, $15::text, $16::text, $17::text, $18::text, $19::boolean, $20::text, $21::text, $22::bigint, $24::bytea FROM st),
	counts AS (
		INSERT INTO provider_stream_counts (provider, shard, active, total)
		SELECT $7::text, $23::integer, 1, 1 FROM st
		ON CONFLICT (provider, shard) DO UPDATE SET
			active = provider_stream_counts.active + excluded.active,
			total = provider_stream_counts.total + excluded.total)
	SELECT * FROM existing`

// startPG runs qStartPG for st, checked by newStream, and first on q: the
// pool (a transaction of its own) or a write transaction. It returns the
// stream started earlier with st's idempotency key and true, or false when it
// inserted st; errDuplicateStream when st's id or key exists after all.
func (s *Store) startPG(ctx context.Context, q interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}, st switchboard.Stream, first switchboard.TrailEntry) (switchboard.Stream, bool, error) {
	statuses, digest, err := s.trailStatuses(first.Statuses)
	if err != nil {
		return switchboard.Stream{}, false, err
	}
	var reported any
	if first.ReportedAt != nil {
		reported = dbTime(*first.ReportedAt)
	}
	rows, err := q.QueryContext(ctx, qStartPG,
		st.ID, st.Room, st.UserID, string(st.Role), st.Region, string(st.Quality), st.Provider,
		string(st.Status), st.Owner, st.IdempotencyKey, dbTime(st.StartedAt), dbTime(st.LastHeartbeat),
		dbTime(first.At), first.Kind, first.Provider, first.From, first.Reason, statuses, first.LeastBad,
		string(first.Stage), first.Code, reported,
		rand.IntN(s.d.countShards), digest)
	if err != nil {
		return switchboard.Stream{}, false, startPGErr(s, err)
	}
	defer rows.Close()
	var (
		existing switchboard.Stream
		found    bool
	)
	if rows.Next() {
		if existing, err = scanStream(rows); err != nil {
			return switchboard.Stream{}, false, err
		}
		found = true
	}
	// The statement has committed (or failed) only once its rows are read
	// to the end.
	for rows.Next() {
	}
	if err := rows.Err(); err != nil {
		return switchboard.Stream{}, false, startPGErr(s, err)
	}
	if err := rows.Close(); err != nil {
		return switchboard.Stream{}, false, startPGErr(s, err)
	}
	return existing, found, nil
}

func startPGErr(s *Store, err error) error {
	if s.d.isUnique(err) {
		return errDuplicateStream
	}
	return err
}

// startOnPool starts st on PostgreSQL in one statement outside a transaction
// (qStartPG), running it again when it lost a deadlock, as write does.
func (s *Store) startOnPool(ctx context.Context, st switchboard.Stream, first switchboard.TrailEntry) (switchboard.Stream, bool, error) {
	for attempt := 1; ; attempt++ {
		existing, found, err := s.startPG(ctx, s.w, st, first)
		if err == nil || errors.Is(err, errDuplicateStream) || attempt == maxWriteAttempts || !s.d.retryable(err) || ctx.Err() != nil {
			if err != nil {
				return switchboard.Stream{}, false, err
			}
			if found {
				return existing, false, nil
			}
			return st, true, nil
		}
	}
}
