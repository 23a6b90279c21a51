package httpapi

import "github.com/prometheus/client_golang/prometheus"

// security counts what the server refuses to protect itself and its users.
type security struct {
	// loginRefused counts refused logins by reason: "invalid" (wrong
	// username or password), "throttled" (the address failed too often) or
	// "busy" (no password hashing slot came free in time).
	loginRefused *prometheus.CounterVec
	// sseRefused counts event streams refused for the limit per token or session.
	sseRefused prometheus.Counter
}

func newSecurity(reg *prometheus.Registry) security {
	s := security{
		loginRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_login_refusals_total",
			Help: "Refused logins by reason: invalid (wrong username or password), throttled (the client address failed too often) or busy (the server was hashing as many passwords as it may at once).",
		}, []string{"reason"}),
		sseRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchboard_event_streams_refused_total",
			Help: "Event streams refused because their token or session already had the most allowed open.",
		}),
	}
	for _, r := range []string{loginInvalid, loginThrottled, loginBusy} {
		s.loginRefused.WithLabelValues(r)
	}
	reg.MustRegister(s.loginRefused, s.sseRefused)
	return s
}

// Reasons of switchboard_login_refusals_total.
const (
	loginInvalid   = "invalid"
	loginThrottled = "throttled"
	loginBusy      = "busy"
)
