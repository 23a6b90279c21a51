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
// with a 30-day window over a history of one to thirty days, seeded as the
// store keeps it: hourly rollups (3600 checks each), compacted into daily ones
// for the complete days, and the last hour of raw results. The cost of a check does not grow with the history.
func BenchmarkRecordCheckWindow(b *testing.B) {
	for _, days := range []int{1, 30} {
		b.Run(fmt.Sprintf("history=%dd", days), func(b *testing.B) {
			ctx := context.Background()
			dsn, _ := tempDSN(b)
			s := mustOpen(b, dsn, newSealer(b))
			p := storetest.AgoraProvider(b, "p")
			p.HealthCheck.Interval, p.HealthCheck.Timeout = switchboard.Duration(time.Second), switchboard.Duration(500*time.Millisecond)
			p.HealthCheck.Window = switchboard.Duration(switchboard.MaxHealthWindow)
			if err := s.CreateProvider(ctx, p, switchboard.AuditEntry{}); err != nil {
				b.Fatal(err)
			}
			now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
			seedHistory(b, s, "p", now, days)
			if err := s.CompactHistory(ctx, now, now.Add(-time.Hour)); err != nil {
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
// hourly rollup per hour, and the raw results of the last hour.
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
		for sec := range 3600 {
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
