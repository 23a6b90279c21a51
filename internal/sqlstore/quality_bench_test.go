package sqlstore

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/storetest"
)

// qualityBenchStore is a SQLite store whose 4 providers × 3 regions have had
// a sample every 10 s for the last day (sent 12 at a time, from a new stream
// every 10 minutes): every minute and hour rollup of the 24 h window exists.
func qualityBenchStore(b *testing.B, now time.Time) *Store {
	b.Helper()
	dsn, _ := tempDSN(b)
	s := mustOpen(b, dsn, newSealer(b))
	ctx := context.Background()
	for p := range 4 {
		if err := s.CreateProvider(ctx, storetest.AgoraProvider(b, fmt.Sprintf("p%d", p)), switchboard.AuditEntry{Action: "provider.create"}); err != nil {
			b.Fatal(err)
		}
	}
	for at := now.Add(-24 * time.Hour); at.Before(now); at = at.Add(2 * time.Minute) {
		for p := range 4 {
			for r := range 3 {
				batch := make([]switchboard.QualitySample, 12)
				for i := range batch {
					batch[i] = switchboard.QualitySample{At: at.Add(time.Duration(i) * 10 * time.Second), RTTMs: float64(20 + (i*37)%300),
						PacketLoss: float64(i) / 500, JitterMs: float64(2 + i), BitrateKbps: 900, FPS: 30}
				}
				if err := s.RecordQuality(ctx, fmt.Sprintf("s%d", int(at.Unix()/600)), fmt.Sprintf("p%d", p), fmt.Sprintf("r%d", r), batch); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	return s
}

// BenchmarkQualityRecord is one report of 3 samples into a full day of rollups.
func BenchmarkQualityRecord(b *testing.B) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	s := qualityBenchStore(b, now)
	batch := []switchboard.QualitySample{{At: now, RTTMs: 40, PacketLoss: 0.01, JitterMs: 4, BitrateKbps: 900, FPS: 30}}
	batch = append(batch, batch[0], batch[0])
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := s.RecordQuality(context.Background(), fmt.Sprintf("b%d", i%100), "p0", "r0", batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkQualityRead is what GET /api/streaming/quality reads: the three
// windows of every provider and region over a full day of rollups.
func BenchmarkQualityRead(b *testing.B) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	s := qualityBenchStore(b, now)
	b.ResetTimer()
	for b.Loop() {
		for _, w := range switchboard.QualityWindows {
			got, err := s.QualityTotals(context.Background(), now, w.Span)
			if err != nil || len(got) != 12 {
				b.Fatalf("%v: %d keys, %v", w.Span, len(got), err)
			}
			for _, t := range got {
				t.Stats()
			}
		}
	}
}

// BenchmarkQualityRecordConcurrent is BenchmarkQualityRecord from 16
// goroutines a core, as the reports of many live streams arrive.
func BenchmarkQualityRecordConcurrent(b *testing.B) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	s := qualityBenchStore(b, now)
	batch := []switchboard.QualitySample{{At: now, RTTMs: 40, PacketLoss: 0.01, JitterMs: 4, BitrateKbps: 900, FPS: 30}}
	batch = append(batch, batch[0], batch[0])
	var n atomic.Int64
	b.SetParallelism(16)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			if err := s.RecordQuality(context.Background(), fmt.Sprintf("b%d", i%100), fmt.Sprintf("p%d", i%4), "r0", batch); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
