// Package httpcheck is the adapter for generic HTTP providers (kind "http"): a
// health probe that sends one request, with the provider's secret headers, and
// judges the answer's status against the expected ones.
//
// Generic HTTP providers authenticate their clients themselves, so the adapter
// mints no join tokens: MintToken returns an empty token and no error, and
// streams on such a provider carry only their assignment.
package httpcheck

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

// Defaults of the adapter.
const (
	// DefaultMethod is the probe's method when the provider names none.
	DefaultMethod = http.MethodGet
	// DefaultTimeout bounds each request of the default client, for callers whose
	// context has no deadline.
	DefaultTimeout = 30 * time.Second
	// MaxBody is the most of an answer's body the probe reads.
	MaxBody = 4 << 10
)

// defaultExpectStatus is the expected status when the provider names none.
var defaultExpectStatus = []int{http.StatusOK}

var defaultClient = &http.Client{Timeout: DefaultTimeout}

// Adapter probes generic HTTP providers. The zero value is ready to use.
type Adapter struct {
	// Client sends the probe's request; nil means a client with a 30-second
	// timeout. Redirects are never followed, whatever Client.CheckRedirect says:
	// a 3xx answer is judged against the expected statuses like any other.
	Client *http.Client
	// Clock stamps results; nil means the system clock.
	Clock switchboard.Clock
}

var _ switchboard.Adapter = Adapter{}

// MintToken returns an empty JoinToken and no error: generic HTTP providers
// authenticate their clients themselves.
func (Adapter) MintToken(switchboard.Provider, switchboard.TokenRequest, time.Time) (switchboard.JoinToken, error) {
	return switchboard.JoinToken{}, nil
}

// Probe sends p.Config.Method (default GET) to p.Config.URL with the headers of
// p.Credentials.Headers and judges the status against p.Config.ExpectStatus
// (default 200): an expected status passes; otherwise 401 and 403 fail the auth
// stage and anything else the operation stage. Latency is the time until the
// status line and up to MaxBody bytes of the body arrived. Probe returns by
// ctx's deadline (stage timeout) and its messages name methods and statuses,
// never header values.
func (a Adapter) Probe(ctx context.Context, p switchboard.Provider) switchboard.ProbeResult {
	res := switchboard.ProbeResult{At: a.now()}
	fail := func(stage switchboard.Stage, format string, args ...any) switchboard.ProbeResult {
		res.OK, res.Stage, res.Message = false, stage, fmt.Sprintf(format, args...)
		return res
	}

	// Step 1: build the request; a bad configuration cannot connect.
	method := p.Config.Method
	if method == "" {
		method = DefaultMethod
	}
	expect := p.Config.ExpectStatus
	if len(expect) == 0 {
		expect = defaultExpectStatus
	}
	u, err := url.Parse(p.Config.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return fail(switchboard.StageConnect, "config.url is not an absolute http or https URL")
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return fail(switchboard.StageConnect, "config.method %q is not a valid HTTP method", method)
	}
	req.Header.Set("User-Agent", "switchboard/"+switchboard.Version)
	for k, v := range p.Credentials.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}

	// Step 2: send it and time the round trip.
	start := time.Now()
	resp, err := a.client().Do(req)
	if err != nil {
		res.Latency = time.Since(start)
		stage, msg := classify(ctx, err, p.Credentials.Values())
		return fail(stage, "%s: %s", method, msg)
	}
	_, err = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxBody))
	resp.Body.Close()
	res.Latency = time.Since(start)
	if err != nil {
		stage, msg := classify(ctx, err, p.Credentials.Values())
		return fail(stage, "%s answered %d, then reading the body failed: %s", method, resp.StatusCode, msg)
	}

	// Steps 3 and 4: credentials, then the status of the operation itself.
	status := resp.StatusCode
	switch {
	case slices.Contains(expect, status):
		res.OK, res.Message = true, fmt.Sprintf("%s answered %d", method, status)
		return res
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return fail(switchboard.StageAuth, "%s answered %d %s: the provider rejected the credential headers",
			method, status, http.StatusText(status))
	case status >= 300 && status < 400:
		return fail(switchboard.StageOperation, "%s answered %d %s (redirects are not followed), expected %s",
			method, status, http.StatusText(status), statusList(expect))
	default:
		return fail(switchboard.StageOperation, "%s answered %d %s, expected %s",
			method, status, http.StatusText(status), statusList(expect))
	}
}

// classify maps a transport error to its stage and a message cleaned of every
// secret: the context's end or a client timeout is a timeout, anything else a
// failure to connect.
func classify(ctx context.Context, err error, secrets []string) (switchboard.Stage, string) {
	var ne net.Error
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return switchboard.StageTimeout, "no answer before the probe deadline"
	case ctx.Err() != nil:
		return switchboard.StageTimeout, "probe cancelled"
	case errors.As(err, &ne) && ne.Timeout():
		return switchboard.StageTimeout, clean(err, secrets)
	default:
		return switchboard.StageConnect, clean(err, secrets)
	}
}

// clean returns err's message without the method and URL that *url.Error adds
// (the probe names the method itself) and with every secret replaced.
func clean(err error, secrets []string) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	s := err.Error()
	for _, v := range secrets {
		if v != "" {
			s = strings.ReplaceAll(s, v, "[REDACTED]")
		}
	}
	return s
}

func statusList(codes []int) string {
	s := make([]string, len(codes))
	for i, c := range codes {
		s[i] = fmt.Sprint(c)
	}
	return strings.Join(s, " or ")
}

func (a Adapter) client() *http.Client {
	c := defaultClient
	if a.Client != nil {
		c = a.Client
	}
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

func (a Adapter) now() time.Time {
	if a.Clock != nil {
		return a.Clock.Now()
	}
	return time.Now().UTC()
}
