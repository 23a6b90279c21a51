package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/health"
	"github.com/switchboardhq/switchboard/internal/storetest"
)

// BenchmarkRecordCheckWindow records checks of a provider probed every second
// over a history of one or thirty days, seeded as the store keeps it: hourly
// rollups (3600 checks each), compacted into daily ones for the complete days,
// and the last 25 hours of raw results. With a 30-day window the cost of a
// check does not grow with the history; a window of a day and a half hour,
// whose first half hour is read from the raw results, is the dearest case.
func BenchmarkRecordCheckWindow(b *testing.B) {
	for _, c := range []struct {
		days   int
		window time.Duration
	}{{1, switchboard.MaxHealthWindow}, {30, switchboard.MaxHealthWindow}, {30, 24*time.Hour + 30*time.Minute}} {
		days := c.days
		b.Run(fmt.Sprintf("history=%dd/window=%v", days, c.window), func(b *testing.B) {
			ctx := context.Background()
			dsn, _ := tempDSN(b)
			s := mustOpen(b, dsn, newSealer(b))
			p := storetest.AgoraProvider(b, "p")
			p.HealthCheck.Interval, p.HealthCheck.Timeout = switchboard.Duration(time.Second), switchboard.Duration(500*time.Millisecond)
			p.HealthCheck.Window = switchboard.Duration(c.window)
			if err := s.CreateProvider(ctx, p, switchboard.AuditEntry{}); err != nil {
				b.Fatal(err)
			}
			now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
			seedHistory(b, s, "p", now, days)
			if err := s.CompactHistory(ctx, now, now.Add(-26*time.Hour)); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				r := switchboard.ProbeResult{OK: true, Latency: 20 * time.Millisecond, At: now.Add(time.Duration(i) * time.Millisecond)}
				fold := func(h switchboard.Health) switchboard.Health { return health.Observe(h, r, p.HealthCheck, true) }
				if _, _, err := s.RecordCheck(ctx, "p", r, fold); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// seedHistory writes days of history at one check a second before now: an
// hourly rollup per hour, and the raw results of the last 25 hours.
func seedHistory(b *testing.B, s *Store, name string, now time.Time, days int) {
	ctx := context.Background()
	err := s.write(ctx, func(tx *sql.Tx) error {
		for h := range days * 24 {
			bucket := now.Add(-time.Duration(h+1) * time.Hour)
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO health_hourly
				(provider, bucket, checks, successes, latency_sum_ms, latency_max_ms) VALUES (?, ?, 3600, 3600, 72000, 30)`),
				name, dbTime(bucket)); err != nil {
				return err
			}
		}
		// The raw results of the last 25 hours, as compaction keeps them: a
		// window of a day starts in them.
		for sec := range 25 * 3600 {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO probe_results (provider, at, ok, latency_ms, stage, message)
				VALUES (?, ?, ?, 20, '', '')`), name, dbTime(now.Add(-time.Duration(sec+1)*time.Second)), true); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
