package switchboard

import (
	"context"
	"encoding/json"
	"time"
)

// AuditEntry records who changed what and when. Before and After are JSON
// snapshots with credentials redacted (they never hold a secret).
type AuditEntry struct {
	ID     int64           `json:"id"`
	At     time.Time       `json:"at"`
	Actor  Actor           `json:"actor"`
	Action string          `json:"action"` // e.g. provider.create, provider.update, provider.reorder, provider.delete, token.create, settings.update
	Target string          `json:"target"`
	Before json.RawMessage `json:"before,omitempty"`
	After  json.RawMessage `json:"after,omitempty"`
}

// AuditFilter selects audit entries, newest first.
type AuditFilter struct {
	Target   string
	BeforeID int64 // entries with a smaller id (pagination); 0 = from the newest
	Limit    int
}

// APIToken is a bearer token. Only its hash is stored; the token itself is shown
// once, when created.
type APIToken struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	Role       Role       `json:"role"`
	Hash       []byte     `json:"-"`
	CreatedAt  time.Time  `json:"createdAt"`
	LastUsedAt *time.Time `json:"lastUsedAt"`
	RevokedAt  *time.Time `json:"revokedAt"`
}

// User is a dashboard user: an operator with a local password or one who
// logs in by single sign-on (SSOSubject set, no password).
type User struct {
	Username string `json:"username"`
	Role     Role   `json:"role"`
	// Disabled users cannot log in; disabling a user ends its sessions.
	Disabled     bool   `json:"disabled"`
	PasswordHash string `json:"-"`
	// MustChangePassword is set for a temporary password: the user's
	// sessions may do nothing but change it.
	MustChangePassword bool `json:"mustChangePassword"`
	// SSOSubject is "<issuer> <subject>" of the user's OpenID Connect
	// identity; "" for a local user.
	SSOSubject  string     `json:"-"`
	CreatedAt   time.Time  `json:"createdAt"`
	LastLoginAt *time.Time `json:"lastLoginAt"`
}

// SSO reports whether the user logs in by single sign-on.
func (u User) SSO() bool { return u.SSOSubject != "" }

// Session is a dashboard login. Only the hash of the session cookie is stored.
// SessionByHash fills Role and MustChangePassword from the user as it is now.
type Session struct {
	Hash               []byte
	Username           string
	Role               Role
	MustChangePassword bool
	CSRFToken          string
	CreatedAt          time.Time
	ExpiresAt          time.Time
}

// ProviderRecord is a provider with its current health.
type ProviderRecord struct {
	Provider
	Health Health
}

// Store is the persistence of Switchboard. Every backend passes the one
// conformance suite in internal/storetest. Methods that change data write their
// audit entry in the same transaction: a failed call changes nothing.
type Store interface {
	Ping(ctx context.Context) error
	Close() error

	// Providers. List orders by priority then name. Errors: ENotFound, EConflict.
	ListProviders(ctx context.Context) ([]ProviderRecord, error)
	GetProvider(ctx context.Context, name string) (ProviderRecord, error)
	CreateProvider(ctx context.Context, p Provider, audit AuditEntry) error
	// UpdateProvider reads the provider, calls fn on it and stores what fn returns,
	// in one transaction. audit.Before/After are filled by the store.
	UpdateProvider(ctx context.Context, name string, fn func(Provider) (Provider, error), audit AuditEntry) (before, after Provider, err error)
	// ReorderProviders gives the providers of order priorities 1..n atomically. order
	// must name every provider exactly once (EInvalid otherwise, field "order").
	ReorderProviders(ctx context.Context, order []string, audit AuditEntry) error
	DeleteProvider(ctx context.Context, name string, audit AuditEntry) error
	// RegistryVersion changes whenever this Store commits a change to a
	// provider, or to a provider's health status or last success: what
	// ListProviders returned is still current, as far as this Store's own
	// writes go, while it has not changed. Changes that other processes (other
	// replicas) make do not change it; their events tell of them.
	RegistryVersion() uint64
	ListAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
	AppendAudit(ctx context.Context, e AuditEntry) error

	// Tokens and users.
	CreateAPIToken(ctx context.Context, t APIToken, audit AuditEntry) error
	ListAPITokens(ctx context.Context) ([]APIToken, error)
	RevokeAPIToken(ctx context.Context, id string, at time.Time, audit AuditEntry) error
	// APITokenByHash returns an unrevoked token; ENotFound otherwise.
	APITokenByHash(ctx context.Context, hash []byte) (APIToken, error)
	TouchAPIToken(ctx context.Context, id string, at time.Time) error
	// CreateUser stores a user without an audit entry (the first user, made
	// at start-up); AddUser is the audited creation.
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, username string) (User, error)
	CountUsers(ctx context.Context) (int, error)
	UserStore
	// CreateSession stores a session, records the user's last login and
	// writes audit (default action session.create).
	CreateSession(ctx context.Context, s Session, audit AuditEntry) error
	// SessionByHash returns an unexpired session of an enabled user;
	// ENotFound otherwise.
	SessionByHash(ctx context.Context, hash []byte, now time.Time) (Session, error)
	// DeleteSession deletes a session and, when there was one, writes audit
	// (default action session.delete).
	DeleteSession(ctx context.Context, hash []byte, audit AuditEntry) error

	HealthStore
	StreamStore
	SettingsStore
	AlertStore
	MaintenanceStore
	QualityStore
	ReportStore
	RoutingStore
	RegionalHealthStore
}

// UserStore manages the dashboard's users. Every change writes its audit
// entry (Before and After the user, which holds no password hash in JSON).
// No change may leave no enabled superadmin: deleting, disabling or demoting
// the last one is EConflict.
type UserStore interface {
	// AddUser stores a new user. Errors: EInvalid, EConflict when the
	// username (or the SSO subject) is taken.
	AddUser(ctx context.Context, u User, audit AuditEntry) error
	// ListUsers returns every user, ordered by username.
	ListUsers(ctx context.Context) ([]User, error)
	// UserBySSO returns the user of an SSO subject. Errors: ENotFound.
	UserBySSO(ctx context.Context, subject string) (User, error)
	// UpdateUser reads the user, calls fn on it and stores what fn returns,
	// in one transaction. When the user is disabled or its password hash
	// changes, its sessions are deleted in the same transaction
	// (ended reports it). Errors: ENotFound, EConflict, fn's error.
	UpdateUser(ctx context.Context, username string, fn func(User) (User, error), audit AuditEntry) (before, after User, ended bool, err error)
	// DeleteUser deletes a user and its sessions. Errors: ENotFound, EConflict.
	DeleteUser(ctx context.Context, username string, audit AuditEntry) (User, error)
}

// HealthStore persists health results and their history.
type HealthStore interface {
	// RecordCheck folds one probe result into the provider's health in one
	// transaction: it stores the raw result, adds it to the hour's rollup, stores
	// what fold returns and, when the status changed, a Transition with
	// after.StatusReason.
	RecordCheck(ctx context.Context, name string, r ProbeResult, fold func(Health) Health) (before, after Health, err error)
	// GetHealth returns the health record of one provider without reading its
	// settings or credentials (the public health endpoint needs no more).
	// ENotFound for an unknown provider.
	GetHealth(ctx context.Context, name string) (Health, error)
	// UpdateHealth applies fold (for example a client-reported failure or a change
	// of enabled) to the health record in one transaction, recording a
	// Transition when the status changed. The requests fold adds beyond checks
	// (its growth of TotalRequests less its growth of TotalChecks) are
	// client-reported failures: the store also counts them by time, for the
	// window and for Activity.
	UpdateHealth(ctx context.Context, name string, at time.Time, fold func(Health) Health) (before, after Health, err error)
	// Transitions lists status transitions of one provider (all when name is ""),
	// newest first.
	Transitions(ctx context.Context, name string, since time.Time, limit int) ([]Transition, error)
	// HourlyRollups and DailyRollups return buckets in [from, to), oldest
	// first. DailyRollups includes days not yet compacted, summed from their
	// hourly rollups. Methods that take a provider name return ENotFound for
	// an unknown provider.
	HourlyRollups(ctx context.Context, name string, from, to time.Time) ([]Rollup, error)
	DailyRollups(ctx context.Context, name string, from, to time.Time) ([]Rollup, error)
	// RecentLatencies returns the latencies in ms of the raw results since t.
	RecentLatencies(ctx context.Context, name string, since time.Time) ([]int64, error)
	// CompactHistory folds the hourly rollups of the complete UTC days before
	// day into daily rollups (running it again gives the same result), deletes
	// hourly rollups more than 35 days older than day, and deletes the raw
	// results from before keepRawBefore.
	CompactHistory(ctx context.Context, day time.Time, keepRawBefore time.Time) error
	// Activity returns, per provider that had any, the streams started, the
	// failovers in and out, the client-reported failures and the stream
	// seconds within [from, to).
	Activity(ctx context.Context, from, to time.Time) (map[string]ProviderActivity, error)
}

// Event is something that happened, published on the in-process Bus and, through
// internal/events, to subscribers. Data never holds a secret.
type Event struct {
	ID   uint64    `json:"id"`
	Type string    `json:"type"`
	At   time.Time `json:"at"`
	// Audience is the least role that may receive the event.
	Audience Role `json:"-"`
	// Owner, when set, is the owner key (Actor.Key) of the one caller below
	// admin that may receive the event, such as the owner of a stream asked
	// to move.
	Owner string `json:"-"`
	Data  any    `json:"data"`
}

// Event types.
const (
	EventProviderStatus   = "provider.status"
	EventProviderCreated  = "provider.created"
	EventProviderUpdated  = "provider.updated"
	EventProviderDeleted  = "provider.deleted"
	EventProvidersReorder = "providers.reordered"
	EventStreamStarted    = "stream.started"
	EventStreamEnded      = "stream.ended"
	EventStreamFailover   = "stream.failover"
	EventBudgetAlert      = "budget.alert"
	EventSettingsUpdated  = "settings.updated"
	EventRoutingUpdated   = "routing.updated"
)

// Bus carries events to the parts of the server that react to them.
type Bus interface {
	Publish(e Event)
}

// NopBus drops every event.
type NopBus struct{}

// Publish does nothing.
func (NopBus) Publish(Event) {}
