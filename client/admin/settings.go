package admin

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/switchboardhq/switchboard"
)

const settingsPath = "/api/settings"

// Settings are the settings operators tune at run time, with their values
// now: the SDK settings served in /api/streaming/config and the leader lease.
type Settings struct {
	switchboard.Settings

	// JSON is the server's answer as received.
	JSON json.RawMessage `json:"-"`
}

// GetSettings reads the settings (role admin).
func (c *Client) GetSettings(ctx context.Context) (Settings, error) {
	s, raw, err := call[Settings](ctx, c, http.MethodGet, settingsPath, nil)
	s.JSON = raw
	return s, err
}

// UpdateSettings changes the settings present in in and keeps the others
// (role superadmin). A value out of range is refused with a 400 *Error
// naming the field, and nothing changes. It returns the settings after the
// change.
func (c *Client) UpdateSettings(ctx context.Context, in switchboard.SettingsInput) (Settings, error) {
	s, raw, err := call[Settings](ctx, c, http.MethodPut, settingsPath, in)
	s.JSON = raw
	return s, err
}
