package client

import (
	"fmt"
	"time"
)

// State is a step in a stream's life, as the app sees it on Stream.States:
// one of Connecting, Live, Reconnecting, FailingOver, Migrated and Failed.
type State interface {
	fmt.Stringer
	isState()
}

// Connecting: the stream is connecting to Provider (attempt Attempt of the start).
type Connecting struct {
	Provider string
	Attempt  int
}

// Live: media flows on Provider.
type Live struct {
	Provider string
}

// Reconnecting: an attempt on Provider failed with Err and the SDK tries again
// after a backoff, on the same provider or, when it cannot, on the control plane.
type Reconnecting struct {
	Provider string
	Attempt  int
	Err      error
}

// FailingOver: the stream leaves From because of Reason.
type FailingOver struct {
	From   string
	Reason string
}

// Migrated: the stream moved from From to To and is live there. Gap is the time
// from the event that made it move (a media error, a status change, a
// rebalance) to media flowing on To: the failover gap.
type Migrated struct {
	From, To string
	Reason   string
	Gap      time.Duration
}

// Failed: the stream gave up; Err says why. No state follows.
type Failed struct {
	Err error
}

func (Connecting) isState()   {}
func (Live) isState()         {}
func (Reconnecting) isState() {}
func (FailingOver) isState()  {}
func (Migrated) isState()     {}
func (Failed) isState()       {}

func (s Connecting) String() string {
	return fmt.Sprintf("connecting to %s (attempt %d)", s.Provider, s.Attempt)
}
func (s Live) String() string { return "live on " + s.Provider }
func (s Reconnecting) String() string {
	return fmt.Sprintf("reconnecting after attempt %d on %s failed: %v", s.Attempt, s.Provider, s.Err)
}
func (s FailingOver) String() string {
	return fmt.Sprintf("failing over from %s: %s", s.From, s.Reason)
}
func (s Migrated) String() string {
	return fmt.Sprintf("migrated from %s to %s in %s: %s", s.From, s.To, s.Gap.Round(time.Millisecond), s.Reason)
}
func (s Failed) String() string { return fmt.Sprintf("failed: %v", s.Err) }
