package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/client/internal/transport"
)

// maxResponse bounds how much of an answer is read.
const maxResponse = 4 << 20

// Error is an error answer of the control plane: its HTTP status, the fields
// of its error envelope and the Retry-After it asked for. Its message never
// holds the token the Client authenticates with. The admin client
// (package client/admin) returns the same type.
type Error = transport.Error

// IsStatus reports whether err is, or wraps, an *Error with the HTTP status.
func IsStatus(err error, status int) bool { return transport.IsStatus(err, status) }

// retryable reports whether a failed call may succeed if made again: network
// errors, timeouts, rate limits and unavailability do; refusals do not.
func retryable(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return !errors.Is(err, context.Canceled)
	}
	return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
}

// unreachable reports whether err says that the control plane could not be
// reached or did not answer, rather than that it answered with a refusal.
func unreachable(err error) bool {
	var e *Error
	return err != nil && (!errors.As(err, &e) || e.StatusCode >= 500)
}

// Config is the client configuration the control plane serves at
// GET /api/streaming/config. The Client keeps the last one it fetched and
// works from it while the control plane is unreachable.
type Config struct {
	// Providers are the enabled providers, by priority.
	Providers []ProviderConfig
	// MaxRetries is the number of start attempts, across providers.
	MaxRetries int
	// MaxFailures is the number of consecutive failed health checks, while the
	// event stream is down, after which streams leave a provider.
	MaxFailures int
	// HealthCheckInterval is the polling interval while the event stream is down.
	HealthCheckInterval time.Duration
	// RetryBackoff is the base of the jittered exponential backoff.
	RetryBackoff time.Duration
	// RetryBudget is the share of operations in flight that may be retries.
	RetryBudget float64
	// FetchedAt is when the configuration was last fetched or confirmed.
	FetchedAt time.Time
}

// ProviderConfig is a provider as the configuration lists it. Usable is the
// control plane's verdict on whether it may take streams (Status.Usable),
// kept up to date with the status events; Healthy is the same value under
// its original name, as last fetched.
type ProviderConfig struct {
	Provider
	Usable  bool     `json:"usable"`
	Healthy bool     `json:"healthy"`
	State   string   `json:"state"`
	Regions []string `json:"regions"`
	// Maintenance is set while the provider is in a maintenance window: it
	// takes no new streams (the Client moves none to it), but its live
	// streams stay unless the control plane asks them to move.
	Maintenance *Maintenance `json:"maintenance,omitempty"`
}

// Maintenance is a provider's maintenance window as the configuration shows
// it: until when, and why.
type Maintenance struct {
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
}

// takesNew reports whether streams may move to p: it is usable and not in
// maintenance.
func (p ProviderConfig) takesNew() bool {
	return usable(p.Status) && (p.Maintenance == nil || !time.Now().Before(p.Maintenance.Until))
}

// provider returns the named provider of c.
func (c Config) provider(name string) (ProviderConfig, bool) {
	for _, p := range c.Providers {
		if p.Name == name {
			return p, true
		}
	}
	return ProviderConfig{}, false
}

func (c Config) clone() Config {
	c.Providers = append([]ProviderConfig(nil), c.Providers...)
	return c
}

type wireConfig struct {
	Providers           []ProviderConfig     `json:"providers"`
	MaxRetries          int                  `json:"maxRetries"`
	MaxFailures         int                  `json:"maxFailures"`
	HealthCheckInterval switchboard.Duration `json:"healthCheckInterval"`
	RetryBackoff        switchboard.Duration `json:"retryBackoff"`
	RetryBudget         float64              `json:"retryBudget"`
}

// config is the configuration w describes, fetched at now. A field the
// server left out or zero (an older server sends fewer) takes the original
// app's value: 3 attempts, 3 failures, a 30 s poll, a 100 ms backoff base and
// the default retry budget (also for a share above 1).
func (w wireConfig) config(now time.Time) Config {
	c := Config{
		Providers: w.Providers, MaxRetries: w.MaxRetries, MaxFailures: w.MaxFailures,
		HealthCheckInterval: w.HealthCheckInterval.D(), RetryBackoff: w.RetryBackoff.D(), RetryBudget: w.RetryBudget,
		FetchedAt: now,
	}
	if c.MaxRetries <= 0 {
		c.MaxRetries = 3
	}
	if c.MaxFailures <= 0 {
		c.MaxFailures = 3
	}
	if c.HealthCheckInterval <= 0 {
		c.HealthCheckInterval = 30 * time.Second
	}
	if c.RetryBackoff <= 0 {
		c.RetryBackoff = 100 * time.Millisecond
	}
	if c.RetryBudget <= 0 || c.RetryBudget > 1 {
		c.RetryBudget = defaultBudgetRatio
	}
	return c
}

// wireAssignment is the body of a start or migrate answer.
type wireAssignment struct {
	ID     string `json:"id"`
	Room   string `json:"room"`
	UserID string `json:"userId"`
	Role   Role   `json:"role"`
	wireToken
	Fallbacks []string   `json:"fallbacks"`
	Standby   *wireToken `json:"standby"`
}

// wireToken is a token on a provider: the assignment's own, or its standby,
// a token on the provider the stream would fail over to, minted ahead of
// need.
type wireToken struct {
	Provider       Provider   `json:"provider"`
	Token          string     `json:"token"`
	TokenExpiresAt *time.Time `json:"tokenExpiresAt"`
}

// grant is what the control plane gave a stream: its assignment, the
// providers to try next and a standby assignment on the first of them.
type grant struct {
	a         Assignment
	fallbacks []string
	standby   *Assignment
}

func (w wireAssignment) grant() grant {
	a := w.wireToken.on(Assignment{StreamID: w.ID, Room: w.Room, UserID: w.UserID, Role: w.Role})
	return grant{a: a, fallbacks: w.Fallbacks, standby: w.Standby.standby(a)}
}

// on is a with w's provider and token.
func (w wireToken) on(a Assignment) Assignment {
	a.Provider, a.Token, a.TokenExpiresAt = w.Provider, w.Token, time.Time{}
	if w.TokenExpiresAt != nil {
		a.TokenExpiresAt = *w.TokenExpiresAt
	}
	return a
}

// standby is the standby w as an assignment of the stream of a (nil when
// there is none).
func (w *wireToken) standby(a Assignment) *Assignment {
	if w == nil || w.Token == "" || w.Provider.Name == "" {
		return nil
	}
	sa := w.on(a)
	return &sa
}

type startBody struct {
	Room           string   `json:"room"`
	UserID         string   `json:"userId"`
	Role           Role     `json:"role"`
	Region         string   `json:"region,omitempty"`
	Quality        Quality  `json:"quality,omitempty"`
	Exclude        []string `json:"exclude,omitempty"`
	IdempotencyKey string   `json:"idempotencyKey,omitempty"`
}

type failureBody struct {
	Provider string `json:"provider"`
	Stage    string `json:"stage"`
	Code     string `json:"code,omitempty"`
	Message  string `json:"message,omitempty"`
}

type migrateBody struct {
	To     string `json:"to,omitempty"`
	Reason string `json:"reason"`
	// MovedAt reports a move made already (to a standby).
	MovedAt *time.Time `json:"movedAt,omitempty"`
	// Exclude lists providers the new assignment and its standby must avoid.
	Exclude []string `json:"exclude,omitempty"`
}

type heartbeatBody struct {
	Exclude []string `json:"exclude,omitempty"`
}

// heartbeatAnswer is the part of a heartbeat answer the SDK uses.
type heartbeatAnswer struct {
	Provider string     `json:"provider"` // where the server has the stream
	Standby  *wireToken `json:"standby"`
}

// publicHealth is the body of the public health endpoint.
type publicHealth struct {
	Name    string `json:"name"`
	Healthy bool   `json:"healthy"`
	Status  Status `json:"status"`
}

// call makes one API request under the Client's request timeout and decodes
// a JSON answer into out (when not nil).
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.requestTimeout)
	defer cancel()
	return named(method, path, c.api.Do(ctx, method, path, in, out))
}

// named puts the method and path in front of an error answer, as the
// transport does for its other errors, so that logs say which call failed.
func named(method, path string, err error) error {
	if e, ok := err.(*Error); ok {
		return fmt.Errorf("%s %s: %w", method, path, e)
	}
	return err
}

// retryAfterOf is the Retry-After of err, or zero.
func retryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

func streamPath(id, action string) string {
	return "/api/streams/" + url.PathEscape(id) + "/" + action
}

func (c *Client) startStream(ctx context.Context, b startBody) (grant, error) {
	var w wireAssignment
	if err := c.call(ctx, http.MethodPost, "/api/streams", b, &w); err != nil {
		return grant{}, err
	}
	return w.grant(), nil
}

func (c *Client) migrateStream(ctx context.Context, id string, b migrateBody) (grant, error) {
	var w wireAssignment
	if err := c.call(ctx, http.MethodPost, streamPath(id, "migrate"), b, &w); err != nil {
		return grant{}, err
	}
	return w.grant(), nil
}

func (c *Client) reportFailure(ctx context.Context, id string, f failureBody) error {
	if len(f.Message) > 1024 {
		f.Message = f.Message[:1024]
	}
	return c.call(ctx, http.MethodPost, streamPath(id, "failures"), f, nil)
}

func (c *Client) endStream(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodPost, streamPath(id, "end"), nil, nil)
}

// heartbeatStream tells the server the stream is alive and returns the answer,
// with a fresh standby.
func (c *Client) heartbeatStream(ctx context.Context, id string, b heartbeatBody) (heartbeatAnswer, error) {
	var ans heartbeatAnswer
	err := c.call(ctx, http.MethodPost, streamPath(id, "heartbeat"), b, &ans)
	return ans, err
}

// fetchConfig fetches the configuration, sending the ETag of the one it has;
// changed is false when the server answered 304 Not Modified.
func (c *Client) fetchConfig(ctx context.Context, etag string) (cfg Config, newTag string, changed bool, err error) {
	const path = "/api/streaming/config"
	ctx, cancel := context.WithTimeout(ctx, c.requestTimeout)
	defer cancel()
	r := transport.Request{Method: http.MethodGet, Path: path}
	if etag != "" {
		r.Header = http.Header{"If-None-Match": {etag}}
	}
	resp, err := c.api.Open(ctx, r)
	if err != nil {
		return Config{}, "", false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotModified {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxResponse))
		return Config{}, etag, false, nil
	}
	var w wireConfig
	if err := c.api.Decode(http.MethodGet, path, resp, &w); err != nil {
		return Config{}, "", false, named(http.MethodGet, path, err)
	}
	return w.config(time.Now()), resp.Header.Get("ETag"), true, nil
}

// providerHealth reads the public health of a provider.
func (c *Client) providerHealth(ctx context.Context, name string) (publicHealth, error) {
	var h publicHealth
	err := c.call(ctx, http.MethodGet, "/api/streaming/providers/"+url.PathEscape(name)+"/health", nil, &h)
	return h, err
}
