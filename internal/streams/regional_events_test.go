package streams

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/health"
	"github.com/switchboardhq/switchboard/internal/storetest"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

// recordingBus keeps every event published.
type recordingBus struct {
	mu     sync.Mutex
	events []sb.Event
}

func (b *recordingBus) Publish(e sb.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, e)
}

func (b *recordingBus) take() []sb.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.events
	b.events = nil
	return out
}

// probeFrom folds one probe of provider from region into the store, as the
// agent results handler does, and returns the status it gives.
func probeFrom(t *testing.T, st sb.Store, provider, region string, ok bool, at time.Time) sb.Status {
	t.Helper()
	rec, err := st.GetProvider(context.Background(), provider)
	if err != nil {
		t.Fatal(err)
	}
	res := sb.ProbeResult{OK: ok, Latency: 40 * time.Millisecond, At: at}
	if !ok {
		res.Stage, res.Message = sb.Stage("connect"), "connection refused"
	}
	_, after, err := st.RecordRegionalCheck(context.Background(), provider, region, "agent:fra-1", func(h sb.Health) sb.Health {
		return health.ObserveRegional(h, res, rec.HealthCheck, rec.Enabled)
	})
	if err != nil {
		t.Fatal(err)
	}
	return after.Status
}

// A provider's status changing in a region publishes exactly one
// provider.regional event, its agent stopping publishes one more (to stale),
// and looks with nothing changed publish nothing. No event holds a
// credential.
func TestRegionalEvents(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "sb.db"))
	newService(t, st) // creates the providers a and b
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := testutil.NewClock(t0)
	bus := &recordingBus{}
	s := New(Config{Store: st, Checker: fakeChecker{}, Minters: map[sb.Kind]sb.TokenMinter{sb.KindAgora: fakeMinter{}},
		Bus: bus, Clock: clock, Regional: st})
	ctx := context.Background()
	w := &regionalWatch{state: map[[2]string]string{}}
	look := func() []RegionalChange {
		t.Helper()
		got, err := s.regionalLook(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	probeFrom(t, st, "a", "eu-west", true, t0)
	probeFrom(t, st, "b", "eu-west", true, t0)
	if got := look(); len(got) != 0 {
		t.Fatalf("first look published %v; want nothing (it only learns the states)", got)
	}
	before := look()
	if len(before) != 0 {
		t.Fatalf("look with nothing changed published %v", before)
	}

	// a fails from eu-west until its regional status is CRITICAL.
	at := t0
	var status sb.Status
	for i := 0; i < 20 && status != sb.StatusCritical; i++ {
		at = at.Add(time.Second)
		clock.Set(at)
		status = probeFrom(t, st, "a", "eu-west", false, at)
	}
	if status != sb.StatusCritical {
		t.Fatalf("a's regional status after failures = %s; want CRITICAL", status)
	}
	got := look()
	if len(got) != 1 || got[0].Provider != "a" || got[0].Region != "eu-west" || got[0].To != string(sb.StatusCritical) ||
		got[0].From == got[0].To || got[0].Source != "agent:fra-1" || got[0].Reason == "" {
		t.Fatalf("changes = %+v; want one of a in eu-west to CRITICAL from agent:fra-1 with a reason", got)
	}
	evs := bus.take()
	if len(evs) != 1 || evs[0].Type != sb.EventProviderRegional || evs[0].Audience != sb.RoleAdmin {
		t.Fatalf("events = %+v; want one provider.regional for admins", evs)
	}
	if got := look(); len(got) != 0 || len(bus.take()) != 0 {
		t.Fatalf("look with nothing changed published %v", got)
	}

	// The agent stops: once the reports are older than StaleAfter, both
	// providers turn stale in eu-west, one event each, and only once.
	rec, err := st.GetProvider(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	clock.Set(at.Add(health.StaleAfter(rec.HealthCheck) + time.Second))
	got = look()
	if len(got) != 2 {
		t.Fatalf("changes after the agent stopped = %+v; want two, to stale", got)
	}
	for _, c := range got {
		if c.To != RegionalStale || c.Region != "eu-west" || !strings.Contains(c.Reason, "stale") {
			t.Fatalf("change = %+v; want to stale in eu-west with the reason", c)
		}
	}
	evs = bus.take()
	if len(evs) != 2 {
		t.Fatalf("events = %d; want 2", len(evs))
	}
	if got := look(); len(got) != 0 || len(bus.take()) != 0 {
		t.Fatalf("second look at stale regions published %v", got)
	}

	// a region reporting again is told.
	clock.Set(clock.Now().Add(time.Second))
	probeFrom(t, st, "b", "eu-west", true, clock.Now())
	got = look()
	if len(got) != 1 || got[0].Provider != "b" || got[0].From != RegionalStale {
		t.Fatalf("changes after b reported again = %+v; want one of b from stale", got)
	}
	evs = append(evs, bus.take()...)

	// No event holds a credential.
	p := storetest.AgoraProvider(t, "a")
	raw, err := json.Marshal(evs)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{p.Credentials.CustomerSecret, p.Credentials.AppCertificate, p.Credentials.CustomerID} {
		if strings.Contains(string(raw), secret) {
			t.Fatalf("an event holds a credential: %s", raw)
		}
	}
}

// RunRegionalEvents stops when its context ends.
func TestRunRegionalEventsStops(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "sb.db"))
	s := New(Config{Store: st, Checker: fakeChecker{}, Regional: st})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.RunRegionalEvents(ctx) }()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RunRegionalEvents did not stop with its context")
	}
}
