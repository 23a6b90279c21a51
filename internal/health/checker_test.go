package health

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

func TestNewCheckerRequires(t *testing.T) {
	store := newFakeStore()
	probers := map[switchboard.Kind]switchboard.Prober{switchboard.KindHTTP: newFakeProber()}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"registry", Config{Health: store, Probers: probers}},
		{"health", Config{Registry: store, Probers: probers}},
		{"probers", Config{Registry: store, Health: store}},
		{"concurrency", Config{Registry: store, Health: store, Probers: probers, MaxConcurrent: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewChecker(tt.cfg); err == nil {
				t.Error("NewChecker succeeded, want an error")
			}
		})
	}
}

func TestCheckJoinsProbeInProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := newFakeStore(testProvider("a"))
		release := make(chan struct{})
		prober := newFakeProber()
		prober.hold = holdUntil(release)
		c := newTestChecker(t, store, prober, nil)

		const callers = 5
		results := make([]Result, callers)
		errs := make([]error, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() { results[i], errs[i] = c.Check(t.Context(), "a") })
		}
		synctest.Wait() // every caller is blocked: joined the probe, or waiting for it
		if got := c.waiters("a"); got != callers {
			t.Errorf("callers waiting for the probe = %d, want %d", got, callers)
		}
		close(release)
		wg.Wait()

		if got := prober.count("a"); got != 1 {
			t.Errorf("probes = %d, want 1", got)
		}
		if got := store.recordCount(); got != 1 {
			t.Errorf("records = %d, want 1", got)
		}
		for i := range callers {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if !results[i].Probed || !results[i].Probe.OK || results[i].Health.TotalChecks != 1 || results[i].Status != switchboard.StatusExcellent {
				t.Errorf("caller %d got %+v", i, results[i])
			}
		}

		// After the probe, a new call probes again.
		if _, err := c.Check(t.Context(), "a"); err != nil {
			t.Fatal(err)
		}
		if got := prober.count("a"); got != 2 {
			t.Errorf("probes after a later check = %d, want 2", got)
		}
	})
}

func TestCheckTimeout(t *testing.T) {
	const timeout = 150 * time.Millisecond
	tests := []struct {
		name  string
		stage switchboard.Stage // what the prober says on ctx.Done
	}{
		{"adapter reports timeout", switchboard.StageTimeout},
		{"adapter reports no stage", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				p := testProvider("slow")
				p.HealthCheck.Timeout = switchboard.Duration(timeout)
				store := newFakeStore(p)
				prober := proberFunc(func(ctx context.Context, _ switchboard.Provider) switchboard.ProbeResult {
					<-ctx.Done()
					return switchboard.ProbeResult{Stage: tt.stage, Message: "no answer"}
				})
				c, err := NewChecker(Config{Registry: store, Health: store, Clock: testutil.NewClock(t0),
					Probers: map[switchboard.Kind]switchboard.Prober{switchboard.KindHTTP: prober}})
				if err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				res, err := c.Check(t.Context(), "slow")
				elapsed := time.Since(start)
				if err != nil {
					t.Fatal(err)
				}
				if elapsed != timeout {
					t.Errorf("check took %v, want the %v timeout", elapsed, timeout)
				}
				if res.Probe.OK || res.Probe.Stage != switchboard.StageTimeout {
					t.Errorf("probe = %+v, want a failure at stage timeout", res.Probe)
				}
				if res.Probe.Latency < timeout || !res.Probe.At.Equal(t0) {
					t.Errorf("probe latency %v at %v, want ≥ %v at %v", res.Probe.Latency, res.Probe.At, timeout, t0)
				}
				if h := res.Health; h.ConsecutiveFailures != 1 || h.LastError == nil || h.LastError.Stage != switchboard.StageTimeout {
					t.Errorf("health = %+v", h)
				}
			})
		})
	}
}

type proberFunc func(ctx context.Context, p switchboard.Provider) switchboard.ProbeResult

func (f proberFunc) Probe(ctx context.Context, p switchboard.Provider) switchboard.ProbeResult {
	return f(ctx, p)
}

func TestCheckPublishesTransitionsOnly(t *testing.T) {
	testutil.LeakCheck(t)
	store := newFakeStore(testProvider("a"))
	script := "xxxxoooo"
	prober := newFakeProber()
	prober.result = func(_ string, n int) switchboard.ProbeResult {
		if script[n-1] == 'o' {
			return switchboard.ProbeResult{OK: true, Latency: time.Millisecond}
		}
		return switchboard.ProbeResult{Stage: switchboard.StageAuth, Message: "invalid credentials", Latency: time.Millisecond}
	}
	bus := &testutil.Bus{}
	var mu sync.Mutex
	var probes, transitions int
	c := newTestChecker(t, store, prober, bus, func(cfg *Config) {
		cfg.OnProbe = func(Result) { mu.Lock(); probes++; mu.Unlock() }
		cfg.OnTransition = func(StatusChange) { mu.Lock(); transitions++; mu.Unlock() }
	})
	var statuses []switchboard.Status
	for range script {
		res, err := c.Check(t.Context(), "a")
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, res.Status)
	}
	W, C, U := switchboard.StatusWarning, switchboard.StatusCritical, switchboard.StatusUnknown
	if want := []switchboard.Status{U, U, C, C, C, W, W, W}; !equal(statuses, want) {
		t.Errorf("statuses = %v, want %v", statuses, want)
	}
	want := []StatusChange{
		{Name: "a", Kind: switchboard.KindHTTP, From: U, To: C, Reason: "3 consecutive failures (last: auth: invalid credentials)", At: t0},
		{Name: "a", Kind: switchboard.KindHTTP, From: C, To: W, Reason: "uptime 33.3% < 95%; error rate 66.7% > 10%", At: t0},
	}
	got := changes(bus)
	if len(got) != len(want) {
		t.Fatalf("events = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, e := range bus.Events() {
		if e.Type != switchboard.EventProviderStatus || e.Audience != switchboard.RoleClient || !e.At.Equal(t0) {
			t.Errorf("event envelope = %+v", e)
		}
	}
	if probes != len(script) || transitions != len(want) {
		t.Errorf("hooks: OnProbe %d times, OnTransition %d times; want %d and %d", probes, transitions, len(script), len(want))
	}
	if len(store.transitions) != len(want) {
		t.Errorf("store recorded %d transitions, want %d", len(store.transitions), len(want))
	}
}

func TestCheckErrors(t *testing.T) {
	testutil.LeakCheck(t)
	disabled := testProvider("off")
	disabled.Enabled = false
	other := testProvider("lk")
	other.Kind = switchboard.KindLiveKit
	store := newFakeStore(disabled, other)
	prober := newFakeProber()
	c := newTestChecker(t, store, prober, nil)

	if _, err := c.Check(t.Context(), "missing"); !switchboard.IsCode(err, switchboard.ENotFound) {
		t.Errorf("unknown provider: err = %v, want code %s", err, switchboard.ENotFound)
	}
	res, err := c.Check(t.Context(), "off")
	if err != nil {
		t.Fatalf("disabled provider: %v", err)
	}
	if res.Probed || res.Status != switchboard.StatusDisabled || res.State != switchboard.StateDown || res.Status.Usable() {
		t.Errorf("disabled provider: %+v", res)
	}
	if _, err := c.Check(t.Context(), "lk"); !switchboard.IsCode(err, switchboard.EUnavailable) {
		t.Errorf("kind without adapter: err = %v, want code %s", err, switchboard.EUnavailable)
	}
	if n := prober.total(); n != 0 {
		t.Errorf("probes = %d, want 0", n)
	}
}

func TestCheckCallerLeaves(t *testing.T) {
	t.Run("last caller cancels the probe, nothing recorded", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			store := newFakeStore(testProvider("a"))
			prober := newFakeProber()
			prober.hold = func(ctx context.Context, _ string) { <-ctx.Done() }
			c := newTestChecker(t, store, prober, nil)

			ctx, cancel := context.WithCancel(t.Context())
			go func() { <-prober.started; cancel() }()
			_, err := c.Check(ctx, "a")
			if !errors.Is(err, context.Canceled) {
				t.Errorf("err = %v, want context.Canceled", err)
			}
			if store.recordCount() != 0 || prober.cancelled != 1 {
				t.Errorf("records = %d, cancelled probes = %d; want 0 and 1", store.recordCount(), prober.cancelled)
			}
		})
	})
	t.Run("probe goes on for the callers who stay", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			store := newFakeStore(testProvider("a"))
			release := make(chan struct{})
			prober := newFakeProber()
			prober.hold = holdUntil(release)
			c := newTestChecker(t, store, prober, nil)

			leaving, leave := context.WithCancel(t.Context())
			first := make(chan error, 1)
			go func() { _, err := c.Check(leaving, "a"); first <- err }()
			<-prober.started
			second := make(chan Result, 1)
			go func() { res, _ := c.Check(t.Context(), "a"); second <- res }()
			synctest.Wait()
			if got := c.waiters("a"); got != 2 {
				t.Fatalf("callers waiting for the probe = %d, want 2", got)
			}
			leave()
			if err := <-first; !errors.Is(err, context.Canceled) {
				t.Errorf("first caller: err = %v, want context.Canceled", err)
			}
			close(release)
			if res := <-second; !res.Probe.OK || store.recordCount() != 1 || prober.count("a") != 1 {
				t.Errorf("second caller got %+v; records %d, probes %d; want one recorded probe", res, store.recordCount(), prober.count("a"))
			}
		})
	})
}

func TestCheckAll(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 6
		var ps []switchboard.Provider
		for _, name := range names(n) {
			p := testProvider(name)
			p.HealthCheck.Timeout = switchboard.Duration(5 * time.Second)
			ps = append(ps, p)
		}
		off := testProvider("zz-off")
		off.Enabled = false
		store := newFakeStore(append(ps, off)...)

		// Every probe waits until all n are in flight: only parallel probes pass,
		// serial ones time out.
		var mu sync.Mutex
		arrived := 0
		all := make(chan struct{})
		prober := newFakeProber()
		prober.hold = func(ctx context.Context, _ string) {
			mu.Lock()
			if arrived++; arrived == n {
				close(all)
			}
			mu.Unlock()
			select {
			case <-all:
			case <-ctx.Done():
			}
		}
		c := newTestChecker(t, store, prober, nil)
		results, err := c.CheckAll(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(results) != n {
			t.Fatalf("results = %d, want %d (disabled left out)", len(results), n)
		}
		for i, r := range results {
			if r.Name != ps[i].Name || !r.Probe.OK {
				t.Errorf("result %d = %s ok=%v, want %s ok (registry order, all in parallel)", i, r.Name, r.Probe.OK, ps[i].Name)
			}
		}
		if prober.count("zz-off") != 0 {
			t.Error("disabled provider was probed")
		}
	})
}

func TestMaxConcurrentDoesNotEatTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n, slots = 6, 2
		const timeout = time.Second
		var ps []switchboard.Provider
		for _, name := range names(n) {
			p := testProvider(name)
			p.HealthCheck.Timeout = switchboard.Duration(timeout)
			ps = append(ps, p)
		}
		store := newFakeStore(ps...)
		// The first probes to start hold both slots for longer than the timeout;
		// the others wait for a slot meanwhile, then answer at once.
		release := make(chan struct{})
		var mu sync.Mutex
		first := map[string]bool{}
		prober := newFakeProber()
		prober.hold = func(_ context.Context, name string) {
			mu.Lock()
			hold := len(first) < slots
			if hold {
				first[name] = true
			}
			mu.Unlock()
			if hold {
				<-release
			}
		}
		c := newTestChecker(t, store, prober, nil, func(cfg *Config) { cfg.MaxConcurrent = slots })
		done := make(chan []Result, 1)
		go func() {
			results, err := c.CheckAll(t.Context())
			if err != nil {
				t.Error(err)
			}
			done <- results
		}()
		<-prober.started
		<-prober.started
		time.Sleep(timeout + timeout/2)
		close(release)
		results := <-done

		if prober.maxInFlight > slots {
			t.Errorf("max probes in flight = %d, want ≤ %d", prober.maxInFlight, slots)
		}
		if len(results) != n {
			t.Fatalf("results = %d, want %d", len(results), n)
		}
		for _, r := range results {
			if first[r.Name] {
				if r.Probe.Stage != switchboard.StageTimeout {
					t.Errorf("%s held past its timeout: %+v, want stage timeout", r.Name, r.Probe)
				}
				continue
			}
			if !r.Probe.OK {
				t.Errorf("%s: %+v; waiting for a slot must not count against the timeout", r.Name, r.Probe)
			}
		}
	})
}

func TestReportClientFailureAndRefresh(t *testing.T) {
	testutil.LeakCheck(t)
	store := newFakeStore(testProvider("a"))
	bus := &testutil.Bus{}
	c := newTestChecker(t, store, newFakeProber(), bus)
	if _, err := c.Check(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	h, err := c.ReportClientFailure(t.Context(), "a", t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if h.TotalRequests != 2 || h.FailedRequests != 1 || h.Status != switchboard.StatusWarning {
		t.Errorf("after a client failure: %+v", h)
	}
	if _, err := c.ReportClientFailure(t.Context(), "missing", t0); !switchboard.IsCode(err, switchboard.ENotFound) {
		t.Errorf("unknown provider: err = %v", err)
	}

	store.update("a", func(p *switchboard.Provider) { p.Enabled = false })
	h, err = c.Refresh(t.Context(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if h.Status != switchboard.StatusDisabled {
		t.Errorf("refresh after disable: %s", h.Status)
	}
	store.update("a", func(p *switchboard.Provider) { p.Enabled = true })
	if h, err = c.Refresh(t.Context(), "a"); err != nil || h.Status != switchboard.StatusWarning {
		t.Errorf("refresh after enable: %s, %v", h.Status, err)
	}
	// Refreshing without a change publishes nothing.
	if _, err := c.Refresh(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ch := range changes(bus) {
		got = append(got, string(ch.From)+">"+string(ch.To))
	}
	want := []string{"UNKNOWN>EXCELLENT", "EXCELLENT>WARNING", "WARNING>DISABLED", "DISABLED>WARNING"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("transitions = %v, want %v", got, want)
	}
}

func TestResultsHoldNoSecret(t *testing.T) {
	testutil.LeakCheck(t)
	const secret = "s3cr3t-header-value"
	p := testProvider("a")
	p.Credentials.Headers = map[string]string{"Authorization": "Bearer " + secret}
	store := newFakeStore(p)
	prober := newFakeProber()
	prober.result = func(string, int) switchboard.ProbeResult {
		return switchboard.ProbeResult{Stage: switchboard.StageAuth, Message: "rejected Bearer " + secret + " " + strings.Repeat("x", 1000)}
	}
	bus := &testutil.Bus{}
	c := newTestChecker(t, store, prober, bus)
	for range 3 {
		res, err := c.Check(t.Context(), "a")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(res.Probe.Message, secret) || strings.Contains(res.Health.LastError.Message, secret) {
			t.Errorf("secret in result: %q", res.Probe.Message)
		}
		if len(res.Probe.Message) > maxMessageLen+len("…") {
			t.Errorf("message of %d bytes, want at most %d", len(res.Probe.Message), maxMessageLen)
		}
	}
	for _, ch := range changes(bus) {
		if strings.Contains(ch.Reason, secret) {
			t.Errorf("secret in event: %q", ch.Reason)
		}
	}
}

// heldUpdateChecker returns a Checker of provider "a", checked once, whose
// next health update signals held and then waits until release is closed.
func heldUpdateChecker(t *testing.T) (*fakeStore, *Checker, chan struct{}, chan struct{}) {
	t.Helper()
	testutil.LeakCheck(t)
	store := newFakeStore(testProvider("a"))
	c := newTestChecker(t, store, newFakeProber(), &testutil.Bus{})
	if _, err := c.Check(t.Context(), "a"); err != nil {
		t.Fatal(err)
	}
	held, release := make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	store.mu.Lock()
	store.holdUpdate = func() { once.Do(func() { held <- struct{}{}; <-release }) }
	store.mu.Unlock()
	return store, c, held, release
}

// TestReportClientFailureBatches checks that the failures reported while an
// update of a provider's health is being written are written together by the
// next update, every one counted, each caller answered with the health after
// its own; and that a caller that leaves while waiting still has its failure
// counted.
func TestReportClientFailureBatches(t *testing.T) {
	store, c, held, release := heldUpdateChecker(t)
	store.mu.Lock()
	updatesBefore := store.updates
	store.mu.Unlock()
	pending := func() int {
		c.fmu.Lock()
		defer c.fmu.Unlock()
		if st := c.failing["a"]; st != nil && st.next != nil {
			return st.next.n
		}
		return 0
	}

	const n = 50
	type answer struct {
		h   switchboard.Health
		err error
	}
	answers := make(chan answer, n)
	report := func() {
		h, err := c.ReportClientFailure(t.Context(), "a", t0.Add(time.Minute))
		answers <- answer{h, err}
	}
	go report()
	<-held // the first failure's update is being written
	for range n - 1 {
		go report()
	}
	// One more caller, who leaves before its batch is written.
	leaving, leave := context.WithCancel(t.Context())
	left := make(chan error, 1)
	go func() { _, err := c.ReportClientFailure(leaving, "a", t0.Add(time.Minute)); left <- err }()
	for pending() < n {
		time.Sleep(time.Millisecond)
	}
	leave()
	if err := <-left; err == nil {
		t.Error("a caller whose context ended got no error")
	}
	close(release)
	var maxFailed int64
	for range n {
		a := <-answers
		if a.err != nil {
			t.Fatal(a.err)
		}
		maxFailed = max(maxFailed, a.h.FailedRequests)
	}
	store.mu.Lock()
	updates := store.updates - updatesBefore
	h := store.health["a"]
	store.mu.Unlock()
	if updates != 2 {
		t.Errorf("%d updates for %d failures reported while one was written, want 2", updates, n+1)
	}
	if h.FailedRequests != n+1 || h.TotalRequests != n+2 || maxFailed != n+1 {
		t.Errorf("after %d failures: failed %d, total %d, answered at most %d", n+1, h.FailedRequests, h.TotalRequests, maxFailed)
	}
	c.fmu.Lock()
	left2 := len(c.failing)
	c.fmu.Unlock()
	if left2 != 0 {
		t.Errorf("%d providers' batches kept after the last update", left2)
	}
}

// TestReportClientFailureLastCallerWrites checks that the failure of a caller
// whose context ends while it is the only one waiting for its batch is still
// written, with no later report to carry it.
func TestReportClientFailureLastCallerWrites(t *testing.T) {
	store, c, held, release := heldUpdateChecker(t)
	first := make(chan error, 1)
	go func() { _, err := c.ReportClientFailure(t.Context(), "a", t0.Add(time.Minute)); first <- err }()
	<-held // the first failure's update is being written
	leaving, leave := context.WithCancel(t.Context())
	second := make(chan error, 1)
	go func() { _, err := c.ReportClientFailure(leaving, "a", t0.Add(time.Minute)); second <- err }()
	for {
		c.fmu.Lock()
		st := c.failing["a"]
		waiting := st != nil && st.next != nil && st.next.waiters == 1
		c.fmu.Unlock()
		if waiting {
			break
		}
		time.Sleep(time.Millisecond)
	}
	leave()
	select {
	case err := <-second:
		t.Fatalf("the only caller of a batch left before writing it (err %v): its failure is lost", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	for _, ch := range []chan error{first, second} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	store.mu.Lock()
	h := store.health["a"]
	store.mu.Unlock()
	if h.FailedRequests != 2 {
		t.Errorf("failed requests %d after 2 failures reported, want 2", h.FailedRequests)
	}
	c.fmu.Lock()
	kept := len(c.failing)
	c.fmu.Unlock()
	if kept != 0 {
		t.Errorf("%d providers' batches kept after the last update", kept)
	}
}
