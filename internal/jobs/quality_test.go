package jobs_test

import (
	"context"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/jobs"
	"github.com/switchboardhq/switchboard/internal/sqlstore"
	"github.com/switchboardhq/switchboard/internal/storetest"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

var _ jobs.QualityCompactor = (*sqlstore.Store)(nil)

// TestQualityRetention: the daily compaction drops the minute rollups of
// quality older than the raw results and keeps the hourly ones.
func TestQualityRetention(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 1, 0, 5, 0, 0, time.UTC)
	c := testutil.NewClock(now)
	st := openSQLite(t, c)
	if err := st.CreateProvider(ctx, storetest.AgoraProvider(t, "agora"), sb.AuditEntry{Action: "provider.create"}); err != nil {
		t.Fatal(err)
	}
	old := time.Date(2026, 10, 20, 12, 0, 0, 0, time.UTC) // 12 days before
	recent := now.Add(-time.Minute)
	for _, at := range []time.Time{old, recent} {
		if err := st.RecordQuality(ctx, "s1", "agora", "", []sb.QualitySample{{At: at, RTTMs: 30}}); err != nil {
			t.Fatal(err)
		}
	}
	samples := func(at time.Time, window time.Duration) int64 {
		t.Helper()
		got, err := st.QualityTotals(ctx, at, window)
		if err != nil {
			t.Fatal(err)
		}
		return got[sb.QualityKey{Provider: "agora"}].Samples
	}
	if n := samples(old.Add(time.Minute), time.Hour); n != 1 {
		t.Fatalf("before compaction: %d samples in the old hour, want 1", n)
	}
	if err := jobs.New(jobs.Config{Store: st, Clock: c}).RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := samples(old.Add(time.Minute), time.Hour); n != 0 {
		t.Errorf("after compaction: %d samples in the old hour's minutes, want 0", n)
	}
	if n := samples(old.Add(time.Minute), 24*time.Hour); n != 1 {
		t.Errorf("after compaction: %d samples in the old day's hours, want 1", n)
	}
	if n := samples(now, 5*time.Minute); n != 1 {
		t.Errorf("after compaction: %d recent samples, want 1", n)
	}
}
