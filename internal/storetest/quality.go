package storetest

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
)

// qualitySample is a video sample at at with the given RTT.
func qualitySample(at time.Time, rttMs float64) switchboard.QualitySample {
	return switchboard.QualitySample{At: at, RTTMs: rttMs, PacketLoss: 0.01, JitterMs: 5, BitrateKbps: 800, FPS: 30}
}

func mustQuality(t *testing.T, s switchboard.Store, stream, provider, region string, samples ...switchboard.QualitySample) {
	t.Helper()
	if err := s.RecordQuality(context.Background(), stream, provider, region, samples); err != nil {
		t.Fatalf("RecordQuality(%s on %s): %v", stream, provider, err)
	}
}

func qualityTotals(t *testing.T, s switchboard.Store, now time.Time, window time.Duration) map[switchboard.QualityKey]switchboard.QualityTotals {
	t.Helper()
	got, err := s.QualityTotals(context.Background(), now, window)
	if err != nil {
		t.Fatalf("QualityTotals(%v): %v", window, err)
	}
	return got
}

// testQualityAggregates records samples of three streams over two providers
// and checks the totals, percentiles, stream counts and score of each window.
func testQualityAggregates(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustCreate(t, s, AgoraProvider(t, "agora"))
	mustCreate(t, s, HTTPProvider(t, "zego", "https://status.example/health"))
	now := s0.Add(4*time.Minute + 30*time.Second)
	agora := switchboard.QualityKey{Provider: "agora", Region: "eu-west"}
	zego := switchboard.QualityKey{Provider: "zego"}

	// Stream a: ten samples 25 s apart with RTTs 10 to 100 ms, one of them
	// frozen for 1 s, sent in two batches that share a minute.
	var a []switchboard.QualitySample
	for i := range 10 {
		smp := qualitySample(s0.Add(time.Duration(i)*25*time.Second), float64(10*(i+1)))
		if i == 3 {
			smp.FreezeCount, smp.FreezeMs = 2, 1000
		}
		a = append(a, smp)
	}
	mustQuality(t, s, "a", "agora", "eu-west", a[:5]...)
	mustQuality(t, s, "a", "agora", "eu-west", a[5:]...)
	// Stream b: 90 minutes ago, inside 24 h only.
	mustQuality(t, s, "b", "agora", "eu-west", qualitySample(s0.Add(-90*time.Minute), 300), qualitySample(s0.Add(-89*time.Minute), 300))
	// Stream c: audio only, on a provider without a region.
	mustQuality(t, s, "c", "zego", "", switchboard.QualitySample{At: now, RTTMs: 400, PacketLoss: 0.05, JitterMs: 30, BitrateKbps: 32})

	if err := s.RecordQuality(ctx, "x", "missing", "", a[:1]); !switchboard.IsCode(err, switchboard.ENotFound) {
		t.Errorf("RecordQuality on an unknown provider: %v, want not_found", err)
	}

	for _, window := range []time.Duration{5 * time.Minute, time.Hour} {
		got := qualityTotals(t, s, now, window)
		if len(got) != 2 {
			t.Fatalf("%v: %d keys, want 2: %+v", window, len(got), got)
		}
		st := got[agora].Stats()
		if st.Samples != 10 || st.Streams != 1 || st.FreezeCount != 2 {
			t.Errorf("%v: samples %d, streams %d, freezes %d; want 10, 1, 2", window, st.Samples, st.Streams, st.FreezeCount)
		}
		if st.RTTMs != (switchboard.Percentiles{P50: 50, P95: 100}) || st.PacketLoss != (switchboard.Percentiles{P50: 0.01, P95: 0.01}) ||
			st.JitterMs != (switchboard.Percentiles{P50: 5, P95: 5}) {
			t.Errorf("%v: rtt %+v, loss %+v, jitter %+v", window, st.RTTMs, st.PacketLoss, st.JitterMs)
		}
		if st.FreezeRatio != 0.01 || st.BitrateKbps != 800 || st.FPS != 30 {
			t.Errorf("%v: freeze ratio %v, bitrate %v, fps %v; want 0.01, 800, 30", window, st.FreezeRatio, st.BitrateKbps, st.FPS)
		}
		// d = 50/2 + 2·5 + 20 = 55 ms, Id = 1.32, Ie,eff = 95·1/26.1 = 3.64,
		// R = 88.24 → 94.68, less 200·0.01 for freezes.
		if st.Score == nil || *st.Score != 92.7 {
			t.Errorf("%v: score %v, want 92.7", window, st.Score)
		}
		// Above 128 ms the histogram's bins are 2 % wide: within 1 %.
		z := got[zego].Stats()
		if z.Samples != 1 || z.Streams != 1 || z.RTTMs.P50 < 396 || z.RTTMs.P50 > 404 || z.FreezeRatio != 0 || z.FPS != 0 {
			t.Errorf("%v: zego %+v", window, z)
		}
	}
	day := qualityTotals(t, s, now, 24*time.Hour)
	if st := day[agora].Stats(); st.Samples != 12 || st.Streams != 2 || st.RTTMs.P95 < 297 || st.RTTMs.P95 > 303 {
		t.Errorf("24h: samples %d, streams %d, rtt p95 %v; want 12, 2, about 300", st.Samples, st.Streams, st.RTTMs.P95)
	}
	// A window that ended before any sample is empty.
	if got := qualityTotals(t, s, now.Add(3*time.Hour), time.Hour); len(got) != 0 {
		t.Errorf("an hour with no samples: %+v", got)
	}

	// Minute rollups and stream records go with the raw results; hourly
	// ones 35 days after their day.
	if err := s.CompactQuality(ctx, now, now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if st := qualityTotals(t, s, now, time.Hour)[agora]; st.Samples != 10 {
		t.Errorf("1h after compaction: %d samples, want 10", st.Samples)
	}
	if st := qualityTotals(t, s, now, 24*time.Hour)[agora]; st.Samples != 12 || st.Streams != 1 {
		t.Errorf("24h after compaction: %d samples, %d streams; want 12, 1", st.Samples, st.Streams)
	}
	if err := s.CompactQuality(ctx, now.Add(37*24*time.Hour), now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := qualityTotals(t, s, now, 24*time.Hour); len(got) != 0 {
		t.Errorf("24h after the hourly retention: %+v", got)
	}

	// Deleting a provider deletes its rollups.
	if err := s.DeleteProvider(ctx, "zego", audit("provider.delete")); err != nil {
		t.Fatal(err)
	}
	if got := qualityTotals(t, s, now, time.Hour); len(got) != 1 {
		t.Errorf("after deleting zego: %+v", got)
	}
}

// testConcurrentQuality has many streams report into the same buckets at
// once: every sample is counted once.
func testConcurrentQuality(t *testing.T, s switchboard.Store) {
	mustCreate(t, s, AgoraProvider(t, "agora"))
	const writers, each = 8, 6
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var batch []switchboard.QualitySample
			for i := range each {
				batch = append(batch, qualitySample(s0.Add(time.Duration(i)*10*time.Second), float64(20+i)))
			}
			errs <- s.RecordQuality(context.Background(), fmt.Sprintf("s%d", w), "agora", "us", batch)
		}()
	}
	for _, err := range waitErrs(&wg, errs) {
		t.Error(err)
	}
	got := qualityTotals(t, s, s0.Add(time.Minute), time.Hour)[switchboard.QualityKey{Provider: "agora", Region: "us"}]
	if got.Samples != writers*each || got.Streams != writers || got.Histograms[switchboard.MetricRTT][20] != writers {
		t.Errorf("samples %d, streams %d, rtt bin 20 %d; want %d, %d, %d", got.Samples, got.Streams,
			got.Histograms[switchboard.MetricRTT][20], writers*each, writers, writers)
	}
}

// testQualityReportsBatched records the same reports twice, one by one on
// agora and zego and as one batch on their copies agora-b and zego-b: more
// streams than a transaction of the batch takes, over several regions,
// minutes and hours, the same stream in several reports. The totals of each
// provider and its copy must be the same in every window, and the report on
// a provider that does not exist is left out of the batch without an error.
func testQualityReportsBatched(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	for _, name := range []string{"agora", "agora-b"} {
		mustCreate(t, s, AgoraProvider(t, name))
	}
	for _, name := range []string{"zego", "zego-b"} {
		mustCreate(t, s, HTTPProvider(t, name, "https://status.example/health"))
	}
	now := s0.Add(3 * time.Hour)
	var batch []switchboard.QualityReport
	for i := range 700 {
		provider, region := "agora", []string{"eu-west", "us-east", ""}[i%3]
		if i%4 == 0 {
			provider = "zego"
		}
		var samples []switchboard.QualitySample
		for j := range 1 + i%3 {
			at := now.Add(-time.Duration(i*13+j*7) * time.Second)
			smp := qualitySample(at, float64(5+(i*7+j)%400))
			smp.PacketLoss, smp.JitterMs = float64(i%10)/100, float64(i%50)
			if i%5 == 0 {
				smp.FPS, smp.BitrateKbps = 0, 48 // audio only
			}
			if i%11 == 0 {
				smp.FreezeCount, smp.FreezeMs = 1, 400
			}
			samples = append(samples, smp)
		}
		stream := fmt.Sprintf("s-%d", i%650) // some streams report twice
		mustQuality(t, s, stream, provider, region, samples...)
		batch = append(batch, switchboard.QualityReport{StreamID: stream, Provider: provider + "-b", Region: region, Samples: samples})
	}
	batch = append(batch, switchboard.QualityReport{StreamID: "x", Provider: "missing", Samples: []switchboard.QualitySample{qualitySample(now, 10)}})
	if err := s.RecordQualityReports(ctx, batch); err != nil {
		t.Fatalf("RecordQualityReports: %v", err)
	}
	for _, window := range []time.Duration{5 * time.Minute, time.Hour, 24 * time.Hour} {
		got := qualityTotals(t, s, now, window)
		if _, ok := got[switchboard.QualityKey{Provider: "missing"}]; ok {
			t.Errorf("%v: totals of a provider that does not exist", window)
		}
		n := 0
		for k, one := range got {
			if strings.HasSuffix(k.Provider, "-b") {
				continue
			}
			n++
			copyKey := switchboard.QualityKey{Provider: k.Provider + "-b", Region: k.Region}
			if batched := got[copyKey]; !sameTotals(batched, one) {
				t.Errorf("%v, %s in %q: batched %+v, one by one %+v", window, k.Provider, k.Region, batched, one)
			}
		}
		if n == 0 || len(got) != 2*n {
			t.Errorf("%v: %d keys, %d of them one by one: want as many batched", window, len(got), n)
		}
	}
}

// sameTotals compares totals, their sums of fractions to a rounding error
// (added in another order).
func sameTotals(a, b switchboard.QualityTotals) bool {
	near := func(x, y float64) bool { return math.Abs(x-y) <= 1e-9*math.Max(1, math.Abs(y)) }
	return a.Samples == b.Samples && a.VideoSamples == b.VideoSamples && a.Streams == b.Streams &&
		a.FreezeCount == b.FreezeCount && a.FreezeMs == b.FreezeMs &&
		near(a.LossSum, b.LossSum) && near(a.BitrateSum, b.BitrateSum) && near(a.FPSSum, b.FPSSum) &&
		reflect.DeepEqual(a.Histograms, b.Histograms)
}
