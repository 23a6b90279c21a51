package switchboard

import "time"

// Preemptive is what routing does with a provider the degradation detector
// flags as degrading before its status says anything (the setting
// preemptive).
type Preemptive string

// Preemptive modes.
const (
	// PreemptiveOff ignores the predictions.
	PreemptiveOff Preemptive = "off"
	// PreemptiveNewStreams gives a degrading provider no new stream while
	// another usable provider that is not degrading can take it.
	PreemptiveNewStreams Preemptive = "new-streams"
	// PreemptiveMigrate does the same and also asks the owners of the live
	// streams on a degrading provider to move them, at most
	// maxPreemptiveMigrationsPerMinute a minute.
	PreemptiveMigrate Preemptive = "migrate"
)

// Valid reports whether p is one of the modes.
func (p Preemptive) Valid() bool {
	switch p {
	case PreemptiveOff, PreemptiveNewStreams, PreemptiveMigrate:
		return true
	}
	return false
}

// Events of the degradation detector; their Data is a Degradation.
const (
	EventProviderDegrading = "provider.degrading"
	EventProviderRecovered = "provider.recovered"
)

// Degradation is what the degradation detector says of one provider: the
// data of provider.degrading and provider.recovered events and the
// degrading block of the provider view.
type Degradation struct {
	Provider  string `json:"provider"`
	Degrading bool   `json:"degrading"`
	// Since is when degrading was raised; nil when it is not.
	Since *time.Time `json:"since,omitempty"`
	// Evidence lists the signals that raised it.
	Evidence []DegradationEvidence `json:"evidence,omitempty"`
	// At is when the detector last changed its mind.
	At time.Time `json:"at"`
}

// DegradationEvidence is one signal over its threshold.
type DegradationEvidence struct {
	// Signal is errors, latency, loss, rtt or failures.
	Signal string `json:"signal"`
	// Baseline is the signal's normal: a failure rate (0–1), a latency or
	// rtt in milliseconds, or a loss fraction.
	Baseline float64 `json:"baseline"`
	// Current is its recent value, in the same unit.
	Current float64 `json:"current"`
	// Distance is how far Current is from Baseline: in spreads for latency,
	// loss and rtt, as a multiple of the baseline rate for errors, the run
	// length for failures.
	Distance float64 `json:"distance"`
	// Since is when the signal began to drift.
	Since time.Time `json:"since"`
	// Summary says all that in one line.
	Summary string `json:"summary"`
}
