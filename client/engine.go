package client

import (
	"context"
	"time"
)

// Provider is what the SDK knows of a provider: no secret ever reaches it.
type Provider struct {
	Name     string `json:"name"`
	Kind     Kind   `json:"kind"`
	Priority int    `json:"priority"`
	Status   Status `json:"status"`
	AppID    string `json:"appId,omitempty"` // agora, zegocloud
	URL      string `json:"url,omitempty"`   // livekit
}

// Assignment is a stream's place on one provider: what a MediaEngine connects
// with. The token was minted by the control plane for this room and user.
type Assignment struct {
	StreamID       string
	Room           string
	UserID         string
	Role           Role
	Provider       Provider
	Token          string
	TokenExpiresAt time.Time
}

// MediaErrorKind says what went wrong with media on a provider.
type MediaErrorKind string

// Media error kinds. Each makes the SDK fail over at once, without waiting
// for health checks.
const (
	ConnectionLost MediaErrorKind = "connection_lost" // the provider dropped the connection
	TokenRejected  MediaErrorKind = "token_rejected"  // the provider refused the join token
	MediaStalled   MediaErrorKind = "media_stalled"   // no media for longer than the watchdog allows
)

// MediaError is an asynchronous error a Connection reports.
type MediaError struct {
	Kind MediaErrorKind
	Err  error
}

func (e MediaError) Error() string {
	if e.Err == nil {
		return string(e.Kind)
	}
	return string(e.Kind) + ": " + e.Err.Error()
}

func (e MediaError) Unwrap() error { return e.Err }

// MediaEngine connects an app's media to one kind of provider; an app
// implements it once per kind it uses (the original app's Agora and ZEGOCLOUD
// engines map onto it: joinChannel/loginRoom is Connect, leaveChannel/
// logoutRoom is Disconnect, and their connection-state callbacks feed report).
type MediaEngine interface {
	// Connect joins a.Room on a.Provider with a.Token and returns once the
	// connection is up. Afterwards, errors are reported through report, which
	// must not block and may be called from any goroutine.
	Connect(ctx context.Context, a Assignment, report func(MediaError)) (Connection, error)
}

// Connection is one live connection of an engine to a provider.
type Connection interface {
	// Disconnect leaves the room and stops every retry the provider's own SDK
	// would otherwise keep making. It is idempotent.
	Disconnect(ctx context.Context) error
}

// MediaActivity is implemented by connections that can tell when media last
// flowed; the SDK's watchdog uses it to catch a provider that hangs without
// closing its sockets. LastMedia returns the zero time until media has
// flowed: the watchdog arms with the first packet. It must answer at once
// (an atomic read): one goroutine of the Client asks every connection.
type MediaActivity interface {
	LastMedia() time.Time
}
