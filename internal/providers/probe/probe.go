// Package probe holds what the health probes of every provider kind share: the
// HTTP client they send with, bounded reading of answers, the classification
// of transport failures into stages, and the cleaning of text from the outside
// (error strings, answer bodies) before it goes into a result.
//
// What a probe asks, and how it judges the answer, stays in the package of its
// kind; this package knows nothing of any provider's API.
package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/switchboardhq/switchboard"
)

// DefaultTimeout bounds each request of the default client, for probes whose
// context has no deadline.
const DefaultTimeout = 30 * time.Second

// Redacted replaces a secret in text bound for a probe result.
const Redacted = "[REDACTED]"

// defaultClient is shared by the probes of every kind, so that they share one
// pool of connections.
var defaultClient = &http.Client{
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: DefaultTimeout,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	},
	Timeout: DefaultTimeout,
}

// Client returns the client a probe sends with: a shallow copy of c, or of the
// shared default client when c is nil, that never follows a redirect. A probe
// judges the answer of the URL it was configured with, and its credentials go
// only where they were configured to go; a 3xx is an answer like any other.
//
// The default client bounds dialing and the TLS handshake to 10 s, and the
// wait for the answer's header and the whole exchange to DefaultTimeout.
func Client(c *http.Client) *http.Client {
	if c == nil {
		c = defaultClient
	}
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

// WithFallbackTimeout returns ctx unchanged when it has a deadline, and
// otherwise a context that ends after d. Call cancel in both cases.
func WithFallbackTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// ReadError is the failure to read an answer whose status line had arrived.
type ReadError struct{ Err error }

func (e *ReadError) Error() string { return "read answer: " + e.Err.Error() }

// Unwrap returns the cause.
func (e *ReadError) Unwrap() error { return e.Err }

// Send sends req with c, with switchboard's User-Agent unless req has one, and
// reads at most limit bytes of the answer's body. A failure to read the body is
// a *ReadError; any other error is the client's.
func Send(c *http.Client, req *http.Request, limit int64) (status int, body []byte, err error) {
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "switchboard/"+switchboard.Version)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err = io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return resp.StatusCode, nil, &ReadError{err}
	}
	return resp.StatusCode, body, nil
}

// Stage classifies the error of a failed exchange: once ctx has ended, or
// when the client gave up waiting, it is a timeout; anything else is a failure
// to connect.
func Stage(ctx context.Context, err error) switchboard.Stage {
	var ne net.Error
	if ctx.Err() != nil || (errors.As(err, &ne) && ne.Timeout()) {
		return switchboard.StageTimeout
	}
	return switchboard.StageConnect
}

// Reason words the error of a failed exchange for a result: the end of ctx is
// named as such, and any other error is its text without the method and URL
// that *url.Error adds, since the URL may carry credentials (a signed query)
// and the probe names its step itself. Reason does not redact: pass its text
// through Redact.
func Reason(ctx context.Context, err error) string {
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return "no answer before the probe deadline"
	case ctx.Err() != nil:
		return "probe cancelled"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return err.Error()
}

// Now returns now(), or time.Now() when now is nil: the time that stamps a
// probe result of an adapter whose clock may be left unset.
func Now(now func() time.Time) time.Time {
	if now != nil {
		return now()
	}
	return time.Now()
}

// Redact replaces every non-empty secret in s with Redacted, the longest first
// so that no secret is left half-covered by a shorter one it contains.
func Redact(s string, secrets ...string) string {
	ss := slices.Clone(secrets)
	slices.SortFunc(ss, func(a, b string) int { return len(b) - len(a) })
	for _, v := range ss {
		if v != "" {
			s = strings.ReplaceAll(s, v, Redacted)
		}
	}
	return s
}

// Truncate shortens s to at most n bytes, cut at a character boundary, and
// marks the cut with "…".
func Truncate(s string, n int) string {
	if t := switchboard.Truncate(s, n); len(t) < len(s) {
		return t + "…"
	}
	return s
}

// Result builds the result of one probe whose every failure message is
// redacted of the secrets it was given: the credentials, and anything derived
// from them that the probe sends (a signature, a token).
type Result struct {
	res     switchboard.ProbeResult
	secrets []string
}

// NewResult starts the result of a probe that starts at, protecting secrets.
func NewResult(at time.Time, secrets ...string) *Result {
	return &Result{res: switchboard.ProbeResult{At: at}, secrets: slices.Clone(secrets)}
}

// Protect adds secrets to redact from the messages.
func (r *Result) Protect(secrets ...string) { r.secrets = append(r.secrets, secrets...) }

// SetLatency records the latency of the probe.
func (r *Result) SetLatency(d time.Duration) { r.res.Latency = d }

// Pass returns the result as a success with msg, which may be empty.
func (r *Result) Pass(msg string) switchboard.ProbeResult {
	r.res.OK, r.res.Stage, r.res.Message = true, "", Redact(msg, r.secrets...)
	return r.res
}

// Quote makes text from the outside (a server's message) fit for the result:
// redacted first, then cut to at most n bytes, so that no part of a secret
// survives the cut.
func (r *Result) Quote(s string, n int) string {
	return Truncate(Redact(s, r.secrets...), n)
}

// Fail returns the result as a failure at stage, with the message of format
// and args, redacted.
func (r *Result) Fail(stage switchboard.Stage, format string, args ...any) switchboard.ProbeResult {
	r.res.OK, r.res.Stage, r.res.Message = false, stage, Redact(fmt.Sprintf(format, args...), r.secrets...)
	return r.res
}

// FailExchange returns the result as the failure of an API request that got no
// usable answer: a timeout (see Stage), an operation failure when the answer
// broke off while being read (the API did answer), and otherwise a failure to
// connect.
func (r *Result) FailExchange(ctx context.Context, err error) switchboard.ProbeResult {
	var re *ReadError
	switch stage := Stage(ctx, err); {
	case stage == switchboard.StageTimeout:
		return r.Fail(stage, "%s", r.Quote(Reason(ctx, err), 200))
	case errors.As(err, &re):
		return r.Fail(switchboard.StageOperation, "%s", r.Quote(re.Error(), 200))
	default:
		return r.Fail(stage, "cannot reach the API: %s", r.Quote(Reason(ctx, err), 200))
	}
}
