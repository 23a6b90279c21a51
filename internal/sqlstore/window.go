package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/switchboardhq/switchboard"
)

// qPolicyOf reads a provider's health-check policy.
const qPolicyOf = `SELECT health_check FROM providers WHERE name = ?`

// qLastDaily is the bucket of a provider's latest daily rollup. Compaction
// folds every complete day before the one it is given, so the days up to it
// are all folded.
const qLastDaily = `SELECT MAX(bucket) FROM health_daily WHERE provider = ?`

// qWindow counts a provider's checks, successful checks and client-reported
// failures inside a window: raw in its first, partial hour, then by the hour up
// to its first whole day, by the day over the compacted days, and by the hour
// after them. Each part is one tagged row.
const qWindow = `SELECT 1, COUNT(*), SUM(CASE WHEN ok THEN 1 ELSE 0 END)
		FROM probe_results WHERE provider = ? AND at >= ? AND at < ?
	UNION ALL SELECT 2, SUM(checks), SUM(successes)
		FROM health_hourly WHERE provider = ? AND bucket >= ? AND bucket < ?
	UNION ALL SELECT 3, SUM(checks), SUM(successes)
		FROM health_daily WHERE provider = ? AND bucket >= ? AND bucket < ?
	UNION ALL SELECT 4, SUM(checks), SUM(successes)
		FROM health_hourly WHERE provider = ? AND bucket >= ? AND bucket <= ?
	UNION ALL SELECT 5, SUM(failures), 0
		FROM client_failures WHERE provider = ? AND at >= ? AND at < ?
	UNION ALL SELECT 6, SUM(failures), 0
		FROM client_failures_hourly WHERE provider = ? AND bucket >= ? AND bucket <= ?`

// window counts, in tx, the checks and client-reported failures of provider
// name inside its healthCheck.window ending at at: the window [at-span, at].
//
// Its first, partial hour is read from the raw rows (at most an hour of
// them), the hours up to its first whole day and after the last compacted day
// from the hourly rollups (at most two days of them), and the days between
// from the daily rollups (at most 30), so that the cost of a check does not
// grow with the window, the history or the check interval. Once the raw rows
// of the first hour are compacted away (after keepRaw), the window starts at
// its first whole hour. Client-reported failures are counted by the hour
// after the first one; there is at most one row for each hour that had any.
func (s *Store) window(ctx context.Context, tx *sql.Tx, name string, at time.Time) (switchboard.HealthWindow, error) {
	var policy string
	err := s.txRow(ctx, tx, qPolicyOf, name).Scan(&policy)
	if errors.Is(err, sql.ErrNoRows) {
		return switchboard.HealthWindow{}, notFound(name)
	}
	if err != nil {
		return switchboard.HealthWindow{}, err
	}
	var pol switchboard.HealthCheckPolicy
	if err := json.Unmarshal([]byte(policy), &pol); err != nil {
		return switchboard.HealthWindow{}, fmt.Errorf("provider %s: column health_check: %w", name, err)
	}
	var lastDaily sql.NullInt64
	if err := s.txRow(ctx, tx, qLastDaily, name).Scan(&lastDaily); err != nil {
		return switchboard.HealthWindow{}, err
	}
	w := switchboard.HealthWindow{Span: pol.WindowOrDefault(), At: at}
	start := at.Add(-w.Span)
	firstHour := start.Truncate(time.Hour)
	if firstHour.Before(start) {
		firstHour = firstHour.Add(time.Hour)
	}
	// The raw head: [start, firstHour), not past at.
	headEnd := dbTime(firstHour)
	if firstHour.After(at) {
		headEnd = dbTime(at) + 1
	}
	// The compacted days [daysFrom, daysTo), empty when there are none.
	daysFrom := ceilDay(firstHour)
	daysTo := daysFrom
	if lastDaily.Valid {
		daysTo = goTime(lastDaily.Int64).Add(dayLength)
		if end := floorDay(at); daysTo.After(end) {
			daysTo = end
		}
		if daysTo.Before(daysFrom) {
			daysTo = daysFrom
		}
	}
	rows, err := s.txQuery(ctx, tx, qWindow,
		name, dbTime(start), headEnd,
		name, dbTime(firstHour), dbTime(daysFrom),
		name, dbTime(daysFrom), dbTime(daysTo),
		name, dbTime(daysTo), dbTime(at),
		name, dbTime(start), headEnd,
		name, dbTime(firstHour), dbTime(at))
	if err != nil {
		return switchboard.HealthWindow{}, err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			part  int
			n, ok sql.NullInt64
		)
		if err := rows.Scan(&part, &n, &ok); err != nil {
			return switchboard.HealthWindow{}, err
		}
		if part <= 4 {
			w.Checks += n.Int64
			w.SuccessfulChecks += ok.Int64
		} else {
			w.ClientFailures += n.Int64
		}
	}
	if err := rows.Err(); err != nil {
		return switchboard.HealthWindow{}, err
	}
	return w, nil
}

// txQuery runs a query in the write transaction tx, prepared.
func (s *Store) txQuery(ctx context.Context, tx *sql.Tx, query string, args ...any) (*sql.Rows, error) {
	if st := s.prepared(s.w, query); st != nil {
		return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return tx.QueryContext(ctx, s.q(query), args...)
}

// recordClientFailures stores n client-reported failures of provider name at
// at, raw and in the count of its UTC hour.
func (s *Store) recordClientFailures(ctx context.Context, tx *sql.Tx, name string, at time.Time, n int64) error {
	if n <= 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO client_failures (provider, at, failures) VALUES (?, ?, ?)`),
		name, dbTime(at), n); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO client_failures_hourly (provider, bucket, failures)
		VALUES (?, ?, ?)
		ON CONFLICT (provider, bucket) DO UPDATE SET failures = client_failures_hourly.failures + excluded.failures`),
		name, dbTime(at.Truncate(time.Hour)), n)
	return err
}

// Activity returns, per provider that had any within [from, to), the streams
// started on it, its failovers in and out, the failures clients reported and
// its stream seconds, all read from one snapshot. Streams, failovers and stream
// seconds are those of Usage; client-reported failures are counted by UTC hour,
// so from and to are best whole hours (a UTC day is).
func (s *Store) Activity(ctx context.Context, from, to time.Time) (map[string]switchboard.ProviderActivity, error) {
	out := map[string]switchboard.ProviderActivity{}
	f, t := dbTime(from), dbTime(to)
	err := s.read(ctx, func(tx *sql.Tx) error {
		us := usages{}
		if err := s.usageSeconds(ctx, tx, us, f, t); err != nil {
			return err
		}
		for name, u := range us {
			var secs float64
			for _, sec := range u.Seconds {
				secs += sec
			}
			if secs > 0 {
				out[name] = switchboard.ProviderActivity{Provider: name, StreamSeconds: secs}
			}
		}
		counts := []struct {
			query string
			field func(*switchboard.ProviderActivity) *int64
		}{
			{`SELECT provider, COUNT(*) FROM stream_segments WHERE started_at >= ? AND started_at < ? AND seq = 0
				GROUP BY provider`, func(a *switchboard.ProviderActivity) *int64 { return &a.StreamsStarted }},
			{`SELECT provider, COUNT(*) FROM stream_segments WHERE started_at >= ? AND started_at < ? AND seq > 0
				GROUP BY provider`, func(a *switchboard.ProviderActivity) *int64 { return &a.FailoversIn }},
			{`SELECT provider, COUNT(*) FROM stream_segments WHERE ended_at >= ? AND ended_at < ? AND end_reason = '` + segmentMigrated + `'
				GROUP BY provider`, func(a *switchboard.ProviderActivity) *int64 { return &a.FailoversOut }},
			{`SELECT provider, SUM(failures) FROM client_failures_hourly WHERE bucket >= ? AND bucket < ?
				GROUP BY provider`, func(a *switchboard.ProviderActivity) *int64 { return &a.ClientFailures }},
		}
		for _, c := range counts {
			m := map[string]int64{}
			if err := s.groupCounts(ctx, tx, m, c.query, f, t); err != nil {
				return err
			}
			for name, n := range m {
				if n == 0 {
					continue
				}
				a := out[name]
				a.Provider = name
				*c.field(&a) = n
				out[name] = a
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrap("activity", err)
	}
	return out, nil
}
