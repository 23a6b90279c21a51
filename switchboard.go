// Package switchboard holds the domain of the Switchboard control plane: providers,
// their health, streams, roles, events, coded errors and the Store interface that
// every storage backend implements. It imports only the standard library; every
// technology lives in a package of its own under internal/, and only cmd/switchboard
// knows every concrete type.
package switchboard

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Version is the release of this build; cmd/switchboard may override it at link time.
var Version = "0.1.0-dev"

// Kind is the kind of a streaming provider, which selects its adapter.
type Kind string

// The provider kinds Switchboard knows.
const (
	KindAgora     Kind = "agora"
	KindZegocloud Kind = "zegocloud"
	KindLiveKit   Kind = "livekit"
	KindHTTP      Kind = "http"
)

// Kinds lists every valid provider kind.
var Kinds = []Kind{KindAgora, KindZegocloud, KindLiveKit, KindHTTP}

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return slices.Contains(Kinds, k) }

// Role is an access level. Roles are ordered: each includes the ones below it.
type Role int

// Roles from least to most privileged.
const (
	RoleAnonymous Role = iota
	RoleClient
	RoleAdmin
	RoleSuperadmin
)

// RoleAgent is the role of a probe agent's token (switchboard agent): it
// may read what probes need, the providers with their credentials, and
// report probe results, through the agent routes, and nothing else. It is
// outside the order of the other roles, below RoleAnonymous, so that no
// comparison with another role ever grants it a route; the agent routes ask
// for it exactly. Only tokens hold it, never users.
const RoleAgent Role = -1

var roleNames = []string{"anonymous", "client", "admin", "superadmin"}

func (r Role) String() string {
	if r == RoleAgent {
		return "agent"
	}
	if r < 0 || int(r) >= len(roleNames) {
		return "unknown"
	}
	return roleNames[r]
}

// ParseRole parses the name of a role that a token or user may hold
// (client, admin, superadmin).
func ParseRole(s string) (Role, bool) {
	for i, n := range roleNames {
		if n == s && i > 0 {
			return Role(i), true
		}
	}
	return 0, false
}

// ParseTokenRole parses the name of a role that an API token may hold:
// those of ParseRole and agent.
func ParseTokenRole(s string) (Role, bool) {
	if s == "agent" {
		return RoleAgent, true
	}
	return ParseRole(s)
}

// MarshalText implements encoding.TextMarshaler.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Role) UnmarshalText(b []byte) error {
	if string(b) == "anonymous" {
		*r = RoleAnonymous
		return nil
	}
	v, ok := ParseTokenRole(string(b))
	if !ok {
		return fmt.Errorf("unknown role %q", b)
	}
	*r = v
	return nil
}

// Clock tells the time. Behaviour that depends on time takes a Clock so that tests
// can move it.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock, in UTC.
type SystemClock struct{}

// Now returns the current time in UTC.
func (SystemClock) Now() time.Time { return time.Now().UTC() }

// Actor is who performed a change, for the audit log.
type Actor struct {
	Kind string `json:"kind"`         // "user", "token", "bootstrap", "system"
	ID   string `json:"id,omitempty"` // the token id, for tokens
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Instance is, for a client token, the digest of the SDK instance that
	// called (its X-Switchboard-Instance header), empty without one. Every
	// instance of an app shares the app's client token: the streams of an
	// instance are its own (Key), and their events go to it alone. It is
	// never written out.
	Instance string `json:"-"`
}

// Key identifies the actor as the owner of streams: "token:<id>", or
// "token:<id>/<instance digest>" for a client token's SDK instance,
// "user:<name>" or the kind.
func (a Actor) Key() string {
	switch a.Kind {
	case "token":
		if a.Instance != "" {
			return "token:" + a.ID + "/" + a.Instance
		}
		return "token:" + a.ID
	case "user":
		return "user:" + a.Name
	}
	return a.Kind
}

type ctxKey int

const actorKey ctxKey = iota

// ActorKey is the key under which a context carries the actor of its
// request (see WithActor), for a context type that holds the actor itself
// and answers Value(ActorKey) with it.
var ActorKey any = actorKey

// WithActor returns a context carrying the actor of the request.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey, a)
}

// ActorFrom returns the actor carried by ctx, or a system actor.
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey).(Actor); ok {
		return a
	}
	return Actor{Kind: "system", Name: "switchboard", Role: RoleSuperadmin}
}
