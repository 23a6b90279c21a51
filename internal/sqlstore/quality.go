package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"time"

	"github.com/switchboardhq/switchboard"
)

// Quality rollups: buckets of a minute, for windows of up to
// qualityMinuteWindows, and of an hour beyond.
const (
	qualityMinute        = time.Minute
	qualityHour          = time.Hour
	qualityMinuteWindows = 2 * time.Hour
)

var qualityMetrics = []string{switchboard.MetricRTT, switchboard.MetricLoss, switchboard.MetricJitter}

type qualityRowKey struct {
	span   time.Duration
	bucket int64
}

type qualityBinKey struct {
	qualityRowKey
	metric string
	bin    int
}

// The writes of RecordQuality, prepared with the hot writes (stmts.go).
const (
	qQualityRollup = `INSERT INTO quality_rollups
			(provider, region, span, bucket, samples, video_samples, loss_sum, freeze_count, freeze_ms, bitrate_sum, fps_sum)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (provider, region, span, bucket) DO UPDATE SET
			samples = quality_rollups.samples + excluded.samples,
			video_samples = quality_rollups.video_samples + excluded.video_samples,
			loss_sum = quality_rollups.loss_sum + excluded.loss_sum,
			freeze_count = quality_rollups.freeze_count + excluded.freeze_count,
			freeze_ms = quality_rollups.freeze_ms + excluded.freeze_ms,
			bitrate_sum = quality_rollups.bitrate_sum + excluded.bitrate_sum,
			fps_sum = quality_rollups.fps_sum + excluded.fps_sum`
	qQualityBin = `INSERT INTO quality_histograms (provider, region, span, bucket, metric, bin, n)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (provider, region, span, bucket, metric, bin) DO UPDATE SET n = quality_histograms.n + excluded.n`
	qQualityStream = `INSERT INTO quality_streams (provider, region, stream_id, last_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (provider, region, stream_id) DO UPDATE SET
			last_at = CASE WHEN excluded.last_at > quality_streams.last_at THEN excluded.last_at ELSE quality_streams.last_at END`
)

// RecordQuality implements switchboard.QualityStore. The samples are summed
// per bucket first, then each rollup row and histogram bin is upserted once,
// in a fixed order, so that concurrent writers on PostgreSQL take their row
// locks in the same order.
func (s *Store) RecordQuality(ctx context.Context, streamID, provider, region string, samples []switchboard.QualitySample) error {
	if len(samples) == 0 {
		return nil
	}
	rows := map[qualityRowKey]*switchboard.QualityTotals{}
	bins := map[qualityBinKey]int64{}
	var last time.Time
	for _, smp := range samples {
		if smp.At.After(last) {
			last = smp.At
		}
		for _, span := range []time.Duration{qualityMinute, qualityHour} {
			k := qualityRowKey{span, dbTime(smp.At.UTC().Truncate(span))}
			t := rows[k]
			if t == nil {
				t = &switchboard.QualityTotals{}
				rows[k] = t
			}
			t.Samples++
			t.LossSum += smp.PacketLoss
			t.FreezeCount += smp.FreezeCount
			t.FreezeMs += smp.FreezeMs
			if smp.FPS > 0 {
				t.VideoSamples++
				t.BitrateSum += smp.BitrateKbps
				t.FPSSum += smp.FPS
			}
			for _, m := range qualityMetrics {
				bins[qualityBinKey{k, m, switchboard.QualityBinOf(m, smp)}]++
			}
		}
	}
	rowKeys := make([]qualityRowKey, 0, len(rows))
	for k := range rows {
		rowKeys = append(rowKeys, k)
	}
	slices.SortFunc(rowKeys, func(a, b qualityRowKey) int {
		return cmp.Or(cmp.Compare(a.span, b.span), cmp.Compare(a.bucket, b.bucket))
	})
	binKeys := make([]qualityBinKey, 0, len(bins))
	for k := range bins {
		binKeys = append(binKeys, k)
	}
	slices.SortFunc(binKeys, func(a, b qualityBinKey) int {
		return cmp.Or(cmp.Compare(a.span, b.span), cmp.Compare(a.bucket, b.bucket),
			cmp.Compare(a.metric, b.metric), cmp.Compare(a.bin, b.bin))
	})
	// Every live stream reports its samples, 10,000 streams about a
	// thousand reports a second: on SQLite they share transactions (and
	// their rows: the same provider, region and minute), with the starts.
	err := s.grouped(ctx, func(ctx context.Context, tx *sql.Tx) (clean bool, err error) {
		if err := s.checkProvider(ctx, tx, provider); err != nil {
			return true, err
		}
		for _, k := range rowKeys {
			t := rows[k]
			if _, err := s.txExec(ctx, tx, qQualityRollup, provider, region, int64(k.span), k.bucket, t.Samples, t.VideoSamples,
				t.LossSum, t.FreezeCount, t.FreezeMs, t.BitrateSum, t.FPSSum); err != nil {
				return false, err
			}
		}
		for _, k := range binKeys {
			if _, err := s.txExec(ctx, tx, qQualityBin, provider, region, int64(k.span), k.bucket, k.metric, k.bin, bins[k]); err != nil {
				return false, err
			}
		}
		_, err = s.txExec(ctx, tx, qQualityStream, provider, region, streamID, dbTime(last))
		return false, err
	})
	return wrap("record quality", err)
}

// QualityTotals implements switchboard.QualityStore.
func (s *Store) QualityTotals(ctx context.Context, now time.Time, window time.Duration) (map[switchboard.QualityKey]switchboard.QualityTotals, error) {
	span := qualityMinute
	if window > qualityMinuteWindows {
		span = qualityHour
	}
	// The bucket now is in and those before it, window in all. Streams
	// count by their last sample.
	end := now.UTC().Truncate(span).Add(span)
	out, err := s.qualityTotalsIn(ctx, span, dbTime(end.Add(-window)), dbTime(end))
	if err != nil {
		return nil, wrap("quality totals", err)
	}
	return out, nil
}

// qualityTotalsIn reads the totals of the rollups of one span whose buckets
// are in [from, to) (stored times), and the streams whose last sample is.
func (s *Store) qualityTotalsIn(ctx context.Context, span time.Duration, from, to int64) (map[switchboard.QualityKey]switchboard.QualityTotals, error) {
	out := map[switchboard.QualityKey]switchboard.QualityTotals{}
	err := s.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q(`SELECT provider, region, SUM(samples), SUM(video_samples), SUM(loss_sum),
				SUM(freeze_count), SUM(freeze_ms), SUM(bitrate_sum), SUM(fps_sum)
			FROM quality_rollups WHERE span = ? AND bucket >= ? AND bucket < ? GROUP BY provider, region`), int64(span), from, to)
		if err != nil {
			return err
		}
		for rows.Next() {
			var (
				k switchboard.QualityKey
				t switchboard.QualityTotals
			)
			if err := rows.Scan(&k.Provider, &k.Region, &t.Samples, &t.VideoSamples, &t.LossSum,
				&t.FreezeCount, &t.FreezeMs, &t.BitrateSum, &t.FPSSum); err != nil {
				rows.Close()
				return err
			}
			t.Histograms = map[string]switchboard.QualityHistogram{}
			out[k] = t
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.QueryContext(ctx, s.q(`SELECT provider, region, metric, bin, SUM(n)
			FROM quality_histograms WHERE span = ? AND bucket >= ? AND bucket < ? GROUP BY provider, region, metric, bin`), int64(span), from, to)
		if err != nil {
			return err
		}
		for rows.Next() {
			var (
				k      switchboard.QualityKey
				metric string
				bin    int
				n      int64
			)
			if err := rows.Scan(&k.Provider, &k.Region, &metric, &bin, &n); err != nil {
				rows.Close()
				return err
			}
			t, ok := out[k]
			if !ok {
				continue
			}
			h := t.Histograms[metric]
			if h == nil {
				h = switchboard.QualityHistogram{}
				t.Histograms[metric] = h
			}
			h[bin] += n
		}
		if err := rows.Close(); err != nil {
			return err
		}
		if err := rows.Err(); err != nil {
			return err
		}
		rows, err = tx.QueryContext(ctx, s.q(`SELECT provider, region, COUNT(*) FROM quality_streams
			WHERE last_at >= ? AND last_at < ? GROUP BY provider, region`), from, to)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				k switchboard.QualityKey
				n int64
			)
			if err := rows.Scan(&k.Provider, &k.Region, &n); err != nil {
				return err
			}
			if t, ok := out[k]; ok {
				t.Streams = n
				out[k] = t
			}
		}
		return rows.Err()
	})
	return out, err
}

// CompactQuality implements switchboard.QualityStore.
func (s *Store) CompactQuality(ctx context.Context, day, keepRawBefore time.Time) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		for _, del := range []struct {
			query string
			arg   any
		}{
			{`DELETE FROM quality_rollups WHERE span = ? AND bucket < ?`, dbTime(keepRawBefore)},
			{`DELETE FROM quality_histograms WHERE span = ? AND bucket < ?`, dbTime(keepRawBefore)},
		} {
			if _, err := tx.ExecContext(ctx, s.q(del.query), int64(qualityMinute), del.arg); err != nil {
				return err
			}
		}
		hourCut := dbTime(floorDay(day).Add(-hourlyRetention))
		for _, table := range []string{"quality_rollups", "quality_histograms"} {
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM `+table+` WHERE span = ? AND bucket < ?`),
				int64(qualityHour), hourCut); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, s.q(`DELETE FROM quality_streams WHERE last_at < ?`), dbTime(keepRawBefore))
		return err
	})
	return wrap("compact quality", err)
}
