package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/switchboardhq/switchboard"
)

// Provider is a provider as the admin API shows it: its settings, never its
// credentials, and its health.
type Provider struct {
	switchboard.Provider
	CredentialsSet bool               `json:"credentialsSet"`
	Status         switchboard.Status `json:"status"` // the badge: EXCELLENT … UNKNOWN
	State          switchboard.State  `json:"state"`  // active, degraded, down or unknown
	// Usable is the server's verdict on whether the provider may take
	// streams (switchboard.Status.Usable): an UNKNOWN provider, never
	// verified by a successful check, is not usable.
	Usable               bool                    `json:"usable"`
	Uptime               float64                 `json:"uptime"`    // percent of successful checks
	ErrorRate            float64                 `json:"errorRate"` // percent of failed requests
	ConsecutiveFailures  int                     `json:"consecutiveFailures"`
	ConsecutiveSuccesses int                     `json:"consecutiveSuccesses"`
	TotalChecks          int64                   `json:"totalChecks"`
	SuccessfulChecks     int64                   `json:"successfulChecks"`
	LastCheck            *time.Time              `json:"lastCheck"`
	Latency              int64                   `json:"latency"` // ms, of the last check
	AverageLatency       float64                 `json:"averageLatency"`
	TotalRequests        int64                   `json:"totalRequests"`
	FailedRequests       int64                   `json:"failedRequests"`
	LastError            *switchboard.ProbeError `json:"lastError"`
	// RegionalHealth is the provider's health in each region where the
	// server's own probes or probe agents probe it.
	RegionalHealth map[string]RegionalHealth `json:"regionalHealth"`

	// JSON is the server's answer as received, for callers that print it. It
	// is set by the methods that return a single provider.
	JSON json.RawMessage `json:"-"`
}

// RegionalHealth is a provider's health in one region. A region whose
// reports stopped for 3 of the provider's intervals (at least a minute) is
// Stale and UNKNOWN.
type RegionalHealth struct {
	Status    switchboard.Status `json:"status"`
	Usable    bool               `json:"usable"`
	Stale     bool               `json:"stale"`
	Reason    string             `json:"reason"`
	Uptime    float64            `json:"uptime"`    // percent of successful checks from the region
	ErrorRate float64            `json:"errorRate"` // percent of failed checks from the region
	Latency   int64              `json:"latency"`   // ms, of the last check from the region
	LastCheck *time.Time         `json:"lastCheck"`
	// Quality is the quality score (0–100) clients measured in the region
	// over the last hour; nil without samples.
	Quality *float64 `json:"quality"`
	// Source is "server", or "agent:" and the name of the agent's token.
	Source string `json:"source"`
}

// ProviderList is a list of providers, highest priority first.
type ProviderList struct {
	Providers []Provider `json:"providers"`

	// JSON is the server's answer as received.
	JSON json.RawMessage `json:"-"`
}

const providersPath = "/api/streaming/providers"

func providerPath(name string) string { return providersPath + "/" + url.PathEscape(name) }

// ListProviders returns every provider, highest priority first.
func (c *Client) ListProviders(ctx context.Context) (ProviderList, error) {
	return c.providerList(ctx, http.MethodGet, providersPath, nil)
}

// GetProvider returns one provider.
func (c *Client) GetProvider(ctx context.Context, name string) (Provider, error) {
	return c.provider(ctx, http.MethodGet, providerPath(name), nil)
}

// CreateProvider creates a provider. in is a switchboard.ProviderInput or any
// value that encodes to the same JSON, such as a json.RawMessage sent as is.
func (c *Client) CreateProvider(ctx context.Context, in any) (Provider, error) {
	return c.provider(ctx, http.MethodPost, providersPath, in)
}

// UpdateProvider changes the fields present in in (a switchboard.ProviderInput
// or its JSON) and returns the provider as stored. The server replaces config
// as a whole when it is present, and merges credentials field by field.
func (c *Client) UpdateProvider(ctx context.Context, name string, in any) (Provider, error) {
	return c.provider(ctx, http.MethodPut, providerPath(name), in)
}

// SetEnabled enables or disables a provider.
func (c *Client) SetEnabled(ctx context.Context, name string, enabled bool) (Provider, error) {
	return c.UpdateProvider(ctx, name, switchboard.ProviderInput{Enabled: &enabled})
}

// ReorderProviders gives the named providers priorities 1..n in that order;
// order must name every provider exactly once.
func (c *Client) ReorderProviders(ctx context.Context, order []string) (ProviderList, error) {
	return c.providerList(ctx, http.MethodPut, providersPath+"/priorities", map[string][]string{"order": order})
}

// DeleteProvider removes a provider.
func (c *Client) DeleteProvider(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, providerPath(name), nil, nil)
}

func (c *Client) provider(ctx context.Context, method, path string, in any) (Provider, error) {
	p, raw, err := call[Provider](ctx, c, method, path, in)
	p.JSON = raw
	return p, err
}

func (c *Client) providerList(ctx context.Context, method, path string, in any) (ProviderList, error) {
	l, raw, err := call[ProviderList](ctx, c, method, path, in)
	l.JSON = raw
	return l, err
}
