package switchboard

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Provider is one streaming provider in the registry.
type Provider struct {
	Name             string         `json:"name"`
	DisplayName      string         `json:"displayName"`
	Kind             Kind           `json:"kind"`
	Enabled          bool           `json:"enabled"`
	Priority         int            `json:"priority"`
	Regions          []string       `json:"regions"`
	Weight           int            `json:"weight"`
	MaxActiveStreams int            `json:"maxActiveStreams"`
	Config           ProviderConfig `json:"config"`
	// Credentials are write-only: never serialised, encrypted at rest by the store.
	Credentials   Credentials       `json:"-"`
	Pricing       Pricing           `json:"pricing"`
	MonthlyBudget float64           `json:"monthlyBudget"`
	HealthCheck   HealthCheckPolicy `json:"healthCheck"`
	CreatedAt     time.Time         `json:"createdAt"`
	UpdatedAt     time.Time         `json:"updatedAt"`
}

// CredentialsSet reports whether any credential is stored for p.
func (p Provider) CredentialsSet() bool { return !p.Credentials.IsZero() }

// ProviderConfig holds the non-secret settings of a provider; which fields apply
// depends on the kind (see Validate).
type ProviderConfig struct {
	AppID        string `json:"appId,omitempty"`        // agora, zegocloud
	BaseURL      string `json:"baseUrl,omitempty"`      // agora, zegocloud
	URL          string `json:"url,omitempty"`          // livekit, http
	Method       string `json:"method,omitempty"`       // http
	ExpectStatus []int  `json:"expectStatus,omitempty"` // http
}

// Credentials holds the secrets of a provider. It has no JSON encoding on purpose:
// it is decoded from requests through CredentialsInput and never encoded.
type Credentials struct {
	CustomerID     string            // agora RESTful API key pair
	CustomerSecret string            // agora
	AppCertificate string            // agora token signing
	ServerSecret   string            // zegocloud
	APIKey         string            // livekit
	APISecret      string            // livekit
	Headers        map[string]string // http: secret request headers
}

// IsZero reports whether no credential is set.
func (c Credentials) IsZero() bool {
	return c.CustomerID == "" && c.CustomerSecret == "" && c.AppCertificate == "" &&
		c.ServerSecret == "" && c.APIKey == "" && c.APISecret == "" && len(c.Headers) == 0
}

// Values lists every secret value in c, for redaction and leak tests.
func (c Credentials) Values() []string {
	var v []string
	for _, s := range []string{c.CustomerID, c.CustomerSecret, c.AppCertificate, c.ServerSecret, c.APIKey, c.APISecret} {
		if s != "" {
			v = append(v, s)
		}
	}
	for _, s := range c.Headers {
		if s != "" {
			v = append(v, s)
		}
	}
	return v
}

// String never prints a secret.
func (c Credentials) String() string { return "[REDACTED]" }

// GoString never prints a secret.
func (c Credentials) GoString() string { return "switchboard.Credentials{[REDACTED]}" }

// CredentialsInput is the JSON form in which credentials arrive on create and update.
type CredentialsInput struct {
	CustomerID     *string           `json:"customerId,omitempty"`
	CustomerSecret *string           `json:"customerSecret,omitempty"`
	AppCertificate *string           `json:"appCertificate,omitempty"`
	ServerSecret   *string           `json:"serverSecret,omitempty"`
	APIKey         *string           `json:"apiKey,omitempty"`
	APISecret      *string           `json:"apiSecret,omitempty"`
	Headers        map[string]string `json:"headers,omitempty"`
}

// Apply merges the fields present in in over c.
func (in CredentialsInput) Apply(c Credentials) Credentials {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&c.CustomerID, in.CustomerID)
	set(&c.CustomerSecret, in.CustomerSecret)
	set(&c.AppCertificate, in.AppCertificate)
	set(&c.ServerSecret, in.ServerSecret)
	set(&c.APIKey, in.APIKey)
	set(&c.APISecret, in.APISecret)
	if in.Headers != nil {
		c.Headers = in.Headers
	}
	return c
}

// Quality is the quality tier a stream is priced at.
type Quality string

// Quality tiers.
const (
	QualityAudio  Quality = "audio"
	QualitySD     Quality = "sd"
	QualityHD     Quality = "hd"
	QualityFullHD Quality = "fullhd"
)

// Qualities lists every tier.
var Qualities = []Quality{QualityAudio, QualitySD, QualityHD, QualityFullHD}

// Valid reports whether q is a known tier.
func (q Quality) Valid() bool { return slices.Contains(Qualities, q) }

// Validate returns an EInvalid error naming field unless q is a known tier.
func (q Quality) Validate(field string) error {
	if !q.Valid() {
		return Invalid(field, "must be audio, sd, hd or fullhd")
	}
	return nil
}

// Pricing is a provider's list price per thousand minutes, per tier.
type Pricing struct {
	Currency           string              `json:"currency"`
	PerThousandMinutes map[Quality]float64 `json:"perThousandMinutes"`
}

// DefaultPricing returns Agora's published list prices, the editable default.
func DefaultPricing() Pricing {
	return Pricing{Currency: "USD", PerThousandMinutes: map[Quality]float64{
		QualityAudio: 0.99, QualitySD: 3.99, QualityHD: 3.99, QualityFullHD: 8.99,
	}}
}

// HealthCheckPolicy is how a provider is probed and when its status flips.
type HealthCheckPolicy struct {
	Interval         Duration `json:"interval"`
	Timeout          Duration `json:"timeout"`
	FailureThreshold int      `json:"failureThreshold"`
	SuccessThreshold int      `json:"successThreshold"`
	// Window is the span over which uptime and error rate are counted.
	Window Duration `json:"window"`
}

// Limits of HealthCheckPolicy.Window.
const (
	DefaultHealthWindow = 24 * time.Hour
	MinHealthWindow     = time.Second
	MaxHealthWindow     = 30 * 24 * time.Hour
)

// WindowOrDefault returns the window of h, DefaultHealthWindow when it is
// unset (as in a policy stored before windows existed).
func (h HealthCheckPolicy) WindowOrDefault() time.Duration {
	if h.Window <= 0 {
		return DefaultHealthWindow
	}
	return h.Window.D()
}

// DefaultHealthCheck returns the defaults of the system Switchboard replaces.
func DefaultHealthCheck() HealthCheckPolicy {
	return HealthCheckPolicy{
		Interval: Duration(5 * time.Minute), Timeout: Duration(5 * time.Second),
		FailureThreshold: 3, SuccessThreshold: 2, Window: Duration(DefaultHealthWindow),
	}
}

// Duration is a time.Duration that reads and writes Go duration strings in JSON.
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes d as a Go duration string such as "5m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a Go duration string such as "5m" or "1.5s", or a whole
// number of days such as "30d".
func (d *Duration) UnmarshalJSON(b []byte) error {
	// An *json.UnmarshalTypeError lets encoding/json name the field at fault.
	bad := &json.UnmarshalTypeError{Value: "string", Type: reflect.TypeFor[Duration]()}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return bad
	}
	v, err := parseDuration(s)
	if err != nil {
		return bad
	}
	*d = Duration(v)
	return nil
}

// parseDuration reads a Go duration string, or a whole number of days such as
// "30d".
func parseDuration(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 10000 {
			return 0, fmt.Errorf("bad number of days %q", days)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// Time is a time in a request body, as an RFC 3339 string; a bad one is an
// error naming its field, as for Duration.
type Time struct{ time.Time }

// UnmarshalJSON parses an RFC 3339 string.
func (t *Time) UnmarshalJSON(b []byte) error {
	bad := &json.UnmarshalTypeError{Value: "string", Type: reflect.TypeFor[Time]()}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return bad
	}
	v, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return bad
	}
	t.Time = v
	return nil
}

var headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// Limits on provider fields.
const (
	MaxPriority      = 1_000_000
	MaxWeight        = 1_000_000
	MaxDisplayName   = 200
	MaxRegions       = 64
	MaxStreamsLimit  = 100_000_000
	MaxSecretLength  = 4096
	MaxHeaders       = 32
	MaxMonthlyBudget = 1e12
	MaxPrice         = 1e6
)

// Normalize fills defaults for fields left empty at creation.
func (p *Provider) Normalize() {
	if p.DisplayName == "" {
		p.DisplayName = p.Name
	}
	if p.Priority == 0 {
		p.Priority = 1
	}
	if p.Weight == 0 {
		p.Weight = 1
	}
	if p.Regions == nil {
		p.Regions = []string{}
	}
	if p.Pricing.Currency == "" {
		p.Pricing.Currency = "USD"
	}
	if p.Pricing.PerThousandMinutes == nil {
		p.Pricing.PerThousandMinutes = DefaultPricing().PerThousandMinutes
	}
	d := DefaultHealthCheck()
	if p.HealthCheck.Interval == 0 {
		p.HealthCheck.Interval = d.Interval
	}
	if p.HealthCheck.Timeout == 0 {
		p.HealthCheck.Timeout = d.Timeout
	}
	if p.HealthCheck.FailureThreshold == 0 {
		p.HealthCheck.FailureThreshold = d.FailureThreshold
	}
	if p.HealthCheck.SuccessThreshold == 0 {
		p.HealthCheck.SuccessThreshold = d.SuccessThreshold
	}
	if p.HealthCheck.Window == 0 {
		p.HealthCheck.Window = d.Window
	}
	if p.Kind == KindHTTP {
		if p.Config.Method == "" {
			p.Config.Method = "GET"
		}
		if len(p.Config.ExpectStatus) == 0 {
			p.Config.ExpectStatus = []int{200}
		}
	}
}

// Validate checks every field of p and returns an EInvalid *Error naming the first
// field at fault. Messages never quote a credential.
func (p *Provider) Validate() error {
	if !ValidSlug(p.Name) {
		return Invalid("name", "must match %s", SlugPattern)
	}
	if len(p.DisplayName) > MaxDisplayName || strings.ContainsAny(p.DisplayName, "\x00\r\n") {
		return Invalid("displayName", "must be at most %d characters on one line", MaxDisplayName)
	}
	if !p.Kind.Valid() {
		return Invalid("kind", "must be one of agora, zegocloud, livekit, http")
	}
	if err := validPriority(p.Priority); err != nil {
		return err
	}
	if err := validWeight(p.Weight); err != nil {
		return err
	}
	if p.MaxActiveStreams < 0 || p.MaxActiveStreams > MaxStreamsLimit {
		return Invalid("maxActiveStreams", "must be 0 (unlimited) or a positive integer up to %d", MaxStreamsLimit)
	}
	if len(p.Regions) > MaxRegions {
		return Invalid("regions", "at most %d regions", MaxRegions)
	}
	for i, r := range p.Regions {
		if err := ValidateRegion(fmt.Sprintf("regions[%d]", i), r); err != nil {
			return err
		}
	}
	if err := p.validateConfig(); err != nil {
		return err
	}
	if err := p.validateCredentials(); err != nil {
		return err
	}
	if err := p.Pricing.validate(); err != nil {
		return err
	}
	if !finite(p.MonthlyBudget) || p.MonthlyBudget < 0 || p.MonthlyBudget > MaxMonthlyBudget {
		return Invalid("monthlyBudget", "must be a non-negative amount (0 = no budget)")
	}
	return p.HealthCheck.validate()
}

func validPriority(v int) error {
	if v < 1 || v > MaxPriority {
		return Invalid("priority", "must be an integer from 1 to %d", MaxPriority)
	}
	return nil
}

func validWeight(v int) error {
	if v < 1 || v > MaxWeight {
		return Invalid("weight", "must be an integer from 1 to %d", MaxWeight)
	}
	return nil
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func (p *Provider) validateConfig() error {
	c := p.Config
	allowed := map[Kind][]string{
		KindAgora:     {"appId", "baseUrl"},
		KindZegocloud: {"appId", "baseUrl"},
		KindLiveKit:   {"url"},
		KindHTTP:      {"url", "method", "expectStatus"},
	}[p.Kind]
	present := map[string]bool{
		"appId": c.AppID != "", "baseUrl": c.BaseURL != "", "url": c.URL != "",
		"method": c.Method != "", "expectStatus": len(c.ExpectStatus) > 0,
	}
	for _, f := range []string{"appId", "baseUrl", "url", "method", "expectStatus"} {
		if present[f] && !slices.Contains(allowed, f) {
			return Invalid("config."+f, "does not apply to kind %s", p.Kind)
		}
	}
	switch p.Kind {
	case KindAgora:
		if !isHex(c.AppID, 32) {
			return Invalid("config.appId", "must be the 32-hex-character Agora App ID")
		}
	case KindZegocloud:
		if !isUint32(c.AppID) {
			return Invalid("config.appId", "must be the numeric ZEGOCLOUD AppID (1 to 4294967295)")
		}
	case KindLiveKit, KindHTTP:
		if c.URL == "" {
			return Invalid("config.url", "is required for kind %s", p.Kind)
		}
	}
	if c.BaseURL != "" {
		if err := validateHTTPURL("config.baseUrl", c.BaseURL); err != nil {
			return err
		}
	}
	if c.URL != "" {
		if err := validateHTTPURL("config.url", c.URL); err != nil {
			return err
		}
	}
	if p.Kind == KindHTTP {
		switch c.Method {
		case "", "GET", "HEAD", "POST", "OPTIONS":
		default:
			return Invalid("config.method", "must be GET, HEAD, POST or OPTIONS")
		}
		if len(c.ExpectStatus) > 16 {
			return Invalid("config.expectStatus", "at most 16 status codes")
		}
		for i, s := range c.ExpectStatus {
			if s < 100 || s > 599 {
				return Invalid(fmt.Sprintf("config.expectStatus[%d]", i), "must be an HTTP status from 100 to 599")
			}
		}
	}
	return nil
}

func (p *Provider) validateCredentials() error {
	c := p.Credentials
	type f struct {
		name, v string
		kinds   []Kind
	}
	fields := []f{
		{"customerId", c.CustomerID, []Kind{KindAgora}},
		{"customerSecret", c.CustomerSecret, []Kind{KindAgora}},
		{"appCertificate", c.AppCertificate, []Kind{KindAgora}},
		{"serverSecret", c.ServerSecret, []Kind{KindZegocloud}},
		{"apiKey", c.APIKey, []Kind{KindLiveKit}},
		{"apiSecret", c.APISecret, []Kind{KindLiveKit}},
	}
	for _, x := range fields {
		if x.v == "" {
			continue
		}
		if !slices.Contains(x.kinds, p.Kind) {
			return Invalid("credentials."+x.name, "does not apply to kind %s", p.Kind)
		}
		if len(x.v) > MaxSecretLength || strings.ContainsAny(x.v, "\x00\r\n") {
			return Invalid("credentials."+x.name, "must be at most %d characters on one line", MaxSecretLength)
		}
	}
	if c.AppCertificate != "" && !isHex(c.AppCertificate, 32) {
		return Invalid("credentials.appCertificate", "must be 32 hex characters")
	}
	if c.ServerSecret != "" && len(c.ServerSecret) != 32 {
		return Invalid("credentials.serverSecret", "must be exactly 32 characters")
	}
	if len(c.Headers) > 0 {
		if p.Kind != KindHTTP {
			return Invalid("credentials.headers", "does not apply to kind %s", p.Kind)
		}
		if len(c.Headers) > MaxHeaders {
			return Invalid("credentials.headers", "at most %d headers", MaxHeaders)
		}
		for k, v := range c.Headers {
			if !headerNameRE.MatchString(k) || len(k) > 256 {
				return Invalid("credentials.headers", "header names must be HTTP tokens")
			}
			if len(v) > MaxSecretLength || strings.ContainsAny(v, "\x00\r\n") {
				return Invalid("credentials.headers", "header values must be at most %d characters on one line", MaxSecretLength)
			}
		}
	}
	return nil
}

func (pr Pricing) validate() error {
	if len(pr.Currency) != 3 || strings.ToUpper(pr.Currency) != pr.Currency || !isAlpha(pr.Currency) {
		return Invalid("pricing.currency", "must be a three-letter ISO 4217 code such as USD")
	}
	for q, v := range pr.PerThousandMinutes {
		if err := q.Validate("pricing.perThousandMinutes." + string(q)); err != nil {
			return err
		}
		if !finite(v) || v < 0 || v > MaxPrice {
			return Invalid("pricing.perThousandMinutes."+string(q), "must be a non-negative price")
		}
	}
	return nil
}

func (h HealthCheckPolicy) validate() error {
	if err := validInterval(h.Interval); err != nil {
		return err
	}
	if err := validTimeout(h.Timeout); err != nil {
		return err
	}
	if h.Timeout.D() > h.Interval.D() {
		return Invalid("healthCheck.timeout", "must not exceed healthCheck.interval")
	}
	if err := validFailureThreshold(h.FailureThreshold); err != nil {
		return err
	}
	if err := validWindow(h.Window); err != nil {
		return err
	}
	return validSuccessThreshold(h.SuccessThreshold)
}

func validWindow(d Duration) error {
	if d.D() < MinHealthWindow || d.D() > MaxHealthWindow {
		return Invalid("healthCheck.window", "must be from 1s to 30d (720h)")
	}
	return nil
}

func validInterval(d Duration) error {
	if d.D() < time.Second || d.D() > 24*time.Hour {
		return Invalid("healthCheck.interval", "must be from 1s to 24h")
	}
	return nil
}

func validTimeout(d Duration) error {
	if d.D() < 10*time.Millisecond || d.D() > 5*time.Minute {
		return Invalid("healthCheck.timeout", "must be from 10ms to 5m")
	}
	return nil
}

func validFailureThreshold(v int) error { return validThreshold("healthCheck.failureThreshold", v) }

func validSuccessThreshold(v int) error { return validThreshold("healthCheck.successThreshold", v) }

func validThreshold(field string, v int) error {
	if v < 1 || v > 100 {
		return Invalid(field, "must be from 1 to 100")
	}
	return nil
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, r := range s {
		if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
			return false
		}
	}
	return true
}

func isAlpha(s string) bool {
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

func isUint32(s string) bool {
	if s == "" || len(s) > 10 || s[0] == '0' {
		return false
	}
	var v uint64
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
		v = v*10 + uint64(r-'0')
	}
	return v >= 1 && v <= math.MaxUint32
}

// validateHTTPURL returns an EInvalid error naming field unless s is an
// absolute http or https URL without user information, of at most 2048
// bytes, whose port, when it has one, is from 1 to 65535.
func validateHTTPURL(field, s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || len(s) > 2048 {
		return Invalid(field, "must be an absolute http or https URL")
	}
	// url.Parse takes any run of digits as a port, and an empty one after ":".
	if strings.HasSuffix(u.Host, ":") {
		return Invalid(field, "must have a port from 1 to 65535 after its \":\"")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return Invalid(field, "must have a port from 1 to 65535")
		}
	}
	return nil
}

// ProviderInput is the JSON body of a create (all fields) or a partial update
// (only the fields present change; name and kind may not change).
type ProviderInput struct {
	Name             *string           `json:"name,omitempty"`
	DisplayName      *string           `json:"displayName,omitempty"`
	Kind             *Kind             `json:"kind,omitempty"`
	Enabled          *bool             `json:"enabled,omitempty"`
	Priority         *int              `json:"priority,omitempty"`
	Regions          *[]string         `json:"regions,omitempty"`
	Weight           *int              `json:"weight,omitempty"`
	MaxActiveStreams *int              `json:"maxActiveStreams,omitempty"`
	Config           *ProviderConfig   `json:"config,omitempty"`
	Credentials      *CredentialsInput `json:"credentials,omitempty"`
	Pricing          *Pricing          `json:"pricing,omitempty"`
	MonthlyBudget    *float64          `json:"monthlyBudget,omitempty"`
	HealthCheck      *HealthCheckInput `json:"healthCheck,omitempty"`
}

// HealthCheckInput is a partial HealthCheckPolicy.
type HealthCheckInput struct {
	Interval         *Duration `json:"interval,omitempty"`
	Timeout          *Duration `json:"timeout,omitempty"`
	FailureThreshold *int      `json:"failureThreshold,omitempty"`
	SuccessThreshold *int      `json:"successThreshold,omitempty"`
	Window           *Duration `json:"window,omitempty"`
}

// NewProvider builds a provider from a create request, with defaults, and validates it.
func (in ProviderInput) NewProvider() (Provider, error) {
	var p Provider
	if in.Name == nil {
		return p, Invalid("name", "is required")
	}
	if in.Kind == nil {
		return p, Invalid("kind", "is required")
	}
	p.Name, p.Kind, p.Enabled = *in.Name, *in.Kind, true
	if err := in.apply(&p); err != nil {
		return p, err
	}
	p.Normalize()
	return p, p.Validate()
}

// ApplyTo applies a partial update to a copy of p, validates the result and returns it.
func (in ProviderInput) ApplyTo(p Provider) (Provider, error) {
	if in.Name != nil && *in.Name != p.Name {
		return p, Invalid("name", "is immutable")
	}
	if in.Kind != nil && *in.Kind != p.Kind {
		return p, Invalid("kind", "is immutable")
	}
	before := p
	p.Regions = slices.Clone(p.Regions)
	p.Config.ExpectStatus = slices.Clone(p.Config.ExpectStatus)
	if err := in.apply(&p); err != nil {
		return p, err
	}
	p.Normalize()
	if err := p.Validate(); err != nil {
		return p, err
	}
	if field := DestinationChange(before, p); field != "" && before.CredentialsSet() {
		if in.Credentials == nil {
			return p, Invalid(field, "%s", ErrMsgRebindCredentials)
		}
		// Only what this request entered goes to the new destination: the
		// credentials stored for the old one are not carried over.
		p.Credentials = in.Credentials.Apply(Credentials{})
		if err := p.validateCredentials(); err != nil {
			return p, err
		}
	}
	return p, nil
}

// ErrMsgRebindCredentials is the message of the error that refuses a change of
// a provider's destination that does not enter its credentials again.
const ErrMsgRebindCredentials = "credentials must be entered again when the destination changes"

// DestinationChange returns the field ("config.url", "config.baseUrl" or
// "config.method") of the first setting that decides where a probe or token
// request of the provider goes and differs between before and after, or ""
// when they send their requests to the same place. Stored credentials are
// bound to that destination: they are sealed with it (see Destination) and a
// change of it must enter them again.
func DestinationChange(before, after Provider) string {
	b, a := before.Config, after.Config
	switch {
	case b.BaseURL != a.BaseURL:
		return "config.baseUrl"
	case b.URL != a.URL:
		return "config.url"
	case b.Method != a.Method:
		return "config.method"
	}
	return ""
}

// Destination returns the settings of p that decide where its credentials
// are sent (its name, kind, base URL, URL and method), encoded without
// ambiguity, for binding sealed credentials to them.
func (p Provider) Destination() []byte {
	var b []byte
	for _, f := range []string{p.Name, string(p.Kind), p.Config.BaseURL, p.Config.URL, p.Config.Method} {
		b = strconv.AppendInt(b, int64(len(f)), 10)
		b = append(b, ':')
		b = append(b, f...)
	}
	return b
}

// apply sets the fields present in in on p. Validate checks the result once
// Normalize has filled the defaults; only the values Normalize would take for
// unset and replace by a default (below 1) are refused here, with Validate's
// messages.
func (in ProviderInput) apply(p *Provider) error {
	if in.DisplayName != nil {
		p.DisplayName = *in.DisplayName
	}
	if in.Enabled != nil {
		p.Enabled = *in.Enabled
	}
	if err := setPositive(&p.Priority, in.Priority, validPriority); err != nil {
		return err
	}
	if in.Regions != nil {
		p.Regions = slices.Clone(*in.Regions)
	}
	if err := setPositive(&p.Weight, in.Weight, validWeight); err != nil {
		return err
	}
	if in.MaxActiveStreams != nil {
		p.MaxActiveStreams = *in.MaxActiveStreams
	}
	if in.Config != nil {
		p.Config = *in.Config
	}
	if in.Credentials != nil {
		p.Credentials = in.Credentials.Apply(p.Credentials)
	}
	if in.Pricing != nil {
		pr := *in.Pricing
		if pr.PerThousandMinutes == nil {
			return Invalid("pricing.perThousandMinutes", "is required")
		}
		p.Pricing = pr
	}
	if in.MonthlyBudget != nil {
		p.MonthlyBudget = *in.MonthlyBudget
	}
	if h := in.HealthCheck; h != nil {
		hc := &p.HealthCheck
		if err := setPositive(&hc.Timeout, h.Timeout, validTimeout); err != nil {
			return err
		}
		if err := setPositive(&hc.FailureThreshold, h.FailureThreshold, validFailureThreshold); err != nil {
			return err
		}
		if err := setPositive(&hc.SuccessThreshold, h.SuccessThreshold, validSuccessThreshold); err != nil {
			return err
		}
		if err := setPositive(&hc.Interval, h.Interval, validInterval); err != nil {
			return err
		}
		if err := setPositive(&hc.Window, h.Window, validWindow); err != nil {
			return err
		}
	}
	return nil
}

// setPositive sets *dst to *src when src is present. A value below 1, which
// Normalize would replace by the default, is refused with valid's error.
func setPositive[T int | Duration](dst, src *T, valid func(T) error) error {
	if src == nil {
		return nil
	}
	if *src < 1 {
		return valid(*src)
	}
	*dst = *src
	return nil
}

// SortProviders orders providers by priority, ties broken by name.
func SortProviders(ps []Provider) {
	slices.SortFunc(ps, func(a, b Provider) int {
		if a.Priority != b.Priority {
			return a.Priority - b.Priority
		}
		return strings.Compare(a.Name, b.Name)
	})
}
