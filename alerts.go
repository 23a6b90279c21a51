package switchboard

import (
	"context"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"
)

// ChannelKind is how an alert channel delivers: which sender it uses.
type ChannelKind string

// The alert channel kinds.
const (
	ChannelWebhook   ChannelKind = "webhook"
	ChannelSlack     ChannelKind = "slack"
	ChannelDiscord   ChannelKind = "discord"
	ChannelPagerDuty ChannelKind = "pagerduty"
	ChannelEmail     ChannelKind = "email"
	ChannelSMS       ChannelKind = "sms"
)

// ChannelKinds lists every valid channel kind.
var ChannelKinds = []ChannelKind{ChannelWebhook, ChannelSlack, ChannelDiscord, ChannelPagerDuty, ChannelEmail, ChannelSMS}

// Alert events: what a rule may ask to be told of.
const (
	AlertProviderCritical  = "provider.critical"
	AlertProviderRecovered = "provider.recovered"
	AlertAuthFailed        = "provider.auth_failed"
	AlertNoUsableProvider  = "no_usable_provider"
	AlertBudgetThreshold   = "budget.threshold"
	AlertFailoverStorm     = "failover.storm"
	// AlertProviderDegrading is open while the degradation detector flags a
	// provider (EventProviderDegrading), a warning before provider.critical.
	AlertProviderDegrading = "provider.degrading"
	// AlertProviderRegional is a notice for each change of a provider's
	// status in one region (EventProviderRegional), including a region
	// turning stale because its probe agent stopped reporting.
	AlertProviderRegional = "provider.regional"
)

// AlertEvents lists every event a rule may name.
var AlertEvents = []string{AlertProviderCritical, AlertProviderRecovered, AlertAuthFailed,
	AlertNoUsableProvider, AlertBudgetThreshold, AlertFailoverStorm, AlertProviderDegrading, AlertProviderRegional}

// Severity ranks incidents; a rule's minSeverity drops those below it.
type Severity string

// Severities, least first.
const (
	SeverityInfo     Severity = "info"
	SeverityWarning  Severity = "warning"
	SeverityCritical Severity = "critical"
)

// Rank orders severities: info 1, warning 2, critical 3, unknown 0.
func (s Severity) Rank() int {
	return slices.Index([]Severity{SeverityInfo, SeverityWarning, SeverityCritical}, s) + 1
}

// AlertChannel is a destination of alerts. Secrets are write-only: never
// serialised, sealed at rest by the store.
type AlertChannel struct {
	Name    string         `json:"name"`
	Kind    ChannelKind    `json:"kind"`
	Config  ChannelConfig  `json:"config"`
	Secrets ChannelSecrets `json:"-"`
	// SecretsSet names the secrets stored, without their values.
	SecretsSet []string  `json:"secretsSet"`
	CreatedAt  time.Time `json:"createdAt"`
	UpdatedAt  time.Time `json:"updatedAt"`
}

// ChannelConfig holds the non-secret settings of a channel; which fields
// apply depends on the kind.
type ChannelConfig struct {
	URL        string   `json:"url,omitempty"`        // webhook
	Host       string   `json:"host,omitempty"`       // email
	Port       int      `json:"port,omitempty"`       // email
	TLS        string   `json:"tls,omitempty"`        // email: none, starttls, implicit
	From       string   `json:"from,omitempty"`       // email (an address), sms (a phone number)
	To         []string `json:"to,omitempty"`         // email (addresses), sms (phone numbers)
	BaseURL    string   `json:"baseUrl,omitempty"`    // pagerduty, sms: the API's base URL
	AccountSID string   `json:"accountSid,omitempty"` // sms
}

// ChannelSecrets holds the secrets of a channel. Its String never prints one.
type ChannelSecrets struct {
	SigningSecret string `json:"signingSecret,omitempty"` // webhook
	WebhookURL    string `json:"webhookUrl,omitempty"`    // slack, discord: the URL is the credential
	RoutingKey    string `json:"routingKey,omitempty"`    // pagerduty
	Username      string `json:"username,omitempty"`      // email
	Password      string `json:"password,omitempty"`      // email
	AuthToken     string `json:"authToken,omitempty"`     // sms
}

// String never prints a secret.
func (ChannelSecrets) String() string { return "[REDACTED]" }

// GoString never prints a secret.
func (ChannelSecrets) GoString() string { return "switchboard.ChannelSecrets{[REDACTED]}" }

// Values lists every secret value, for redaction and leak tests.
func (c ChannelSecrets) Values() []string {
	var v []string
	for _, s := range []string{c.SigningSecret, c.WebhookURL, c.RoutingKey, c.Username, c.Password, c.AuthToken} {
		if s != "" {
			v = append(v, s)
		}
	}
	return v
}

// Names lists the names (JSON keys) of the secrets set.
func (c ChannelSecrets) Names() []string {
	var n []string
	for _, f := range []struct{ name, v string }{{"signingSecret", c.SigningSecret}, {"webhookUrl", c.WebhookURL},
		{"routingKey", c.RoutingKey}, {"username", c.Username}, {"password", c.Password}, {"authToken", c.AuthToken}} {
		if f.v != "" {
			n = append(n, f.name)
		}
	}
	return n
}

// ChannelInput is the JSON body that creates or replaces a channel. On
// replace, a secret left out keeps its stored value and "" removes it.
type ChannelInput struct {
	Name    string        `json:"name"`
	Kind    ChannelKind   `json:"kind"`
	Config  ChannelConfig `json:"config"`
	Secrets *SecretsInput `json:"secrets,omitempty"`
}

// SecretsInput is a partial ChannelSecrets: nil fields keep their value.
type SecretsInput struct {
	SigningSecret *string `json:"signingSecret,omitempty"`
	WebhookURL    *string `json:"webhookUrl,omitempty"`
	RoutingKey    *string `json:"routingKey,omitempty"`
	Username      *string `json:"username,omitempty"`
	Password      *string `json:"password,omitempty"`
	AuthToken     *string `json:"authToken,omitempty"`
}

// Apply merges the fields present in in over c.
func (in *SecretsInput) Apply(c ChannelSecrets) ChannelSecrets {
	if in == nil {
		return c
	}
	for _, f := range []struct {
		dst *string
		src *string
	}{{&c.SigningSecret, in.SigningSecret}, {&c.WebhookURL, in.WebhookURL}, {&c.RoutingKey, in.RoutingKey},
		{&c.Username, in.Username}, {&c.Password, in.Password}, {&c.AuthToken, in.AuthToken}} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
	return c
}

// Build returns the channel in describes, with the secrets of old (a stored
// channel, or the zero value on create) merged under in's, validated.
func (in ChannelInput) Build(old ChannelSecrets) (AlertChannel, error) {
	ch := AlertChannel{Name: in.Name, Kind: in.Kind, Config: in.Config, Secrets: in.Secrets.Apply(old)}
	ch.Config.To = slices.Clone(ch.Config.To)
	return ch, ch.Validate()
}

var alertNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)

// ValidAlertName reports whether s may name a channel or rule.
func ValidAlertName(s string) bool { return alertNameRE.MatchString(s) }

// validAlertName checks the name of a channel or rule.
func validAlertName(field, s string) error {
	if s == "" {
		return Invalid(field, "is required")
	}
	if !alertNameRE.MatchString(s) {
		return Invalid(field, "must be 1 to 63 lowercase letters, digits, '-' or '_', starting with a letter or digit")
	}
	return nil
}

// phoneRE is an E.164 phone number.
var phoneRE = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

// validEmail checks a bare e-mail address (no display name).
func validEmail(field, s string) error {
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" || strings.ContainsAny(s, "\r\n") {
		return Invalid(field, "must be an e-mail address such as oncall@example.com")
	}
	return nil
}

// Validate checks the channel: its name, kind, the config and secrets its kind
// needs. Errors name the field (config.url, secrets.signingSecret, ...).
func (c AlertChannel) Validate() error {
	if err := validAlertName("name", c.Name); err != nil {
		return err
	}
	if !slices.Contains(ChannelKinds, c.Kind) {
		return Invalid("kind", "must be one of webhook, slack, discord, pagerduty, email, sms")
	}
	cf, sc := c.Config, c.Secrets
	optURL := func(field, s string) error {
		if s == "" {
			return nil
		}
		return validateHTTPURL(field, s)
	}
	switch c.Kind {
	case ChannelWebhook:
		if cf.URL == "" {
			return Invalid("config.url", "is required")
		}
		if err := validateHTTPURL("config.url", cf.URL); err != nil {
			return err
		}
		if sc.SigningSecret == "" {
			return Invalid("secrets.signingSecret", "is required: receivers verify the signature with it")
		}
		if len(sc.SigningSecret) < 16 {
			return Invalid("secrets.signingSecret", "must be at least 16 characters")
		}
	case ChannelSlack, ChannelDiscord:
		if sc.WebhookURL == "" {
			return Invalid("secrets.webhookUrl", "is required")
		}
		if err := validateHTTPURL("secrets.webhookUrl", sc.WebhookURL); err != nil {
			return err
		}
	case ChannelPagerDuty:
		if err := optURL("config.baseUrl", cf.BaseURL); err != nil {
			return err
		}
		if sc.RoutingKey == "" {
			return Invalid("secrets.routingKey", "is required")
		}
	case ChannelEmail:
		if cf.Host == "" || strings.ContainsAny(cf.Host, " /:@\r\n") || len(cf.Host) > 253 {
			return Invalid("config.host", "must be a host name or IP address")
		}
		if cf.Port < 1 || cf.Port > 65535 {
			return Invalid("config.port", "must be from 1 to 65535")
		}
		if !slices.Contains([]string{"none", "starttls", "implicit"}, cf.TLS) {
			return Invalid("config.tls", "must be none, starttls or implicit")
		}
		if err := validEmail("config.from", cf.From); err != nil {
			return err
		}
		if err := validList("config.to", cf.To, func(f, s string) error { return validEmail(f, s) }); err != nil {
			return err
		}
		if (sc.Username == "") != (sc.Password == "") {
			return Invalid("secrets.password", "username and password go together")
		}
	case ChannelSMS:
		if err := optURL("config.baseUrl", cf.BaseURL); err != nil {
			return err
		}
		if !regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`).MatchString(cf.AccountSID) {
			return Invalid("config.accountSid", "must be an account SID: AC and 32 hexadecimal digits")
		}
		if !phoneRE.MatchString(cf.From) {
			return Invalid("config.from", "must be a phone number in E.164 form, such as +15550100")
		}
		if err := validList("config.to", cf.To, func(f, s string) error {
			if !phoneRE.MatchString(s) {
				return Invalid(f, "must be a phone number in E.164 form, such as +15550100")
			}
			return nil
		}); err != nil {
			return err
		}
		if sc.AuthToken == "" {
			return Invalid("secrets.authToken", "is required")
		}
	}
	return nil
}

func validList(field string, l []string, valid func(field, s string) error) error {
	if len(l) == 0 {
		return Invalid(field, "must list at least one recipient")
	}
	if len(l) > 50 {
		return Invalid(field, "may list at most 50 recipients")
	}
	for _, s := range l {
		if err := valid(field, s); err != nil {
			return err
		}
	}
	return nil
}

// MinRepeatInterval is the shortest repeat interval of a rule.
const MinRepeatInterval = time.Minute

// AlertRule says which events alert which channels.
type AlertRule struct {
	Name     string   `json:"name"`
	Events   []string `json:"events"`
	Channels []string `json:"channels"`
	// Providers limits the provider events to these providers; empty = all.
	// Events about no single provider (no_usable_provider, failover.storm)
	// are not filtered.
	Providers []string `json:"providers"`
	// RepeatInterval is how often a reminder is sent while an incident
	// stays unresolved (0: no reminders).
	RepeatInterval Duration `json:"repeatInterval"`
	Enabled        bool     `json:"enabled"`
	MinSeverity    Severity `json:"minSeverity"`
	// StormMigrations and StormWindow set failover.storm: more than
	// StormMigrations migrations within StormWindow.
	StormMigrations int       `json:"stormMigrations,omitempty"`
	StormWindow     Duration  `json:"stormWindow,omitempty"`
	CreatedAt       time.Time `json:"createdAt"`
	UpdatedAt       time.Time `json:"updatedAt"`
}

// Default failover storm thresholds.
const (
	DefaultStormMigrations = 10
	DefaultStormWindow     = 5 * time.Minute
)

// RuleInput is the JSON body that creates or replaces a rule.
type RuleInput struct {
	Name            string    `json:"name"`
	Events          []string  `json:"events"`
	Channels        []string  `json:"channels"`
	Providers       []string  `json:"providers"`
	RepeatInterval  *Duration `json:"repeatInterval,omitempty"`
	Enabled         *bool     `json:"enabled,omitempty"`
	MinSeverity     Severity  `json:"minSeverity,omitempty"`
	StormMigrations int       `json:"stormMigrations,omitempty"`
	StormWindow     Duration  `json:"stormWindow,omitempty"`
}

// Build returns the rule in describes with defaults (enabled, minSeverity
// info, repeat every 4 h, storm thresholds when failover.storm is named),
// validated. Whether its channels exist is the store's check.
func (in RuleInput) Build() (AlertRule, error) {
	r := AlertRule{Name: in.Name, Events: slices.Clone(in.Events), Channels: slices.Clone(in.Channels),
		Providers: slices.Clone(in.Providers), Enabled: true, MinSeverity: in.MinSeverity,
		RepeatInterval: Duration(4 * time.Hour), StormMigrations: in.StormMigrations, StormWindow: in.StormWindow}
	if in.RepeatInterval != nil {
		r.RepeatInterval = *in.RepeatInterval
	}
	if in.Enabled != nil {
		r.Enabled = *in.Enabled
	}
	if r.MinSeverity == "" {
		r.MinSeverity = SeverityInfo
	}
	if r.Providers == nil {
		r.Providers = []string{}
	}
	if slices.Contains(r.Events, AlertFailoverStorm) {
		if r.StormMigrations == 0 {
			r.StormMigrations = DefaultStormMigrations
		}
		if r.StormWindow == 0 {
			r.StormWindow = Duration(DefaultStormWindow)
		}
	}
	return r, r.Validate()
}

// Validate checks the rule; errors name the field.
func (r AlertRule) Validate() error {
	if err := validAlertName("name", r.Name); err != nil {
		return err
	}
	if len(r.Events) == 0 {
		return Invalid("events", "must name at least one event")
	}
	for _, e := range r.Events {
		if !slices.Contains(AlertEvents, e) {
			return Invalid("events", "unknown event %q: use %s", Truncate(e, 64), strings.Join(AlertEvents, ", "))
		}
	}
	if slices.Contains(r.Events, AlertProviderRecovered) && !slices.Contains(r.Events, AlertProviderCritical) {
		return Invalid("events", "provider.recovered is the resolve of a provider.critical incident: list provider.critical too")
	}
	if len(r.Channels) == 0 {
		return Invalid("channels", "must name at least one channel")
	}
	for _, c := range r.Channels {
		if err := validAlertName("channels", c); err != nil {
			return err
		}
	}
	for _, p := range r.Providers {
		if p == "" || len(p) > 64 || !ValidText(p) {
			return Invalid("providers", "must list provider names")
		}
	}
	if r.RepeatInterval != 0 && r.RepeatInterval.D() < MinRepeatInterval {
		return Invalid("repeatInterval", "must be at least 1m (or 0 for no reminders)")
	}
	if r.RepeatInterval < 0 || r.RepeatInterval.D() > 7*24*time.Hour {
		return Invalid("repeatInterval", "must be from 1m to 168h (or 0 for no reminders)")
	}
	if r.MinSeverity.Rank() == 0 {
		return Invalid("minSeverity", "must be info, warning or critical")
	}
	if slices.Contains(r.Events, AlertFailoverStorm) {
		if r.StormMigrations < 1 || r.StormMigrations > 100000 {
			return Invalid("stormMigrations", "must be from 1 to 100000")
		}
		if r.StormWindow.D() < time.Minute || r.StormWindow.D() > 24*time.Hour {
			return Invalid("stormWindow", "must be from 1m to 24h")
		}
	}
	return nil
}

// Incident is one occurrence of a cause (an alert event) for a provider,
// from its trigger to its resolution.
type Incident struct {
	ID int64 `json:"id"`
	// Key identifies the cause and its subject: "provider.critical:agora".
	Key        string     `json:"key"`
	Cause      string     `json:"cause"`
	Provider   string     `json:"provider,omitempty"`
	Severity   Severity   `json:"severity"`
	Summary    string     `json:"summary"`
	StatusFrom Status     `json:"statusFrom,omitempty"`
	StatusTo   Status     `json:"statusTo,omitempty"`
	Reason     string     `json:"reason,omitempty"`
	OpenedAt   time.Time  `json:"openedAt"`
	ResolvedAt *time.Time `json:"resolvedAt"`
	// Notice marks a one-time notification (budget.threshold): it has no
	// reminders and no resolve, and its key is never opened again.
	Notice bool `json:"notice"`
}

// Delivery transitions.
const (
	TransitionTrigger  = "trigger"
	TransitionReminder = "reminder"
	TransitionResolve  = "resolve"
	TransitionTest     = "test"
)

// Delivery statuses.
const (
	DeliveryPending   = "pending"
	DeliverySent      = "sent"
	DeliveryFailed    = "failed"
	DeliveryCancelled = "cancelled"
)

// Delivery is one notification of an incident transition to one channel,
// for one rule: the ledger row that makes it happen once.
type Delivery struct {
	ID         int64      `json:"id"`
	IncidentID int64      `json:"incidentId,omitempty"`
	Rule       string     `json:"rule,omitempty"`
	Channel    string     `json:"channel"`
	Transition string     `json:"transition"`
	Seq        int        `json:"seq"`
	Status     string     `json:"status"`
	Attempts   int        `json:"attempts"`
	CreatedAt  time.Time  `json:"createdAt"`
	NextAt     time.Time  `json:"nextAt"`
	SentAt     *time.Time `json:"sentAt"`
	LastError  string     `json:"lastError,omitempty"`
	// Holder, when set on a delivery being queued, claims it at once for
	// that holder (a test send made by the caller itself).
	Holder string `json:"-"`
}

// DeliveryAttempt is one try at sending a delivery.
type DeliveryAttempt struct {
	ID         int64     `json:"id"`
	DeliveryID int64     `json:"deliveryId"`
	IncidentID int64     `json:"incidentId,omitempty"`
	Channel    string    `json:"channel"`
	Rule       string    `json:"rule,omitempty"`
	Transition string    `json:"transition"`
	At         time.Time `json:"at"`
	// Outcome is sent, retry (failed, tried again later) or failed (given up).
	Outcome    string `json:"outcome"`
	HTTPStatus int    `json:"httpStatus,omitempty"`
	Error      string `json:"error,omitempty"`
	DurationMs int64  `json:"durationMs"`
}

// Attempt outcomes.
const (
	OutcomeSent   = "sent"
	OutcomeRetry  = "retry"
	OutcomeFailed = "failed"
)

// AttemptFilter selects attempts, newest first.
type AttemptFilter struct {
	Channel  string
	BeforeID int64
	Limit    int
}

// AlertStore persists alert channels, rules, incidents and the delivery
// ledger. Channel and rule changes write their audit entry in the same
// transaction; channel secrets are sealed at rest and never audited.
type AlertStore interface {
	// Channels. Errors: ENotFound, EConflict (a name taken; deleting a channel a rule uses).
	ListAlertChannels(ctx context.Context) ([]AlertChannel, error)
	GetAlertChannel(ctx context.Context, name string) (AlertChannel, error)
	CreateAlertChannel(ctx context.Context, c AlertChannel, audit AuditEntry) error
	// UpdateAlertChannel reads the channel, calls fn on it and stores what fn
	// returns (the name and kind may not change), in one transaction.
	UpdateAlertChannel(ctx context.Context, name string, fn func(AlertChannel) (AlertChannel, error), audit AuditEntry) (AlertChannel, error)
	DeleteAlertChannel(ctx context.Context, name string, audit AuditEntry) error

	// Rules. Errors: ENotFound, EConflict, EInvalid (field channels: an unknown channel).
	ListAlertRules(ctx context.Context) ([]AlertRule, error)
	GetAlertRule(ctx context.Context, name string) (AlertRule, error)
	CreateAlertRule(ctx context.Context, r AlertRule, audit AuditEntry) error
	ReplaceAlertRule(ctx context.Context, r AlertRule, audit AuditEntry) (AlertRule, error)
	DeleteAlertRule(ctx context.Context, name string, audit AuditEntry) error

	// OpenIncident opens inc unless an incident of its key is open (or, for
	// a notice, was ever opened): it returns the incident of the key and
	// whether this call opened it.
	OpenIncident(ctx context.Context, inc Incident) (Incident, bool, error)
	// ResolveIncident resolves the open incident of key at, cancels its
	// pending reminders, and queues a resolve delivery for every rule and
	// channel whose trigger was not given up, in one transaction. ok is false
	// when no incident of key is open.
	ResolveIncident(ctx context.Context, key string, at time.Time) (inc Incident, ok bool, err error)
	OpenIncidents(ctx context.Context) ([]Incident, error)
	GetIncident(ctx context.Context, id int64) (Incident, error)

	// QueueDelivery adds d (status pending, due at d.NextAt) unless a
	// delivery of the same incident, rule, channel, transition and seq
	// exists; it reports whether it added it. A test delivery (no
	// incident) is always added.
	QueueDelivery(ctx context.Context, d Delivery) (Delivery, bool, error)
	// ClaimDeliveries claims up to limit pending deliveries of incidents
	// (never a test send, which its caller makes) due at now for holder
	// until until, oldest first, skipping those that wait behind an
	// earlier pending delivery of the same incident, rule and channel, and
	// those claimed by another holder whose claim has not run out.
	ClaimDeliveries(ctx context.Context, holder string, now, until time.Time, limit int) ([]Delivery, error)
	// RecordAttempt stores a and applies its outcome to the delivery held by
	// holder: sent, failed, or pending again at next (retry). ENotFound when
	// holder no longer holds it.
	RecordAttempt(ctx context.Context, holder string, a DeliveryAttempt, next time.Time) (Delivery, error)
	GetDelivery(ctx context.Context, id int64) (Delivery, error)
	ListDeliveries(ctx context.Context, incidentID int64) ([]Delivery, error)
	ListAttempts(ctx context.Context, f AttemptFilter) ([]DeliveryAttempt, error)
}
