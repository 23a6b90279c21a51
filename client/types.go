package client

import "github.com/switchboardhq/switchboard"

// Kind is the kind of a provider, which selects the MediaEngine that connects
// to it (see WithEngine).
type Kind = switchboard.Kind

// The provider kinds.
const (
	KindAgora     = switchboard.KindAgora
	KindZegocloud = switchboard.KindZegocloud
	KindLiveKit   = switchboard.KindLiveKit
	KindHTTP      = switchboard.KindHTTP
)

// Status is the health badge of a provider, as the control plane reports it.
type Status = switchboard.Status

// The statuses, from best to worst, then the two that are not about health.
// Streams leave a provider that turns StatusCritical or StatusDisabled; the
// SDK chooses only usable providers (Status.Usable: not UNKNOWN either).
const (
	StatusExcellent = switchboard.StatusExcellent
	StatusHealthy   = switchboard.StatusHealthy
	StatusWarning   = switchboard.StatusWarning
	StatusCritical  = switchboard.StatusCritical
	StatusDisabled  = switchboard.StatusDisabled
	StatusUnknown   = switchboard.StatusUnknown
)

// statusDeleted is what the health poll makes of a provider the control plane
// no longer knows.
const statusDeleted Status = "DELETED"

// usable reports whether the SDK may choose a provider with this status for
// a stream (a start's fallback, a standby, a failover target, the provider
// the priority policy moves streams to): the control plane's one rule,
// switchboard.Status.Usable. An UNKNOWN provider has never passed a check,
// so it is never chosen; when no provider is usable the SDK lets the server
// choose, which falls back to unverified providers on a fresh install.
func usable(s Status) bool { return s.Usable() }

// mustLeave reports whether streams live on a provider with this status must
// leave it: CRITICAL or DISABLED. It is deliberately narrower than !usable:
// UNKNOWN means the control plane has no verdict yet (the provider was just
// created, or every provider is new and the server assigned an unverified
// one), not that it failed, and a stream whose media flows on the provider
// is better evidence than none. Tearing such a stream down would fail a
// working stream over to providers that are no better known; it stays, and
// leaves when a check says CRITICAL or an operator disables the provider.
func mustLeave(s Status) bool { return s == StatusCritical || s == StatusDisabled }

// Role is what a participant does in a stream (see WithRole).
type Role = switchboard.StreamRole

// The roles.
const (
	RolePublisher  = switchboard.RolePublisher
	RoleSubscriber = switchboard.RoleSubscriber
)

// Quality is the quality tier a stream is priced at (see WithQuality).
type Quality = switchboard.Quality

// The quality tiers.
const (
	QualityAudio  = switchboard.QualityAudio
	QualitySD     = switchboard.QualitySD
	QualityHD     = switchboard.QualityHD
	QualityFullHD = switchboard.QualityFullHD
)
