package client_test

import (
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/client"
	"github.com/switchboardhq/switchboard/internal/providers/fakes"
)

// A stream whose provider dies while the control plane is unreachable moves to
// its standby with no request to the control plane, and reports the move
// (when it happened, and the failure that caused it) once the control plane
// is back.
func TestFailoverToStandbyWithoutControlPlane(t *testing.T) {
	e := newEnv(t, settings())
	c := e.newClient()
	s := mustStart(t, c, "room-standby")
	sa, ok := s.Standby()
	if !ok || sa.Provider.Name != backup || sa.Token == "" || sa.StreamID != s.ID() {
		t.Fatalf("standby after start = %+v, %v; want one on %s", sa, ok, backup)
	}

	e.setMode(modeDown)
	waitFor(t, "the event stream to be down", func() bool { return !c.EventsConnected() })
	e.eng.Down(primary, true)
	failedAt := time.Now()
	e.eng.Fail(primary)
	m := nextState[client.Migrated](t, s)
	if m.From != primary || m.To != backup {
		t.Fatalf("Migrated = %+v, want %s → %s", m, primary, backup)
	}
	if got := s.Assignment(); got.Provider.Name != backup || got.Token != sa.Token {
		t.Fatalf("assignment after the move = %s, want the standby's", got.Provider.Name)
	}
	if got := e.eng.Active(backup); got != 1 {
		t.Fatalf("%d connections on %s, want 1", got, backup)
	}
	if st, _ := e.store.GetStream(t.Context(), s.ID()); st.Provider != primary {
		t.Fatalf("the server learnt of the move while unreachable: %+v", st)
	}

	e.setMode(modeUp)
	waitFor(t, "the move to be reported", func() bool {
		st := e.stream(s.ID())
		return st.Provider == backup && st.Migrations == 1 && len(st.Trail) > 0 && st.Trail[len(st.Trail)-1].Kind == "failure"
	})
	st := e.stream(s.ID())
	mv := st.Trail[len(st.Trail)-2]
	if mv.Kind != "migrate" || mv.From != primary || mv.Provider != backup || mv.ReportedAt == nil {
		t.Fatalf("trail entry of the move: %+v", mv)
	}
	if mv.At.Before(failedAt) || !mv.ReportedAt.After(mv.At) {
		t.Errorf("move at %v, reported at %v, failure injected at %v", mv.At, mv.ReportedAt, failedAt)
	}
	if f := st.Trail[len(st.Trail)-1]; f.Provider != primary || f.Stage != "media" {
		t.Errorf("failure entry: %+v", f)
	}
	// The report's answer gives the stream a new standby, never the provider
	// that just failed.
	waitFor(t, "a new standby", func() bool { _, ok := s.Standby(); return ok })
	if sa, _ := s.Standby(); sa.Provider.Name == primary || sa.Provider.Name == backup {
		t.Errorf("new standby on %s", sa.Provider.Name)
	}
}

// A stream closed before its move to the standby was reported (the report
// waits a random part of a second) reports it before it ends: the server ends
// it on the provider it was on, after the move.
func TestCloseReportsTheMoveFirst(t *testing.T) {
	e := newEnv(t, settings())
	c := e.newClient()
	s := mustStart(t, c, "room-close-after-move")
	e.eng.Down(primary, true)
	e.eng.Fail(primary)
	if m := nextState[client.Migrated](t, s); m.To != backup {
		t.Fatalf("Migrated = %+v, want to %s", m, backup)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	st := e.stream(s.ID())
	if st.Status != "ended" || st.Provider != backup || st.Migrations != 1 {
		t.Fatalf("the server ended the stream on %s (%s, %d moves), want on %s after the move", st.Provider, st.Status, st.Migrations, backup)
	}
	var kinds []string
	for _, e := range st.Trail {
		kinds = append(kinds, e.Kind)
	}
	if i, j := slices.Index(kinds, "migrate"), slices.Index(kinds, "end"); i < 0 || j < i {
		t.Errorf("trail %v: want the move before the end", kinds)
	}
}

// A change of health that makes the standby stale renews it at once, without
// waiting for the next heartbeat.
func TestStandbyRenewedWhenItsProviderTurnsCritical(t *testing.T) {
	e := newEnv(t, settings())
	c := e.newClient(client.WithHeartbeat(time.Hour))
	s := mustStart(t, c, "room-renew")
	waitFor(t, "the event stream", c.EventsConnected)
	if sa, _ := s.Standby(); sa.Provider.Name != backup {
		t.Fatalf("standby on %s, want %s", sa.Provider.Name, backup)
	}
	e.critical(backup)
	waitFor(t, "a standby off the CRITICAL provider", func() bool {
		sa, ok := s.Standby()
		return ok && sa.Provider.Name == fakes.LiveKit
	})
	// The media error now moves the stream to the renewed standby.
	e.eng.Fail(primary)
	if m := nextState[client.Migrated](t, s); m.To != fakes.LiveKit {
		t.Errorf("moved to %s, want %s", m.To, fakes.LiveKit)
	}
}

// Heartbeats come early enough to renew a standby before its token expires.
func TestStandbyRenewedBeforeExpiry(t *testing.T) {
	e := newEnvWith(t, settings(), 62*time.Second) // renewed a minute before expiry: after about 2 s
	c := e.newClient(client.WithHeartbeat(time.Hour))
	s := mustStart(t, c, "room-expiry")
	first, ok := s.Standby()
	if !ok {
		t.Fatal("no standby")
	}
	waitFor(t, "the standby to be renewed", func() bool {
		sa, ok := s.Standby()
		return ok && sa.TokenExpiresAt.After(first.TokenExpiresAt)
	})
}

// A standby whose token is about to expire is not used; with the control
// plane unreachable too, the stream cannot move, and it ends Failed within
// the failover timeout rather than failing over for ever.
func TestExpiringStandbyIsNotUsedAndFailoverIsBounded(t *testing.T) {
	e := newEnvWith(t, settings(), 3*time.Second) // under the standby's minimum life
	c := e.newClient(client.WithFailoverTimeout(time.Second))
	s := mustStart(t, c, "room-bounded")
	e.setMode(modeDown)
	waitFor(t, "the event stream to be down", func() bool { return !c.EventsConnected() })
	e.eng.Down(primary, true)
	start := time.Now()
	e.eng.Fail(primary)
	f := nextState[client.Failed](t, s)
	if f.Err == nil || !strings.Contains(f.Err.Error(), "within 1s") {
		t.Errorf("Failed = %v, want the failover timeout as its reason", f.Err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("failed after %v, with a failover timeout of 1 s", d)
	}
	if got := e.eng.Active(backup); got != 0 {
		t.Errorf("%d connections on %s: the expiring standby was used", got, backup)
	}
}

// A control plane that sheds load answers 503 with Retry-After; the SDK waits
// at least that long before it asks again, for a start as for the report of
// a move, and reports no provider failure for it.
func TestRetryAfterIsHonoured(t *testing.T) {
	e := newEnv(t, settings())
	var mu sync.Mutex
	calls := map[string][]time.Time{}
	shed := func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPost {
			return false
		}
		kind := "start"
		if strings.HasSuffix(r.URL.Path, "/migrate") {
			kind = "migrate"
		} else if r.URL.Path != "/api/streams" {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		calls[kind] = append(calls[kind], time.Now())
		if len(calls[kind]) > 1 {
			return false
		}
		w.Header().Set("Retry-After", "1")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"overloaded: try again later","field":""}}`))
		return true
	}
	e.intercept.Store(&shed)
	c := e.newClient()
	s := mustStart(t, c, "room-shed")
	e.eng.Down(primary, true)
	e.eng.Fail(primary)
	if m := nextState[client.Migrated](t, s); m.To != backup {
		t.Fatalf("moved to %s, want the standby on %s", m.To, backup)
	}
	waitFor(t, "the move to be reported", func() bool { return e.stream(s.ID()).Provider == backup })
	mu.Lock()
	defer mu.Unlock()
	for kind, ts := range calls {
		if len(ts) < 2 {
			t.Errorf("%s: %d calls, want a retry", kind, len(ts))
			continue
		}
		if gap := ts[1].Sub(ts[0]); gap < time.Second {
			t.Errorf("%s retried after %v, under the Retry-After of 1 s", kind, gap)
		}
	}
	for _, en := range e.stream(s.ID()).Trail {
		if en.Kind == "failure" && en.Provider != primary {
			t.Errorf("a failure of %s was reported: the control plane's load is not a provider's failure", en.Provider)
		}
	}
}

// A provider whose media failed is kept out of standbys for a while, but a
// stream that has nowhere else to go still moves back to it once it works
// again: avoidance is a preference, not a ban.
func TestRecentlyFailedProviderStillTakesAStreamWithNowhereElseToGo(t *testing.T) {
	e := newEnv(t, settings())
	c := e.newClient()
	s := mustStart(t, c, "room-back")
	e.eng.Down(primary, true)
	e.eng.Fail(primary)
	if m := nextState[client.Migrated](t, s); m.To != backup {
		t.Fatalf("first move to %s, want %s", m.To, backup)
	}
	waitFor(t, "the move to be reported", func() bool { return e.stream(s.ID()).Provider == backup })
	e.eng.Down(primary, false) // back, though its failure is recent
	e.eng.Down(fakes.LiveKit, true)
	e.eng.Down(backup, true)
	e.eng.Fail(backup)
	if m := nextState[client.Migrated](t, s); m.To != primary {
		t.Fatalf("second move to %s, want back to %s", m.To, primary)
	}
}

// The reports of a move to the standby, and of the failure that caused it,
// wait while another stream of the same Client is still moving: in a mass
// failover the moves come first. Once no stream moves, they go out.
func TestMoveReportsWaitForTheClientsOtherMoves(t *testing.T) {
	e := newEnv(t, settings())
	c := e.newClient()
	s := mustStart(t, c, "room-reports-wait")
	settled := c.HoldMove() // another stream of c, still moving
	defer settled()
	e.eng.Down(primary, true)
	e.eng.Fail(primary)
	if m := nextState[client.Migrated](t, s); m.To != backup {
		t.Fatalf("Migrated = %+v, want to %s", m, backup)
	}
	// Unheld, both reports go out within a second (reportSpread).
	time.Sleep(2 * time.Second)
	if st := e.stream(s.ID()); st.Provider != primary || st.Migrations != 0 || len(st.Trail) != 1 {
		t.Fatalf("reported while another move was in progress: on %s, %d moves, %d trail entries", st.Provider, st.Migrations, len(st.Trail))
	}
	settled()
	waitFor(t, "the move and its failure to be reported", func() bool {
		st := e.stream(s.ID())
		return st.Provider == backup && st.Migrations == 1 && len(st.Trail) > 0 && st.Trail[len(st.Trail)-1].Kind == "failure"
	})
}
