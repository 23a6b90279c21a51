package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/switchboardhq/switchboard"
)

const maintenancePath = "/api/maintenance"

// Window is a maintenance window as the server shows it: with its state now
// ("upcoming", "active" or "past") and, when it drains, when the drain
// begins and how it goes (DrainProgress).
type Window struct {
	switchboard.MaintenanceWindow
	State      string     `json:"state"`
	DrainStart *time.Time `json:"drainStart"`

	// JSON is the server's answer as received.
	JSON json.RawMessage `json:"-"`
}

// WindowList is a list of maintenance windows.
type WindowList struct {
	Windows []Window `json:"windows"`

	// JSON is the server's answer as received.
	JSON json.RawMessage `json:"-"`
}

// ScheduleMaintenance schedules a maintenance window (role admin). Bad input
// is refused with a 400 *Error naming the field, and nothing is stored.
func (c *Client) ScheduleMaintenance(ctx context.Context, in switchboard.MaintenanceInput) (Window, error) {
	w, raw, err := call[Window](ctx, c, http.MethodPost, maintenancePath, in)
	w.JSON = raw
	return w, err
}

// ListMaintenance lists maintenance windows: those in state ("" for every
// state) of provider ("" for every provider).
func (c *Client) ListMaintenance(ctx context.Context, state, provider string) (WindowList, error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	if provider != "" {
		q.Set("provider", provider)
	}
	path := maintenancePath
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	l, raw, err := call[WindowList](ctx, c, http.MethodGet, path, nil)
	l.JSON = raw
	return l, err
}

// GetMaintenance returns one maintenance window.
func (c *Client) GetMaintenance(ctx context.Context, id string) (Window, error) {
	w, raw, err := call[Window](ctx, c, http.MethodGet, maintenancePath+"/"+url.PathEscape(id), nil)
	w.JSON = raw
	return w, err
}

// EndMaintenance ends a window now; one that has not started is cancelled.
// A window that is over already is a 409 *Error.
func (c *Client) EndMaintenance(ctx context.Context, id string) (Window, error) {
	w, raw, err := call[Window](ctx, c, http.MethodPost, maintenancePath+"/"+url.PathEscape(id)+"/end", nil)
	w.JSON = raw
	return w, err
}
