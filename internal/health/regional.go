package health

import (
	"fmt"
	"time"

	"github.com/switchboardhq/switchboard"
)

// MinStale is the least time after its last check that a regional record
// goes stale, whatever the provider's interval.
const MinStale = time.Minute

// StaleAfter is how long after its last check a provider's regional record
// goes stale: three of the provider's check intervals (the interval at which
// the agents probe it), and at least MinStale.
func StaleAfter(pol switchboard.HealthCheckPolicy) time.Duration {
	return max(3*withDefaults(pol).Interval.D(), MinStale)
}

// ObserveRegional folds one probe result into a regional record, as Observe
// does, with the record's own window: regional records keep no history to
// count a sliding window from, so theirs is tumbling. It starts at the first
// check (h.Window.At is its start, not its end) and starts over at the first
// check a whole healthCheck.window later, or when the window's length
// changed. It does no I/O and reads no clock.
func ObserveRegional(h switchboard.Health, r switchboard.ProbeResult, pol switchboard.HealthCheckPolicy, enabled bool) switchboard.Health {
	span := pol.Window.D()
	if span <= 0 {
		span = switchboard.DefaultHealthWindow
	}
	if h.Window.Span != span || r.At.Sub(h.Window.At) >= span || r.At.Before(h.Window.At) {
		h.Window = switchboard.HealthWindow{Span: span, At: r.At}
	}
	return Observe(h, r, pol, enabled)
}

// RegionalStatus returns the status of a regional record at now, with why,
// and whether it is stale. A record whose last check is older than
// StaleAfter(pol) (its agent stopped reporting, or the server's probes of the
// provider stopped) is stale: UNKNOWN, never the status it had. Otherwise the
// status is Derive's, so that the rules of a region are those of the
// provider as a whole.
func RegionalStatus(h switchboard.Health, pol switchboard.HealthCheckPolicy, enabled bool, now time.Time) (status switchboard.Status, reason string, stale bool) {
	if enabled && h.LastCheck != nil {
		if age := now.Sub(*h.LastCheck); age > StaleAfter(pol) {
			return switchboard.StatusUnknown, fmt.Sprintf("stale: no report for %s (more than %s)", age.Truncate(time.Second), StaleAfter(pol)), true
		}
	}
	status, reason = Derive(h, pol, enabled)
	return status, reason, false
}
