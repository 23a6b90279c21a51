package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/switchboardhq/switchboard"
)

// regionalRecord is the JSON form of a regional health record: every field
// of switchboard.Health the rules need, those that Health leaves out of its
// own JSON included.
type regionalRecord struct {
	Status               switchboard.Status      `json:"status"`
	StatusReason         string                  `json:"statusReason,omitempty"`
	StatusSince          *time.Time              `json:"statusSince,omitempty"`
	TotalChecks          int64                   `json:"totalChecks"`
	SuccessfulChecks     int64                   `json:"successfulChecks"`
	ConsecutiveFailures  int                     `json:"consecutiveFailures"`
	ConsecutiveSuccesses int                     `json:"consecutiveSuccesses"`
	Down                 bool                    `json:"down"`
	LastCheck            *time.Time              `json:"lastCheck,omitempty"`
	LastSuccess          *time.Time              `json:"lastSuccess,omitempty"`
	LatencyMs            int64                   `json:"latencyMs"`
	LatencySumMs         int64                   `json:"latencySumMs"`
	TotalRequests        int64                   `json:"totalRequests"`
	FailedRequests       int64                   `json:"failedRequests"`
	LastError            *switchboard.ProbeError `json:"lastError,omitempty"`
	WindowSpan           time.Duration           `json:"windowSpan"`
	WindowAt             time.Time               `json:"windowAt"`
	WindowChecks         int64                   `json:"windowChecks"`
	WindowSuccessful     int64                   `json:"windowSuccessful"`
}

func toRegional(h switchboard.Health) regionalRecord {
	return regionalRecord{
		Status: h.Status, StatusReason: h.StatusReason, StatusSince: h.StatusSince,
		TotalChecks: h.TotalChecks, SuccessfulChecks: h.SuccessfulChecks,
		ConsecutiveFailures: h.ConsecutiveFailures, ConsecutiveSuccesses: h.ConsecutiveSuccesses, Down: h.Down,
		LastCheck: h.LastCheck, LastSuccess: h.LastSuccess, LatencyMs: h.LatencyMs, LatencySumMs: h.LatencySumMs,
		TotalRequests: h.TotalRequests, FailedRequests: h.FailedRequests, LastError: h.LastError,
		WindowSpan: h.Window.Span, WindowAt: h.Window.At, WindowChecks: h.Window.Checks, WindowSuccessful: h.Window.SuccessfulChecks,
	}
}

func (r regionalRecord) health() switchboard.Health {
	return switchboard.Health{
		Status: r.Status, StatusReason: r.StatusReason, StatusSince: r.StatusSince,
		TotalChecks: r.TotalChecks, SuccessfulChecks: r.SuccessfulChecks,
		ConsecutiveFailures: r.ConsecutiveFailures, ConsecutiveSuccesses: r.ConsecutiveSuccesses, Down: r.Down,
		LastCheck: r.LastCheck, LastSuccess: r.LastSuccess, LatencyMs: r.LatencyMs, LatencySumMs: r.LatencySumMs,
		TotalRequests: r.TotalRequests, FailedRequests: r.FailedRequests, LastError: r.LastError,
		Window: switchboard.HealthWindow{Span: r.WindowSpan, At: r.WindowAt, Checks: r.WindowChecks, SuccessfulChecks: r.WindowSuccessful},
	}
}

func decodeRegional(raw string) (switchboard.Health, error) {
	var r regionalRecord
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return switchboard.Health{}, err
	}
	return r.health(), nil
}

// RecordRegionalCheck folds one probe of provider from region into its
// regional health (see switchboard.RegionalHealthStore). Writers of one
// provider and region queue on a lock of that pair on PostgreSQL.
func (s *Store) RecordRegionalCheck(ctx context.Context, provider, region, source string, fold func(switchboard.Health) switchboard.Health) (before, after switchboard.Health, err error) {
	if !switchboard.ValidSlug(region) {
		return before, after, switchboard.Invalid("region", "must match %s", switchboard.SlugPattern)
	}
	err = s.write(ctx, func(tx *sql.Tx) error {
		if err := s.checkProvider(ctx, tx, provider); err != nil {
			return err
		}
		if err := s.lockKey(ctx, tx, "regional_health:"+provider+":"+region); err != nil {
			return err
		}
		var raw string
		err := tx.QueryRowContext(ctx, s.q(`SELECT health FROM regional_health WHERE provider = ? AND region = ?`+s.d.lockRow), provider, region).Scan(&raw)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return err
		default:
			if before, err = decodeRegional(raw); err != nil {
				return err
			}
		}
		after = fold(cloneHealth(before))
		js, err := json.Marshal(toRegional(after))
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO regional_health (provider, region, source, status, last_check, health)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (provider, region) DO UPDATE SET source = excluded.source, status = excluded.status,
				last_check = excluded.last_check, health = excluded.health`),
			provider, region, source, string(after.Status), dbTimePtr(after.LastCheck), string(js))
		return err
	})
	if err != nil {
		return switchboard.Health{}, switchboard.Health{}, wrap("record regional check", err)
	}
	return before, after, nil
}

// ListRegionalHealth returns every regional health record, ordered by
// provider then region.
func (s *Store) ListRegionalHealth(ctx context.Context) ([]switchboard.RegionalHealth, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT provider, region, source, health FROM regional_health ORDER BY provider, region`)
	if err != nil {
		return nil, wrap("list regional health", err)
	}
	defer rows.Close()
	out := []switchboard.RegionalHealth{}
	for rows.Next() {
		var rh switchboard.RegionalHealth
		var raw string
		if err := rows.Scan(&rh.Provider, &rh.Region, &rh.Source, &raw); err != nil {
			return nil, wrap("list regional health", err)
		}
		if rh.Health, err = decodeRegional(raw); err != nil {
			return nil, wrap("list regional health", err)
		}
		out = append(out, rh)
	}
	return out, wrap("list regional health", rows.Err())
}
