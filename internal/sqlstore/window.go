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

// window counts, in tx, the checks and client-reported failures of provider
// name inside its healthCheck.window ending at at: the window [at-span, at].
//
// The whole hours inside it are read from the hourly rollups (at most 720 rows
// for a 30-day window) and only its first, partial hour from the raw rows (at
// most an hour of them), so the cost does not grow with the window nor with the
// check interval beyond one hour of raw rows. Once raw rows of that first hour
// are compacted away (after keepRaw), the window starts at its first whole
// hour.
func (s *Store) window(ctx context.Context, tx *sql.Tx, name string, at time.Time) (switchboard.HealthWindow, error) {
	var policy string
	err := tx.QueryRowContext(ctx, s.q(`SELECT health_check FROM providers WHERE name = ?`), name).Scan(&policy)
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
	var rawChecks, rawOK, hourChecks, hourOK, rawFailures, hourFailures sql.NullInt64
	if err := tx.QueryRowContext(ctx, s.q(`SELECT
			(SELECT COUNT(*) FROM probe_results WHERE provider = ? AND at >= ? AND at < ?),
			(SELECT SUM(CASE WHEN ok THEN 1 ELSE 0 END) FROM probe_results WHERE provider = ? AND at >= ? AND at < ?),
			(SELECT SUM(checks) FROM health_hourly WHERE provider = ? AND bucket >= ? AND bucket <= ?),
			(SELECT SUM(successes) FROM health_hourly WHERE provider = ? AND bucket >= ? AND bucket <= ?),
			(SELECT COUNT(*) FROM client_failures WHERE provider = ? AND at >= ? AND at < ?),
			(SELECT SUM(failures) FROM client_failures_hourly WHERE provider = ? AND bucket >= ? AND bucket <= ?)`),
		name, dbTime(start), headEnd, name, dbTime(start), headEnd,
		name, dbTime(firstHour), dbTime(at), name, dbTime(firstHour), dbTime(at),
		name, dbTime(start), headEnd, name, dbTime(firstHour), dbTime(at),
	).Scan(&rawChecks, &rawOK, &hourChecks, &hourOK, &rawFailures, &hourFailures); err != nil {
		return switchboard.HealthWindow{}, err
	}
	w.Checks = rawChecks.Int64 + hourChecks.Int64
	w.SuccessfulChecks = rawOK.Int64 + hourOK.Int64
	w.ClientFailures = rawFailures.Int64 + hourFailures.Int64
	return w, nil
}

// recordClientFailures stores n client-reported failures of provider name at
// at, raw and in the count of its UTC hour.
func (s *Store) recordClientFailures(ctx context.Context, tx *sql.Tx, name string, at time.Time, n int64) error {
	if n <= 0 {
		return nil
	}
	for range n {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO client_failures (provider, at) VALUES (?, ?)`),
			name, dbTime(at)); err != nil {
			return err
		}
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
		if err := s.usageCounts(ctx, tx, us, f, t); err != nil {
			return err
		}
		if err := s.usageSeconds(ctx, tx, us, f, t); err != nil {
			return err
		}
		for name, u := range us {
			a := out[name]
			a.Provider, a.FailoversIn, a.FailoversOut = name, u.FailoversIn, u.FailoversOut
			for _, sec := range u.Seconds {
				a.StreamSeconds += sec
			}
			if a == (switchboard.ProviderActivity{Provider: name}) {
				continue
			}
			out[name] = a
		}
		counts := []struct {
			query string
			field func(*switchboard.ProviderActivity) *int64
		}{
			{`SELECT provider, COUNT(*) FROM stream_segments WHERE started_at >= ? AND started_at < ? AND seq = 0
				GROUP BY provider`, func(a *switchboard.ProviderActivity) *int64 { return &a.StreamsStarted }},
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
