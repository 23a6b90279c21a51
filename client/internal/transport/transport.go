// Package transport is the one HTTP client of Switchboard's API: the SDK
// (package client) and the admin client (package client/admin) both send
// their requests through it. It encodes request bodies as JSON, sends the
// bearer token in the Authorization header only, and turns an error answer
// into an *Error.
//
// Its errors never hold the token, nor the request URL: a transport error
// names the method and the API path, and an *Error is the server's answer.
package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Error is an error answer of the control plane: its HTTP status and the
// fields of the error envelope {"error":{"code","message","field"}}. Its
// message never holds the token the request was sent with.
type Error struct {
	StatusCode int    // the HTTP status
	Code       string // the error code, such as "unavailable" or "not_found"; empty when the answer had no envelope
	Message    string
	Field      string // the field at fault, for invalid requests
	// RetryAfter is how long the server asked the client to wait before trying
	// again (the Retry-After header of a 429 or 503), or zero.
	RetryAfter time.Duration
}

// Error formats e as "STATUS code: message (field F)".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(strconv.Itoa(e.StatusCode))
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	b.WriteString(": " + e.Message)
	if e.Field != "" {
		b.WriteString(" (field " + e.Field + ")")
	}
	return b.String()
}

// IsStatus reports whether err is, or wraps, an *Error with the HTTP status.
func IsStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == status
}

// BaseURL checks a server URL given by the user (an absolute http or https
// URL without query or fragment) and returns it without a trailing slash,
// with its parsed form. Its errors show the URL with any password hidden.
func BaseURL(raw string) (string, *url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", nil, fmt.Errorf("server URL %q: must be an absolute http or https URL", redact(raw))
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return "", nil, fmt.Errorf("server URL %q: must not have a query or fragment", redact(raw))
	}
	return strings.TrimRight(u.String(), "/"), u, nil
}

// redact hides a password in a URL given by the user.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable)"
	}
	return u.Redacted()
}

// CheckToken refuses a token that cannot travel in a header.
func CheckToken(token string) error {
	if strings.ContainsAny(token, "\r\n") {
		return errors.New("token: must be on one line")
	}
	return nil
}

// Client sends requests to one Switchboard server. It is safe for concurrent
// use once its fields are set.
type Client struct {
	Base      string       // scheme://host[/prefix], without a trailing slash (see BaseURL)
	Token     string       // the bearer token; empty sends no Authorization header
	Instance  string       // sent as X-Switchboard-Instance when set: the SDK instance, owner of the streams it starts
	HTTP      *http.Client // nil means http.DefaultClient
	UserAgent string       // empty leaves Go's default
	MaxAnswer int64        // how much of an answer is read at most; 0 means 4 MiB
}

// Request is a request to the API beyond what Do sends.
type Request struct {
	Method string
	Path   string // the API path, such as /api/streams; escaped by the caller
	// Body is encoded as JSON; nil sends none, and a json.RawMessage is sent
	// as is once checked to be valid JSON.
	Body   any
	Header http.Header // added to the request's headers, replacing any of the same name
}

// Do sends a request with body (see Request.Body) and decodes a successful
// answer into out (nil discards it; a *json.RawMessage receives the body as
// sent). An answer of status 300 or more is returned as an *Error, as is,
// without the method and path; other errors name them.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.Open(ctx, Request{Method: method, Path: path, Body: body})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return c.Decode(method, path, resp, out)
}

// Open sends r and returns the answer whatever its status; the caller closes
// its body. It asks for JSON unless r.Header says otherwise.
func (c *Client) Open(ctx context.Context, r Request) (*http.Response, error) {
	var rd io.Reader
	if r.Body != nil {
		b, err := encode(r.Body)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", r.Method, r.Path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, c.Base+r.Path, rd)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", r.Method, r.Path, err)
	}
	req.Header.Set("Accept", "application/json")
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.Instance != "" {
		req.Header.Set("X-Switchboard-Instance", c.Instance)
	}
	for k, v := range r.Header {
		req.Header[http.CanonicalHeaderKey(k)] = v
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		// The URL holds no secret (the token travels in a header), but the
		// error reads better with the method and path in front.
		return nil, fmt.Errorf("%s %s: %w", r.Method, r.Path, scrub(err))
	}
	return resp, nil
}

// encode is the JSON of a request body.
func encode(body any) ([]byte, error) {
	if raw, ok := body.(json.RawMessage); ok {
		if !json.Valid(raw) {
			return nil, errors.New("request body is not valid JSON")
		}
		return raw, nil
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return b, nil
}

// scrub drops the URL from a transport error, keeping what went wrong.
func scrub(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Decode reads the answer to method path into out (see Do), or into an *Error
// when its status is 300 or more. It does not close the body.
func (c *Client) Decode(method, path string, resp *http.Response, out any) error {
	limit := c.MaxAnswer
	if limit <= 0 {
		limit = 4 << 20
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return errorFrom(resp, data)
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// errorFrom reads the error envelope; a body that is not one (from a proxy,
// say) is reported by its status text.
func errorFrom(resp *http.Response, data []byte) *Error {
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	e := &Error{StatusCode: resp.StatusCode, RetryAfter: RetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	if err := json.Unmarshal(data, &env); err == nil && env.Error.Message != "" {
		e.Code, e.Message, e.Field = env.Error.Code, env.Error.Message, env.Error.Field
	} else {
		e.Message = strings.ToLower(http.StatusText(resp.StatusCode))
	}
	return e
}

// MaxRetryAfter caps how long a Retry-After can hold a client back.
const MaxRetryAfter = time.Minute

// RetryAfter parses a Retry-After header, in seconds or as an HTTP date, and
// caps it at MaxRetryAfter.
func RetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.Atoi(v); err == nil {
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter)
}
