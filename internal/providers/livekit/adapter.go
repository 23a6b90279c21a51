// Package livekit is the adapter for LiveKit servers, self-hosted or cloud: the
// health probe, join tokens (HS256 JWTs with a video grant) and a loopback fake
// that verifies tokens as LiveKit does.
//
// The probe takes four steps. It asks the node's health endpoint (GET /) whether
// the node is ready, timing that round trip as the probe's latency; it then signs
// a short-lived token with the roomList grant and calls the read-only
// RoomService/ListRooms, which checks the credentials and the server API at once.
package livekit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/providers/probe"
)

// Defaults of the adapter.
const (
	// DefaultTokenTTL is the lifetime of a join token when the request names none.
	DefaultTokenTTL = time.Hour
	// APITokenTTL is the lifetime of the token the probe signs for ListRooms.
	APITokenTTL = time.Minute
	// DefaultTimeout bounds each request of the default client, for callers whose
	// context has no deadline.
	DefaultTimeout = probe.DefaultTimeout

	listRoomsPath = "/twirp/livekit.RoomService/ListRooms"
	maxRoomsBody  = 1 << 20 // the most of a ListRooms answer the probe reads
	maxErrorBody  = 4 << 10 // the most of any other answer the probe reads
)

// Adapter probes LiveKit servers and mints their join tokens. The zero value is
// ready to use.
type Adapter struct {
	// Client sends the probe's requests; nil means the shared probe client, with
	// bounded dial, TLS and header timeouts and DefaultTimeout. Redirects are never followed, whatever Client.CheckRedirect says:
	// a probe reports the answer of the configured URL itself.
	Client *http.Client
	// Clock stamps results and dates the probe's token; nil means the system clock.
	Clock switchboard.Clock
}

var _ switchboard.Adapter = Adapter{}

// MintToken mints a join token for req.UserID in req.Room with p's API key pair.
// A zero req.TTL means DefaultTokenTTL.
func (a Adapter) MintToken(p switchboard.Provider, req switchboard.TokenRequest, now time.Time) (switchboard.JoinToken, error) {
	if p.Credentials.APIKey == "" || p.Credentials.APISecret == "" {
		return switchboard.JoinToken{}, switchboard.Errorf(switchboard.EUnavailable,
			"provider %s has no LiveKit API key and secret", p.Name)
	}
	if req.UserID == "" {
		return switchboard.JoinToken{}, switchboard.Invalid("userId", "is required")
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	tok, err := MintJoinToken(p.Credentials.APIKey, p.Credentials.APISecret, req.Room, req.UserID, req.Publisher, ttl, now)
	if err != nil {
		return switchboard.JoinToken{}, fmt.Errorf("livekit %s: mint token: %w", p.Name, err)
	}
	return switchboard.JoinToken{Token: tok, ExpiresAt: now.Add(ttl).Truncate(time.Second)}, nil
}

// Probe checks that p's node is ready and that its API key pair can list rooms.
// It returns by ctx's deadline (stage timeout) and never puts a credential, or
// the token it signed, in its result.
func (a Adapter) Probe(ctx context.Context, p switchboard.Provider) switchboard.ProbeResult {
	pr := prober{a: a, p: p, client: probe.Client(a.Client)}
	pr.res = switchboard.ProbeResult{At: a.now()}
	pr.run(ctx)
	return pr.res
}

type prober struct {
	a      Adapter
	p      switchboard.Provider
	client *http.Client
	token  string // the probe's own token, kept out of the result like the credentials
	res    switchboard.ProbeResult
}

// clean makes text from the outside (a body excerpt, a transport error) fit for
// the result: it replaces every credential and the probe's token, and anything
// else shaped like a JWT, with [REDACTED]. livekit-server echoes the API key and
// the token in some 401 bodies, and proxies may echo more.
func (pr *prober) clean(s string) string {
	s = probe.Redact(s, append(pr.p.Credentials.Values(), pr.token)...)
	return jwtRE.ReplaceAllString(s, probe.Redacted)
}

// jwtRE matches a JWT or the start of one (a base64url JSON object header).
var jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]*){0,2}`)

func (pr *prober) fail(stage switchboard.Stage, format string, args ...any) {
	pr.res.OK, pr.res.Stage, pr.res.Message = false, stage, fmt.Sprintf(format, args...)
}

func (pr *prober) run(ctx context.Context) {
	base, err := BaseURL(pr.p.Config.URL)
	if err != nil {
		pr.fail(switchboard.StageConnect, "%v", err)
		return
	}

	// Steps 1 and 2: reach the node and time the round trip.
	start := time.Now()
	status, body, err := pr.do(ctx, http.MethodGet, base+"/", "", maxErrorBody)
	pr.res.Latency = time.Since(start)
	if err != nil {
		pr.failRequest(ctx, "health check", err)
		return
	}
	switch status {
	case http.StatusOK:
	case http.StatusNotAcceptable:
		pr.fail(switchboard.StageOperation, "livekit node is not ready (GET / answered 406)")
		return
	default:
		pr.fail(switchboard.StageOperation, "GET / answered %s", pr.describe(status, body))
		return
	}

	// Step 3: credentials.
	c := pr.p.Credentials
	warning, err := ValidateKeys(c.APIKey, c.APISecret)
	if err != nil {
		pr.fail(switchboard.StageAuth, "LiveKit API key and secret are required")
		return
	}
	pr.token, err = MintAPIToken(c.APIKey, c.APISecret, VideoGrant{RoomList: true}, APITokenTTL, pr.a.now())
	if err != nil {
		pr.fail(switchboard.StageAuth, "cannot sign API token: %v", err)
		return
	}

	// Step 4: one read-only operation, which also proves the credentials.
	status, body, err = pr.do(ctx, http.MethodPost, base+listRoomsPath, pr.token, maxRoomsBody)
	if err != nil {
		pr.failRequest(ctx, "ListRooms", err)
		return
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		pr.fail(switchboard.StageAuth, "ListRooms answered %d: %s", status, authReason(body))
		return
	case status != http.StatusOK:
		pr.fail(switchboard.StageOperation, "ListRooms answered %s", pr.describe(status, body))
		return
	}
	msg := "ready"
	if len(body) >= maxRoomsBody {
		msg += "; room list too large to count"
	} else {
		var rooms struct {
			Rooms *[]json.RawMessage `json:"rooms"`
		}
		if err := json.Unmarshal(body, &rooms); err != nil || rooms.Rooms == nil {
			pr.fail(switchboard.StageOperation, "ListRooms answered 200 without a room list")
			return
		}
		msg += fmt.Sprintf("; %d rooms", len(*rooms.Rooms))
	}
	if warning != "" {
		msg += "; note: " + warning
	}
	pr.res.OK, pr.res.Message = true, msg
}

// do sends one request and reads at most limit bytes of the answer. A non-empty
// token is sent as a bearer token with the empty JSON object as the body.
func (pr *prober) do(ctx context.Context, method, u, token string, limit int64) (int, []byte, error) {
	var body io.Reader
	if token != "" {
		body = strings.NewReader("{}")
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return 0, nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
	}
	return probe.Send(pr.client, req, limit)
}

// failRequest fails the probe at step with a transport error: the context's
// end or a client timeout is a timeout, anything else a failure to connect.
func (pr *prober) failRequest(ctx context.Context, step string, err error) {
	var re *probe.ReadError
	if errors.As(err, &re) {
		err = re.Err // the step names what was read
	}
	pr.fail(probe.Stage(ctx, err), "%s: %s", step, pr.clean(probe.Reason(ctx, err)))
}

// authReason explains a 401 from LiveKit without quoting its body, which may
// echo the API key or the token.
func authReason(body []byte) string {
	b := string(body)
	switch {
	case strings.Contains(b, "permissions denied"):
		return "permissions denied (the token lacks the roomList grant)"
	case strings.HasPrefix(b, "invalid API key"):
		return "invalid API key"
	case strings.HasPrefix(b, "invalid token"):
		if strings.Contains(b, "expired") || strings.Contains(b, "not valid yet") || strings.Contains(b, "(iat)") {
			return "token rejected; check the clocks of this host and the LiveKit server"
		}
		return "invalid token (wrong API secret?)"
	case strings.HasPrefix(b, "invalid authorization"):
		return "invalid authorization token"
	default:
		return "credentials rejected"
	}
}

// describe names a status with a short, single-line, cleaned excerpt of the
// body. It cleans before it cuts, so that no part of a secret survives.
func (pr *prober) describe(status int, body []byte) string {
	s := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, string(body))
	s = probe.Truncate(pr.clean(strings.Join(strings.Fields(s), " ")), 80)
	if s == "" {
		return fmt.Sprint(status)
	}
	return fmt.Sprintf("%d: %s", status, s)
}

// BaseURL normalizes a configured LiveKit URL for HTTP requests: ws and wss
// become http and https, and the query, fragment and trailing slashes go. A
// path is kept, for servers behind a reverse proxy under a prefix.
func BaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return "", errors.New("config.url is not an absolute http, https, ws or wss URL")
	}
	switch u.Scheme {
	case "http", "https":
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return "", errors.New("config.url is not an absolute http, https, ws or wss URL")
	}
	u.RawQuery, u.Fragment, u.RawFragment = "", "", ""
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}

func (a Adapter) now() time.Time {
	if a.Clock != nil {
		return a.Clock.Now()
	}
	return time.Now().UTC()
}
