package streams

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// failingRecorder records quality reports in a store, or fails while fail
// is set.
type failingRecorder struct {
	QualityRecorder
	mu   sync.Mutex
	fail bool
}

func (f *failingRecorder) RecordQualityReports(ctx context.Context, reports []sb.QualityReport) error {
	f.mu.Lock()
	fail := f.fail
	f.mu.Unlock()
	if fail {
		return errors.New("the store is down")
	}
	return f.QualityRecorder.RecordQualityReports(ctx, reports)
}

// TestQualityBatch checks quality reports acknowledged from memory: the
// store has none of their samples until a flush, a flush that fails keeps
// them for the next, a full batch refuses reports with EUnavailable, and
// stopping Run writes what is pending.
func TestQualityBatch(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "sb.db"))
	s := newService(t, st)
	rec := &failingRecorder{QualityRecorder: st}
	s.quality = &qualityBatch{rec: rec, every: time.Hour} // flushed by hand below
	ctx := context.Background()
	a := start(t, s, "r1")
	now := time.Now().UTC()
	samples := func(n int) int64 {
		t.Helper()
		got, err := st.QualityTotals(ctx, now, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for _, q := range got {
			sum += q.Samples
		}
		if int(sum) != n {
			t.Fatalf("the store has %d samples, want %d", sum, n)
		}
		return sum
	}
	report := func(at time.Time) {
		t.Helper()
		smp := []sb.QualitySample{{At: at, RTTMs: 40, PacketLoss: 0.01, JitterMs: 5, BitrateKbps: 800, FPS: 30}}
		if err := s.RecordQuality(ctx, a.ID, a.Provider.Name, "", smp); err != nil {
			t.Fatal(err)
		}
	}

	report(now)
	report(now)
	samples(0) // acknowledged, not yet written
	rec.fail = true
	if n, err := s.quality.flush(ctx); err == nil || n != 0 {
		t.Fatalf("flush with the store down: %d, %v; want an error", n, err)
	}
	samples(0)
	report(now) // comes while the first two wait
	rec.fail = false
	if n, err := s.quality.flush(ctx); err != nil || n != 3 {
		t.Fatalf("flush: %d, %v; want the 3 reports", n, err)
	}
	samples(3)

	// Full: refused until a flush makes room.
	s.quality.pending = make([]sb.QualityReport, maxPendingQuality)
	err := s.RecordQuality(ctx, a.ID, a.Provider.Name, "", []sb.QualitySample{{At: now, RTTMs: 40}})
	if !sb.IsCode(err, sb.EUnavailable) {
		t.Fatalf("a report to a full batch: %v, want unavailable", err)
	}
	s.quality.pending = nil

	// Run writes what is pending when it stops.
	report(now)
	runAndStop(t, s)
	samples(4)
}
