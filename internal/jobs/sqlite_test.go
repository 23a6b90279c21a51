package jobs_test

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/jobs"
	"github.com/switchboardhq/switchboard/internal/secrets"
	"github.com/switchboardhq/switchboard/internal/sqlstore"
	"github.com/switchboardhq/switchboard/internal/storetest"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

var _ jobs.Store = (*sqlstore.Store)(nil)

func openSQLite(t *testing.T, c sb.Clock) *sqlstore.Store {
	t.Helper()
	key := make([]byte, secrets.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	sealer, err := secrets.NewAESGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "switchboard.db")
	s, err := sqlstore.Open(context.Background(), dsn, sealer, c)
	if err != nil {
		t.Fatalf("Open(%s): %v", dsn, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestSQLiteStore runs the jobs against the real SQLite store across a month
// boundary: a stream gone silent is ended at its last heartbeat, November is
// frozen with a cost checked by hand, and a budget alert fires once.
func TestSQLiteStore(t *testing.T) {
	ctx := context.Background()
	at := func(m time.Month, d, hh, mm int) time.Time { return time.Date(2026, m, d, hh, mm, 0, 0, time.UTC) }
	c := testutil.NewClock(at(11, 1, 0, 0))
	st := openSQLite(t, c)
	b := &testutil.Bus{}
	newRunner := func() *jobs.Runner { return jobs.New(jobs.Config{Store: st, Bus: b, Clock: c}) }

	p := storetest.AgoraProvider(t, "agora")
	p.Pricing = sb.DefaultPricing() // hd 3.99, audio 0.99 per 1000 minutes
	p.MonthlyBudget = 0.80
	if err := st.CreateProvider(ctx, p, sb.AuditEntry{Action: "provider.create"}); err != nil {
		t.Fatal(err)
	}
	start := func(id string, q sb.Quality, startedAt time.Time) {
		t.Helper()
		s := sb.Stream{ID: id, Room: "room", UserID: "u-" + id, Role: sb.RolePublisher, Quality: q,
			Provider: "agora", Owner: "bootstrap", StartedAt: startedAt, LastHeartbeat: startedAt}
		if _, _, err := st.StartStream(ctx, s, sb.TrailEntry{Reason: "test"}, 0); err != nil {
			t.Fatalf("start %s: %v", id, err)
		}
	}
	heartbeat := func(id string, t2 time.Time) {
		t.Helper()
		if _, err := st.Heartbeat(ctx, id, t2); err != nil {
			t.Fatalf("heartbeat %s: %v", id, err)
		}
	}

	// 90 audio minutes, ended by the client.
	start("audio", sb.QualityAudio, at(11, 15, 10, 0))
	if _, _, err := st.EndStream(ctx, "audio", at(11, 15, 11, 30), sb.EndClient); err != nil {
		t.Fatal(err)
	}
	// 1000 hd minutes (06:00 to 22:40), then silence.
	start("hd", sb.QualityHD, at(11, 30, 6, 0))
	heartbeat("hd", at(11, 30, 12, 0))
	heartbeat("hd", at(11, 30, 22, 40))

	c.Set(at(11, 30, 23, 59))
	r := newRunner()
	if err := r.RunOnce(ctx); err != nil {
		t.Fatalf("RunOnce at 23:59: %v", err)
	}
	// The silent hd stream is ended as abandoned, and November's 4.08 is over
	// the 0.80 budget: both alerts fire for November.
	if ev := b.Take(); len(ev) != 3 || ev[0].Type != sb.EventStreamEnded || ev[1].Type != sb.EventBudgetAlert || ev[2].Type != sb.EventBudgetAlert {
		t.Errorf("events at 23:59 = %+v, want the abandoned stream's end and the 80 %% and 100 %% alerts of November", ev)
	}
	// A new install's first run compacts yesterday; October is frozen without
	// agora, which was created on November 1.
	if ran, err := st.JobRan(ctx, jobs.JobDailyRollup, "2026-11-29"); err != nil || !ran {
		t.Errorf("daily rollup of 2026-11-29 ran = %v, %v; want true", ran, err)
	}

	c.Set(at(12, 1, 0, 1))
	if err := r.RunOnce(ctx); err != nil {
		t.Fatalf("RunOnce at 00:01: %v", err)
	}
	hd, err := st.GetStream(ctx, "hd")
	if err != nil {
		t.Fatal(err)
	}
	if hd.Status != sb.StreamEnded || hd.EndReason != sb.EndAbandoned || hd.EndedAt == nil || !hd.EndedAt.Equal(at(11, 30, 22, 40)) {
		t.Errorf("silent stream = %s/%s ended %v, want abandoned at its last heartbeat 22:40", hd.Status, hd.EndReason, hd.EndedAt)
	}
	if ran, err := st.JobRan(ctx, jobs.JobDailyRollup, "2026-11-30"); err != nil || !ran {
		t.Errorf("daily rollup of 2026-11-30 ran = %v, %v; want true", ran, err)
	}
	months, err := st.MonthlyUsageOf(ctx, "agora")
	if err != nil {
		t.Fatal(err)
	}
	// 1000 × 3.99/1000 + 90 × 0.99/1000 = 3.99 + 0.0891 = 4.0791 → 4.08.
	want := []sb.MonthlyUsage{
		{Provider: "agora", Month: "2026-11", Currency: "USD", Cost: 4.08,
			Minutes: map[sb.Quality]float64{sb.QualityHD: 1000, sb.QualityAudio: 90}},
	}
	if !reflect.DeepEqual(months, want) {
		t.Errorf("frozen months = %+v, want %+v", months, want)
	}
	if ev := b.Take(); len(ev) != 0 {
		t.Errorf("events at 00:01 = %+v, want none (December has no usage yet)", ev)
	}

	// December: 178 hd minutes cost 0.71 of a 0.80 budget (88.75 %).
	start("dec", sb.QualityHD, at(12, 1, 0, 2))
	heartbeat("dec", at(12, 1, 3, 0))
	c.Set(at(12, 1, 3, 0))
	for i, run := range []*jobs.Runner{r, r, newRunner()} {
		if err := run.RunOnce(ctx); err != nil {
			t.Fatalf("RunOnce %d in December: %v", i, err)
		}
		ev := b.Take()
		if i > 0 {
			if len(ev) != 0 {
				t.Errorf("run %d: events = %+v, want none", i, ev)
			}
			continue
		}
		wantAlert := jobs.BudgetAlert{Provider: "agora", Month: "2026-12", Threshold: 80, Cost: 0.71, Budget: 0.80, Currency: "USD"}
		if len(ev) != 1 || ev[0].Type != sb.EventBudgetAlert || ev[0].Data != wantAlert {
			t.Errorf("run %d: events = %+v, want one alert %+v", i, ev, wantAlert)
		}
	}
}
