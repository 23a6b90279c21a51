package streams

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/storetest"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

// fakePredictions flags the providers in its set.
type fakePredictions struct {
	mu   sync.Mutex
	deg  []string
	mode sb.Preemptive
	rate int
}

func (f *fakePredictions) Degrading() map[string]sb.Degradation {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]sb.Degradation{}
	for _, n := range f.deg {
		out[n] = sb.Degradation{Provider: n, Degrading: true,
			Evidence: []sb.DegradationEvidence{{Signal: "latency", Summary: "latency 400ms vs 80ms (6.0σ)"}}}
	}
	return out
}

func (f *fakePredictions) settings(context.Context) sb.Settings {
	f.mu.Lock()
	defer f.mu.Unlock()
	return sb.Settings{Preemptive: f.mode, MaxPreemptiveMigrationsPerMinute: f.rate}.Or(sb.DefaultSettings())
}

func (f *fakePredictions) set(mode sb.Preemptive, deg ...string) {
	f.mu.Lock()
	f.mode, f.deg = mode, deg
	f.mu.Unlock()
}

// TestPreemptOnce drives the mode migrate look by look on a fake clock: the
// rate bound, the order (oldest first, never asked before asked again), the
// other modes, storm control.
func TestPreemptOnce(t *testing.T) {
	ctx := context.Background()
	st := openStore(t, filepath.Join(t.TempDir(), "sb.db"))
	for i, name := range []string{"a", "b", "c"} {
		p := storetest.AgoraProvider(t, name)
		p.Priority = i + 1
		if err := st.CreateProvider(ctx, p, sb.AuditEntry{}); err != nil {
			t.Fatal(err)
		}
		if _, _, err := st.UpdateHealth(ctx, name, time.Time{}, func(h sb.Health) sb.Health {
			h.Status, h.TotalChecks, h.SuccessfulChecks = sb.StatusHealthy, 1, 1
			return h
		}); err != nil {
			t.Fatal(err)
		}
	}
	clock := testutil.NewClock(time.Now().UTC())
	bus := &testutil.Bus{}
	pred := &fakePredictions{mode: sb.PreemptiveOff, rate: 3}
	s := New(Config{Store: st, Checker: fakeChecker{}, Minters: map[sb.Kind]sb.TokenMinter{sb.KindAgora: fakeMinter{}},
		Clock: clock, Bus: bus, Predictions: pred, Settings: pred.settings})
	var ids []string // on a, oldest first
	for range 5 {
		a := start(t, s, "r")
		if a.Provider.Name != "a" {
			t.Fatalf("stream on %s, want a", a.Provider.Name)
		}
		ids = append(ids, a.ID)
		clock.Advance(time.Second)
	}
	bus.Take()
	p := &preempter{asked: map[string]time.Time{}}
	look := func() []string {
		t.Helper()
		if err := s.preemptOnce(ctx, p); err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range bus.Take() {
			if e.Type != sb.EventStreamMigrate {
				continue
			}
			d := e.Data.(PreemptMigrateData)
			if d.From != "a" || e.Owner != "o" || !d.Prediction.Degrading {
				t.Fatalf("event %+v", e)
			}
			got = append(got, d.StreamID)
		}
		return got
	}

	pred.set(sb.PreemptiveNewStreams, "a")
	if got := look(); len(got) != 0 {
		t.Fatalf("new-streams asked %v, want none", got)
	}
	pred.set(sb.PreemptiveMigrate, "a", "b")
	if got := look(); len(got) != 0 {
		t.Fatalf("storm (2 of 3 usable degrading) asked %v, want none", got)
	}
	pred.set(sb.PreemptiveMigrate, "a")
	if got := look(); !slices.Equal(got, ids[:3]) {
		t.Fatalf("first look asked %v, want the 3 oldest %v", got, ids[:3])
	}
	clock.Advance(40 * time.Second)
	if got := look(); len(got) != 0 {
		t.Fatalf("within the minute asked %v, want none (3 a minute)", got)
	}
	clock.Advance(21 * time.Second)
	if got, want := look(), []string{ids[3], ids[4], ids[0]}; !slices.Equal(got, want) {
		t.Fatalf("a minute later asked %v, want the two never asked, then the oldest again %v", got, want)
	}
	// A stream that left is forgotten; a provider that recovered is left alone.
	if _, err := s.End(ctx, ids[1], "o", false); err != nil {
		t.Fatal(err)
	}
	pred.set(sb.PreemptiveMigrate)
	clock.Advance(time.Minute)
	if got := look(); len(got) != 0 || len(p.asked) != 0 {
		t.Fatalf("recovered: asked %v, remembering %v", got, p.asked)
	}
}
