package switchboard

import (
	"context"
	"time"
)

// Status is the badge of a provider's health. The rules that derive it live in
// internal/health, and only there.
type Status string

// Statuses, from best to worst, then the two that are not about health.
const (
	StatusExcellent Status = "EXCELLENT"
	StatusHealthy   Status = "HEALTHY"
	StatusWarning   Status = "WARNING"
	StatusCritical  Status = "CRITICAL"
	StatusDisabled  Status = "DISABLED"
	StatusUnknown   Status = "UNKNOWN"
)

// Usable reports whether a provider with status s may take new streams:
// EXCELLENT, HEALTHY and WARNING are usable; CRITICAL, DISABLED and UNKNOWN
// (never verified by a successful check) are not. It is the one rule that
// routing, the API, the dashboard and the SDK apply.
func (s Status) Usable() bool {
	switch s {
	case StatusExcellent, StatusHealthy, StatusWarning:
		return true
	default:
		return false
	}
}

// State is the coarse state of the original API: active, degraded, down or unknown.
type State string

// States.
const (
	StateActive   State = "active"
	StateDegraded State = "degraded"
	StateDown     State = "down"
	StateUnknown  State = "unknown"
)

// Stage is the step of a probe that failed.
type Stage string

// Probe stages.
const (
	StageConnect   Stage = "connect"
	StageAuth      Stage = "auth"
	StageOperation Stage = "operation"
	StageTimeout   Stage = "timeout"
)

// ProbeResult is the outcome of one health probe.
type ProbeResult struct {
	OK      bool          `json:"ok"`
	Latency time.Duration `json:"-"`
	Stage   Stage         `json:"stage,omitempty"`   // the failed stage; empty on success
	Message string        `json:"message,omitempty"` // never holds a secret
	At      time.Time     `json:"at"`
}

// ProbeError is the last failure of a provider.
type ProbeError struct {
	Stage   Stage     `json:"stage"`
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// Health is the persisted health record of one provider.
type Health struct {
	Status               Status      `json:"status"`
	TotalChecks          int64       `json:"totalChecks"`
	SuccessfulChecks     int64       `json:"successfulChecks"`
	ConsecutiveFailures  int         `json:"consecutiveFailures"`
	ConsecutiveSuccesses int         `json:"consecutiveSuccesses"`
	Down                 bool        `json:"-"` // hysteresis latch: CRITICAL until SuccessThreshold passes
	LastCheck            *time.Time  `json:"lastCheck"`
	LastSuccess          *time.Time  `json:"lastSuccess"`
	LatencyMs            int64       `json:"latency"`
	LatencySumMs         int64       `json:"-"` // over successful and failed checks, for AverageLatency
	TotalRequests        int64       `json:"totalRequests"`
	FailedRequests       int64       `json:"failedRequests"`
	LastError            *ProbeError `json:"lastError"`
	StatusReason         string      `json:"-"` // why the status is what it is, for transitions
	StatusSince          *time.Time  `json:"statusSince"`
	// Window counts what happened inside the provider's healthCheck.window,
	// as of the last check or report the store folded in.
	Window HealthWindow `json:"-"`
}

// HealthWindow counts the checks and client-reported failures of a provider
// inside its healthCheck.window, which ends at At. A zero Span means the
// window is not known (a record from before windows existed): the rules then
// use the lifetime counters.
type HealthWindow struct {
	Span             time.Duration
	At               time.Time
	Checks           int64
	SuccessfulChecks int64
	ClientFailures   int64
}

// TotalRequests are the checks plus the client-reported failures.
func (w HealthWindow) TotalRequests() int64 { return w.Checks + w.ClientFailures }

// FailedRequests are the failed checks plus the client-reported failures.
func (w HealthWindow) FailedRequests() int64 {
	return w.Checks - w.SuccessfulChecks + w.ClientFailures
}

// Uptime is the percentage of successful checks in the window, 0–100.
func (w HealthWindow) Uptime() float64 { return percent(w.SuccessfulChecks, w.Checks) }

// ErrorRate is the percentage of failed requests in the window, 0–100.
func (w HealthWindow) ErrorRate() float64 { return percent(w.FailedRequests(), w.TotalRequests()) }

// RecentUptime is the uptime the status rules judge: that of the window, or
// the lifetime uptime when the window is unknown or holds no check.
func (h Health) RecentUptime() float64 {
	if h.Window.Span > 0 && h.Window.Checks > 0 {
		return h.Window.Uptime()
	}
	return h.Uptime()
}

// RecentErrorRate is the error rate the status rules judge: that of the
// window, or the lifetime error rate when the window is unknown or empty.
func (h Health) RecentErrorRate() float64 {
	if h.Window.Span > 0 && h.Window.TotalRequests() > 0 {
		return h.Window.ErrorRate()
	}
	return h.ErrorRate()
}

// ProviderActivity is what happened on one provider over a period (such as
// today, in UTC): streams started on it, failovers to and from it, failures
// clients reported and seconds of stream time.
type ProviderActivity struct {
	Provider       string
	StreamsStarted int64
	FailoversIn    int64
	FailoversOut   int64
	ClientFailures int64
	StreamSeconds  float64
}

// Uptime is the lifetime percentage of successful checks, 0–100.
func (h Health) Uptime() float64 { return percent(h.SuccessfulChecks, h.TotalChecks) }

// ErrorRate is the percentage of failed requests (probes plus client-reported
// failures) among all requests, 0–100.
func (h Health) ErrorRate() float64 { return percent(h.FailedRequests, h.TotalRequests) }

// AverageLatencyMs is the mean probe latency over the lifetime of the provider.
func (h Health) AverageLatencyMs() float64 { return mean(h.LatencySumMs, h.TotalChecks) }

// Transition is a recorded change of a provider's status.
type Transition struct {
	ID       int64     `json:"id"`
	Provider string    `json:"provider"`
	From     Status    `json:"from"`
	To       Status    `json:"to"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

// Rollup is an aggregate of checks over one bucket (an hour or a day).
type Rollup struct {
	Bucket       time.Time `json:"at"`
	Checks       int64     `json:"checks"`
	Successes    int64     `json:"successes"`
	LatencySumMs int64     `json:"-"`
	LatencyMaxMs int64     `json:"maxLatency"`
}

// Uptime of the bucket, 0–100.
func (r Rollup) Uptime() float64 { return percent(r.Successes, r.Checks) }

// AverageLatencyMs of the bucket.
func (r Rollup) AverageLatencyMs() float64 { return mean(r.LatencySumMs, r.Checks) }

// percent is part as a percentage of whole, 0 when whole is 0.
func percent(part, whole int64) float64 {
	if whole == 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}

// mean is sum over n, 0 when n is 0.
func mean(sum, n int64) float64 {
	if n == 0 {
		return 0
	}
	return float64(sum) / float64(n)
}

// Prober checks one provider. Each provider kind's adapter implements it.
// Probe must return by ctx's deadline and never put a secret in its result.
type Prober interface {
	Probe(ctx context.Context, p Provider) ProbeResult
}

// TokenRequest asks an adapter for a join token.
type TokenRequest struct {
	Room      string
	UserID    string
	Publisher bool
	TTL       time.Duration
}

// JoinToken is a token a client SDK uses to join a room on a provider.
type JoinToken struct {
	Token     string
	ExpiresAt time.Time
}

// TokenMinter mints join tokens for one provider kind.
type TokenMinter interface {
	MintToken(p Provider, req TokenRequest, now time.Time) (JoinToken, error)
}

// Adapter is everything Switchboard needs of a provider kind.
type Adapter interface {
	Prober
	TokenMinter
}
