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
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/providers/probe"
)

// Defaults of the adapter.
const (
	// DefaultMethod is the probe's method when the provider names none.
	DefaultMethod = http.MethodGet
	// DefaultTimeout bounds each request of the default client, for callers whose
	// context has no deadline.
	DefaultTimeout = probe.DefaultTimeout
	// MaxBody is the most of an answer's body the probe reads.
	MaxBody = 4 << 10
)

// defaultExpectStatus is the expected status when the provider names none.
var defaultExpectStatus = []int{http.StatusOK}

// Adapter probes generic HTTP providers. The zero value is ready to use.
type Adapter struct {
	// Client sends the probe's request; nil means the shared probe client, with
	// bounded dial, TLS and header timeouts and DefaultTimeout. Redirects are never followed, whatever Client.CheckRedirect says:
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
	for k, v := range p.Credentials.Headers {
		if strings.EqualFold(k, "Host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}

	// Step 2: send it and time the round trip.
	start := time.Now()
	status, _, err := probe.Send(probe.Client(a.Client), req, MaxBody)
	res.Latency = time.Since(start)
	if err != nil {
		// Transport errors may quote the request; header values are secrets.
		reason := func(err error) string { return probe.Redact(probe.Reason(ctx, err), p.Credentials.Values()...) }
		var re *probe.ReadError
		if errors.As(err, &re) {
			return fail(probe.Stage(ctx, err), "%s answered %d, then reading the body failed: %s", method, status, reason(re.Err))
		}
		return fail(probe.Stage(ctx, err), "%s: %s", method, reason(err))
	}

	// Steps 3 and 4: credentials, then the status of the operation itself.
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

func statusList(codes []int) string {
	s := make([]string, len(codes))
	for i, c := range codes {
		s[i] = fmt.Sprint(c)
	}
	return strings.Join(s, " or ")
}

func (a Adapter) now() time.Time {
	if a.Clock != nil {
		return a.Clock.Now()
	}
	return time.Now().UTC()
}
