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
// Streams leave a provider that turns StatusCritical or StatusDisabled.
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

// unusable reports whether streams must leave a provider with this status.
func unusable(s Status) bool { return s == StatusCritical || s == StatusDisabled }

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
