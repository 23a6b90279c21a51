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
	"net/url"
	"os"
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
	// PublicRateLimit is the requests per second allowed per client IP on the
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

	// Secrets come from the environment only, never from flags (which other
	// users of the machine can read) or the file.
	BootstrapToken string `yaml:"-"`
	AdminPassword  string `yaml:"-"`
	SecretKey      string `yaml:"-"`
}

// Default returns the built-in defaults.
func Default() Config {
	return Config{
		Addr: "127.0.0.1:8080", DB: "sqlite:switchboard.db", LogFormat: "text", LogLevel: "info",
		PublicRateLimit: 10, PublicBurst: 20, HealthConcurrency: 16, ShutdownTimeout: 15 * time.Second,
		// Sized for a 2-core node on SQLite (one writer): failover work gets
		// the most room, new starts less, and the rest of the API least.
		MaxInflightFailover: 256, MaxInflightStart: 128, MaxInflightOther: 64,
		LeaderLease: switchboard.DefaultLeaderLease,
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
	fs.Float64Var(&c.PublicRateLimit, "public-rate-limit", c.PublicRateLimit, "requests/s per client IP on public endpoints; 0 = off (env SWITCHBOARD_PUBLIC_RATE_LIMIT)")
	fs.IntVar(&c.PublicBurst, "public-burst", c.PublicBurst, "burst of the public rate limit (env SWITCHBOARD_PUBLIC_BURST)")
	fs.IntVar(&c.HealthConcurrency, "health-concurrency", c.HealthConcurrency, "probes run at once at most (env SWITCHBOARD_HEALTH_CONCURRENCY)")
	fs.IntVar(&c.MaxInflightFailover, "max-inflight-failover", c.MaxInflightFailover, "failover requests (migrate, heartbeat, failures, end) served at once; 0 = no limit (env SWITCHBOARD_MAX_INFLIGHT_FAILOVER)")
	fs.IntVar(&c.MaxInflightStart, "max-inflight-start", c.MaxInflightStart, "stream starts served at once; 0 = no limit (env SWITCHBOARD_MAX_INFLIGHT_START)")
	fs.IntVar(&c.MaxInflightOther, "max-inflight-other", c.MaxInflightOther, "other API requests served at once; 0 = no limit (env SWITCHBOARD_MAX_INFLIGHT_OTHER)")
	fs.DurationVar(&c.LeaderLease, "leader-lease", c.LeaderLease, "lease of the leading replica, renewed every third of it, unless the setting leaderLease is set (env SWITCHBOARD_LEADER_LEASE)")
	fs.StringVar(&c.PublicURL, "public-url", c.PublicURL, "the dashboard's public URL, linked from alert notifications (env SWITCHBOARD_PUBLIC_URL)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", c.ShutdownTimeout, "time allowed for in-flight requests at shutdown (env SWITCHBOARD_SHUTDOWN_TIMEOUT)")
	return fs
}

func applyEnv(c *Config, getenv func(string) string) error {
	str := map[string]*string{
		"SWITCHBOARD_ADDR": &c.Addr, "SWITCHBOARD_DB": &c.DB,
		"SWITCHBOARD_LOG_FORMAT": &c.LogFormat, "SWITCHBOARD_LOG_LEVEL": &c.LogLevel,
		"SWITCHBOARD_PUBLIC_URL": &c.PublicURL,
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
		"SWITCHBOARD_MAX_INFLIGHT_OTHER": &c.MaxInflightOther,
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
	if v := getenv("SWITCHBOARD_SHUTDOWN_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("SWITCHBOARD_SHUTDOWN_TIMEOUT: not a duration")
		}
		c.ShutdownTimeout = d
	}
	return nil
}

// Validate checks the configuration.
func (c Config) Validate() error {
	if c.Addr == "" {
		return errors.New("addr: must not be empty")
	}
	if !strings.HasPrefix(c.DB, "sqlite:") && !strings.HasPrefix(c.DB, "postgres://") && !strings.HasPrefix(c.DB, "postgresql://") {
		return errors.New("db: must be sqlite:PATH or postgres://...")
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
	return nil
}
