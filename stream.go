package switchboard

import (
	"context"
	"time"
)

// StreamRole is what a participant does in a stream.
type StreamRole string

// Stream roles.
const (
	RolePublisher  StreamRole = "publisher"
	RoleSubscriber StreamRole = "subscriber"
)

// StreamStatus is the lifecycle state of a stream.
type StreamStatus string

// Stream statuses.
const (
	StreamActive StreamStatus = "active"
	StreamEnded  StreamStatus = "ended"
)

// End reasons of a stream.
const (
	EndClient    = "ended"     // the client ended it
	EndAbandoned = "abandoned" // no heartbeat for too long
)

// Stream is one participant's live stream, assigned to one provider at a time.
type Stream struct {
	ID             string       `json:"id"`
	Room           string       `json:"room"`
	UserID         string       `json:"userId"`
	Role           StreamRole   `json:"role"`
	Region         string       `json:"region,omitempty"`
	Quality        Quality      `json:"quality"`
	Provider       string       `json:"provider"`
	Status         StreamStatus `json:"status"`
	Owner          string       `json:"owner"` // who started it: "token:<id>", "user:<name>" or "bootstrap"
	IdempotencyKey string       `json:"idempotencyKey,omitempty"`
	StartedAt      time.Time    `json:"startedAt"`
	LastHeartbeat  time.Time    `json:"lastHeartbeat"`
	EndedAt        *time.Time   `json:"endedAt"`
	EndReason      string       `json:"endReason,omitempty"`
	Migrations     int          `json:"migrations"`
}

// Trail entry kinds.
const (
	TrailAssign  = "assign"
	TrailFailure = "failure"
	TrailMigrate = "migrate"
	TrailEnd     = "end"
)

// TrailEntry is one decision or event in a stream's life: an assignment, a
// reported failure, a migration or the end, with the reason and the provider
// statuses the decision used.
type TrailEntry struct {
	ID       int64             `json:"id"`
	StreamID string            `json:"streamId"`
	At       time.Time         `json:"at"`
	Kind     string            `json:"kind"`
	Provider string            `json:"provider"`       // the provider assigned, failed or left
	From     string            `json:"from,omitempty"` // for migrations: the provider left
	Reason   string            `json:"reason"`
	Statuses map[string]Status `json:"statuses,omitempty"`
	LeastBad bool              `json:"leastBad,omitempty"` // every candidate was CRITICAL
	Stage    Stage             `json:"stage,omitempty"`    // for failures
	Code     string            `json:"code,omitempty"`     // for failures
	// ReportedAt is set when the control plane learnt of the entry later than
	// At: a client that failed over to its standby assignment moves first and
	// reports the move afterwards.
	ReportedAt *time.Time `json:"reportedAt,omitempty"`
}

// StreamSegment is the time a stream spent on one provider: seq 0 is its
// start, each later one came by migration. The open segment (EndedAt nil) is
// the one an active stream is on now.
type StreamSegment struct {
	Seq       int
	Provider  string
	Quality   Quality
	StartedAt time.Time
	EndedAt   *time.Time
	EndReason string // "migrated", or the stream's end reason
}

// StreamHistory is a stream as ImportStreams stores it: the stream, its
// segments in order and its trail in the order it was recorded.
type StreamHistory struct {
	Stream   Stream
	Segments []StreamSegment
	Trail    []TrailEntry
}

// StreamFilter selects streams, newest first.
type StreamFilter struct {
	Status   StreamStatus // "" = any
	Provider string
	Owner    string
	// IdempotencyKey selects the stream started with that key (with Owner).
	IdempotencyKey string
	// Before is a pagination cursor: streams started strictly before it (by
	// start time, then id).
	Before *StreamCursor
	Limit  int
}

// StreamCursor is a position in a stream listing.
type StreamCursor struct {
	StartedAt time.Time
	ID        string
}

// ProviderUsage is a provider's streams and usage over a period.
type ProviderUsage struct {
	Provider      string
	ActiveStreams int64
	TotalStreams  int64 // assignments to this provider ever (starts and migrations in)
	// Seconds of stream time per quality tier within the period.
	Seconds      map[Quality]float64
	FailoversIn  int64 // migrations to this provider within the period
	FailoversOut int64 // migrations away from this provider within the period
}

// MonthlyUsage is the frozen usage and cost of one provider in one past month.
type MonthlyUsage struct {
	Provider string              `json:"provider"`
	Month    string              `json:"month"` // YYYY-MM
	Minutes  map[Quality]float64 `json:"minutes"`
	Cost     float64             `json:"cost"`
	Currency string              `json:"currency"`
}

// StreamStore persists streams, their trail and usage. Each method is one
// transaction.
type StreamStore interface {
	// StartStream stores a new active stream on s.Provider with its first trail
	// entry. When s.IdempotencyKey is set and a stream of the same owner has that
	// key, it returns that stream and created false, changing nothing. When
	// maxActive > 0 and the provider already has maxActive active streams, it
	// fails with EUnavailable and changes nothing. The maps of the entries
	// handed to the store (first.Statuses here, and those of the other
	// methods) are read only, and must not change once handed over: many
	// starts share one, and the store may reuse its encoding.
	StartStream(ctx context.Context, s Stream, first TrailEntry, maxActive int) (st Stream, created bool, err error)
	GetStream(ctx context.Context, id string) (Stream, error)
	StreamTrail(ctx context.Context, id string) ([]TrailEntry, error)
	ListStreams(ctx context.Context, f StreamFilter) ([]Stream, error)
	// StreamWasOn reports whether the stream has been on provider (assigned to
	// it at its start or by a migration); false for an unknown stream.
	StreamWasOn(ctx context.Context, id, provider string) (bool, error)
	// Heartbeat records that the stream is alive at at and returns it.
	// ENotFound; EConflict when ended.
	Heartbeat(ctx context.Context, id string, at time.Time) (Stream, error)
	// AppendTrail adds an entry (such as a reported failure) to an active stream.
	AppendTrail(ctx context.Context, e TrailEntry) error
	// MigrateStream moves an active stream to another provider at e.At: its
	// segment on the old provider ends, one on e.Provider starts, the trail gets
	// e. maxActive as in StartStream. EConflict when ended.
	MigrateStream(ctx context.Context, id string, e TrailEntry, maxActive int) (Stream, error)
	// EndStream ends an active stream at at with reason, and reports whether
	// this call ended it. Ending an ended stream returns it unchanged and
	// ended false (idempotent), so that of concurrent calls, and of a call
	// and AbandonStale, exactly one ends the stream.
	EndStream(ctx context.Context, id string, at time.Time, reason string) (st Stream, ended bool, err error)
	// AbandonStale ends every active stream whose last heartbeat is before
	// cutoff, at its last heartbeat, with reason EndAbandoned, and returns
	// them. It may end them in several transactions: on an error it returns
	// those it ended with the error.
	AbandonStale(ctx context.Context, cutoff time.Time) ([]Stream, error)
	// ActiveCounts returns the number of active streams per provider (providers
	// with none may be missing). Its cost does not grow with the number of
	// streams, live or ended.
	ActiveCounts(ctx context.Context) (map[string]int64, error)
	// Usage reports every provider that has had streams: active streams now,
	// total streams ever, and over [from, to) the stream seconds per tier (the
	// part of each segment inside the period; an open segment counts up to its
	// stream's last heartbeat) and the failovers in and out.
	Usage(ctx context.Context, from, to time.Time) ([]ProviderUsage, error)
	// SaveMonthlyUsage stores the frozen usage of a past month (upsert).
	SaveMonthlyUsage(ctx context.Context, us []MonthlyUsage) error
	// MonthlyUsageOf returns the frozen months, newest first ("" = all providers).
	MonthlyUsageOf(ctx context.Context, provider string) ([]MonthlyUsage, error)
	// MarkJobRan records that job ran for period (e.g. "daily-rollup", "2026-11-28")
	// and reports whether this call recorded it (false: it had run already).
	MarkJobRan(ctx context.Context, job, period string, at time.Time) (bool, error)
	// JobRan reports whether job ran for period.
	JobRan(ctx context.Context, job, period string) (bool, error)
	// ImportStreams stores streams with their segments and trail as given, in
	// one transaction, for bulk history (seeding a database, imports): no
	// capacity check and no idempotency lookup. EInvalid for an inconsistent
	// history, EConflict when a stream id exists; either changes nothing.
	ImportStreams(ctx context.Context, hs []StreamHistory) error
}
