package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"time"

	"github.com/switchboardhq/switchboard"
)

// History retention.
const (
	// hourlyRetention is how long CompactHistory keeps hourly rollups, counted
	// back from the day it is given: a month of hourly charts, and some slack.
	hourlyRetention = 35 * 24 * time.Hour
	dayLength       = 24 * time.Hour

	defaultTransitionsLimit = 100
	maxTransitionsLimit     = 10000
)

const healthColumns = `h.status, h.total_checks, h.successful_checks, h.consecutive_failures,
	h.consecutive_successes, h.down, h.last_check, h.last_success, h.latency_ms, h.latency_sum_ms,
	h.total_requests, h.failed_requests, h.last_error_stage, h.last_error_message, h.last_error_at,
	h.status_reason, h.status_since, h.window_span, h.window_at, h.window_checks,
	h.window_successes, h.window_client_failures`

// healthScan holds the columns of healthColumns as scanned.
type healthScan struct {
	h                                   switchboard.Health
	status                              string
	lastCheck, lastSuccess, statusSince sql.NullInt64
	errStage, errMessage                sql.NullString
	errAt                               sql.NullInt64
	windowSpan, windowAt                int64
}

func (hs *healthScan) dest() []any {
	h := &hs.h
	return []any{&hs.status, &h.TotalChecks, &h.SuccessfulChecks, &h.ConsecutiveFailures,
		&h.ConsecutiveSuccesses, &h.Down, &hs.lastCheck, &hs.lastSuccess, &h.LatencyMs, &h.LatencySumMs,
		&h.TotalRequests, &h.FailedRequests, &hs.errStage, &hs.errMessage, &hs.errAt,
		&h.StatusReason, &hs.statusSince, &hs.windowSpan, &hs.windowAt, &h.Window.Checks,
		&h.Window.SuccessfulChecks, &h.Window.ClientFailures}
}

func (hs *healthScan) health() switchboard.Health {
	h := hs.h
	h.Status = switchboard.Status(hs.status)
	h.Window.Span = time.Duration(hs.windowSpan)
	if hs.windowSpan > 0 {
		h.Window.At = goTime(hs.windowAt)
	}
	h.LastCheck, h.LastSuccess, h.StatusSince = goTimePtr(hs.lastCheck), goTimePtr(hs.lastSuccess), goTimePtr(hs.statusSince)
	if hs.errStage.Valid {
		h.LastError = &switchboard.ProbeError{Stage: switchboard.Stage(hs.errStage.String), Message: hs.errMessage.String}
		if hs.errAt.Valid {
			h.LastError.At = goTime(hs.errAt.Int64)
		}
	}
	return h
}

const qHealthOf = `SELECT ` + healthColumns + ` FROM provider_health h WHERE h.provider = ?`

func (s *Store) readHealth(ctx context.Context, tx *sql.Tx, name string) (switchboard.Health, error) {
	var hs healthScan
	// Locked: this read is the start of a read-modify-write of the counters.
	err := s.txRow(ctx, tx, qHealthOf+s.d.lockRow, name).Scan(hs.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return switchboard.Health{}, notFound(name)
	}
	if err != nil {
		return switchboard.Health{}, err
	}
	return hs.health(), nil
}

const qWriteHealth = `UPDATE provider_health SET status = ?, total_checks = ?,
	successful_checks = ?, consecutive_failures = ?, consecutive_successes = ?, down = ?,
	last_check = ?, last_success = ?, latency_ms = ?, latency_sum_ms = ?, total_requests = ?,
	failed_requests = ?, last_error_stage = ?, last_error_message = ?, last_error_at = ?,
	status_reason = ?, status_since = ?, window_span = ?, window_at = ?, window_checks = ?,
	window_successes = ?, window_client_failures = ? WHERE provider = ?`

func (s *Store) writeHealth(ctx context.Context, tx *sql.Tx, name string, h switchboard.Health) error {
	var errStage, errMessage, errAt any
	if e := h.LastError; e != nil {
		errStage, errMessage, errAt = string(e.Stage), e.Message, dbTimePtr(&e.At)
	}
	_, err := s.txExec(ctx, tx, qWriteHealth,
		string(h.Status), h.TotalChecks, h.SuccessfulChecks, h.ConsecutiveFailures, h.ConsecutiveSuccesses,
		h.Down, dbTimePtr(h.LastCheck), dbTimePtr(h.LastSuccess), h.LatencyMs, h.LatencySumMs,
		h.TotalRequests, h.FailedRequests, errStage, errMessage, errAt, h.StatusReason,
		dbTimePtr(h.StatusSince), int64(h.Window.Span), dbTime(h.Window.At), h.Window.Checks,
		h.Window.SuccessfulChecks, h.Window.ClientFailures, name)
	return err
}

// foldHealth is the part RecordCheck and UpdateHealth share: read, fold, write,
// and record a transition when the status changed; clean says whether a
// failure left tx as it was (see groupOp.fn).
func (s *Store) foldHealth(ctx context.Context, tx *sql.Tx, name string, at time.Time, fold func(switchboard.Health) switchboard.Health) (before, after switchboard.Health, clean bool, err error) {
	if before, err = s.readHealth(ctx, tx, name); err != nil {
		return before, after, true, err
	}
	if before.Window, err = s.window(ctx, tx, name, at); err != nil {
		return before, after, true, err
	}
	after = before
	if fold != nil {
		// fold gets its own copies of the pointed-to times and error.
		after = fold(cloneHealth(before))
	}
	if err := s.writeHealth(ctx, tx, name, after); err != nil {
		return before, after, false, err
	}
	// The version moves before the commit too (healthChanged moves it again
	// after): a snapshot of the registry read before this write is stale from
	// now on, so that a reader that sees the commit never routes on the old
	// status in the moment before the caller moves the version after it.
	s.healthChanged(before, after)
	if before.Status != after.Status {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO transitions (provider, from_status, to_status, reason, at)
			VALUES (?, ?, ?, ?, ?)`), name, string(before.Status), string(after.Status), after.StatusReason, dbTime(at))
		if err != nil {
			return before, after, false, err
		}
	}
	return before, after, false, nil
}

// healthChanged moves RegistryVersion when a health change matters to the
// assignment of streams: the status, or the last success (which orders
// providers when all are CRITICAL). A client-reported failure that leaves both
// alone does not, so that a burst of them does not make every request reload
// the registry.
func (s *Store) healthChanged(before, after switchboard.Health) {
	if before.Status != after.Status || !sameTime(before.LastSuccess, after.LastSuccess) {
		s.registryChanged()
	}
}

func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}

func cloneHealth(h switchboard.Health) switchboard.Health {
	clonePtr := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		c := *t
		return &c
	}
	h.LastCheck, h.LastSuccess, h.StatusSince = clonePtr(h.LastCheck), clonePtr(h.LastSuccess), clonePtr(h.StatusSince)
	if h.LastError != nil {
		e := *h.LastError
		h.LastError = &e
	}
	return h
}

// RecordCheck folds one probe result into the provider's health in one
// transaction: it stores the raw result, adds it to the rollup of its UTC hour,
// stores what fold returns and, when the status changed, a Transition at r.At
// with after.StatusReason. A zero r.At is the clock's time. fold runs while the
// writer is held: it must be quick and must not use the store.
// Errors: ENotFound.
func (s *Store) RecordCheck(ctx context.Context, name string, r switchboard.ProbeResult, fold func(switchboard.Health) switchboard.Health) (before, after switchboard.Health, err error) {
	at := s.nowOr(r.At)
	ms := max(r.Latency.Milliseconds(), 0)
	ok := 0
	if r.OK {
		ok = 1
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		if before, after, _, err = s.foldHealth(ctx, tx, name, at, fold); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO probe_results (provider, at, ok, latency_ms, stage, message)
			VALUES (?, ?, ?, ?, ?, ?)`), name, dbTime(at), r.OK, ms, string(r.Stage), r.Message); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO health_hourly (provider, bucket, checks, successes, latency_sum_ms, latency_max_ms)
			VALUES (?, ?, 1, ?, ?, ?)
			ON CONFLICT (provider, bucket) DO UPDATE SET
				checks = health_hourly.checks + 1,
				successes = health_hourly.successes + excluded.successes,
				latency_sum_ms = health_hourly.latency_sum_ms + excluded.latency_sum_ms,
				latency_max_ms = CASE WHEN excluded.latency_max_ms > health_hourly.latency_max_ms
					THEN excluded.latency_max_ms ELSE health_hourly.latency_max_ms END`),
			name, dbTime(at.Truncate(time.Hour)), ok, ms, ms)
		return err
	})
	if err != nil {
		return switchboard.Health{}, switchboard.Health{}, wrap("record check", err)
	}
	s.healthChanged(before, after)
	return before, after, nil
}

// UpdateHealth applies fold to the provider's health in one transaction,
// recording a Transition at at (the clock's time when zero) when the status
// changed. fold runs while the writer is held: it must be quick and must not
// use the store. Errors: ENotFound.
func (s *Store) UpdateHealth(ctx context.Context, name string, at time.Time, fold func(switchboard.Health) switchboard.Health) (before, after switchboard.Health, err error) {
	at = s.nowOr(at)
	// Client-reported failures come in storms (every stream of a failing
	// provider reports): on SQLite the updates share transactions.
	err = s.grouped(ctx, func(ctx context.Context, tx *sql.Tx) (clean bool, err error) {
		if before, after, clean, err = s.foldHealth(ctx, tx, name, at, fold); err != nil {
			return clean, err
		}
		reported := (after.TotalRequests - before.TotalRequests) - (after.TotalChecks - before.TotalChecks)
		return false, s.recordClientFailures(ctx, tx, name, at, reported)
	})
	if err != nil {
		return switchboard.Health{}, switchboard.Health{}, wrap("update health", err)
	}
	s.healthChanged(before, after)
	return before, after, nil
}

// checkProvider returns ENotFound unless the provider exists.
func (s *Store) checkProvider(ctx context.Context, tx *sql.Tx, name string) error {
	var n int
	if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM providers WHERE name = ?`), name).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return notFound(name)
	}
	return nil
}

// Transitions lists the status transitions at or after since of one provider,
// or of all when name is "", newest first; at most limit (100 when limit <= 0).
// Errors: ENotFound for an unknown provider.
func (s *Store) Transitions(ctx context.Context, name string, since time.Time, limit int) ([]switchboard.Transition, error) {
	if limit <= 0 {
		limit = defaultTransitionsLimit
	}
	limit = min(limit, maxTransitionsLimit)
	ts := []switchboard.Transition{}
	err := s.read(ctx, func(tx *sql.Tx) error {
		query := `SELECT id, provider, from_status, to_status, reason, at FROM transitions WHERE at >= ?`
		args := []any{dbTime(since)}
		if name != "" {
			if err := s.checkProvider(ctx, tx, name); err != nil {
				return err
			}
			query += ` AND provider = ?`
			args = append(args, name)
		}
		rows, err := tx.QueryContext(ctx, s.q(query+` ORDER BY at DESC, id DESC LIMIT ?`), append(args, limit)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				t        switchboard.Transition
				from, to string
				at       int64
			)
			if err := rows.Scan(&t.ID, &t.Provider, &from, &to, &t.Reason, &at); err != nil {
				return err
			}
			t.From, t.To, t.At = switchboard.Status(from), switchboard.Status(to), goTime(at)
			ts = append(ts, t)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrap("transitions", err)
	}
	return ts, nil
}

func (s *Store) rollups(ctx context.Context, tx *sql.Tx, table, name string, from, to time.Time) ([]switchboard.Rollup, error) {
	rows, err := tx.QueryContext(ctx, s.q(`SELECT bucket, checks, successes, latency_sum_ms, latency_max_ms
		FROM `+table+` WHERE provider = ? AND bucket >= ? AND bucket < ? ORDER BY bucket`),
		name, dbTime(from), dbTime(to))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	rs := []switchboard.Rollup{}
	for rows.Next() {
		var (
			r      switchboard.Rollup
			bucket int64
		)
		if err := rows.Scan(&bucket, &r.Checks, &r.Successes, &r.LatencySumMs, &r.LatencyMaxMs); err != nil {
			return nil, err
		}
		r.Bucket = goTime(bucket)
		rs = append(rs, r)
	}
	return rs, rows.Err()
}

// HourlyRollups returns the provider's hourly buckets that start in [from, to),
// oldest first. Errors: ENotFound.
func (s *Store) HourlyRollups(ctx context.Context, name string, from, to time.Time) ([]switchboard.Rollup, error) {
	var rs []switchboard.Rollup
	err := s.read(ctx, func(tx *sql.Tx) error {
		if err := s.checkProvider(ctx, tx, name); err != nil {
			return err
		}
		var err error
		rs, err = s.rollups(ctx, tx, "health_hourly", name, from, to)
		return err
	})
	if err != nil {
		return nil, wrap("hourly rollups", err)
	}
	return rs, nil
}

// DailyRollups returns the provider's daily buckets (UTC days) that start in
// [from, to), oldest first. Days that CompactHistory has not folded yet, such
// as today, are summed from their hourly rollups on the fly, so the answer does
// not depend on when compaction last ran. Errors: ENotFound.
func (s *Store) DailyRollups(ctx context.Context, name string, from, to time.Time) ([]switchboard.Rollup, error) {
	var rs []switchboard.Rollup
	err := s.read(ctx, func(tx *sql.Tx) error {
		if err := s.checkProvider(ctx, tx, name); err != nil {
			return err
		}
		daily, err := s.rollups(ctx, tx, "health_daily", name, from, to)
		if err != nil {
			return err
		}
		// A day D is in range when from <= D < to, so its hours are in
		// [ceilDay(from), ceilDay(to)).
		hourly, err := s.rollups(ctx, tx, "health_hourly", name, ceilDay(from), ceilDay(to))
		if err != nil {
			return err
		}
		rs = mergeDays(daily, hourly)
		return nil
	})
	if err != nil {
		return nil, wrap("daily rollups", err)
	}
	return rs, nil
}

// mergeDays adds to daily (sorted) the days of hourly (sorted) that daily lacks.
func mergeDays(daily, hourly []switchboard.Rollup) []switchboard.Rollup {
	have := make(map[time.Time]bool, len(daily))
	for _, d := range daily {
		have[d.Bucket] = true
	}
	out := daily
	var cur *switchboard.Rollup
	var extra []switchboard.Rollup
	for _, h := range hourly {
		d := floorDay(h.Bucket)
		if have[d] {
			continue
		}
		if cur == nil || !cur.Bucket.Equal(d) {
			extra = append(extra, switchboard.Rollup{Bucket: d})
			cur = &extra[len(extra)-1]
		}
		cur.Checks += h.Checks
		cur.Successes += h.Successes
		cur.LatencySumMs += h.LatencySumMs
		cur.LatencyMaxMs = max(cur.LatencyMaxMs, h.LatencyMaxMs)
	}
	if len(extra) == 0 {
		return out
	}
	out = append(out, extra...)
	slices.SortFunc(out, func(a, b switchboard.Rollup) int { return a.Bucket.Compare(b.Bucket) })
	return out
}

func floorDay(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

func ceilDay(t time.Time) time.Time {
	d := floorDay(t)
	if d.Equal(t) {
		return d
	}
	return d.Add(dayLength)
}

// RecentLatencies returns the latencies in ms of the provider's raw results
// (successful and failed) at or after since, oldest first. Errors: ENotFound.
func (s *Store) RecentLatencies(ctx context.Context, name string, since time.Time) ([]int64, error) {
	ls := []int64{}
	err := s.read(ctx, func(tx *sql.Tx) error {
		if err := s.checkProvider(ctx, tx, name); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, s.q(`SELECT latency_ms FROM probe_results
			WHERE provider = ? AND at >= ? ORDER BY at, id`), name, dbTime(since))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var l int64
			if err := rows.Scan(&l); err != nil {
				return err
			}
			ls = append(ls, l)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrap("recent latencies", err)
	}
	return ls, nil
}

// CompactHistory, in one transaction:
//   - folds the hourly rollups of every complete UTC day before day into daily
//     rollups, replacing each day's totals with ones recomputed from its hours,
//     so that running it again gives the same result;
//   - deletes hourly rollups more than 35 days older than day (their days stay
//     as daily rollups);
//   - deletes raw probe results and raw client-reported failures older than
//     keepRawBefore (the hourly counts of client-reported failures stay).
func (s *Store) CompactHistory(ctx context.Context, day time.Time, keepRawBefore time.Time) error {
	cut := floorDay(day)
	err := s.write(ctx, func(tx *sql.Tx) error {
		// bucket - bucket % dayNanos is the UTC midnight of a bucket, in
		// integer arithmetic both SQLite and PostgreSQL share. It is computed
		// once, in a subquery: PostgreSQL does not see two placeholders as the
		// same GROUP BY expression.
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO health_daily
				(provider, bucket, checks, successes, latency_sum_ms, latency_max_ms)
			SELECT provider, day, SUM(checks), SUM(successes), SUM(latency_sum_ms), MAX(latency_max_ms)
			FROM (SELECT provider, bucket - bucket % ? AS day, checks, successes, latency_sum_ms, latency_max_ms
				FROM health_hourly WHERE bucket < ?) hours
			GROUP BY provider, day
			ON CONFLICT (provider, bucket) DO UPDATE SET
				checks = excluded.checks,
				successes = excluded.successes,
				latency_sum_ms = excluded.latency_sum_ms,
				latency_max_ms = excluded.latency_max_ms`),
			int64(dayLength), dbTime(cut)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM health_hourly WHERE bucket < ?`),
			dbTime(cut.Add(-hourlyRetention))); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM client_failures WHERE at < ?`), dbTime(keepRawBefore)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`DELETE FROM probe_results WHERE at < ?`), dbTime(keepRawBefore))
		return err
	})
	return wrap("compact history", err)
}

// GetHealth implements switchboard.HealthStore.
func (s *Store) GetHealth(ctx context.Context, name string) (switchboard.Health, error) {
	var hs healthScan
	err := s.r.QueryRowContext(ctx, s.q(`SELECT `+healthColumns+` FROM provider_health h WHERE h.provider = ?`), name).Scan(hs.dest()...)
	if errors.Is(err, sql.ErrNoRows) {
		return switchboard.Health{}, notFound(name)
	}
	if err != nil {
		return switchboard.Health{}, wrap("get health", err)
	}
	return hs.health(), nil
}
