package health

import (
	"strings"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func policy(fail, succ int) switchboard.HealthCheckPolicy {
	p := switchboard.DefaultHealthCheck()
	p.FailureThreshold, p.SuccessThreshold = fail, succ
	return p
}

func ok(i int) switchboard.ProbeResult {
	return switchboard.ProbeResult{OK: true, Latency: 40 * time.Millisecond, At: t0.Add(time.Duration(i) * time.Minute)}
}

func fail(i int) switchboard.ProbeResult {
	return switchboard.ProbeResult{Stage: switchboard.StageAuth, Message: "invalid credentials",
		Latency: 10 * time.Millisecond, At: t0.Add(time.Duration(i) * time.Minute)}
}

// run folds a script of probes ("o" ok, "x" failure) and returns the status after each.
func run(t *testing.T, h switchboard.Health, script string, pol switchboard.HealthCheckPolicy) (switchboard.Health, []switchboard.Status) {
	t.Helper()
	var got []switchboard.Status
	for i, c := range script {
		switch c {
		case 'o':
			h = Observe(h, ok(i), pol, true)
		case 'x':
			h = Observe(h, fail(i), pol, true)
		default:
			t.Fatalf("bad script char %q", c)
		}
		got = append(got, h.Status)
	}
	return h, got
}

// history warms a provider up with n successes so that uptime rules do not
// mask the latch rules.
func history(t *testing.T, n int, pol switchboard.HealthCheckPolicy) switchboard.Health {
	t.Helper()
	h, _ := run(t, switchboard.Health{}, strings.Repeat("o", n), pol)
	return h
}

func TestObserveLatch(t *testing.T) {
	const (
		E = switchboard.StatusExcellent
		H = switchboard.StatusHealthy
		W = switchboard.StatusWarning
		C = switchboard.StatusCritical
		U = switchboard.StatusUnknown
	)
	tests := []struct {
		name   string
		warm   int // successes before the script
		pol    switchboard.HealthCheckPolicy
		script string
		want   []switchboard.Status
	}{
		{"three consecutive failures are critical", 1000, policy(3, 2), "xxx", []switchboard.Status{E, E, C}},
		{"one success is not enough, two are", 1000, policy(3, 2), "xxxoo", []switchboard.Status{E, E, C, C, E}},
		{"a failure while recovering restarts the count", 1000, policy(3, 2), "xxxoxoo", []switchboard.Status{E, E, C, C, C, C, E}},
		{"flapping within thresholds never goes critical", 1000, policy(3, 2), "xxoxxoxxoxxo",
			repeat(E, 12)},
		{"flapping without history never goes critical", 0, policy(3, 2), "xxoxxoxxoxxo",
			append([]switchboard.Status{U, U}, repeat(W, 10)...)},
		{"failure threshold from policy", 1000, policy(5, 1), "xxxxxo", []switchboard.Status{E, E, E, E, C, E}},
		{"threshold of one", 1000, policy(1, 1), "xoxo", []switchboard.Status{C, E, C, E}},
		{"success threshold from policy", 1000, policy(2, 3), "xxooo", []switchboard.Status{E, C, C, C, E}},
		{"first probe failing leaves it unverified, not critical", 0, policy(3, 2), "x", []switchboard.Status{U}},
		{"first probe ok is excellent", 0, policy(3, 2), "o", []switchboard.Status{E}},
		{"uptime below 95% is a warning", 0, policy(3, 2), "ooooooooox", []switchboard.Status{E, E, E, E, E, E, E, E, E, W}},
		{"uptime from 95% to 99% is healthy", 0, policy(3, 2), strings.Repeat("o", 19) + "x",
			append(repeat(E, 19), H)},
		{"recovered with poor uptime is a warning", 0, policy(3, 2), "xxxoo", []switchboard.Status{U, U, C, C, W}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := history(t, tt.warm, tt.pol)
			_, got := run(t, h, tt.script, tt.pol)
			if !equal(got, tt.want) {
				t.Errorf("statuses = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestObserveCounters(t *testing.T) {
	pol := policy(3, 2)
	h, _ := run(t, switchboard.Health{}, "oxxo", pol)
	want := switchboard.Health{
		TotalChecks: 4, SuccessfulChecks: 2, ConsecutiveSuccesses: 1,
		LatencyMs: 40, LatencySumMs: 100, TotalRequests: 4, FailedRequests: 2,
	}
	if h.TotalChecks != want.TotalChecks || h.SuccessfulChecks != want.SuccessfulChecks ||
		h.ConsecutiveSuccesses != want.ConsecutiveSuccesses || h.ConsecutiveFailures != 0 ||
		h.LatencyMs != want.LatencyMs || h.LatencySumMs != want.LatencySumMs ||
		h.TotalRequests != want.TotalRequests || h.FailedRequests != want.FailedRequests {
		t.Errorf("counters = %+v, want %+v", h, want)
	}
	if h.LastCheck == nil || !h.LastCheck.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("LastCheck = %v, want %v", h.LastCheck, t0.Add(3*time.Minute))
	}
	if h.LastSuccess == nil || !h.LastSuccess.Equal(t0.Add(3*time.Minute)) {
		t.Errorf("LastSuccess = %v", h.LastSuccess)
	}
	wantErr := switchboard.ProbeError{Stage: switchboard.StageAuth, Message: "invalid credentials", At: t0.Add(2 * time.Minute)}
	if h.LastError == nil || *h.LastError != wantErr {
		t.Errorf("LastError = %+v, want %+v (kept after a success)", h.LastError, wantErr)
	}
	if got := h.AverageLatencyMs(); got != 25 {
		t.Errorf("AverageLatencyMs = %v, want 25", got)
	}
}

func TestObserveStatusSince(t *testing.T) {
	pol := policy(2, 1)
	h := Observe(switchboard.Health{}, ok(0), pol, true)
	if h.StatusSince == nil || !h.StatusSince.Equal(ok(0).At) {
		t.Fatalf("StatusSince after first probe = %v, want %v", h.StatusSince, ok(0).At)
	}
	h = Observe(h, ok(1), pol, true)
	if !h.StatusSince.Equal(ok(0).At) {
		t.Errorf("StatusSince moved without a change: %v", h.StatusSince)
	}
	h = Observe(h, fail(2), pol, true)
	h = Observe(h, fail(3), pol, true)
	if h.Status != switchboard.StatusCritical || !h.StatusSince.Equal(fail(3).At) {
		t.Errorf("after two failures: %s since %v, want CRITICAL since %v", h.Status, h.StatusSince, fail(3).At)
	}
}

func TestDerive(t *testing.T) {
	pol := policy(3, 2)
	lastErr := &switchboard.ProbeError{Stage: switchboard.StageAuth, Message: "invalid credentials", At: t0}
	tests := []struct {
		name       string
		h          switchboard.Health
		enabled    bool
		want       switchboard.Status
		wantReason string
	}{
		{"disabled wins over everything", switchboard.Health{TotalChecks: 10, ConsecutiveFailures: 9, Down: true}, false,
			switchboard.StatusDisabled, "provider is disabled"},
		{"never checked", switchboard.Health{TotalRequests: 3, FailedRequests: 3}, true,
			switchboard.StatusUnknown, "not checked yet"},
		{"consecutive failures", switchboard.Health{TotalChecks: 100, SuccessfulChecks: 97, ConsecutiveFailures: 3, Down: true, LastError: lastErr}, true,
			switchboard.StatusCritical, "3 consecutive failures (last: auth: invalid credentials)"},
		{"failures reach a lowered threshold before the latch moved", switchboard.Health{TotalChecks: 100, SuccessfulChecks: 97, ConsecutiveFailures: 3, LastError: lastErr}, true,
			switchboard.StatusCritical, "3 consecutive failures (last: auth: invalid credentials)"},
		{"recovering", switchboard.Health{TotalChecks: 100, SuccessfulChecks: 98, ConsecutiveSuccesses: 1, Down: true}, true,
			switchboard.StatusCritical, "recovering: 1 of 2 consecutive successes"},
		{"failure while down", switchboard.Health{TotalChecks: 100, SuccessfulChecks: 98, ConsecutiveFailures: 1, Down: true, LastError: lastErr}, true,
			switchboard.StatusCritical, "down until 2 consecutive successes (last: auth: invalid credentials)"},
		{"low uptime", switchboard.Health{TotalChecks: 1000, SuccessfulChecks: 931, TotalRequests: 1000, FailedRequests: 69}, true,
			switchboard.StatusWarning, "uptime 93.1% < 95%"},
		{"uptime just under 95% never reads 95.0", switchboard.Health{TotalChecks: 10000, SuccessfulChecks: 9499}, true,
			switchboard.StatusWarning, "uptime 94.9% < 95%"},
		{"high error rate from client failures", switchboard.Health{TotalChecks: 100, SuccessfulChecks: 100, TotalRequests: 120, FailedRequests: 20}, true,
			switchboard.StatusWarning, "error rate 16.7% > 10%"},
		{"both", switchboard.Health{TotalChecks: 10, SuccessfulChecks: 8, TotalRequests: 10, FailedRequests: 2}, true,
			switchboard.StatusWarning, "uptime 80.0% < 95%; error rate 20.0% > 10%"},
		{"error rate of exactly 10% is no warning", switchboard.Health{TotalChecks: 100, SuccessfulChecks: 100, TotalRequests: 110, FailedRequests: 11}, true,
			switchboard.StatusExcellent, "uptime 100.0% ≥ 99%"},
		{"uptime of exactly 95% is healthy", switchboard.Health{TotalChecks: 20, SuccessfulChecks: 19, TotalRequests: 20, FailedRequests: 1}, true,
			switchboard.StatusHealthy, "uptime 95.0%"},
		{"uptime of exactly 99% is excellent", switchboard.Health{TotalChecks: 100, SuccessfulChecks: 99, TotalRequests: 100, FailedRequests: 1}, true,
			switchboard.StatusExcellent, "uptime 99.0% ≥ 99%"},
		{"zero policy falls back to defaults", switchboard.Health{TotalChecks: 10, SuccessfulChecks: 7, ConsecutiveFailures: 3}, true,
			switchboard.StatusCritical, "3 consecutive failures"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := pol
			if strings.HasPrefix(tt.name, "zero policy") {
				p = switchboard.HealthCheckPolicy{}
			}
			got, reason := Derive(tt.h, p, tt.enabled)
			if got != tt.want || reason != tt.wantReason {
				t.Errorf("Derive = %s %q, want %s %q", got, reason, tt.want, tt.wantReason)
			}
		})
	}
}

func TestObserveClientFailure(t *testing.T) {
	pol := policy(3, 2)
	h := history(t, 100, pol)
	for range 11 {
		h = ObserveClientFailure(h, t0, pol, true)
	}
	if h.TotalChecks != 100 || h.ConsecutiveFailures != 0 || h.Down {
		t.Errorf("client failures touched probe counters: %+v", h)
	}
	if h.TotalRequests != 111 || h.FailedRequests != 11 {
		t.Errorf("requests = %d/%d failed, want 111/11", h.TotalRequests, h.FailedRequests)
	}
	if h.Status != switchboard.StatusExcellent { // 11/111 = 9.9%: not yet
		t.Errorf("after 11/111 failures: %s %q, want EXCELLENT", h.Status, h.StatusReason)
	}
	h = ObserveClientFailure(h, t0.Add(time.Second), pol, true)
	if h.Status != switchboard.StatusWarning || h.StatusReason != "error rate 10.8% > 10%" ||
		!h.StatusSince.Equal(t0.Add(time.Second)) {
		t.Errorf("after 12/112 failures: %s %q since %v, want WARNING since %v", h.Status, h.StatusReason, h.StatusSince, t0.Add(time.Second))
	}
	if u := ObserveClientFailure(switchboard.Health{}, t0, pol, true); u.Status != switchboard.StatusUnknown {
		t.Errorf("client failure before any probe: %s, want UNKNOWN", u.Status)
	}
}

func TestReevaluate(t *testing.T) {
	pol := policy(3, 2)
	h := history(t, 100, pol)
	h = Reevaluate(h, t0.Add(time.Hour), pol, false)
	if h.Status != switchboard.StatusDisabled || !h.StatusSince.Equal(t0.Add(time.Hour)) {
		t.Errorf("disabled: %s since %v", h.Status, h.StatusSince)
	}
	h = Reevaluate(h, t0.Add(2*time.Hour), pol, true)
	if h.Status != switchboard.StatusExcellent || !h.StatusSince.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("re-enabled: %s since %v", h.Status, h.StatusSince)
	}
	// Two failures, then the failure threshold is lowered to two.
	h, _ = run(t, h, "xx", pol)
	if h.Status == switchboard.StatusCritical {
		t.Fatalf("critical before the threshold: %+v", h)
	}
	h = Reevaluate(h, t0.Add(3*time.Hour), policy(2, 2), true)
	if h.Status != switchboard.StatusCritical || !h.Down {
		t.Errorf("lowered threshold: %s down=%v, want CRITICAL and latched", h.Status, h.Down)
	}
}

func TestStateOfAndUsable(t *testing.T) {
	tests := []struct {
		s       switchboard.Status
		state   switchboard.State
		healthy bool
	}{
		{switchboard.StatusExcellent, switchboard.StateActive, true},
		{switchboard.StatusHealthy, switchboard.StateActive, true},
		{switchboard.StatusWarning, switchboard.StateDegraded, true},
		{switchboard.StatusCritical, switchboard.StateDown, false},
		{switchboard.StatusDisabled, switchboard.StateDown, false},
		{switchboard.StatusUnknown, switchboard.StateUnknown, false},
		{"", switchboard.StateUnknown, false},
	}
	for _, tt := range tests {
		if got := StateOf(tt.s); got != tt.state {
			t.Errorf("StateOf(%q) = %s, want %s", tt.s, got, tt.state)
		}
		if got := tt.s.Usable(); got != tt.healthy {
			t.Errorf("%q.Usable() = %v, want %v", tt.s, got, tt.healthy)
		}
	}
}

func repeat(s switchboard.Status, n int) []switchboard.Status {
	out := make([]switchboard.Status, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func equal(a, b []switchboard.Status) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestNeverVerified: a provider is UNKNOWN, so not usable, until its first
// successful check; failures before it count toward CRITICAL at the failure
// threshold as usual, and the first success after them makes it usable.
func TestNeverVerified(t *testing.T) {
	pol := switchboard.HealthCheckPolicy{FailureThreshold: 3, SuccessThreshold: 2}
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fail := switchboard.ProbeResult{Stage: switchboard.StageConnect, Message: "refused", At: at}
	var h switchboard.Health
	h = Reevaluate(h, at, pol, true)
	if h.Status != switchboard.StatusUnknown {
		t.Fatalf("never checked: %s, want UNKNOWN", h.Status)
	}
	for i := 1; i < pol.FailureThreshold; i++ {
		h = Observe(h, fail, pol, true)
		if h.Status != switchboard.StatusUnknown || h.Status.Usable() {
			t.Fatalf("after %d failures and no success: %s (%s), want UNKNOWN", i, h.Status, h.StatusReason)
		}
		if !strings.Contains(h.StatusReason, "not verified") {
			t.Errorf("reason %q does not say the provider is not verified", h.StatusReason)
		}
	}
	h = Observe(h, fail, pol, true)
	if h.Status != switchboard.StatusCritical {
		t.Fatalf("failures reached the threshold before any success: %s, want CRITICAL", h.Status)
	}

	// Fresh provider: one failure, then a success: verified, usable, and
	// judged on its record (1 of 2 checks: WARNING).
	var g switchboard.Health
	g = Observe(g, fail, pol, true)
	g = Observe(g, switchboard.ProbeResult{OK: true, At: at}, pol, true)
	if g.Status != switchboard.StatusWarning || !g.Status.Usable() {
		t.Fatalf("after a failure then a success: %s, want WARNING (usable)", g.Status)
	}
	// A verified provider that then fails below the threshold stays usable.
	var v switchboard.Health
	v = Observe(v, switchboard.ProbeResult{OK: true, At: at}, pol, true)
	if v.Status != switchboard.StatusExcellent {
		t.Fatalf("first success: %s, want EXCELLENT", v.Status)
	}
	v = Observe(v, fail, pol, true)
	if !v.Status.Usable() || v.Status == switchboard.StatusUnknown {
		t.Fatalf("verified provider after one failure: %s, want usable", v.Status)
	}
}
