package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"math/rand/v2"
	"time"

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

// qStartsPG is qStartPG for a group of starts, in one statement, and so in
// one transaction and one commit: each argument is an array with an element
// per start, in the order of qStartPG's. It returns, with its number in the
// arrays (from 1), each stream started earlier with the key of a start of the
// group, which it then does not insert (looked up by key, start by start: a
// join could scan every stream). The segments and trail entries of the
// inserted streams are checked against them at the end of the statement, as
// in qStartPG. The counts of a provider's shard are
// added up before they are written, and written in order, so that groups that
// run together take their locks in the same order. Should any insert fail (a
// duplicate id or key, within the group or with a start that ran meanwhile),
// nothing of the group is written, and each start runs again on its own.
const qStartsPG = `WITH input AS (
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
			$8::text[], $9::text[], $10::text[], $11::bigint[], $12::bigint[],
			$13::bigint[], $14::text[], $15::text[], $16::text[], $17::text[], $18::text[], $19::boolean[],
			$20::text[], $21::text[], $22::bigint[], $23::integer[], $24::bytea[])
		WITH ORDINALITY AS i(id, room, user_id, role, region, quality, provider, status, owner, idempotency_key,
			started_at, last_heartbeat, t_at, t_kind, t_provider, t_from, t_reason, t_statuses, t_least_bad,
			t_stage, t_code, t_reported, shard, t_statuses_digest, n)),
	existing AS (
		SELECT i.n, s.* FROM input i CROSS JOIN LATERAL (
			SELECT ` + streamColumns + ` FROM streams s
			WHERE s.owner = i.owner AND s.idempotency_key = i.idempotency_key AND s.idempotency_key <> ''
			LIMIT 1) AS s
		WHERE i.idempotency_key <> ''),
	started AS (SELECT i.* FROM input i WHERE NOT EXISTS (SELECT 1 FROM existing e WHERE e.n = i.n)),
	st AS (
		INSERT INTO streams (id, room, user_id, role, region, quality, provider,
			status, owner, idempotency_key, started_at, last_heartbeat, ended_at, end_reason, migrations)
		SELECT id, room, user_id, role, region, quality, provider,
			status, owner, idempotency_key, started_at, last_heartbeat, NULL, '', 0
		FROM started ORDER BY n),
	seg AS (
		INSERT INTO stream_segments (stream_id, seq, provider, quality, started_at)
		SELECT id, 0, provider, quality, started_at FROM started),
	trail AS (
		INSERT INTO stream_trail
			(stream_id, at, kind, provider, from_provider, reason, statuses, least_bad, stage, code, reported_at, statuses_digest)
		SELECT id, t_at, t_kind, t_provider, t_from, t_reason, t_statuses, t_least_bad, t_stage, t_code, t_reported,
			t_statuses_digest FROM started),
	counts AS (
		INSERT INTO provider_stream_counts (provider, shard, active, total)
		SELECT provider, shard, count(*), count(*) FROM started GROUP BY provider, shard ORDER BY provider, shard
		ON CONFLICT (provider, shard) DO UPDATE SET
			active = provider_stream_counts.active + excluded.active,
			total = provider_stream_counts.total + excluded.total)
	SELECT n, id, room, user_id, role, region, quality, provider, status,
		owner, idempotency_key, started_at, last_heartbeat, ended_at, end_reason, migrations FROM existing`

// pgStartTimeout bounds the statement of a group of starts, which does not
// end with the context of the request that runs it.
const pgStartTimeout = 10 * time.Second

// writeStartsPG runs the starts of batch (without a capacity limit) in one
// statement (qStartsPG), and a lone start as qStartPG. When the statement
// fails, the starts are marked to run again each on its own, by its caller
// (startOnPool), which tells a duplicate from a failure of the database. Each
// start's caller returns once the statement has committed: an acknowledged
// start is as durable as one that ran alone.
func (s *Store) writeStartsPG(ctx context.Context, batch []*groupOp) []*groupOp {
	ctx, cancel := context.WithTimeout(ctx, pgStartTimeout)
	defer cancel()
	if len(batch) == 1 {
		op := batch[0]
		op.got, op.created, op.err = s.startOnPool(ctx, op.st, op.first)
		return batch
	}
	if err := s.startsPG(ctx, batch); err != nil {
		for _, op := range batch {
			op.got, op.created, op.err, op.retry = switchboard.Stream{}, false, nil, true
		}
	}
	return batch
}

// startsPG runs qStartsPG for batch and sets the outcome of each start.
func (s *Store) startsPG(ctx context.Context, batch []*groupOp) error {
	n := len(batch)
	var (
		ids, rooms, users, roles, regions, qualities = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		providers, statuses, owners, keys            = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		started, heartbeats, ats                     = make([]int64, n), make([]int64, n), make([]int64, n)
		kinds, tProviders, froms, reasons            = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		tStatuses                                    = make([]*string, n) // NULL: none, or named by digest
		tDigests                                     = make([][]byte, n)  // NULL: inline or none
		leastBad                                     = make([]bool, n)
		stages, codes                                = make([]string, n), make([]string, n)
		reported                                     = make([]*int64, n)
		shards                                       = make([]int32, n)
		// One shard of the counts for the whole group: a shard drawn per
		// start had a group of 20 starts on 2 providers write about half of
		// the 32 count rows, so that the groups of other replicas, running at
		// the same time, waited for its commit on one of them (the most
		// frequent wait of PostgreSQL's backends with three replicas). With
		// one shard a group writes a row per provider, and two groups meet
		// on a row one time in countShards.
		shard = int32(rand.IntN(s.d.countShards))
	)
	for i, op := range batch {
		st, first := op.st, op.first
		text, digest, err := s.trailStatuses(first.Statuses)
		if err != nil {
			return err
		}
		if digest, ok := digest.([]byte); ok {
			tDigests[i] = digest
		}
		ids[i], rooms[i], users[i], roles[i], regions[i], qualities[i] = st.ID, st.Room, st.UserID, string(st.Role), st.Region, string(st.Quality)
		providers[i], statuses[i], owners[i], keys[i] = st.Provider, string(st.Status), st.Owner, st.IdempotencyKey
		started[i], heartbeats[i], ats[i] = dbTime(st.StartedAt), dbTime(st.LastHeartbeat), dbTime(first.At)
		kinds[i], tProviders[i], froms[i], reasons[i] = first.Kind, first.Provider, first.From, first.Reason
		if text, ok := text.(string); ok {
			tStatuses[i] = &text
		}
		leastBad[i], stages[i], codes[i] = first.LeastBad, string(first.Stage), first.Code
		if first.ReportedAt != nil {
			r := dbTime(*first.ReportedAt)
			reported[i] = &r
		}
		shards[i] = shard
	}
	rows, err := s.w.QueryContext(ctx, qStartsPG, ids, rooms, users, roles, regions, qualities, providers,
		statuses, owners, keys, started, heartbeats, ats, kinds, tProviders, froms, reasons, tStatuses, leastBad,
		stages, codes, reported, shards, tDigests)
	if err != nil {
		return err
	}
	defer rows.Close()
	existing := map[int]switchboard.Stream{}
	for rows.Next() {
		var k int
		st, err := scanStream(prefixed{rows, &k})
		if err != nil {
			return err
		}
		existing[k] = st
	}
	// Committed once the rows are read to the end without an error.
	if err := rows.Err(); err != nil {
		return err
	}
	if err := rows.Close(); err != nil {
		return err
	}
	for i, op := range batch {
		if st, found := existing[i+1]; found {
			op.got, op.created, op.err = st, false, nil
		} else {
			op.got, op.created, op.err = op.st, true, nil
		}
	}
	return nil
}

// prefixed scans a row whose first column is dest, the rest for sc's caller.
type prefixed struct {
	sc   scanner
	dest any
}

func (p prefixed) Scan(dest ...any) error { return p.sc.Scan(append([]any{p.dest}, dest...)...) }

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
