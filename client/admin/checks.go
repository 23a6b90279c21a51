package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/switchboardhq/switchboard"
)

// CheckResult is the outcome of a health check run on demand: Healthy is the
// outcome of this probe; Status, State and Usable are the provider's after
// it, so a failed probe can leave a provider that is still usable.
type CheckResult struct {
	Name      string             `json:"name"`
	Healthy   bool               `json:"healthy"`   // this probe succeeded; false when not probed
	Latency   int64              `json:"latency"`   // ms: of this probe when Probed, else of the last check
	Status    switchboard.Status `json:"status"`    // the badge: EXCELLENT … UNKNOWN
	State     switchboard.State  `json:"state"`     // active, degraded, down or unknown
	Usable    bool               `json:"usable"`    // the provider may take streams (Status.Usable)
	Uptime    float64            `json:"uptime"`    // percent of successful checks in the provider's window
	ErrorRate float64            `json:"errorRate"` // percent of failed requests in the provider's window
	LastCheck *time.Time         `json:"lastCheck"`
	// Probed is false when the provider was not probed (it is disabled, say).
	Probed bool              `json:"probed"`
	Stage  switchboard.Stage `json:"stage,omitempty"` // the failed stage of the probe
	Error  string            `json:"error,omitempty"` // the probe's error; never holds a secret

	// JSON is the server's answer as received. It is set by CheckProvider.
	JSON json.RawMessage `json:"-"`
}

// CheckResults are the outcomes of a check of every enabled provider.
type CheckResults struct {
	Results []CheckResult `json:"results"`

	// JSON is the server's answer as received.
	JSON json.RawMessage `json:"-"`
}

// CheckProvider probes one provider now and returns the outcome.
func (c *Client) CheckProvider(ctx context.Context, name string) (CheckResult, error) {
	r, raw, err := call[CheckResult](ctx, c, http.MethodPost, providerPath(name)+"/health-check", nil)
	r.JSON = raw
	return r, err
}

// CheckAllProviders probes every enabled provider now and returns the
// outcomes.
func (c *Client) CheckAllProviders(ctx context.Context) (CheckResults, error) {
	l, raw, err := call[CheckResults](ctx, c, http.MethodPost, providersPath+"/health-check-all", nil)
	l.JSON = raw
	return l, err
}
