package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"maps"
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
	provider, region string
	span             time.Duration
	bucket           int64
}

type qualityBinKey struct {
	qualityRowKey
	metric string
	bin    int
}

type qualityStreamKey struct {
	provider, region, stream string
}

// qualityAgg is reports summed per row before they are written: each rollup
// row, histogram bin and per-stream record once, however many samples and
// reports fall in it.
type qualityAgg struct {
	rows    map[qualityRowKey]*switchboard.QualityTotals
	bins    map[qualityBinKey]int64
	streams map[qualityStreamKey]time.Time // the last sample's time
}

func newQualityAgg() *qualityAgg {
	return &qualityAgg{rows: map[qualityRowKey]*switchboard.QualityTotals{}, bins: map[qualityBinKey]int64{},
		streams: map[qualityStreamKey]time.Time{}}
}

// add sums the samples of r.
func (a *qualityAgg) add(r switchboard.QualityReport) {
	if len(r.Samples) == 0 {
		return
	}
	sk := qualityStreamKey{r.Provider, r.Region, r.StreamID}
	last := a.streams[sk]
	for _, smp := range r.Samples {
		if smp.At.After(last) {
			last = smp.At
		}
		for _, span := range []time.Duration{qualityMinute, qualityHour} {
			k := qualityRowKey{r.Provider, r.Region, span, dbTime(smp.At.UTC().Truncate(span))}
			t := a.rows[k]
			if t == nil {
				t = &switchboard.QualityTotals{}
				a.rows[k] = t
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
				a.bins[qualityBinKey{k, m, switchboard.QualityBinOf(m, smp)}]++
			}
		}
	}
	a.streams[sk] = last
}

func compareRowKeys(a, b qualityRowKey) int {
	return cmp.Or(cmp.Compare(a.provider, b.provider), cmp.Compare(a.region, b.region),
		cmp.Compare(a.span, b.span), cmp.Compare(a.bucket, b.bucket))
}

// write upserts the sums in tx, rows, bins and streams each in a fixed
// order, so that concurrent writers on PostgreSQL take their row locks in
// the same order.
func (a *qualityAgg) write(ctx context.Context, s *Store, tx *sql.Tx) error {
	rowKeys := slices.SortedFunc(maps.Keys(a.rows), compareRowKeys)
	for _, k := range rowKeys {
		t := a.rows[k]
		if _, err := s.txExec(ctx, tx, qQualityRollup, k.provider, k.region, int64(k.span), k.bucket, t.Samples, t.VideoSamples,
			t.LossSum, t.FreezeCount, t.FreezeMs, t.BitrateSum, t.FPSSum); err != nil {
			return err
		}
	}
	binKeys := slices.SortedFunc(maps.Keys(a.bins), func(x, y qualityBinKey) int {
		return cmp.Or(compareRowKeys(x.qualityRowKey, y.qualityRowKey), cmp.Compare(x.metric, y.metric), cmp.Compare(x.bin, y.bin))
	})
	for _, k := range binKeys {
		if _, err := s.txExec(ctx, tx, qQualityBin, k.provider, k.region, int64(k.span), k.bucket, k.metric, k.bin, a.bins[k]); err != nil {
			return err
		}
	}
	streamKeys := slices.SortedFunc(maps.Keys(a.streams), func(x, y qualityStreamKey) int {
		return cmp.Or(cmp.Compare(x.provider, y.provider), cmp.Compare(x.region, y.region), cmp.Compare(x.stream, y.stream))
	})
	for _, k := range streamKeys {
		if _, err := s.txExec(ctx, tx, qQualityStream, k.provider, k.region, k.stream, dbTime(a.streams[k])); err != nil {
			return err
		}
	}
	return nil
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
// per row first (qualityAgg), then each row is upserted once.
func (s *Store) RecordQuality(ctx context.Context, streamID, provider, region string, samples []switchboard.QualitySample) error {
	if len(samples) == 0 {
		return nil
	}
	agg := newQualityAgg()
	agg.add(switchboard.QualityReport{StreamID: streamID, Provider: provider, Region: region, Samples: samples})
	// Every live stream reports its samples: on SQLite they share
	// transactions (and their rows: the same provider, region and minute)
	// with the starts.
	err := s.grouped(ctx, func(ctx context.Context, tx *sql.Tx) (clean bool, err error) {
		if err := s.checkProvider(ctx, tx, provider); err != nil {
			return true, err
		}
		return false, agg.write(ctx, s, tx)
	})
	return wrap("record quality", err)
}

// qualityReportsPerTx bounds the streams of one transaction of
// RecordQualityReports, so that a large batch does not hold SQLite's one
// writer from the starts for long.
const qualityReportsPerTx = 500

// RecordQualityReports implements switchboard.QualityStore: the reports,
// summed per row across all of them, in transactions of at most
// qualityReportsPerTx streams. The reports on a provider that no longer
// exists are left out (its rollups went with it).
func (s *Store) RecordQualityReports(ctx context.Context, reports []switchboard.QualityReport) error {
	if len(reports) == 0 {
		return nil
	}
	known := map[string]bool{}
	for _, r := range reports {
		known[r.Provider] = false
	}
	ps, err := s.ListProviders(ctx)
	if err != nil {
		return wrap("record quality", err)
	}
	for _, p := range ps {
		if _, ok := known[p.Name]; ok {
			known[p.Name] = true
		}
	}
	agg, streams := newQualityAgg(), 0
	flush := func() error {
		if len(agg.rows) == 0 && len(agg.streams) == 0 {
			return nil
		}
		err := s.write(ctx, func(tx *sql.Tx) error { return agg.write(ctx, s, tx) })
		agg, streams = newQualityAgg(), 0
		return err
	}
	for _, r := range reports {
		if !known[r.Provider] {
			continue
		}
		if streams >= qualityReportsPerTx {
			if err := flush(); err != nil {
				return wrap("record quality", err)
			}
		}
		n := len(agg.streams)
		agg.add(r)
		streams += len(agg.streams) - n
	}
	return wrap("record quality", flush())
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
