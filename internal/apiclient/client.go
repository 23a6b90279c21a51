// Package apiclient is a small Go client for Switchboard's admin API, used by
// the switchboard command line. Every method takes a context, sends the bearer
// token it was built with and turns the server's error envelope into an *Error.
//
// The token is sent only in the Authorization header: it never appears in an
// error returned by this package.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/switchboardhq/switchboard"
)

// maxResponse bounds how much of a response body is read.
const maxResponse = 16 << 20

// Client calls one Switchboard server. It is safe for concurrent use.
type Client struct {
	base      string // scheme://host[/prefix], without a trailing slash
	token     string
	hc        *http.Client
	userAgent string
}

// New returns a client for the server at baseURL (for example
// http://127.0.0.1:8080) that authenticates with token; an empty token sends no
// Authorization header. hc is the HTTP client to use; nil means
// http.DefaultClient.
func New(baseURL, token string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: must be an absolute http or https URL", redact(baseURL))
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("server URL %q: must not have a query or fragment", redact(baseURL))
	}
	if strings.ContainsAny(token, "\r\n") {
		return nil, errors.New("token: must be on one line")
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{
		base: strings.TrimRight(u.String(), "/"), token: token, hc: hc,
		userAgent: "switchboard-cli/" + switchboard.Version,
	}, nil
}

// redact hides a password in a URL given by the user.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// BaseURL returns the server's base URL.
func (c *Client) BaseURL() string { return c.base }

// CloseIdleConnections closes the idle connections of the underlying HTTP client.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// Error is an error answered by the server: its HTTP status and the fields of
// the error envelope {"error":{"code","message","field"}}.
type Error struct {
	Status  int
	Code    string
	Message string
	Field   string
}

// Error formats e as "STATUS code: message (field F)".
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	b.WriteString(": " + e.Message)
	if e.Field != "" {
		b.WriteString(" (field " + e.Field + ")")
	}
	return b.String()
}

// IsStatus reports whether err is an *Error with the HTTP status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// Do sends a request with body encoded as JSON (nil sends none; a
// json.RawMessage is sent as is) and decodes a successful answer into out
// (nil discards it; a *json.RawMessage receives the body as sent). A status of
// 400 or more is returned as an *Error.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		var b []byte
		if raw, ok := body.(json.RawMessage); ok {
			if !json.Valid(raw) {
				return fmt.Errorf("%s %s: request body is not valid JSON", method, path)
			}
			b = raw
		} else {
			var err error
			if b, err = json.Marshal(body); err != nil {
				return fmt.Errorf("%s %s: encode request: %w", method, path, err)
			}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// *url.Error names the method and the URL (without a password); the
		// token travels in a header and is not part of it.
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		return errorFrom(resp.StatusCode, data)
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode response: %w", method, path, err)
	}
	return nil
}

// errorFrom reads the error envelope; a body that is not one (from a proxy, say)
// is reported by its status text.
func errorFrom(status int, data []byte) *Error {
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	if err := json.Unmarshal(data, &env); err == nil && env.Error.Message != "" {
		return &Error{Status: status, Code: env.Error.Code, Message: env.Error.Message, Field: env.Error.Field}
	}
	return &Error{Status: status, Message: strings.ToLower(http.StatusText(status))}
}
