package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"time"

	"github.com/switchboardhq/switchboard"
)

var _ switchboard.ReportStore = (*Store)(nil)

// day is a UTC day in stored time (nanoseconds).
const day = int64(24 * time.Hour)

// RecordDegradation implements switchboard.ReportStore.
func (s *Store) RecordDegradation(ctx context.Context, d switchboard.Degradation) error {
	if d.Provider == "" {
		return switchboard.Invalid("provider", "is required")
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		var open int64
		err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM degradations
			WHERE provider = ? AND region = '' AND ended_at IS NULL`), d.Provider).Scan(&open)
		if err != nil {
			return err
		}
		if !d.Degrading {
			// A verdict dated before the record's start (a provider forgotten
			// with its last verdict) closes it at its start.
			_, err := tx.ExecContext(ctx, s.q(`UPDATE degradations SET ended_at = CASE WHEN started_at > ? THEN started_at ELSE ? END
				WHERE provider = ? AND region = '' AND ended_at IS NULL`), dbTime(d.At), dbTime(d.At), d.Provider)
			return err
		}
		if open > 0 {
			return nil
		}
		start := d.At
		if d.Since != nil {
			start = *d.Since
		}
		ev := d.Evidence
		if ev == nil {
			ev = []switchboard.DegradationEvidence{}
		}
		b, err := json.Marshal(ev)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO degradations (provider, region, started_at, evidence)
			VALUES (?, '', ?, ?)`), d.Provider, dbTime(start), string(b))
		return err
	})
	return wrap("record degradation", err)
}

// Degradations implements switchboard.ReportStore.
func (s *Store) Degradations(ctx context.Context, from, to time.Time) ([]switchboard.DegradationRecord, error) {
	out := []switchboard.DegradationRecord{}
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q(`SELECT id, provider, region, started_at, ended_at, evidence FROM degradations
			WHERE started_at < ? AND (ended_at IS NULL OR ended_at > ?) ORDER BY started_at, id`), dbTime(to), dbTime(from))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				r     switchboard.DegradationRecord
				start int64
				end   sql.NullInt64
				ev    string
			)
			if err := rows.Scan(&r.ID, &r.Provider, &r.Region, &start, &end, &ev); err != nil {
				return err
			}
			r.StartedAt, r.EndedAt = goTime(start), goTimePtr(end)
			if err := json.Unmarshal([]byte(ev), &r.Evidence); err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrap("degradations", err)
	}
	return out, nil
}

// StatusHistory implements switchboard.ReportStore. The transition before
// the period is found per provider through the index on (provider, at).
func (s *Store) StatusHistory(ctx context.Context, from, to time.Time) ([]switchboard.Transition, error) {
	out := []switchboard.Transition{}
	f, t := dbTime(from), dbTime(to)
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q(`SELECT id, provider, from_status, to_status, reason, at FROM transitions t
			WHERE t.at < ? AND NOT EXISTS (SELECT 1 FROM transitions u WHERE u.provider = t.provider AND u.at < ?
				AND (u.at > t.at OR (u.at = t.at AND u.id > t.id)))
			UNION ALL
			SELECT id, provider, from_status, to_status, reason, at FROM transitions WHERE at >= ? AND at < ?
			ORDER BY 6, 1`), f, f, f, t)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				tr       switchboard.Transition
				from, to string
				at       int64
			)
			if err := rows.Scan(&tr.ID, &tr.Provider, &from, &to, &tr.Reason, &at); err != nil {
				return err
			}
			tr.From, tr.To, tr.At = switchboard.Status(from), switchboard.Status(to), goTime(at)
			out = append(out, tr)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrap("status history", err)
	}
	return out, nil
}

// StreamsDuring implements switchboard.ReportStore. It reads the
// provider's segments that overlap the span of all the periods once, the
// ended ones through the index on (provider, ended_at), which holds ended
// segments only, without touching the streams, the open ones through the
// provider's active streams (an active stream's open segment is the one
// numbered by its moves, on its provider) with their last heartbeat, and
// counts per period here.
func (s *Store) StreamsDuring(ctx context.Context, provider string, periods []switchboard.TimeRange) ([]int64, error) {
	out := make([]int64, len(periods))
	if len(periods) == 0 {
		return out, nil
	}
	lo, hi := periods[0].From, periods[0].To
	for _, p := range periods {
		lo, hi = minOf(lo, p.From), maxOf(hi, p.To)
	}
	f, t := dbTime(lo), dbTime(hi)
	sets := make([]map[string]struct{}, len(periods))
	for i := range sets {
		sets[i] = map[string]struct{}{}
	}
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q(streamsDuringSQL(s.d)), provider, f, t, provider, t, f)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				id         string
				start, end int64
			)
			if err := rows.Scan(&id, &start, &end); err != nil {
				return err
			}
			for i, p := range periods {
				if start < dbTime(p.To) && end > dbTime(p.From) {
					sets[i][id] = struct{}{}
				}
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrap("streams during", err)
	}
	for i, set := range sets {
		out[i] = int64(len(set))
	}
	return out, nil
}

// streamsDuringSQL is StreamsDuring's query (arguments: provider, from, to,
// provider, to, from): a provider's ended segments that overlap [from, to),
// then the open segments of its live streams, found in the index of live
// streams.
func streamsDuringSQL(d *dialect) string {
	return `SELECT stream_id, started_at, ended_at FROM stream_segments
				WHERE provider = ? AND ended_at > ? AND started_at < ?
			UNION ALL
			SELECT g.stream_id, g.started_at, st.last_heartbeat FROM streams st` + d.liveByProvider + `
				JOIN stream_segments g ON g.stream_id = st.id AND g.seq = st.migrations
				WHERE st.status = 'active' AND st.provider = ? AND g.provider = st.provider AND g.ended_at IS NULL
					AND g.started_at < ? AND st.last_heartbeat > ?`
}

func minOf(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// FailoversOut implements switchboard.ReportStore.
func (s *Store) FailoversOut(ctx context.Context, from, to time.Time) (map[string]int64, error) {
	out := map[string]int64{}
	err := s.read(ctx, func(tx *sql.Tx) error {
		return s.groupCounts(ctx, tx, out, `SELECT provider, COUNT(*) FROM stream_segments
			WHERE ended_at >= ? AND ended_at < ? AND end_reason = ? GROUP BY provider`,
			dbTime(from), dbTime(to), segmentMigrated)
	})
	if err != nil {
		return nil, wrap("failovers out", err)
	}
	return out, nil
}

// simpleSegment is the condition, over a segment g, of a stream that never
// moved (its first segment did not end by a migration) and whose one
// segment ended within the UTC day it started, inside [f, t): the bulk of
// the streams, summed in SQL. Its arguments are f, t and day twice.
const simpleSegment = `g.seq = 0 AND g.end_reason <> '` + segmentMigrated + `' AND g.ended_at > g.started_at
	AND g.started_at >= ? AND g.ended_at <= ? AND g.ended_at <= (g.started_at / ? + 1) * ?`

// UsageBreakdown implements switchboard.ReportStore. One pass over the
// segments that ended within the period (through the index on ended_at)
// sums the streams that never moved and ended within the day they started
// per provider, region, tier and day, and returns every other segment on a
// row of its own (its group holds it alone); the open segments are read
// through the same index (NULL). Those are cut into days here.
func (s *Store) UsageBreakdown(ctx context.Context, from, to time.Time, byRegion bool) (switchboard.UsageBreakdown, error) {
	out := switchboard.UsageBreakdown{Cells: []switchboard.UsageCell{}, Pieces: []switchboard.UsagePiece{}}
	f, t := dbTime(from), dbTime(to)
	// The region is the stream's: only a report by region reads the
	// streams for the ended segments (in the profile of a year's report, the
	// lookup of each segment's stream was about a third of its time).
	region, join := `''`, ``
	if byRegion {
		region, join = `st.region`, ` JOIN streams st ON st.id = g.stream_id`
	}
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q(`SELECT g.provider, `+region+`, g.quality, g.started_at / ?,
				CASE WHEN `+simpleSegment+` THEN 0 ELSE g.id END,
				MIN(g.stream_id), COUNT(*), SUM((g.ended_at - g.started_at) / 1000), MIN(g.started_at), MAX(g.ended_at)
			FROM stream_segments g`+join+`
			WHERE g.ended_at > ? AND g.started_at < ?
			GROUP BY 1, 2, 3, 4, 5
			UNION ALL
			SELECT g.provider, `+region+`, g.quality, 0, g.id, g.stream_id, 1, 0, g.started_at, st.last_heartbeat
			FROM stream_segments g JOIN streams st ON st.id = g.stream_id
			WHERE g.ended_at IS NULL AND g.started_at < ? AND st.last_heartbeat > ?`),
			day, f, t, day, day, f, t, t, f)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				provider, region, quality, streamID string
				d, piece, n, micros, start, end     int64
			)
			if err := rows.Scan(&provider, &region, &quality, &d, &piece, &streamID, &n, &micros, &start, &end); err != nil {
				return err
			}
			if piece == 0 {
				out.Cells = append(out.Cells, switchboard.UsageCell{Provider: provider, Region: region,
					Quality: switchboard.Quality(quality), Day: goTime(d * day), Streams: n, Seconds: float64(micros) / 1e6})
				continue
			}
			p := switchboard.UsagePiece{StreamID: streamID, Provider: provider, Region: region, Quality: switchboard.Quality(quality)}
			start, end = max(start, f), min(end, t)
			for start < end {
				next := min((start/day+1)*day, end)
				q := p
				q.Day, q.Seconds = goTime(start/day*day), float64(next-start)/1e9
				out.Pieces = append(out.Pieces, q)
				start = next
			}
		}
		return rows.Err()
	})
	if err != nil {
		return switchboard.UsageBreakdown{}, wrap("usage breakdown", err)
	}
	return out, nil
}

// QualityBetween implements switchboard.ReportStore.
func (s *Store) QualityBetween(ctx context.Context, from, to time.Time) (map[switchboard.QualityKey]switchboard.QualityTotals, error) {
	out, err := s.qualityTotalsIn(ctx, qualityHour, dbTime(from.UTC().Truncate(qualityHour)), dbTime(to))
	if err != nil {
		return nil, wrap("quality between", err)
	}
	return out, nil
}
