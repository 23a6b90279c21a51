package streams

import (
	"context"
	"sync"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// QualityRecorder is what a Store implements to record quality samples
// (*sqlstore.Store does): one stream's report at once, or many reports in a
// batch summed per rollup row.
type QualityRecorder interface {
	RecordQuality(ctx context.Context, streamID, provider, region string, samples []sb.QualitySample) error
	RecordQualityReports(ctx context.Context, reports []sb.QualityReport) error
}

// maxPendingQuality bounds the reports a service holds for its next flush
// (a few hundred bytes each); past it a report is refused (503) until a
// flush makes room, and the SDK keeps its samples and sends them later.
const maxPendingQuality = 1 << 16

// qualityBatch acknowledges quality reports from memory and writes them
// every interval in one batch: every live stream sends one about every 30 s,
// and each written on its own upserted about ten rollup rows in a
// transaction of its own. A crash loses at most the last interval's samples.
type qualityBatch struct {
	rec   QualityRecorder
	every time.Duration

	mu      sync.Mutex
	pending []sb.QualityReport // guarded by mu
}

// add holds r for the next flush, and reports false when the batch is full.
func (b *qualityBatch) add(r sb.QualityReport) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.pending) >= maxPendingQuality {
		return false
	}
	b.pending = append(b.pending, r)
	return true
}

// flush writes the pending reports. On failure it keeps them, ahead of those
// that came meanwhile and within the bound, for the next flush.
func (b *qualityBatch) flush(ctx context.Context) (int, error) {
	b.mu.Lock()
	batch := b.pending
	b.pending = nil
	b.mu.Unlock()
	if len(batch) == 0 {
		return 0, nil
	}
	if err := b.rec.RecordQualityReports(ctx, batch); err != nil {
		b.mu.Lock()
		b.pending = append(batch, b.pending...)
		if over := len(b.pending) - maxPendingQuality; over > 0 {
			b.pending = b.pending[over:] // the oldest go first
		}
		b.mu.Unlock()
		return 0, err
	}
	return len(batch), nil
}

// RecordQuality records samples that stream id measured on provider in
// region (as QualityTarget answered them): held in memory and written by Run
// with the next batch when the service batches (Config.HeartbeatFlush), else
// at once. Errors: EUnavailable when the batch is full, or the store's.
func (s *Service) RecordQuality(ctx context.Context, id, provider, region string, samples []sb.QualitySample) error {
	if s.quality != nil {
		if !s.quality.add(sb.QualityReport{StreamID: id, Provider: provider, Region: region, Samples: samples}) {
			return sb.Errorf(sb.EUnavailable, "too many quality reports waiting to be written: retry later")
		}
		return nil
	}
	rec, ok := s.store.(QualityRecorder)
	if !ok {
		return sb.Errorf(sb.EUnavailable, "this server does not record quality")
	}
	return rec.RecordQuality(ctx, id, provider, region, samples)
}
