package switchboard

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// Quality telemetry: what clients measure of their media, sent as samples
// (POST /api/streams/{id}/quality) and folded into rollups per provider and
// region, from which QualityTotals.Stats derives percentiles and a score.

// Limits of the quality telemetry.
const (
	// QualitySampleInterval is the period one sample covers: the SDKs take
	// one every 10 s. The freeze ratio divides frozen time by it.
	QualitySampleInterval = 10 * time.Second
	// MaxQualitySamples is the most samples one request may carry.
	MaxQualitySamples = 60
	// QualitySampleMaxAge is how old a sample may be when it arrives; a
	// client that could not send for longer drops what it held.
	QualitySampleMaxAge = 24 * time.Hour
	// QualitySampleMaxSkew is how far in the future (by the server's clock) a
	// sample's time may be.
	QualitySampleMaxSkew = time.Minute
)

// QualitySample is one measurement of a stream's media over the
// QualitySampleInterval that ends at At.
type QualitySample struct {
	At          time.Time `json:"at"`
	RTTMs       float64   `json:"rttMs"`       // round-trip time to the provider's edge
	PacketLoss  float64   `json:"packetLoss"`  // fraction of packets lost, 0–1
	JitterMs    float64   `json:"jitterMs"`    // inter-arrival jitter
	BitrateKbps float64   `json:"bitrateKbps"` // media bitrate sent or received
	FPS         float64   `json:"fps"`         // video frames per second; 0 for audio only
	FreezeCount int64     `json:"freezeCount"` // video freezes in the interval
	FreezeMs    int64     `json:"freezeMs"`    // time frozen in the interval
}

// qualityLimit is the accepted range of one field of a sample.
type qualityLimit struct {
	field string
	max   float64
	value func(QualitySample) float64
}

var qualityLimits = []qualityLimit{
	{"rttMs", 60_000, func(s QualitySample) float64 { return s.RTTMs }},
	{"packetLoss", 1, func(s QualitySample) float64 { return s.PacketLoss }},
	{"jitterMs", 60_000, func(s QualitySample) float64 { return s.JitterMs }},
	{"bitrateKbps", 1_000_000, func(s QualitySample) float64 { return s.BitrateKbps }},
	{"fps", 240, func(s QualitySample) float64 { return s.FPS }},
	{"freezeCount", 10_000, func(s QualitySample) float64 { return float64(s.FreezeCount) }},
	{"freezeMs", 60_000, func(s QualitySample) float64 { return float64(s.FreezeMs) }},
}

// ValidateQualitySamples checks a batch of samples received at now: 1 to
// MaxQualitySamples of them, each with a time no older than
// QualitySampleMaxAge and no more than QualitySampleMaxSkew ahead, and every
// value within its range (see the README). The error names the field, such as
// samples[3].packetLoss.
func ValidateQualitySamples(samples []QualitySample, now time.Time) error {
	if len(samples) == 0 {
		return Invalid("samples", "at least one sample is required")
	}
	if len(samples) > MaxQualitySamples {
		return Invalid("samples", "at most %d samples a request", MaxQualitySamples)
	}
	for i, s := range samples {
		if s.At.IsZero() {
			return Invalid(fmt.Sprintf("samples[%d].at", i), "is required (RFC 3339)")
		}
		if s.At.Before(now.Add(-QualitySampleMaxAge)) || s.At.After(now.Add(QualitySampleMaxSkew)) {
			return Invalid(fmt.Sprintf("samples[%d].at", i), "must be within the last 24 hours")
		}
		for _, l := range qualityLimits {
			v := l.value(s)
			if math.IsNaN(v) || v < 0 || v > l.max {
				return Invalid(fmt.Sprintf("samples[%d].%s", i, l.field), "must be from 0 to %g", l.max)
			}
		}
	}
	return nil
}

// Quality metrics kept as histograms.
const (
	MetricRTT    = "rtt"    // ms
	MetricLoss   = "loss"   // units of 0.0001 (0.01 %)
	MetricJitter = "jitter" // ms
)

// lossUnit is the resolution of the packet-loss histogram.
const lossUnit = 1e-4

// Histogram bins: values below binExact (in the metric's unit) have a bin of
// their own; above it bins grow by binRatio (2 %), so that a percentile read
// from them is within 1 % of the true value while a histogram of any number of
// samples holds at most a few hundred bins.
const (
	binExact = 128
	binRatio = 1.02
)

// QualityBin returns the histogram bin of v (in the metric's unit: ms, or
// 0.0001 for loss).
func QualityBin(v float64) int {
	u := math.Round(v)
	if u < binExact {
		return int(max(u, 0))
	}
	return binExact + int(math.Floor(math.Log(u/binExact)/math.Log(binRatio)))
}

// qualityBinValue is the value a bin stands for: itself when exact, else the
// geometric middle of its range.
func qualityBinValue(b int) float64 {
	if b < binExact {
		return float64(b)
	}
	return binExact * math.Pow(binRatio, float64(b-binExact)+0.5)
}

// QualityBinOf returns the bin of the metric's value in sample s.
func QualityBinOf(metric string, s QualitySample) int {
	switch metric {
	case MetricRTT:
		return QualityBin(s.RTTMs)
	case MetricLoss:
		return QualityBin(s.PacketLoss / lossUnit)
	default:
		return QualityBin(s.JitterMs)
	}
}

// QualityHistogram counts samples per bin.
type QualityHistogram map[int]int64

// percentile returns the nearest-rank p-quantile (0 < p <= 1), 0 when empty.
func (h QualityHistogram) percentile(p float64) float64 {
	var n int64
	bins := make([]int, 0, len(h))
	for b, c := range h {
		n += c
		bins = append(bins, b)
	}
	if n == 0 {
		return 0
	}
	slices.Sort(bins)
	rank := int64(math.Ceil(p * float64(n)))
	var seen int64
	for _, b := range bins {
		seen += h[b]
		if seen >= rank {
			return qualityBinValue(b)
		}
	}
	return qualityBinValue(bins[len(bins)-1])
}

// QualityTotals are the sums of the samples of one provider and region over
// a window, as the store keeps them.
type QualityTotals struct {
	Samples      int64
	VideoSamples int64 // samples with fps > 0
	Streams      int64 // streams that sent a sample in the window
	LossSum      float64
	FreezeCount  int64
	FreezeMs     int64
	BitrateSum   float64 // of video samples
	FPSSum       float64 // of video samples
	// Histograms by metric (MetricRTT, MetricLoss, MetricJitter).
	Histograms map[string]QualityHistogram
}

// Percentiles are the median and 95th percentile of a metric.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
}

// QualityStats is the view of a window's QualityTotals.
type QualityStats struct {
	Samples     int64       `json:"samples"`
	Streams     int64       `json:"streams"`
	RTTMs       Percentiles `json:"rttMs"`
	PacketLoss  Percentiles `json:"packetLoss"`
	JitterMs    Percentiles `json:"jitterMs"`
	FreezeRatio float64     `json:"freezeRatio"` // of video time, 0–1
	FreezeCount int64       `json:"freezeCount"`
	// BitrateKbps and FPS are means over the video samples (0 without any).
	BitrateKbps float64 `json:"bitrateKbps"`
	FPS         float64 `json:"fps"`
	// Score is the quality score 0–100 (see QualityScore); nil without samples.
	Score *float64 `json:"score"`
}

// Stats derives the percentiles, ratios and score of t.
func (t QualityTotals) Stats() QualityStats {
	st := QualityStats{Samples: t.Samples, Streams: t.Streams, FreezeCount: t.FreezeCount}
	if t.Samples == 0 {
		return st
	}
	pct := func(metric string, scale float64) Percentiles {
		h := t.Histograms[metric]
		return Percentiles{P50: round(h.percentile(0.5)*scale, 4), P95: round(h.percentile(0.95)*scale, 4)}
	}
	st.RTTMs, st.PacketLoss, st.JitterMs = pct(MetricRTT, 1), pct(MetricLoss, lossUnit), pct(MetricJitter, 1)
	if t.VideoSamples > 0 {
		st.FreezeRatio = round(min(float64(t.FreezeMs)/float64(t.VideoSamples*QualitySampleInterval.Milliseconds()), 1), 4)
		st.BitrateKbps = round(t.BitrateSum/float64(t.VideoSamples), 1)
		st.FPS = round(t.FPSSum/float64(t.VideoSamples), 1)
	}
	score := QualityScore(QualityInputs{
		RTTMs: st.RTTMs.P50, JitterMs: st.JitterMs.P50, PacketLoss: t.LossSum / float64(t.Samples),
		Video: t.VideoSamples > 0, FreezeRatio: st.FreezeRatio, BitrateKbps: st.BitrateKbps, FPS: st.FPS,
	})
	st.Score = &score
	return st
}

// QualityInputs are what QualityScore reads.
type QualityInputs struct {
	RTTMs, JitterMs float64 // medians
	PacketLoss      float64 // mean, 0–1
	Video           bool    // whether any sample had video
	FreezeRatio     float64 // 0–1
	BitrateKbps     float64 // mean of video samples
	FPS             float64 // mean of video samples
}

// Constants of the score (README, "Quality telemetry").
const (
	eModelR0     = 93.2  // R with no impairment (R0 − Is at default values)
	eModelBpl    = 25.1  // packet-loss robustness (G.113 value for a codec with concealment)
	codecDelayMs = 20.0  // packetisation and codec delay added to half the RTT
	videoLowKbps = 300.0 // below this mean video bitrate, up to 10 points off
	videoLowFPS  = 15.0  // below this mean frame rate, up to 10 points off
)

// QualityScore is the quality score 0–100, one decimal. Audio: the ITU-T
// G.107 E-model's R factor from the one-way delay d = RTT/2 + 2·jitter + 20 ms
// (Id = 0.024·d + 0.11·(d − 177.3) when d > 177.3) and the random packet
// loss Ppl in % (Ie,eff = 95·Ppl/(Ppl + 25.1)), R = 93.2 − Id − Ie,eff,
// scaled so that a perfect R is 100. Video, when any sample had video, takes
// off 200·freezeRatio (at most 50), 10·(1 − bitrate/300 kbps) below 300
// kbps, and 10·(1 − fps/15) below 15 fps.
func QualityScore(in QualityInputs) float64 {
	score := 100 * EModelR(in) / eModelR0
	if in.Video {
		score -= min(200*in.FreezeRatio, 50)
		if in.BitrateKbps < videoLowKbps {
			score -= 10 * (1 - max(in.BitrateKbps, 0)/videoLowKbps)
		}
		if in.FPS < videoLowFPS {
			score -= 10 * (1 - max(in.FPS, 0)/videoLowFPS)
		}
	}
	return round(min(max(score, 0), 100), 1)
}

// EModelR is the E-model's transmission rating factor R (0–93.2) of the
// audio part of in, as QualityScore computes it: R = 93.2 − Id − Ie,eff.
func EModelR(in QualityInputs) float64 {
	d := in.RTTMs/2 + 2*in.JitterMs + codecDelayMs
	id := 0.024 * d
	if d > 177.3 {
		id += 0.11 * (d - 177.3)
	}
	ppl := min(max(in.PacketLoss, 0), 1) * 100
	ie := 95 * ppl / (ppl + eModelBpl)
	return min(max(eModelR0-id-ie, 0), eModelR0)
}

// MOS is the estimated mean opinion score (1–4.5) of an R factor, by ITU-T
// G.107 Annex B: 1 for R ≤ 0, 4.5 for R ≥ 100, else
// 1 + 0.035·R + R·(R − 60)·(100 − R)·7·10⁻⁶; two decimals.
func MOS(r float64) float64 {
	switch {
	case r <= 0:
		return 1
	case r >= 100:
		return 4.5
	}
	return round(1+0.035*r+r*(r-60)*(100-r)*7e-6, 2)
}

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

// QualityWindows are the windows the aggregates are given over, by name.
var QualityWindows = []struct {
	Name string
	Span time.Duration
}{{"5m", 5 * time.Minute}, {"1h", time.Hour}, {"24h", 24 * time.Hour}}

// QualityReport is samples that stream StreamID measured on Provider in
// Region ("" when it has none).
type QualityReport struct {
	StreamID, Provider, Region string
	Samples                    []QualitySample
}

// QualityKey is a provider and a region ("" when the stream had none).
type QualityKey struct {
	Provider string
	Region   string
}

// QualityStore persists quality samples as rollups.
type QualityStore interface {
	// RecordQuality adds samples that stream streamID measured on provider in
	// region to the per-minute and per-hour rollups, in one transaction.
	// Errors: ENotFound for an unknown provider.
	RecordQuality(ctx context.Context, streamID, provider, region string, samples []QualitySample) error
	// RecordQualityReports adds the samples of many reports at once, summed
	// per rollup row across all of them first; the reports on a provider
	// that no longer exists are left out. A batch may be written in several
	// transactions.
	RecordQualityReports(ctx context.Context, reports []QualityReport) error
	// QualityTotals returns, per provider and region that has any, the totals
	// of the last window before now: from the minute rollups for windows of
	// up to two hours, else from the hourly ones, counting the bucket now is
	// in (so a window covers between window − bucket and window).
	QualityTotals(ctx context.Context, now time.Time, window time.Duration) (map[QualityKey]QualityTotals, error)
	// CompactQuality deletes the minute rollups and the per-stream records
	// from before keepRawBefore and the hourly rollups more than 35 days
	// older than day.
	CompactQuality(ctx context.Context, day, keepRawBefore time.Time) error
}
