package admin

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/switchboardhq/switchboard"
)

const routingPath = "/api/routing"

// Routing is the routing configuration: how new streams are spread over the
// usable providers.
type Routing struct {
	switchboard.RoutingConfig
	// Starts are the streams started over the last day by policy scope (""
	// for the global policy, else a region) and provider; GetRouting only.
	Starts switchboard.RoutingStarts `json:"starts,omitempty"`

	// JSON is the server's answer as received.
	JSON json.RawMessage `json:"-"`
}

// GetRouting reads the routing configuration (role admin).
func (c *Client) GetRouting(ctx context.Context) (Routing, error) {
	r, raw, err := call[Routing](ctx, c, http.MethodGet, routingPath, nil)
	r.JSON = raw
	return r, err
}

// UpdateRouting changes the fields present in in and keeps the others (role
// superadmin). An invalid value is refused with a 400 *Error naming the
// field, and nothing changes. It returns the configuration after the change.
func (c *Client) UpdateRouting(ctx context.Context, in switchboard.RoutingInput) (Routing, error) {
	r, raw, err := call[Routing](ctx, c, http.MethodPut, routingPath, in)
	r.JSON = raw
	return r, err
}
