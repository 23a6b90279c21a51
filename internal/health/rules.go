package health

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/switchboardhq/switchboard"
)

// Status thresholds, in percent. They are the ones the product documents; only the
// failure and success thresholds are per provider (switchboard.HealthCheckPolicy).
const (
	// WarningUptime is the uptime below which a provider is WARNING.
	WarningUptime = 95.0
	// WarningErrorRate is the error rate above which a provider is WARNING.
	WarningErrorRate = 10.0
	// ExcellentUptime is the uptime from which a provider is EXCELLENT.
	ExcellentUptime = 99.0
)

// Observe folds one probe result into h and re-derives its status. It does no I/O
// and reads no clock: r.At is the time of the observation.
//
// A failed probe counts as a failed request (for the error rate) and becomes
// LastError, which a later success keeps: it is the last error, not the current
// one. The Down latch closes when ConsecutiveFailures reaches
// pol.FailureThreshold and opens again only after pol.SuccessThreshold
// consecutive successes, so a provider that flaps within its thresholds neither
// goes CRITICAL nor, once CRITICAL, comes back on a single lucky probe.
func Observe(h switchboard.Health, r switchboard.ProbeResult, pol switchboard.HealthCheckPolicy, enabled bool) switchboard.Health {
	at := r.At
	h.TotalChecks++
	h.TotalRequests++
	h.LastCheck = &at
	lat := max(r.Latency.Milliseconds(), 0)
	h.LatencyMs = lat
	h.LatencySumMs += lat
	h.Window.Checks++
	if r.OK {
		h.Window.SuccessfulChecks++
		h.SuccessfulChecks++
		h.ConsecutiveSuccesses++
		h.ConsecutiveFailures = 0
		h.LastSuccess = &at
	} else {
		h.FailedRequests++
		h.ConsecutiveFailures++
		h.ConsecutiveSuccesses = 0
		stage := r.Stage
		if stage == "" {
			stage = switchboard.StageOperation
		}
		h.LastError = &switchboard.ProbeError{Stage: stage, Message: r.Message, At: at}
	}
	return Reevaluate(h, at, pol, enabled)
}

// ObserveClientFailure folds a failure that a client reported (for example a
// stream that could not connect) into h: it counts toward the error rate but not
// toward uptime or the consecutive-failure latch, which belong to probes.
func ObserveClientFailure(h switchboard.Health, at time.Time, pol switchboard.HealthCheckPolicy, enabled bool) switchboard.Health {
	h.TotalRequests++
	h.FailedRequests++
	h.Window.ClientFailures++
	return Reevaluate(h, at, pol, enabled)
}

// Reevaluate re-applies the Down latch with pol's thresholds and re-derives the
// status, for example after the provider was enabled, disabled or given new
// thresholds. StatusSince becomes at when the status changes.
func Reevaluate(h switchboard.Health, at time.Time, pol switchboard.HealthCheckPolicy, enabled bool) switchboard.Health {
	pol = withDefaults(pol)
	switch {
	case !h.Down && h.ConsecutiveFailures >= pol.FailureThreshold:
		h.Down = true
	case h.Down && h.ConsecutiveSuccesses >= pol.SuccessThreshold:
		h.Down = false
	}
	status, reason := Derive(h, pol, enabled)
	if status != h.Status || h.StatusSince == nil {
		h.StatusSince = &at
	}
	h.Status, h.StatusReason = status, reason
	return h
}

// Derive returns the status of h and why, from the first rule that matches:
//
//	DISABLED   the provider is not enabled
//	UNKNOWN    it was never checked
//	CRITICAL   the Down latch is closed: ConsecutiveFailures reached the failure
//	           threshold and SuccessThreshold successes have not followed yet
//	UNKNOWN    no check has ever succeeded (failures before the first success
//	           count toward CRITICAL as usual, but below the threshold the
//	           provider is not verified, so it is not usable)
//	WARNING    uptime < 95% or error rate > 10%
//	EXCELLENT  uptime ≥ 99%
//	HEALTHY    otherwise
//
// Uptime and error rate are those of h's window (h.RecentUptime,
// h.RecentErrorRate): the checks and client-reported failures inside the
// provider's healthCheck.window, which the store fills in before a fold; the
// lifetime counters stand in when the window is unknown or empty. CRITICAL
// does not depend on the window.
func Derive(h switchboard.Health, pol switchboard.HealthCheckPolicy, enabled bool) (switchboard.Status, string) {
	pol = withDefaults(pol)
	if !enabled {
		return switchboard.StatusDisabled, "provider is disabled"
	}
	if h.TotalChecks == 0 {
		return switchboard.StatusUnknown, "not checked yet"
	}
	if h.Down || h.ConsecutiveFailures >= pol.FailureThreshold {
		return switchboard.StatusCritical, criticalReason(h, pol)
	}
	if h.SuccessfulChecks == 0 {
		return switchboard.StatusUnknown, fmt.Sprintf("not verified yet: %s, no success", plural(h.ConsecutiveFailures, "failed check"))
	}
	uptime, errRate := h.RecentUptime(), h.RecentErrorRate()
	var warn []string
	if uptime < WarningUptime {
		warn = append(warn, fmt.Sprintf("uptime %s%% < %g%%", floor1(uptime), WarningUptime))
	}
	if errRate > WarningErrorRate {
		warn = append(warn, fmt.Sprintf("error rate %s%% > %g%%", ceil1(errRate), WarningErrorRate))
	}
	if len(warn) > 0 {
		return switchboard.StatusWarning, strings.Join(warn, "; ")
	}
	if uptime >= ExcellentUptime {
		return switchboard.StatusExcellent, fmt.Sprintf("uptime %s%% ≥ %g%%", floor1(uptime), ExcellentUptime)
	}
	return switchboard.StatusHealthy, fmt.Sprintf("uptime %s%%", floor1(uptime))
}

func criticalReason(h switchboard.Health, pol switchboard.HealthCheckPolicy) string {
	last := ""
	if h.LastError != nil {
		last = fmt.Sprintf(" (last: %s: %s)", h.LastError.Stage, h.LastError.Message)
	}
	switch {
	case h.ConsecutiveFailures >= pol.FailureThreshold:
		return fmt.Sprintf("%s%s", plural(h.ConsecutiveFailures, "consecutive failure"), last)
	case h.ConsecutiveSuccesses > 0:
		return fmt.Sprintf("recovering: %d of %d consecutive successes", h.ConsecutiveSuccesses, pol.SuccessThreshold)
	default:
		return fmt.Sprintf("down until %s%s", plural(pol.SuccessThreshold, "consecutive success"), last)
	}
}

// A status is usable (may take streams) by switchboard.Status.Usable, the one
// rule of the product; there is no other in this package.

// StateOf maps a status to the coarse state of the original API: EXCELLENT and
// HEALTHY are active, WARNING is degraded, CRITICAL and DISABLED are down (a
// disabled provider takes no streams) and UNKNOWN is unknown.
func StateOf(s switchboard.Status) switchboard.State {
	switch s {
	case switchboard.StatusExcellent, switchboard.StatusHealthy:
		return switchboard.StateActive
	case switchboard.StatusWarning:
		return switchboard.StateDegraded
	case switchboard.StatusCritical, switchboard.StatusDisabled:
		return switchboard.StateDown
	default:
		return switchboard.StateUnknown
	}
}

// withDefaults fills thresholds and durations that a valid provider always has,
// so that the rules never divide the world by a zero threshold.
func withDefaults(pol switchboard.HealthCheckPolicy) switchboard.HealthCheckPolicy {
	d := switchboard.DefaultHealthCheck()
	if pol.Interval <= 0 {
		pol.Interval = d.Interval
	}
	if pol.Timeout <= 0 {
		pol.Timeout = d.Timeout
	}
	if pol.FailureThreshold < 1 {
		pol.FailureThreshold = d.FailureThreshold
	}
	if pol.SuccessThreshold < 1 {
		pol.SuccessThreshold = d.SuccessThreshold
	}
	return pol
}

// floor1 formats a percentage rounded down to one decimal, so that 94.96 reads
// "94.9" next to "< 95%", never "95.0".
func floor1(p float64) string { return fmt.Sprintf("%.1f", math.Floor(p*10)/10) }

// ceil1 formats a percentage rounded up to one decimal, so that 10.01 reads
// "10.1" next to "> 10%".
func ceil1(p float64) string { return fmt.Sprintf("%.1f", math.Ceil(p*10)/10) }

func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	if strings.HasSuffix(noun, "s") {
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
