package switchboard

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"math"
	"strings"
	"time"
)

// MaintenanceWindow is a planned maintenance of one provider: from Start to
// End (or EndedAt, when it was ended early) the provider takes no new
// streams and its alerts are silenced. With Drain, its live streams are
// asked to move to other providers, at most DrainRate per second, from
// DrainStart (MaintenanceDrainLead before Start) until the window ends.
type MaintenanceWindow struct {
	ID        string     `json:"id"`
	Provider  string     `json:"provider"`
	Start     time.Time  `json:"start"`
	End       time.Time  `json:"end"`
	Reason    string     `json:"reason"`
	Drain     bool       `json:"drain"`
	DrainRate float64    `json:"drainRate"`
	CreatedAt time.Time  `json:"createdAt"`
	CreatedBy string     `json:"createdBy"`
	EndedAt   *time.Time `json:"endedAt"`
	// DrainProgress is how the drain went, while and after it runs; nil
	// before it starts or when the window asks for none.
	DrainProgress *MaintenanceDrain `json:"drainProgress"`
	// Announced is the last of maintenance.started and maintenance.ended
	// published for the window ("", "started" or "ended").
	Announced string `json:"-"`
}

// MaintenanceDrain is the progress of a window's drain.
type MaintenanceDrain struct {
	StartedAt time.Time `json:"startedAt"`
	// Asked counts the requests to move a stream sent to SDKs (a stream
	// still on the provider a while after its request is asked again).
	Asked int `json:"asked"`
	// Moved counts the streams asked to move that moved to another
	// provider; Ended those that ended instead.
	Moved int `json:"moved"`
	Ended int `json:"ended"`
	// Remaining is the number of live streams on the provider at UpdatedAt.
	Remaining int       `json:"remaining"`
	UpdatedAt time.Time `json:"updatedAt"`
	// DoneAt is when no live stream was left on the provider; nil while
	// some are.
	DoneAt *time.Time `json:"doneAt"`
	// Late is set when streams were left on the provider at the window's
	// start: the drain could not finish in time.
	Late bool `json:"late"`
}

// Maintenance states, as MaintenanceWindow.State returns them and
// GET /api/maintenance?state= filters by them.
const (
	MaintenanceUpcoming = "upcoming"
	MaintenanceActive   = "active"
	MaintenancePast     = "past"
)

// Bounds and defaults of maintenance windows.
const (
	DefaultDrainRate = 5.0
	MinDrainRate     = 0.1
	MaxDrainRate     = 100.0
	// MaxMaintenance is the longest a window may last.
	MaxMaintenance = 31 * 24 * time.Hour
	// MaxMaintenanceAhead is how far ahead a window may start.
	MaxMaintenanceAhead = 366 * 24 * time.Hour
	// MaintenanceDrainLead is how long before its start a window with drain
	// begins moving live streams off its provider (and stops giving it new
	// ones); a window that starts sooner begins at once.
	MaintenanceDrainLead = 10 * time.Minute
	maxReasonLen         = 256
)

// Maintenance event types. Their data is the window.
const (
	EventMaintenanceScheduled = "maintenance.scheduled"
	EventMaintenanceStarted   = "maintenance.started"
	EventMaintenanceEnded     = "maintenance.ended"
	// EventStreamMigrate asks the SDK that owns a stream to move it off a
	// provider: {"streamId", "from", "reason"}. It reaches the stream's owner
	// (and admins) only.
	EventStreamMigrate = "stream.migrate"
)

// Ends returns when the window ends: EndedAt when it was ended early, End
// otherwise.
func (w MaintenanceWindow) Ends() time.Time {
	if w.EndedAt != nil && w.EndedAt.Before(w.End) {
		return *w.EndedAt
	}
	return w.End
}

// State returns whether the window is upcoming, active or past at t.
func (w MaintenanceWindow) State(t time.Time) string {
	switch {
	case !t.Before(w.Ends()):
		return MaintenancePast
	case t.Before(w.Start):
		return MaintenanceUpcoming
	}
	return MaintenanceActive
}

// DrainStart is when the window's drain begins: MaintenanceDrainLead before
// its start, but not before it was created.
func (w MaintenanceWindow) DrainStart() time.Time {
	t := w.Start.Add(-MaintenanceDrainLead)
	if t.Before(w.CreatedAt) {
		t = w.CreatedAt
	}
	return t
}

// Blocks reports whether the provider may take no new stream at t because of
// the window: while it is active, and, with Drain, while it drains before its
// start.
func (w MaintenanceWindow) Blocks(t time.Time) bool {
	if !t.Before(w.Ends()) {
		return false
	}
	if w.Drain {
		return !t.Before(w.DrainStart())
	}
	return !t.Before(w.Start)
}

// Draining reports whether the window moves live streams off its provider at
// t.
func (w MaintenanceWindow) Draining(t time.Time) bool { return w.Drain && w.Blocks(t) }

// MaintenanceInput is the body of POST /api/maintenance. Start and End are
// RFC 3339 times; an empty Start is now.
type MaintenanceInput struct {
	Provider  string   `json:"provider"`
	Start     string   `json:"start,omitempty"`
	End       string   `json:"end"`
	Reason    string   `json:"reason"`
	Drain     bool     `json:"drain,omitempty"`
	DrainRate *float64 `json:"drainRate,omitempty"`
}

// Window checks the input at now and returns the window it describes, with a
// new id. The error names the first field in error. That the provider exists
// is for the store to check.
func (in MaintenanceInput) Window(now time.Time) (MaintenanceWindow, error) {
	if !ValidSlug(in.Provider) {
		return MaintenanceWindow{}, Invalid("provider", "is required: the name of a provider")
	}
	start := now
	if in.Start != "" {
		t, err := time.Parse(time.RFC3339Nano, in.Start)
		if err != nil {
			return MaintenanceWindow{}, Invalid("start", "must be an RFC 3339 time, such as 2026-01-02T03:04:05Z")
		}
		start = t.UTC()
	}
	if in.End == "" {
		return MaintenanceWindow{}, Invalid("end", "is required: an RFC 3339 time after start")
	}
	end, err := time.Parse(time.RFC3339Nano, in.End)
	if err != nil {
		return MaintenanceWindow{}, Invalid("end", "must be an RFC 3339 time, such as 2026-01-02T03:04:05Z")
	}
	end = end.UTC()
	switch {
	case start.After(now.Add(MaxMaintenanceAhead)):
		return MaintenanceWindow{}, Invalid("start", "must be within %d days from now", int(MaxMaintenanceAhead/(24*time.Hour)))
	case !end.After(start):
		return MaintenanceWindow{}, Invalid("end", "must be after start")
	case !end.After(now):
		return MaintenanceWindow{}, Invalid("end", "is in the past")
	case end.Sub(start) > MaxMaintenance:
		return MaintenanceWindow{}, Invalid("end", "a window lasts at most %d days", int(MaxMaintenance/(24*time.Hour)))
	}
	if start.Before(now) {
		start = now // a window that has begun starts now: nothing is recorded in the past
	}
	reason := strings.TrimSpace(in.Reason)
	if reason == "" || len(reason) > maxReasonLen || !ValidText(reason) {
		return MaintenanceWindow{}, Invalid("reason", "is required: at most %d characters of text", maxReasonLen)
	}
	rate := DefaultDrainRate
	if in.DrainRate != nil {
		rate = *in.DrainRate
		if math.IsNaN(rate) || rate < MinDrainRate || rate > MaxDrainRate {
			return MaintenanceWindow{}, Invalid("drainRate", "must be a number of streams per second from %g to %g", MinDrainRate, MaxDrainRate)
		}
	}
	return MaintenanceWindow{ID: NewMaintenanceID(), Provider: in.Provider, Start: start, End: end, Reason: reason,
		Drain: in.Drain, DrainRate: rate, CreatedAt: now}, nil
}

// MaintenanceIDPattern is the format of maintenance window ids.
const MaintenanceIDPattern = `^mw_[0-9a-f]{16}$`

// NewMaintenanceID returns a new random window id (see MaintenanceIDPattern).
func NewMaintenanceID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return "mw_" + hex.EncodeToString(b[:])
}

// ValidMaintenanceID reports whether id matches MaintenanceIDPattern.
func ValidMaintenanceID(id string) bool {
	h, ok := strings.CutPrefix(id, "mw_")
	if !ok || len(h) != 16 {
		return false
	}
	for i := range len(h) {
		if !strings.ContainsRune("0123456789abcdef", rune(h[i])) {
			return false
		}
	}
	return true
}

// MaintenanceFilter selects windows. With State, At is the time the state
// is judged at.
type MaintenanceFilter struct {
	State    string // "" = any, or one of the Maintenance* states
	At       time.Time
	Provider string
	Limit    int
}

// MaintenanceStore persists maintenance windows.
type MaintenanceStore interface {
	// CreateMaintenance stores a new window and its audit entry. EInvalid
	// (field provider) when the provider does not exist.
	CreateMaintenance(ctx context.Context, w MaintenanceWindow, audit AuditEntry) error
	// GetMaintenance returns one window; ENotFound.
	GetMaintenance(ctx context.Context, id string) (MaintenanceWindow, error)
	// ListMaintenance returns windows: upcoming and active ones soonest
	// first, the others (past, or all) newest first; at most Limit (100 when
	// 0, at most 1000).
	ListMaintenance(ctx context.Context, f MaintenanceFilter) ([]MaintenanceWindow, error)
	// EndMaintenance ends a window that has not ended by at, at at, with its
	// audit entry, and returns it. ENotFound; EConflict when it is over.
	EndMaintenance(ctx context.Context, id string, at time.Time, audit AuditEntry) (MaintenanceWindow, error)
	// AnnounceMaintenance records that the window's event for state
	// ("started" or "ended") was published, and reports false when it had
	// been already (or, for "started", the window's end was), so that each
	// is published once.
	AnnounceMaintenance(ctx context.Context, id, state string) (bool, error)
	// SetMaintenanceDrain stores the progress of the window's drain.
	SetMaintenanceDrain(ctx context.Context, id string, d MaintenanceDrain) error
}
