// Package config loads the settings of `switchboard serve`: defaults, then an
// optional YAML file, then environment variables, then flags (each overriding
// the one before), then Validate.
package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/switchboardhq/switchboard"
)

// Config is the configuration of the server.
type Config struct {
	Addr      string `yaml:"addr"`
	DB        string `yaml:"db"`
	LogFormat string `yaml:"logFormat"`
	LogLevel  string `yaml:"logLevel"`
	// PublicRateLimit is the requests per second allowed per client IP (IPv6: per /64) on the
	// public health endpoint; 0 switches the limit off (for benchmarks).
	PublicRateLimit float64 `yaml:"publicRateLimit"`
	PublicBurst     int     `yaml:"publicBurst"`
	// HealthConcurrency bounds how many probes run at once.
	HealthConcurrency int           `yaml:"healthConcurrency"`
	ShutdownTimeout   time.Duration `yaml:"shutdownTimeout"`
	// MaxInflightFailover, MaxInflightStart and MaxInflightOther bound the
	// HTTP requests served at once per admission class (failover: migrate,
	// heartbeat, failures, end; start: new streams; other: the rest of the
	// API); what finds no slot soon enough is answered 503. 0 means no limit.
	MaxInflightFailover int `yaml:"maxInflightFailover"`
	MaxInflightStart    int `yaml:"maxInflightStart"`
	MaxInflightOther    int `yaml:"maxInflightOther"`
	// LeaderLease is how long the lease of the leading replica lasts (on
	// PostgreSQL); the leader renews it every third of it. The setting
	// leaderLease (PUT /api/settings), once set, overrides it.
	LeaderLease time.Duration `yaml:"leaderLease"`
	// PublicURL is the dashboard's address as people reach it, linked from
	// alert notifications; empty: no link.
	PublicURL string `yaml:"publicUrl"`

	// AbandonAfter is how long a live stream may go without a heartbeat
	// before the leader ends it as abandoned, at its last heartbeat.
	AbandonAfter time.Duration `yaml:"abandonAfter"`

	// ReadTimeout bounds the time a request, headers and body, may take to
	// arrive; a slower one has its connection closed. Event streams are not
	// bound by it once their request has arrived.
	ReadTimeout time.Duration `yaml:"readTimeout"`
	// SSEPerToken is the most event streams a token or session may hold open;
	// a client token (shared by every instance of an app) per client address.
	SSEPerToken int `yaml:"ssePerToken"`
	// TrustedProxies lists the addresses (and CIDR prefixes) of reverse
	// proxies whose X-Forwarded-For header names the client, comma-separated.
	TrustedProxies string `yaml:"trustedProxies"`
	// CORSOrigins lists the origins (comma-separated, exact, such as
	// https://app.example.com; "*" alone for any) whose web pages may call
	// the API from the browser with a bearer token; empty: none.
	CORSOrigins string `yaml:"corsOrigins"`
	// TLSCert and TLSKey are PEM files of the certificate (with its chain) and
	// key to serve HTTPS with; they are read again on SIGHUP.
	TLSCert string `yaml:"tlsCert"`
	TLSKey  string `yaml:"tlsKey"`
	// ACMEDomain lists the host names (comma-separated) to obtain
	// certificates for automatically with ACME (Let's Encrypt by default),
	// kept in ACMECache. ACMEDirectory is another CA's directory URL.
	ACMEDomain    string `yaml:"acmeDomain"`
	ACMECache     string `yaml:"acmeCache"`
	ACMEEmail     string `yaml:"acmeEmail"`
	ACMEDirectory string `yaml:"acmeDirectory"`
	// OpenID Connect single sign-on of the dashboard: off while OIDCIssuer
	// is empty. OIDCRoles maps values of the claim OIDCRoleClaim to roles,
	// as "sre=admin,platform=superadmin".
	OIDCIssuer      string `yaml:"oidcIssuer"`
	OIDCClientID    string `yaml:"oidcClientId"`
	OIDCRedirectURL string `yaml:"oidcRedirectUrl"`
	OIDCRoleClaim   string `yaml:"oidcRoleClaim"`
	OIDCRoles       string `yaml:"oidcRoles"`
	// PprofAddr is the loopback address (such as 127.0.0.1:6060) on which
	// the Go profiler's endpoints (/debug/pprof/) are served, apart from the
	// API; empty: off. Any other address is refused, since profiles reveal
	// the process's memory.
	PprofAddr string `yaml:"pprofAddr"`

	// Region is the region this server runs in: its own probes count as
	// that region's health (empty: they count for no region).
	Region string `yaml:"region"`
	// GeoHeader names the request header in which a trusted edge (a CDN or
	// load balancer that sets it on every request, such as CF-IPCountry or
	// CloudFront-Viewer-Country) gives the client's country; empty: no header
	// is believed. A stream started without a region takes the region of
	// that country, through GeoMap.
	GeoHeader string `yaml:"geoHeader"`
	// GeoMap is a JSON file mapping country codes to regions (see
	// internal/geo.Parse); empty: the built-in map by continent.
	GeoMap string `yaml:"geoMap"`

	// Secrets come from the environment only, never from flags (which other
	// users of the machine can read) or the file.
	BootstrapToken string `yaml:"-"`
	AdminPassword  string `yaml:"-"`
	SecretKey      string `yaml:"-"`
	// OIDCClientSecret is SWITCHBOARD_OIDC_CLIENT_SECRET.
	OIDCClientSecret string `yaml:"-"`
}

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		Addr: "127.0.0.1:8080", DB: "sqlite:switchboard.db", LogFormat: "text", LogLevel: "info",
		PublicRateLimit: 10, PublicBurst: 20, HealthConcurrency: 16, ShutdownTimeout: 15 * time.Second,
		// Sized for a 2-core node on SQLite (one writer): failover work gets
		// the most room, new starts less, and the rest of the API least.
		MaxInflightFailover: 256, MaxInflightStart: 128, MaxInflightOther: 64,
		LeaderLease: switchboard.DefaultLeaderLease, OIDCRoleClaim: "groups",
		ReadTimeout: 10 * time.Second, SSEPerToken: 20, AbandonAfter: 2 * time.Minute,
	}
}

// Load reads the configuration for `serve` from args (without the subcommand),
// the environment (through getenv) and the file named by --config or
// SWITCHBOARD_CONFIG. Flag > env > file > default.
func Load(args []string, getenv func(string) string, stderr io.Writer) (Config, error) {
	// A first pass reports flag errors and finds --config; the second, once the
	// file and the environment are applied, sets only the flags given.
	scratch := Default() // so that -h shows the defaults
	var file string
	first := flagSet(&scratch, &file, stderr)
	if err := first.Parse(args); err != nil {
		return scratch, err
	}
	if first.NArg() > 0 {
		return scratch, fmt.Errorf("unexpected argument %q", first.Arg(0))
	}
	if file == "" {
		file = getenv("SWITCHBOARD_CONFIG")
	}
	c := Default()
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return c, fmt.Errorf("config file: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
			return c, fmt.Errorf("config file %s: %w", file, err)
		}
	}
	if err := applyEnv(&c, getenv); err != nil {
		return c, err
	}
	// Binding a flag to a field keeps the field's value as the flag's default,
	// so parsing again changes only the fields whose flags were given.
	if err := flagSet(&c, &file, io.Discard).Parse(args); err != nil {
		return c, err
	}
	c.BootstrapToken = getenv("SWITCHBOARD_BOOTSTRAP_TOKEN")
	c.AdminPassword = getenv("SWITCHBOARD_ADMIN_PASSWORD")
	c.SecretKey = getenv("SWITCHBOARD_SECRET_KEY")
	c.OIDCClientSecret = getenv("SWITCHBOARD_OIDC_CLIENT_SECRET")
	return c, c.Validate()
}

// flagSet binds the flags of `serve` to the fields of c.
func flagSet(c *Config, file *string, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(file, "config", "", "YAML configuration file (env SWITCHBOARD_CONFIG)")
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address (env SWITCHBOARD_ADDR)")
	fs.StringVar(&c.DB, "db", c.DB, "database: sqlite:PATH or postgres://... (env SWITCHBOARD_DB)")
	fs.StringVar(&c.LogFormat, "log-format", c.LogFormat, "log format: text or json (env SWITCHBOARD_LOG_FORMAT)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "log level: debug, info, warn, error (env SWITCHBOARD_LOG_LEVEL)")
	fs.Float64Var(&c.PublicRateLimit, "public-rate-limit", c.PublicRateLimit, "requests/s per client IP (IPv6: per /64) on public endpoints; 0 = off (env SWITCHBOARD_PUBLIC_RATE_LIMIT)")
	fs.IntVar(&c.PublicBurst, "public-burst", c.PublicBurst, "burst of the public rate limit (env SWITCHBOARD_PUBLIC_BURST)")
	fs.IntVar(&c.HealthConcurrency, "health-concurrency", c.HealthConcurrency, "probes run at once at most (env SWITCHBOARD_HEALTH_CONCURRENCY)")
	fs.IntVar(&c.MaxInflightFailover, "max-inflight-failover", c.MaxInflightFailover, "failover requests (migrate, heartbeat, failures, end) served at once; 0 = no limit (env SWITCHBOARD_MAX_INFLIGHT_FAILOVER)")
	fs.IntVar(&c.MaxInflightStart, "max-inflight-start", c.MaxInflightStart, "stream starts served at once; 0 = no limit (env SWITCHBOARD_MAX_INFLIGHT_START)")
	fs.IntVar(&c.MaxInflightOther, "max-inflight-other", c.MaxInflightOther, "other API requests served at once; 0 = no limit (env SWITCHBOARD_MAX_INFLIGHT_OTHER)")
	fs.DurationVar(&c.LeaderLease, "leader-lease", c.LeaderLease, "lease of the leading replica, renewed every third of it, unless the setting leaderLease is set (env SWITCHBOARD_LEADER_LEASE)")
	fs.DurationVar(&c.AbandonAfter, "abandon-after", c.AbandonAfter, "time a live stream may go without a heartbeat before it is ended as abandoned, at its last heartbeat (env SWITCHBOARD_ABANDON_AFTER)")
	fs.DurationVar(&c.ReadTimeout, "read-timeout", c.ReadTimeout, "time a request, body included, may take to arrive; slower ones are cut off (env SWITCHBOARD_READ_TIMEOUT)")
	fs.IntVar(&c.SSEPerToken, "sse-per-token", c.SSEPerToken, "event streams open at once per token or session; per token and client address for a client token (env SWITCHBOARD_SSE_PER_TOKEN)")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", c.TrustedProxies, "comma-separated addresses or CIDR prefixes of reverse proxies whose X-Forwarded-For is believed (env SWITCHBOARD_TRUSTED_PROXIES)")
	fs.StringVar(&c.CORSOrigins, "cors-origins", c.CORSOrigins, "comma-separated origins (scheme://host[:port]; * alone for any) whose web pages may call the API with a bearer token; empty = no CORS (env SWITCHBOARD_CORS_ORIGINS)")
	fs.StringVar(&c.TLSCert, "tls-cert", c.TLSCert, "PEM certificate file (with its chain) to serve HTTPS; read again on SIGHUP (env SWITCHBOARD_TLS_CERT)")
	fs.StringVar(&c.TLSKey, "tls-key", c.TLSKey, "PEM private key file of --tls-cert (env SWITCHBOARD_TLS_KEY)")
	fs.StringVar(&c.ACMEDomain, "acme-domain", c.ACMEDomain, "comma-separated host names to get certificates for with ACME (env SWITCHBOARD_ACME_DOMAIN)")
	fs.StringVar(&c.ACMECache, "acme-cache", c.ACMECache, "directory that keeps the ACME account and certificates (env SWITCHBOARD_ACME_CACHE)")
	fs.StringVar(&c.ACMEEmail, "acme-email", c.ACMEEmail, "contact address given to the ACME CA (env SWITCHBOARD_ACME_EMAIL)")
	fs.StringVar(&c.ACMEDirectory, "acme-directory", c.ACMEDirectory, "ACME directory URL; default Let's Encrypt (env SWITCHBOARD_ACME_DIRECTORY)")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "the dashboard's public URL, linked from alert notifications (env SWITCHBOARD_PUBLIC_URL)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "time allowed for in-flight requests at shutdown (env SWITCHBOARD_SHUTDOWN_TIMEOUT)")
	fs.StringVar(&c.OIDCIssuer, "oidc-issuer", c.OIDCIssuer, "OpenID Connect issuer URL for single sign-on; empty = off (env SWITCHBOARD_OIDC_ISSUER)")
	fs.StringVar(&c.OIDCClientID, "oidc-client-id", c.OIDCClientID, "OpenID Connect client id (env SWITCHBOARD_OIDC_CLIENT_ID; the secret: env SWITCHBOARD_OIDC_CLIENT_SECRET)")
	fs.StringVar(&c.OIDCRedirectURL, "oidc-redirect-url", c.OIDCRedirectURL, "callback URL registered at the provider, ending in /api/auth/oidc/callback; empty = from each request's host (env SWITCHBOARD_OIDC_REDIRECT_URL)")
	fs.StringVar(&c.OIDCRoleClaim, "oidc-role-claim", c.OIDCRoleClaim, "claim whose values map to roles (env SWITCHBOARD_OIDC_ROLE_CLAIM)")
	fs.StringVar(&c.OIDCRoles, "oidc-roles", c.OIDCRoles, "role mapping, value=role,...: such as sre=admin,platform=superadmin (env SWITCHBOARD_OIDC_ROLES)")
	fs.StringVar(&c.Region, "region", c.Region, "region this server runs in: its own probes count as that region's health (env SWITCHBOARD_REGION)")
	fs.StringVar(&c.GeoHeader, "geo-header", c.GeoHeader, "request header in which a trusted edge gives the client's country, such as CF-IPCountry; empty = none believed (env SWITCHBOARD_GEO_HEADER)")
	fs.StringVar(&c.GeoMap, "geo-map", c.GeoMap, "JSON file mapping country codes to regions; empty = the built-in map by continent (env SWITCHBOARD_GEO_MAP)")
	fs.StringVar(&c.PprofAddr, "pprof-addr", c.PprofAddr, "loopback address (such as 127.0.0.1:6060) serving the Go profiler at /debug/pprof/; empty = off (env SWITCHBOARD_PPROF_ADDR)")
	return fs
}

func applyEnv(c *Config, getenv func(string) string) error {
	str := map[string]*string{
		"SWITCHBOARD_ADDR": &c.Addr, "SWITCHBOARD_DB": &c.DB,
		"SWITCHBOARD_LOG_FORMAT": &c.LogFormat, "SWITCHBOARD_LOG_LEVEL": &c.LogLevel,
		"SWITCHBOARD_TRUSTED_PROXIES": &c.TrustedProxies, "SWITCHBOARD_TLS_CERT": &c.TLSCert, "SWITCHBOARD_TLS_KEY": &c.TLSKey,
		"SWITCHBOARD_ACME_DOMAIN": &c.ACMEDomain, "SWITCHBOARD_ACME_CACHE": &c.ACMECache,
		"SWITCHBOARD_ACME_EMAIL": &c.ACMEEmail, "SWITCHBOARD_ACME_DIRECTORY": &c.ACMEDirectory,
		"SWITCHBOARD_OIDC_ISSUER": &c.OIDCIssuer, "SWITCHBOARD_OIDC_CLIENT_ID": &c.OIDCClientID,
		"SWITCHBOARD_OIDC_REDIRECT_URL": &c.OIDCRedirectURL, "SWITCHBOARD_OIDC_ROLE_CLAIM": &c.OIDCRoleClaim,
		"SWITCHBOARD_OIDC_ROLES": &c.OIDCRoles,
		"SWITCHBOARD_PUBLIC_URL": &c.PublicURL, "SWITCHBOARD_CORS_ORIGINS": &c.CORSOrigins,
		"SWITCHBOARD_REGION": &c.Region, "SWITCHBOARD_GEO_HEADER": &c.GeoHeader, "SWITCHBOARD_GEO_MAP": &c.GeoMap,
		"SWITCHBOARD_PPROF_ADDR": &c.PprofAddr,
	}
	for k, p := range str {
		if v := getenv(k); v != "" {
			*p = v
		}
	}
	if v := getenv("SWITCHBOARD_PUBLIC_RATE_LIMIT"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("SWITCHBOARD_PUBLIC_RATE_LIMIT: not a number")
		}
		c.PublicRateLimit = f
	}
	for k, p := range map[string]*int{
		"SWITCHBOARD_PUBLIC_BURST": &c.PublicBurst, "SWITCHBOARD_HEALTH_CONCURRENCY": &c.HealthConcurrency,
		"SWITCHBOARD_MAX_INFLIGHT_FAILOVER": &c.MaxInflightFailover, "SWITCHBOARD_MAX_INFLIGHT_START": &c.MaxInflightStart,
		"SWITCHBOARD_MAX_INFLIGHT_OTHER": &c.MaxInflightOther, "SWITCHBOARD_SSE_PER_TOKEN": &c.SSEPerToken,
	} {
		if v := getenv(k); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s: not an integer", k)
			}
			*p = n
		}
	}
	if v := getenv("SWITCHBOARD_LEADER_LEASE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("SWITCHBOARD_LEADER_LEASE: not a duration")
		}
		c.LeaderLease = d
	}
	if v := getenv("SWITCHBOARD_ABANDON_AFTER"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("SWITCHBOARD_ABANDON_AFTER: not a duration")
		}
		c.AbandonAfter = d
	}
	if v := getenv("SWITCHBOARD_READ_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("SWITCHBOARD_READ_TIMEOUT: not a duration")
		}
		c.ReadTimeout = d
	}
	if v := getenv("SWITCHBOARD_SHUTDOWN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("SWITCHBOARD_SHUTDOWN_TIMEOUT: not a duration")
		}
		c.ShutdownTimeout = d
	}
	return nil
}

// headerNameRE matches an HTTP header name (RFC 9110 token).
var headerNameRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Addr == "" {
		return errors.New("addr: must not be empty")
	}
	if !strings.HasPrefix(c.DB, "sqlite:") && !strings.HasPrefix(c.DB, "postgres://") && !strings.HasPrefix(c.DB, "postgresql://") {
		return errors.New("db: must be sqlite:PATH or a postgres:// URL")
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		return errors.New("log-format: must be text or json")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return errors.New("log-level: must be debug, info, warn or error")
	}
	if c.PublicRateLimit < 0 || c.PublicBurst < 1 {
		return errors.New("public-rate-limit must be ≥ 0 and public-burst ≥ 1")
	}
	if c.HealthConcurrency < 1 || c.HealthConcurrency > 1024 {
		return errors.New("health-concurrency: must be from 1 to 1024")
	}
	if c.MaxInflightFailover < 0 || c.MaxInflightStart < 0 || c.MaxInflightOther < 0 {
		return errors.New("max-inflight-failover, max-inflight-start and max-inflight-other: must be ≥ 0 (0: no limit)")
	}
	if c.AbandonAfter < 10*time.Second || c.AbandonAfter > 24*time.Hour {
		return errors.New("abandon-after: must be from 10s to 24h")
	}
	if c.LeaderLease < switchboard.MinLeaderLease || c.LeaderLease > switchboard.MaxLeaderLease {
		return fmt.Errorf("leader-lease: must be from %s to %s", switchboard.MinLeaderLease, switchboard.MaxLeaderLease)
	}
	if c.ShutdownTimeout <= 0 {
		return errors.New("shutdown-timeout: must be positive")
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return errors.New("public-url: must be an absolute http or https URL")
		}
	}
	if c.Region != "" && !switchboard.ValidSlug(c.Region) {
		return fmt.Errorf("region: must match %s, such as eu-west", switchboard.SlugPattern)
	}
	if c.GeoHeader != "" && !headerNameRE.MatchString(c.GeoHeader) {
		return errors.New("geo-header: must be an HTTP header name, such as CF-IPCountry")
	}
	if err := validatePprofAddr(c.PprofAddr); err != nil {
		return err
	}
	if err := c.validateSecurity(); err != nil {
		return err
	}
	return c.validateOIDC()
}

// validatePprofAddr accepts an empty address (the profiler off) or a
// host:port whose host is a loopback IP address or localhost.
func validatePprofAddr(addr string) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("pprof-addr: %q is not host:port", addr)
	}
	if host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("pprof-addr: %q is not a loopback address (use 127.0.0.1:PORT or [::1]:PORT): profiles expose the process's memory", addr)
}
