package admin

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/client/internal/transport"
)

// maxAnswer bounds how much of an answer is read: a list of every provider
// or token may be long.
const maxAnswer = 16 << 20

// Client calls the admin API of one Switchboard server. It is safe for
// concurrent use.
type Client struct {
	api transport.Client
}

// New returns a client for the server at baseURL (for example
// http://127.0.0.1:8080) that authenticates with token; an empty token sends
// no Authorization header. hc is the HTTP client to use; nil means
// http.DefaultClient. A password in baseURL is sent as HTTP basic
// authentication and hidden in every error.
func New(baseURL, token string, hc *http.Client) (*Client, error) {
	base, _, err := transport.BaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	if err := transport.CheckToken(token); err != nil {
		return nil, err
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{api: transport.Client{
		Base: base, Token: token, HTTP: hc, MaxAnswer: maxAnswer,
		UserAgent: "switchboard-cli/" + switchboard.Version,
	}}, nil
}

// BaseURL returns the server's base URL, without a trailing slash.
func (c *Client) BaseURL() string { return c.api.Base }

// CloseIdleConnections closes the idle connections of the underlying HTTP
// client.
func (c *Client) CloseIdleConnections() { c.api.HTTP.CloseIdleConnections() }

// Error is an error answered by the server: its HTTP status and the fields of
// the error envelope. It is the same type as client.Error.
type Error = transport.Error

// IsStatus reports whether err is, or wraps, an *Error with the HTTP status.
func IsStatus(err error, status int) bool { return transport.IsStatus(err, status) }

// Do sends a request to path (such as /api/audit, escaped by the caller) with
// body encoded as JSON (nil sends none; a json.RawMessage is sent as is) and
// decodes a successful answer into out (nil discards it; a *json.RawMessage
// receives the body as sent). It serves the endpoints this package has no
// method for. An answer of status 300 or more is returned as an *Error.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	return c.api.Do(ctx, method, path, body, out)
}

// call sends a request and decodes its answer into a T, keeping the answer
// as received for the caller to print.
func call[T any](ctx context.Context, c *Client, method, path string, in any) (T, json.RawMessage, error) {
	var (
		raw  json.RawMessage
		v    T
		zero T
	)
	if err := c.api.Do(ctx, method, path, in, &raw); err != nil {
		return zero, nil, err
	}
	if len(raw) == 0 {
		return zero, nil, fmt.Errorf("%s %s: empty answer", method, path)
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return zero, nil, fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return v, raw, nil
}
