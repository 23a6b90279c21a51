package switchboard

import (
	"testing"
	"time"
)

// TestQualityScore checks the score against values worked out by hand from
// the formula (README, "Quality telemetry").
func TestQualityScore(t *testing.T) {
	video := QualityInputs{Video: true, BitrateKbps: 1200, FPS: 30}
	with := func(in QualityInputs, rtt, jitter, loss, freeze float64) QualityInputs {
		in.RTTMs, in.JitterMs, in.PacketLoss, in.FreezeRatio = rtt, jitter, loss, freeze
		return in
	}
	for _, tt := range []struct {
		name string
		in   QualityInputs
		want float64
	}{
		// d = 20 + 8 + 20 = 48: Id = 1.152; Ie,eff = 95·0.2/25.3 = 0.751;
		// R = 91.297 → 97.96.
		{"clean call", with(video, 40, 4, 0.002, 0), 98},
		// d = 150 + 8 + 20 = 178: Id = 4.272 + 0.11·0.7 = 4.349;
		// Ie,eff = 95·3/28.1 = 10.142; R = 78.709 → 84.45.
		{"far and lossy", with(video, 300, 4, 0.03, 0), 84.5},
		// The same, 10 % of the time frozen: 200·0.1 = 20 off.
		{"far, lossy and freezing", with(video, 300, 4, 0.03, 0.1), 64.5},
		// Freezes take off at most 50.
		{"frozen", with(video, 40, 4, 0.002, 1), 48},
		// Low bitrate and frame rate: 10·(1 − 150/300) + 10·(1 − 10/15).
		{"starved video", QualityInputs{RTTMs: 40, JitterMs: 4, PacketLoss: 0.002, Video: true, BitrateKbps: 150, FPS: 10}, 97.96 - 5 - 3.33},
		// Audio only: no video penalties however low the bitrate.
		{"audio", QualityInputs{RTTMs: 40, JitterMs: 4, PacketLoss: 0.002, BitrateKbps: 32}, 98},
		// Past 177.3 ms the delay costs fast; nothing goes below 0.
		{"hopeless", QualityInputs{RTTMs: 2000, JitterMs: 500, PacketLoss: 0.5}, 0},
		{"perfect", QualityInputs{}, 99.5}, // 20 ms of codec delay: Id = 0.48
	} {
		if got := QualityScore(tt.in); got != round(tt.want, 1) {
			t.Errorf("%s: score %v, want %v", tt.name, got, round(tt.want, 1))
		}
	}
}

func TestQualityBins(t *testing.T) {
	for _, v := range []float64{0, 1, 50, 127, 128, 129, 300, 1000, 60_000} {
		got := qualityBinValue(QualityBin(v))
		if d := got - v; d > v*0.0101 || d < -v*0.0101 {
			t.Errorf("bin of %v stands for %v: more than 1 %% off", v, got)
		}
	}
	// Nearest-rank percentiles of 1..100.
	h := QualityHistogram{}
	for v := 1; v <= 100; v++ {
		h[QualityBin(float64(v))]++
	}
	if p50, p95 := h.percentile(0.5), h.percentile(0.95); p50 != 50 || p95 != 95 {
		t.Errorf("p50 %v, p95 %v; want 50, 95", p50, p95)
	}
}

func TestValidateQualitySamples(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	ok := QualitySample{At: now, RTTMs: 60_000, PacketLoss: 1, JitterMs: 0, BitrateKbps: 1e6, FPS: 240, FreezeCount: 10_000, FreezeMs: 60_000}
	if err := ValidateQualitySamples([]QualitySample{ok}, now); err != nil {
		t.Fatalf("the limits themselves: %v", err)
	}
	bad := ok
	bad.FreezeMs = 60_001
	err := ValidateQualitySamples([]QualitySample{ok, bad}, now)
	if e, isErr := err.(*Error); !isErr || e.Field != "samples[1].freezeMs" {
		t.Errorf("freezeMs over the limit: %v", err)
	}
}
