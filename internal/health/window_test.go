package health

import (
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
)

// Derive judges uptime and error rate over the window when the store filled
// it in, and over the lifetime otherwise.
func TestDeriveWindow(t *testing.T) {
	pol := switchboard.DefaultHealthCheck()
	good := switchboard.Health{TotalChecks: 10000, SuccessfulChecks: 9990, TotalRequests: 10000, FailedRequests: 10}
	tests := []struct {
		name   string
		window switchboard.HealthWindow
		want   switchboard.Status
		reason string
	}{
		{"no window: lifetime", switchboard.HealthWindow{}, switchboard.StatusExcellent, "uptime 99.9% ≥ 99%"},
		{"every third check failed today", switchboard.HealthWindow{Span: 24 * time.Hour, Checks: 9, SuccessfulChecks: 6},
			switchboard.StatusWarning, "uptime 66.6% < 95%; error rate 33.4% > 10%"},
		{"client failures", switchboard.HealthWindow{Span: time.Hour, Checks: 20, SuccessfulChecks: 20, ClientFailures: 3},
			switchboard.StatusWarning, "error rate 13.1% > 10%"},
		{"good window", switchboard.HealthWindow{Span: time.Hour, Checks: 100, SuccessfulChecks: 97},
			switchboard.StatusHealthy, "uptime 97.0%"},
		{"no check in the window: lifetime uptime", switchboard.HealthWindow{Span: time.Hour},
			switchboard.StatusExcellent, "uptime 99.9% ≥ 99%"},
	}
	for _, tt := range tests {
		h := good
		h.Window = tt.window
		if got, reason := Derive(h, pol, true); got != tt.want || reason != tt.reason {
			t.Errorf("%s: Derive = %s (%s), want %s (%s)", tt.name, got, reason, tt.want, tt.reason)
		}
	}
}

// Observe and ObserveClientFailure count in the window as in the lifetime.
func TestObserveCountsInWindow(t *testing.T) {
	pol := switchboard.DefaultHealthCheck()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := switchboard.Health{Window: switchboard.HealthWindow{Span: time.Hour}}
	h = Observe(h, switchboard.ProbeResult{OK: true, At: at}, pol, true)
	h = Observe(h, switchboard.ProbeResult{OK: false, At: at}, pol, true)
	h = ObserveClientFailure(h, at, pol, true)
	if w := h.Window; w.Checks != 2 || w.SuccessfulChecks != 1 || w.ClientFailures != 1 {
		t.Errorf("window = %+v, want 2 checks, 1 successful, 1 client failure", w)
	}
}
