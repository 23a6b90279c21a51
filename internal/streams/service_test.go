package streams

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/health"
	"github.com/switchboardhq/switchboard/internal/secrets"
	"github.com/switchboardhq/switchboard/internal/sqlstore"
	"github.com/switchboardhq/switchboard/internal/storetest"
)

type fakeMinter struct{}

func (fakeMinter) MintToken(p sb.Provider, req sb.TokenRequest, now time.Time) (sb.JoinToken, error) {
	return sb.JoinToken{Token: p.Name + ":" + req.Room, ExpiresAt: now.Add(req.TTL)}, nil
}

type fakeChecker struct{}

func (fakeChecker) Check(ctx context.Context, name string) (health.Result, error) {
	return health.Result{Name: name}, nil
}

func (fakeChecker) ReportClientFailure(ctx context.Context, name string, at time.Time) (sb.Health, error) {
	return sb.Health{}, nil
}

// openStore opens a store on a new SQLite file (path) with the providers a
// (priority 1) and b (priority 2).
func openStore(t *testing.T, path string) *sqlstore.Store {
	t.Helper()
	sealer, err := secrets.NewAESGCM(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(context.Background(), "sqlite:"+path, sealer, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newService(t *testing.T, st Store) *Service {
	t.Helper()
	ctx := context.Background()
	for i, name := range []string{"a", "b"} {
		p := storetest.AgoraProvider(t, name)
		p.Priority = i + 1
		if err := st.(sb.Store).CreateProvider(ctx, p, sb.AuditEntry{}); err != nil && !sb.IsCode(err, sb.EConflict) {
			t.Fatal(err)
		}
	}
	return New(Config{Store: st, Checker: fakeChecker{}, Minters: map[sb.Kind]sb.TokenMinter{sb.KindAgora: fakeMinter{}}})
}

func start(t *testing.T, s *Service, room string) Assignment {
	t.Helper()
	a, _, err := s.Start(context.Background(), "o", StartRequest{Room: room, UserID: "u", Role: "publisher"})
	if err != nil {
		t.Fatalf("Start(%s): %v", room, err)
	}
	return a
}

func setMax(t *testing.T, st sb.Store, name string, n int) {
	t.Helper()
	if _, _, err := st.UpdateProvider(context.Background(), name, func(p sb.Provider) (sb.Provider, error) {
		p.MaxActiveStreams = n
		return p, nil
	}, sb.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
}

// A change the service's store commits is routed with at once, though the
// providers are read from memory.
func TestSnapshotSeesOwnChanges(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "sb.db"))
	s := newService(t, st)
	if a := start(t, s, "r1"); a.Provider.Name != "a" {
		t.Fatalf("first stream on %s, want a", a.Provider.Name)
	}
	if err := st.ReorderProviders(context.Background(), []string{"b", "a"}, sb.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
	if a := start(t, s, "r2"); a.Provider.Name != "b" {
		t.Errorf("after the reorder, stream on %s, want b", a.Provider.Name)
	}
	if _, _, err := st.UpdateHealth(context.Background(), "b", time.Time{}, func(h sb.Health) sb.Health {
		h.Status = sb.StatusCritical
		return h
	}); err != nil {
		t.Fatal(err)
	}
	if a := start(t, s, "r3"); a.Provider.Name != "a" {
		t.Errorf("with b CRITICAL, stream on %s, want a", a.Provider.Name)
	}
}

// A change made by another process (another replica) is seen once the
// service is told (ProvidersChanged), or when the snapshot is older than
// twice RegistryMaxAge. Time is the synctest bubble's.
func TestSnapshotSeesOthersChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sb.db")
		st := openStore(t, path)
		other := openStore(t, path)
		s := newService(t, st)
		start(t, s, "r1")
		if err := other.ReorderProviders(context.Background(), []string{"b", "a"}, sb.AuditEntry{}); err != nil {
			t.Fatal(err)
		}
		if a := start(t, s, "r2"); a.Provider.Name != "a" {
			t.Fatalf("before being told, stream on %s: the providers were read again", a.Provider.Name)
		}
		s.ProvidersChanged()
		if a := start(t, s, "r3"); a.Provider.Name != "b" {
			t.Errorf("after ProvidersChanged, stream on %s, want b", a.Provider.Name)
		}

		aged := New(Config{Store: st, Checker: fakeChecker{}, Minters: map[sb.Kind]sb.TokenMinter{sb.KindAgora: fakeMinter{}},
			RegistryMaxAge: 50 * time.Millisecond})
		start(t, aged, "r4")
		if err := other.ReorderProviders(context.Background(), []string{"a", "b"}, sb.AuditEntry{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(120 * time.Millisecond) // on the bubble's clock
		if a := start(t, aged, "r5"); a.Provider.Name != "a" {
			t.Errorf("after twice RegistryMaxAge, stream on %s, want a", a.Provider.Name)
		}
	})
}

// Streams ended behind the service's back (the abandoned sweep, another
// replica) free their provider's capacity at once: a provider the counts in
// memory say is full is checked against the store.
func TestCapacityFreedElsewhere(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "sb.db"))
	s := newService(t, st)
	setMax(t, st, "a", 1)
	first := start(t, s, "r1")
	if a := start(t, s, "r2"); a.Provider.Name != "b" {
		t.Fatalf("a is full, stream on %s, want b", a.Provider.Name)
	}
	if _, _, err := st.EndStream(context.Background(), first.ID, time.Time{}, sb.EndAbandoned); err != nil {
		t.Fatal(err)
	}
	if a := start(t, s, "r3"); a.Provider.Name != "a" {
		t.Errorf("a has room again, stream on %s, want a", a.Provider.Name)
	}
	if a := start(t, s, "r4"); a.Provider.Name != "b" {
		t.Errorf("a is full again, stream on %s, want b", a.Provider.Name)
	}
	// The counts in memory follow the service's own starts, moves and ends.
	counts, err := s.activeCounts(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	want, err := st.ActiveCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if counts["a"] != want["a"] || counts["b"] != want["b"] {
		t.Errorf("counts in memory %v, in the store %v", counts, want)
	}
}

// A client reports failures on the providers its stream has been on, the
// current one or an earlier one, and on no other.
func TestReportFailureOnEarlierProvider(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "sb.db"))
	s := newService(t, st)
	ctx := context.Background()
	a := start(t, s, "r1")
	if err := s.ReportFailure(ctx, a.ID, "o", false, FailureReport{Provider: "b", Stage: sb.StageConnect}); !sb.IsCode(err, sb.EInvalid) ||
		!strings.Contains(err.Error(), "never on b") {
		t.Errorf("report on a provider never used = %v, want EInvalid", err)
	}
	if _, err := s.Migrate(ctx, a.ID, "o", false, MigrateRequest{Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"a", "b"} {
		if err := s.ReportFailure(ctx, a.ID, "o", false, FailureReport{Provider: p, Stage: "media"}); err != nil {
			t.Errorf("report on %s: %v", p, err)
		}
	}
	if err := s.ReportFailure(ctx, a.ID, "o", false, FailureReport{Provider: "nope", Stage: "media"}); !sb.IsCode(err, sb.EInvalid) {
		t.Errorf("report on an unknown provider = %v, want EInvalid", err)
	}
}

// Run refreshes the snapshot and the counts in the background, and stops
// with its context, leaving no goroutine behind (the bubble checks that).
func TestRunRefreshesAndStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "sb.db")
		st := openStore(t, path)
		other := openStore(t, path)
		s := New(Config{Store: st, Checker: fakeChecker{}, Minters: map[sb.Kind]sb.TokenMinter{sb.KindAgora: fakeMinter{}},
			RegistryMaxAge: time.Second, CountsEvery: time.Second})
		newService(t, st)
		start(t, s, "r1")
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx) }()

		// Another process starts a stream on a and reorders: within a few
		// seconds the service knows both without being told.
		o := New(Config{Store: other, Checker: fakeChecker{}, Minters: map[sb.Kind]sb.TokenMinter{sb.KindAgora: fakeMinter{}}})
		start(t, o, "r2")
		if err := other.ReorderProviders(ctx, []string{"b", "a"}, sb.AuditEntry{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second) // on the bubble's clock: two rounds of Run
		synctest.Wait()             // Run has refreshed and waits for its next tick
		s.load.mu.Lock()
		n := s.load.n["a"]
		s.load.mu.Unlock()
		if r := s.reg.Load(); n != 2 || r == nil || r.recs[0].Name != "b" {
			t.Fatalf("after 2 s: %d streams on a in memory, providers %v", n, r.recs)
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return after its context ended")
		}
	})
}
