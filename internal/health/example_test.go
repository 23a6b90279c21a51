package health_test

import (
	"fmt"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/health"
)

// A provider goes CRITICAL after FailureThreshold consecutive failures and
// comes back only after SuccessThreshold consecutive successes.
func ExampleObserve() {
	pol := switchboard.DefaultHealthCheck() // 3 failures down, 2 successes up
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var h switchboard.Health
	for range 200 {
		h = health.Observe(h, switchboard.ProbeResult{OK: true, At: at}, pol, true)
	}
	fmt.Println(h.Status, h.StatusReason)

	fail := switchboard.ProbeResult{Stage: switchboard.StageAuth, Message: "invalid credentials", At: at}
	for range 3 {
		h = health.Observe(h, fail, pol, true)
	}
	fmt.Println(h.Status, h.StatusReason)

	h = health.Observe(h, switchboard.ProbeResult{OK: true, At: at}, pol, true)
	fmt.Println(h.Status, h.StatusReason)
	h = health.Observe(h, switchboard.ProbeResult{OK: true, At: at}, pol, true)
	fmt.Println(h.Status, h.StatusReason, health.StateOf(h.Status), h.Status.Usable())
	// Output:
	// EXCELLENT uptime 100.0% ≥ 99%
	// CRITICAL 3 consecutive failures (last: auth: invalid credentials)
	// CRITICAL recovering: 1 of 2 consecutive successes
	// HEALTHY uptime 98.5% active true
}
