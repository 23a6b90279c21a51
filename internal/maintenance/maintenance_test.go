package maintenance

import (
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

// fakeStore keeps windows and streams in memory.
type fakeStore struct {
	mu      sync.Mutex
	windows map[string]sb.MaintenanceWindow
	streams map[string]sb.Stream
	order   []string // stream ids by start
}

func newFakeStore() *fakeStore {
	return &fakeStore{windows: map[string]sb.MaintenanceWindow{}, streams: map[string]sb.Stream{}}
}

func (f *fakeStore) CreateMaintenance(_ context.Context, w sb.MaintenanceWindow, _ sb.AuditEntry) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.windows[w.ID] = w
	return nil
}

func (f *fakeStore) GetMaintenance(_ context.Context, id string) (sb.MaintenanceWindow, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w, ok := f.windows[id]
	if !ok {
		return w, sb.Errorf(sb.ENotFound, "no window")
	}
	return w, nil
}

func (f *fakeStore) ListMaintenance(_ context.Context, flt sb.MaintenanceFilter) ([]sb.MaintenanceWindow, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []sb.MaintenanceWindow
	for _, w := range f.windows {
		if flt.State == "" || w.State(flt.At) == flt.State {
			out = append(out, w)
		}
	}
	slices.SortFunc(out, func(a, b sb.MaintenanceWindow) int { return a.Start.Compare(b.Start) })
	return out, nil
}

func (f *fakeStore) EndMaintenance(_ context.Context, id string, at time.Time, _ sb.AuditEntry) (sb.MaintenanceWindow, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.windows[id]
	w.EndedAt = &at
	f.windows[id] = w
	return w, nil
}

func (f *fakeStore) AnnounceMaintenance(_ context.Context, id, state string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.windows[id]
	if w.Announced == state || w.Announced == "ended" {
		return false, nil
	}
	w.Announced = state
	f.windows[id] = w
	return true, nil
}

func (f *fakeStore) SetMaintenanceDrain(_ context.Context, id string, d sb.MaintenanceDrain) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.windows[id]
	w.DrainProgress = &d
	f.windows[id] = w
	return nil
}

func (f *fakeStore) ListStreams(_ context.Context, flt sb.StreamFilter) ([]sb.Stream, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []sb.Stream
	for i := len(f.order) - 1; i >= 0; i-- { // newest first, as the store lists them
		st := f.streams[f.order[i]]
		if st.Status == flt.Status && st.Provider == flt.Provider && len(out) < flt.Limit {
			out = append(out, st)
		}
	}
	return out, nil
}

func (f *fakeStore) GetStream(_ context.Context, id string) (sb.Stream, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st, ok := f.streams[id]
	if !ok {
		return st, sb.Errorf(sb.ENotFound, "no stream")
	}
	return st, nil
}

func (f *fakeStore) ActiveCounts(context.Context) (map[string]int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int64{}
	for _, st := range f.streams {
		if st.Status == sb.StreamActive {
			out[st.Provider]++
		}
	}
	return out, nil
}

func (f *fakeStore) addStreams(provider string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		st := sb.Stream{ID: sb.NewStreamID(), Provider: provider, Status: sb.StreamActive, Owner: "token:app"}
		f.streams[st.ID] = st
		f.order = append(f.order, st.ID)
	}
}

func (f *fakeStore) move(id, to string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := f.streams[id]
	st.Provider = to
	f.streams[id] = st
}

func (f *fakeStore) window(id string) sb.MaintenanceWindow {
	w, _ := f.GetMaintenance(context.Background(), id)
	return w
}

// harness runs a Service's Run and Lead in the bubble until the test ends.
func harness(t *testing.T, store *fakeStore, bus sb.Bus) *Service {
	s := New(Config{Store: store, Bus: bus})
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.Run(ctx) })
	wg.Go(func() { _ = s.Lead(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	// Both have had their first look, at time 0: the leader's next is at 1 s.
	synctest.Wait()
	return s
}

func schedule(t *testing.T, s *Service, store *fakeStore, w sb.MaintenanceWindow) {
	t.Helper()
	w.ID, w.CreatedAt = sb.NewMaintenanceID(), time.Now().UTC()
	if err := store.CreateMaintenance(t.Context(), w, sb.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func migrations(bus *testutil.Bus) []sb.Event {
	return slices.DeleteFunc(bus.Events(), func(e sb.Event) bool { return e.Type != sb.EventStreamMigrate })
}

// TestDrainRate checks, on a fake clock, that a drain asks at most DrainRate
// streams per second to move, each once, oldest first, and that it counts
// those that moved.
func TestDrainRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, bus := newFakeStore(), &testutil.Bus{}
		store.addStreams("agora", 10)
		store.addStreams("zego", 3)
		s := harness(t, store, bus)
		now := time.Now().UTC()
		// It starts in a minute: the drain begins at once.
		w := sb.MaintenanceWindow{Provider: "agora", Start: now.Add(time.Minute), End: now.Add(2 * time.Hour), Reason: "upgrade",
			Drain: true, DrainRate: 2}
		schedule(t, s, store, w)

		// The leader sees the window at its next look, at 1 s; then a
		// request every 0.5 s: at 1, 1.5, ..., 4 s, seven requests.
		time.Sleep(4*time.Second + time.Millisecond)
		synctest.Wait()
		evs := migrations(bus)
		if len(evs) != 7 {
			t.Fatalf("%d requests in 3 s at 2 per second, want 7", len(evs))
		}
		for i := 1; i < len(evs); i++ {
			if gap := evs[i].At.Sub(evs[i-1].At); gap < 500*time.Millisecond {
				t.Errorf("requests %d and %d %s apart, want at least 500ms", i-1, i, gap)
			}
		}
		var asked []string
		for _, e := range evs {
			d := e.Data.(MigrateData)
			if d.From != "agora" || e.Owner != "token:app" || e.Audience != sb.RoleClient {
				t.Errorf("event %+v owner %q", d, e.Owner)
			}
			asked = append(asked, d.StreamID)
		}
		if want := store.order[:7]; !slices.Equal(asked, want) {
			t.Errorf("asked %v, want the oldest first %v", asked, want)
		}
		// The asked streams move as their SDKs would.
		for _, id := range asked {
			store.move(id, "zego")
		}
		time.Sleep(3 * time.Second)
		synctest.Wait()
		for _, e := range migrations(bus)[7:] {
			store.move(e.Data.(MigrateData).StreamID, "zego")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		id := s.Windows()[0].ID
		p := store.window(id).DrainProgress
		if p == nil || p.Asked != 10 || p.Moved != 10 || p.Remaining != 0 || p.DoneAt == nil || p.Late {
			t.Fatalf("progress = %+v, want 10 asked and moved, none left", p)
		}
		if n := len(migrations(bus)); n != 10 {
			t.Errorf("%d requests, want one per stream", n)
		}
	})
}

// TestNoDrainUnlessAsked checks that a window without drain asks no stream to
// move, before or during it, yet is announced when it starts and ends.
func TestNoDrainUnlessAsked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, bus := newFakeStore(), &testutil.Bus{}
		store.addStreams("agora", 3)
		s := harness(t, store, bus)
		now := time.Now().UTC()
		schedule(t, s, store, sb.MaintenanceWindow{Provider: "agora", Start: now.Add(5 * time.Second), End: now.Add(10 * time.Second),
			Reason: "upgrade", DrainRate: 5})
		if got := s.Blocked(now); len(got) != 0 {
			t.Errorf("blocked before the start without drain: %v", got)
		}
		time.Sleep(6 * time.Second)
		synctest.Wait()
		if got := s.Blocked(time.Now()); got["agora"].Reason != "upgrade" {
			t.Errorf("blocked inside = %v", got)
		}
		time.Sleep(6 * time.Second)
		synctest.Wait()
		if evs := migrations(bus); len(evs) != 0 {
			t.Fatalf("%d streams asked to move though no drain was asked", len(evs))
		}
		var types []string
		for _, e := range bus.Events() {
			types = append(types, e.Type)
		}
		if !slices.Equal(types, []string{sb.EventMaintenanceStarted, sb.EventMaintenanceEnded}) {
			t.Errorf("events %v, want started then ended", types)
		}
	})
}

// TestDrainLate checks that a drain that cannot finish by the start reports
// it, goes on during the window, asks again a stream that stayed, and stops
// when the window is over.
func TestDrainLate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store, bus := newFakeStore(), &testutil.Bus{}
		store.addStreams("agora", 2)
		s := harness(t, store, bus)
		s.reask = 10 * time.Second
		now := time.Now().UTC()
		schedule(t, s, store, sb.MaintenanceWindow{Provider: "agora", Start: now.Add(2 * time.Second), End: now.Add(30 * time.Second),
			Reason: "upgrade", Drain: true, DrainRate: 1})
		id := s.Windows()[0].ID
		time.Sleep(4 * time.Second)
		synctest.Wait()
		p := store.window(id).DrainProgress
		if p == nil || !p.Late || p.Remaining != 2 || p.Asked != 2 || p.DoneAt != nil {
			t.Fatalf("progress after the start = %+v, want late with 2 left", p)
		}
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := len(migrations(bus)); n != 4 {
			t.Errorf("%d requests, want each stream asked again after the re-ask delay (4)", n)
		}
		time.Sleep(30 * time.Second)
		synctest.Wait()
		n := len(migrations(bus))
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if m := len(migrations(bus)); m != n {
			t.Errorf("%d more requests after the window ended", m-n)
		}
		if ok, _ := s.Silenced("agora", time.Now()); ok {
			t.Error("silenced after the window")
		}
	})
}

// TestSilencedAndBlocked checks the answers of Silenced and Blocked around
// a window's edges, for a window ended early and for overlapping windows.
func TestSilencedAndBlocked(t *testing.T) {
	store := newFakeStore()
	s := New(Config{Store: store})
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	add := func(w sb.MaintenanceWindow) sb.MaintenanceWindow {
		w.ID, w.CreatedAt = sb.NewMaintenanceID(), t0.Add(-time.Hour)
		_ = store.CreateMaintenance(t.Context(), w, sb.AuditEntry{})
		return w
	}
	add(sb.MaintenanceWindow{Provider: "a", Start: t0, End: t0.Add(time.Hour), Reason: "first"})
	add(sb.MaintenanceWindow{Provider: "a", Start: t0.Add(30 * time.Minute), End: t0.Add(3 * time.Hour), Reason: "second"})
	b := add(sb.MaintenanceWindow{Provider: "b", Start: t0, End: t0.Add(time.Hour), Reason: "cut short", Drain: true})
	if _, err := store.EndMaintenance(t.Context(), b.ID, t0.Add(10*time.Minute), sb.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
	s.clock = testutil.NewClock(t0.Add(-time.Hour))
	if err := s.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		provider string
		at       time.Time
		silenced bool
		reason   string
	}{
		{"a", t0.Add(-time.Nanosecond), false, ""},
		{"a", t0, true, "first"},
		{"a", t0.Add(2 * time.Hour), true, "second"},
		{"a", t0.Add(3 * time.Hour), false, ""},
		{"b", t0.Add(5 * time.Minute), true, "cut short"},
		{"b", t0.Add(10 * time.Minute), false, ""},
		{"c", t0, false, ""},
	} {
		if ok, reason := s.Silenced(c.provider, c.at); ok != c.silenced || reason != c.reason {
			t.Errorf("Silenced(%s, %s) = %v %q, want %v %q", c.provider, c.at, ok, reason, c.silenced, c.reason)
		}
	}
	// b drains from 10 minutes before its start (it was scheduled earlier).
	if got := s.Blocked(t0.Add(-5 * time.Minute)); len(got) != 1 || got["b"].Reason != "cut short" {
		t.Errorf("Blocked before the start = %v, want b draining", got)
	}
	// Overlapping windows block until the last ends.
	if got := s.Blocked(t0.Add(45 * time.Minute)); !got["a"].Until.Equal(t0.Add(3*time.Hour)) || len(got) != 1 {
		t.Errorf("Blocked during the overlap = %v", got)
	}
}
