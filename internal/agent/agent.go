// Package agent is the probe agent (switchboard agent): it reads the
// providers from a server with an agent-role token, probes them from where it
// runs with the same Checker and Scheduler as the server (internal/health),
// once at start and then at each provider's interval, and reports the results
// for its region.
package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/health"
)

// Defaults of Config.
const (
	// DefaultRefresh is how often the agent reads the providers again.
	DefaultRefresh = 5 * time.Minute
	// requestTimeout bounds each call to the server.
	requestTimeout = 15 * time.Second
	// maxPending is the most results kept while the server cannot be
	// reached; the oldest go first.
	maxPending = 100
)

// Config wires an agent. Server, Token, Region and Probers are required.
type Config struct {
	// Server is the base URL of the control plane.
	Server string
	// Token is a bearer token of role agent.
	Token string
	// Region is the region the agent probes from.
	Region string
	// Probers holds the adapter of each provider kind (providers.Probers).
	Probers map[sb.Kind]sb.Prober
	// HTTP calls the server; nil: a client of the agent's own, whose idle
	// connections are closed when Run returns.
	HTTP *http.Client
	// Logger receives what the agent does; nil discards.
	Logger *slog.Logger
	// Refresh is how often the providers are read again (new providers,
	// changed intervals); zero means DefaultRefresh.
	Refresh time.Duration
	// MaxConcurrent bounds the probes running at once (zero: the Checker's
	// default).
	MaxConcurrent int
}

// Run probes and reports until ctx ends, then returns nil once every
// goroutine it started has exited. It returns an error at once when the
// configuration is wrong or the server refuses the token (401 or 403); a
// server it cannot reach is tried again at each refresh.
func Run(ctx context.Context, cfg Config) error {
	base, err := url.Parse(cfg.Server)
	switch {
	case err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "":
		return errors.New("agent: the server must be an http or https URL")
	case cfg.Token == "":
		return errors.New("agent: a token of role agent is required")
	case !sb.ValidSlug(cfg.Region):
		return fmt.Errorf("agent: the region must match %s, such as eu-west", sb.SlugPattern)
	case len(cfg.Probers) == 0:
		return errors.New("agent: no probers")
	}
	hc := cfg.HTTP
	if hc == nil {
		hc = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		defer hc.CloseIdleConnections()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("region", cfg.Region)
	refresh := cfg.Refresh
	if refresh <= 0 {
		refresh = DefaultRefresh
	}
	c := &client{base: strings.TrimSuffix(base.String(), "/"), token: cfg.Token, hc: hc}
	reg := &registry{c: c}
	rep := &reporter{c: c, region: cfg.Region, log: log, health: map[string]sb.Health{}}

	if _, err := reg.ListProviders(ctx); err != nil {
		var se *statusError
		if errors.As(err, &se) && (se.status == http.StatusUnauthorized || se.status == http.StatusForbidden) {
			return fmt.Errorf("agent: the server refused the token: %w", err)
		}
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("agent cannot read the providers yet", "error", err)
	}
	checker, err := health.NewChecker(health.Config{Registry: reg, Health: rep, Probers: cfg.Probers, Logger: log, MaxConcurrent: cfg.MaxConcurrent})
	if err != nil {
		return err
	}
	// The first probe of each provider comes at once (within a
	// millisecond), then one every interval.
	sched := health.NewScheduler(checker, health.SchedulerConfig{Resync: refresh, MaxStagger: time.Millisecond, Logger: log})
	log.Info("agent started", "server", c.base)
	err = sched.Run(ctx)
	log.Info("agent stopped")
	return err
}

// client calls the agent routes of the server.
type client struct {
	base  string
	token string
	hc    *http.Client
}

// statusError is an answer of the server other than 2xx. Its message is the
// server's error message, which never holds a secret.
type statusError struct {
	status  int
	message string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("server answered %d: %s", e.status, e.message)
}

func (c *client) do(ctx context.Context, method, path string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var eb struct {
			Error struct{ Message string } `json:"error"`
		}
		_ = json.Unmarshal(b, &eb)
		return fmt.Errorf("%s %s: %w", method, path, &statusError{status: resp.StatusCode, message: eb.Error.Message})
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// wireProvider is a provider as GET /api/agent/providers gives it.
type wireProvider struct {
	Name        string               `json:"name"`
	Kind        sb.Kind              `json:"kind"`
	Enabled     bool                 `json:"enabled"`
	Config      sb.ProviderConfig    `json:"config"`
	HealthCheck sb.HealthCheckPolicy `json:"healthCheck"`
	Credentials sb.CredentialsInput  `json:"credentials"`
}

// registry is the health.Registry of the agent: the providers as last read
// from the server. ListProviders reads them (the Scheduler calls it at start
// and at each refresh); GetProvider answers from what was read.
type registry struct {
	c  *client
	mu sync.Mutex
	// recs are the providers last read; guarded by mu.
	recs []sb.ProviderRecord
}

// ListProviders reads the providers from the server.
func (r *registry) ListProviders(ctx context.Context) ([]sb.ProviderRecord, error) {
	var body struct{ Providers []wireProvider }
	if err := r.c.do(ctx, http.MethodGet, "/api/agent/providers", nil, &body); err != nil {
		return nil, err
	}
	recs := make([]sb.ProviderRecord, 0, len(body.Providers))
	for _, p := range body.Providers {
		recs = append(recs, sb.ProviderRecord{Provider: sb.Provider{
			Name: p.Name, Kind: p.Kind, Enabled: p.Enabled, Config: p.Config, HealthCheck: p.HealthCheck,
			Credentials: p.Credentials.Apply(sb.Credentials{}),
		}})
	}
	r.mu.Lock()
	r.recs = recs
	r.mu.Unlock()
	return slices.Clone(recs), nil
}

// GetProvider returns a provider as last read; ENotFound when it was not
// among them.
func (r *registry) GetProvider(_ context.Context, name string) (sb.ProviderRecord, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.recs {
		if rec.Name == name {
			return rec, nil
		}
	}
	return sb.ProviderRecord{}, sb.Errorf(sb.ENotFound, "provider %s not found", name)
}

// reporter is the health.HealthRecorder of the agent: it keeps the health
// of each provider as seen from the agent (for its log of status changes)
// and sends each result to the server, with those that could not be sent
// before.
type reporter struct {
	c      *client
	region string
	log    *slog.Logger

	mu sync.Mutex
	// health is each provider's health from here; guarded by mu.
	health map[string]sb.Health
	// pending are the results not sent yet, oldest first; guarded by mu.
	pending []wireResult
}

// wireResult is one result of POST /api/agent/results.
type wireResult struct {
	Provider  string    `json:"provider"`
	OK        bool      `json:"ok"`
	LatencyMs int64     `json:"latencyMs"`
	Stage     sb.Stage  `json:"stage,omitempty"`
	Message   string    `json:"message,omitempty"`
	At        time.Time `json:"at"`
}

// RecordCheck folds r into the provider's health from here and reports it.
// A report the server cannot take now is kept for the next one; one that it
// refuses (4xx) is dropped. It never fails the probe.
func (rep *reporter) RecordCheck(ctx context.Context, name string, r sb.ProbeResult, fold func(sb.Health) sb.Health) (before, after sb.Health, err error) {
	rep.mu.Lock()
	before = rep.health[name]
	after = fold(before)
	rep.health[name] = after
	rep.pending = append(rep.pending, wireResult{Provider: name, OK: r.OK, LatencyMs: r.Latency.Milliseconds(), Stage: r.Stage, Message: r.Message, At: r.At})
	if len(rep.pending) > maxPending {
		rep.pending = slices.Delete(rep.pending, 0, len(rep.pending)-maxPending)
	}
	batch := slices.Clone(rep.pending)
	rep.pending = rep.pending[:0]
	rep.mu.Unlock()

	err = rep.c.do(ctx, http.MethodPost, "/api/agent/results", map[string]any{"region": rep.region, "results": batch}, nil)
	var se *statusError
	switch {
	case err == nil:
		rep.log.Debug("agent reported", "provider", name, "ok", r.OK, "results", len(batch))
	case errors.As(err, &se) && se.status/100 == 4 && se.status != http.StatusTooManyRequests:
		rep.log.Warn("agent report refused", "provider", name, "results", len(batch), "error", err)
	default:
		rep.mu.Lock()
		rep.pending = append(batch, rep.pending...)
		if len(rep.pending) > maxPending {
			rep.pending = slices.Delete(rep.pending, 0, len(rep.pending)-maxPending)
		}
		rep.mu.Unlock()
		if ctx.Err() == nil {
			rep.log.Warn("agent cannot report: kept for the next report", "provider", name, "error", err)
		}
	}
	return before, after, nil
}

// UpdateHealth is not used by the agent: it reports probes only.
func (rep *reporter) UpdateHealth(context.Context, string, time.Time, func(sb.Health) sb.Health) (before, after sb.Health, err error) {
	return before, after, sb.Errorf(sb.EUnavailable, "the agent records probes only")
}
