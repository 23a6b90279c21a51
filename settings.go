package switchboard

import (
	"context"
	"time"
)

// Settings are what operators tune at run time: the SDK settings served in
// GET /api/streaming/config and the replicas' leader lease. A zero field is
// unset: every valid value is above zero, and Or fills unset fields from
// defaults.
type Settings struct {
	// MaxRetries is how many times an SDK tries to start a stream.
	MaxRetries int `json:"maxRetries,omitempty"`
	// MaxFailures is how many failures an SDK counts against a provider
	// before it stops using it.
	MaxFailures int `json:"maxFailures,omitempty"`
	// HealthCheckInterval is how often an SDK refreshes the configuration.
	HealthCheckInterval Duration `json:"healthCheckInterval,omitempty"`
	// RetryBackoff is the base of the SDK's jittered exponential backoff
	// between start attempts.
	RetryBackoff Duration `json:"retryBackoff,omitempty"`
	// RetryBudget is the share of extra attempts an SDK may spend.
	RetryBudget float64 `json:"retryBudget,omitempty"`
	// LeaderLease is how long the lease of the leading replica lasts; the
	// leader renews it every third of it.
	LeaderLease Duration `json:"leaderLease,omitempty"`
	// Preemptive is what routing does with providers the degradation
	// detector flags: off, new-streams or migrate.
	Preemptive Preemptive `json:"preemptive,omitempty"`
	// MaxPreemptiveMigrationsPerMinute bounds the live streams that
	// predictions move, a minute, in the mode migrate.
	MaxPreemptiveMigrationsPerMinute int `json:"maxPreemptiveMigrationsPerMinute,omitempty"`
}

// The ranges of the settings, bounds included.
const (
	MinMaxRetries          = 1
	MaxMaxRetries          = 10
	MinMaxFailures         = 1
	MaxMaxFailures         = 10
	MinHealthCheckInterval = 5 * time.Second
	MaxHealthCheckInterval = 10 * time.Minute
	MinRetryBackoff        = 10 * time.Millisecond
	MaxRetryBackoff        = 10 * time.Second
	MinRetryBudget         = 0.01
	MaxRetryBudget         = 1.0
	MinLeaderLease         = 3 * time.Second
	MaxLeaderLease         = 5 * time.Minute
	MinPreemptiveRate      = 1
	MaxPreemptiveRate      = 600
)

// DefaultLeaderLease is the leader lease when neither the setting nor the
// server's flag sets it.
const DefaultLeaderLease = 10 * time.Second

// DefaultSettings returns the settings of a server nobody tuned: maxRetries
// 3, maxFailures 3, healthCheckInterval 30s, retryBackoff 100ms, retryBudget
// 0.2 (the original app's constants), a leader lease of 10s, preemptive
// new-streams and 30 preemptive migrations a minute at most.
func DefaultSettings() Settings {
	return Settings{MaxRetries: 3, MaxFailures: 3, HealthCheckInterval: Duration(30 * time.Second),
		RetryBackoff: Duration(100 * time.Millisecond), RetryBudget: 0.2, LeaderLease: Duration(DefaultLeaderLease),
		Preemptive: PreemptiveNewStreams, MaxPreemptiveMigrationsPerMinute: 30}
}

// ClientSettings are the settings an SDK applies, in the form
// GET /api/streaming/config serves them: every field set.
type ClientSettings struct {
	MaxRetries          int      `json:"maxRetries"`
	MaxFailures         int      `json:"maxFailures"`
	HealthCheckInterval Duration `json:"healthCheckInterval"`
	RetryBackoff        Duration `json:"retryBackoff"`
	RetryBudget         float64  `json:"retryBudget"`
}

// Client returns the part of s that SDKs apply.
func (s Settings) Client() ClientSettings {
	return ClientSettings{MaxRetries: s.MaxRetries, MaxFailures: s.MaxFailures,
		HealthCheckInterval: s.HealthCheckInterval, RetryBackoff: s.RetryBackoff, RetryBudget: s.RetryBudget}
}

// Or returns s with its unset fields taken from d.
func (s Settings) Or(d Settings) Settings {
	if s.MaxRetries == 0 {
		s.MaxRetries = d.MaxRetries
	}
	if s.MaxFailures == 0 {
		s.MaxFailures = d.MaxFailures
	}
	if s.HealthCheckInterval == 0 {
		s.HealthCheckInterval = d.HealthCheckInterval
	}
	if s.RetryBackoff == 0 {
		s.RetryBackoff = d.RetryBackoff
	}
	if s.RetryBudget == 0 {
		s.RetryBudget = d.RetryBudget
	}
	if s.LeaderLease == 0 {
		s.LeaderLease = d.LeaderLease
	}
	if s.Preemptive == "" {
		s.Preemptive = d.Preemptive
	}
	if s.MaxPreemptiveMigrationsPerMinute == 0 {
		s.MaxPreemptiveMigrationsPerMinute = d.MaxPreemptiveMigrationsPerMinute
	}
	return s
}

// Set returns s with the fields that differ between before and after taken
// from after: the explicitly set settings once a change from before to after
// is applied to them.
func (s Settings) Set(before, after Settings) Settings {
	if after.MaxRetries != before.MaxRetries {
		s.MaxRetries = after.MaxRetries
	}
	if after.MaxFailures != before.MaxFailures {
		s.MaxFailures = after.MaxFailures
	}
	if after.HealthCheckInterval != before.HealthCheckInterval {
		s.HealthCheckInterval = after.HealthCheckInterval
	}
	if after.RetryBackoff != before.RetryBackoff {
		s.RetryBackoff = after.RetryBackoff
	}
	if after.RetryBudget != before.RetryBudget {
		s.RetryBudget = after.RetryBudget
	}
	if after.LeaderLease != before.LeaderLease {
		s.LeaderLease = after.LeaderLease
	}
	if after.Preemptive != before.Preemptive {
		s.Preemptive = after.Preemptive
	}
	if after.MaxPreemptiveMigrationsPerMinute != before.MaxPreemptiveMigrationsPerMinute {
		s.MaxPreemptiveMigrationsPerMinute = after.MaxPreemptiveMigrationsPerMinute
	}
	return s
}

// Validate checks every set field against its range; the error names the
// first field out of range. Unset fields are valid.
func (s Settings) Validate() error {
	var errs []error
	if s.MaxRetries != 0 {
		errs = append(errs, intIn("maxRetries", s.MaxRetries, MinMaxRetries, MaxMaxRetries))
	}
	if s.MaxFailures != 0 {
		errs = append(errs, intIn("maxFailures", s.MaxFailures, MinMaxFailures, MaxMaxFailures))
	}
	if s.HealthCheckInterval != 0 {
		errs = append(errs, durationIn("healthCheckInterval", s.HealthCheckInterval, MinHealthCheckInterval, MaxHealthCheckInterval))
	}
	if s.RetryBackoff != 0 {
		errs = append(errs, durationIn("retryBackoff", s.RetryBackoff, MinRetryBackoff, MaxRetryBackoff))
	}
	if s.RetryBudget != 0 {
		errs = append(errs, budgetIn(s.RetryBudget))
	}
	if s.LeaderLease != 0 {
		errs = append(errs, durationIn("leaderLease", s.LeaderLease, MinLeaderLease, MaxLeaderLease))
	}
	if s.Preemptive != "" {
		errs = append(errs, preemptiveIn(s.Preemptive))
	}
	if s.MaxPreemptiveMigrationsPerMinute != 0 {
		errs = append(errs, intIn("maxPreemptiveMigrationsPerMinute", s.MaxPreemptiveMigrationsPerMinute, MinPreemptiveRate, MaxPreemptiveRate))
	}
	return firstError(errs)
}

func preemptiveIn(p Preemptive) error {
	if !p.Valid() {
		return Invalid("preemptive", "must be off, new-streams or migrate")
	}
	return nil
}

func intIn(field string, v, lo, hi int) error {
	if v < lo || v > hi {
		return Invalid(field, "must be an integer from %d to %d", lo, hi)
	}
	return nil
}

func durationIn(field string, d Duration, lo, hi time.Duration) error {
	if d.D() < lo || d.D() > hi {
		return Invalid(field, "must be a duration from %s to %s", lo, hi)
	}
	return nil
}

func budgetIn(v float64) error {
	if !(v >= MinRetryBudget && v <= MaxRetryBudget) {
		return Invalid("retryBudget", "must be a number from %g to %g", MinRetryBudget, MaxRetryBudget)
	}
	return nil
}

func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// SettingsInput is a partial update of the settings: the fields present are
// set, the others kept.
type SettingsInput struct {
	MaxRetries                       *int        `json:"maxRetries,omitempty"`
	MaxFailures                      *int        `json:"maxFailures,omitempty"`
	HealthCheckInterval              *Duration   `json:"healthCheckInterval,omitempty"`
	RetryBackoff                     *Duration   `json:"retryBackoff,omitempty"`
	RetryBudget                      *float64    `json:"retryBudget,omitempty"`
	LeaderLease                      *Duration   `json:"leaderLease,omitempty"`
	Preemptive                       *Preemptive `json:"preemptive,omitempty"`
	MaxPreemptiveMigrationsPerMinute *int        `json:"maxPreemptiveMigrationsPerMinute,omitempty"`
}

// Empty reports whether in sets nothing.
func (in SettingsInput) Empty() bool { return in == SettingsInput{} }

// ApplyTo returns s with the fields present in in set, each checked against
// its range (a zero is out of range, not unset); the fields in leaves out
// are kept as they are. The error names the first field out of range.
func (in SettingsInput) ApplyTo(s Settings) (Settings, error) {
	var errs []error
	if in.MaxRetries != nil {
		s.MaxRetries = *in.MaxRetries
		errs = append(errs, intIn("maxRetries", s.MaxRetries, MinMaxRetries, MaxMaxRetries))
	}
	if in.MaxFailures != nil {
		s.MaxFailures = *in.MaxFailures
		errs = append(errs, intIn("maxFailures", s.MaxFailures, MinMaxFailures, MaxMaxFailures))
	}
	if in.HealthCheckInterval != nil {
		s.HealthCheckInterval = *in.HealthCheckInterval
		errs = append(errs, durationIn("healthCheckInterval", s.HealthCheckInterval, MinHealthCheckInterval, MaxHealthCheckInterval))
	}
	if in.RetryBackoff != nil {
		s.RetryBackoff = *in.RetryBackoff
		errs = append(errs, durationIn("retryBackoff", s.RetryBackoff, MinRetryBackoff, MaxRetryBackoff))
	}
	if in.RetryBudget != nil {
		s.RetryBudget = *in.RetryBudget
		errs = append(errs, budgetIn(s.RetryBudget))
	}
	if in.LeaderLease != nil {
		s.LeaderLease = *in.LeaderLease
		errs = append(errs, durationIn("leaderLease", s.LeaderLease, MinLeaderLease, MaxLeaderLease))
	}
	if in.Preemptive != nil {
		s.Preemptive = *in.Preemptive
		errs = append(errs, preemptiveIn(s.Preemptive))
	}
	if in.MaxPreemptiveMigrationsPerMinute != nil {
		s.MaxPreemptiveMigrationsPerMinute = *in.MaxPreemptiveMigrationsPerMinute
		errs = append(errs, intIn("maxPreemptiveMigrationsPerMinute", s.MaxPreemptiveMigrationsPerMinute, MinPreemptiveRate, MaxPreemptiveRate))
	}
	if err := firstError(errs); err != nil {
		return Settings{}, err
	}
	return s, nil
}

// SettingsStore persists the settings operators set.
type SettingsStore interface {
	// GetSettings returns the settings set so far; the others are zero.
	GetSettings(ctx context.Context) (Settings, error)
	// UpdateSettings reads the settings set so far, filled from defaults,
	// calls fn on them and, in one transaction, sets the fields fn changed
	// (EInvalid naming the field when one is out of range) and writes audit with the settings before and after (with the
	// defaults filled in). When fn changes nothing, nothing is written.
	UpdateSettings(ctx context.Context, defaults Settings, fn func(Settings) (Settings, error), audit AuditEntry) (before, after Settings, err error)
}
