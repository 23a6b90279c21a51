// Package agora is the Agora adapter: a health probe against Agora's RESTful API,
// AccessToken2 ("007") join tokens, and a loopback fake of the API for tests and
// demos.
//
// The probe reads one page of the channel list of the configured App ID
// (GET /dev/v1/channel/{appid}), which checks the customer credentials and the
// App ID together. A 400 "invalid appid" is reported at the auth stage: the App ID
// names the project the credentials must open, so a wrong one is a configuration
// fault to fix, not an outage of the service.
package agora

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/providers/probe"
)

// DefaultBaseURL is Agora's global RESTful API host.
const DefaultBaseURL = "https://api.agora.io"

// DefaultTTL is the lifetime of a join token when the request names none.
const DefaultTTL = time.Hour

// fallbackTimeout bounds a probe whose context carries no deadline.
const fallbackTimeout = 10 * time.Second

// maxBody bounds how much of an answer the probe reads.
const maxBody = 1 << 20

// Adapter probes Agora and mints its join tokens. The zero value is ready to use.
type Adapter struct {
	// Client sends the probe requests; nil means the shared probe client with
	// bounded dial, TLS and header timeouts. Redirects are never followed,
	// whatever Client.CheckRedirect says: credentials go only where they were
	// configured to go.
	Client *http.Client
	// Now stamps probe results; nil means time.Now.
	Now func() time.Time
	// Rand is the source of token salts; nil means crypto/rand.
	Rand io.Reader
}

var _ switchboard.Adapter = (*Adapter)(nil)

// Probe checks that Agora answers, that the customer credentials authenticate
// and that they can read the channels of the configured App ID. It returns by
// ctx's deadline (or after 10 s if ctx has none) and never puts a credential,
// or the Basic authorization made of them, in its result. The result's At is
// when the probe started; its Latency is the round trip of the channel-list
// request, reported on failures too.
func (a *Adapter) Probe(ctx context.Context, p switchboard.Provider) switchboard.ProbeResult {
	c := p.Credentials
	pr := probe.NewResult(probe.Now(a.Now), c.Values()...)
	if c.CustomerID == "" || c.CustomerSecret == "" {
		return pr.Fail(switchboard.StageAuth, "customer ID and customer secret are not set")
	}
	pr.Protect(basicCredentials(c.CustomerID, c.CustomerSecret))
	if !isHex(p.Config.AppID, 32) {
		return pr.Fail(switchboard.StageAuth, "config.appId is not a 32-hex-character App ID")
	}
	base := p.Config.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	base = strings.TrimRight(base, "/")
	ctx, cancel := probe.WithFallbackTimeout(ctx, fallbackTimeout)
	defer cancel()
	client := probe.Client(a.Client)

	start := time.Now()
	status, body, err := get(ctx, client, base+"/dev/v1/channel/"+url.PathEscape(p.Config.AppID)+"?page_no=0&page_size=1", c)
	pr.SetLatency(time.Since(start))
	if err != nil {
		return pr.FailExchange(ctx, err)
	}
	switch {
	case status == http.StatusOK || status == http.StatusCreated:
		var ans struct {
			Success bool `json:"success"`
		}
		if err := json.Unmarshal(body, &ans); err != nil || !ans.Success {
			return pr.Fail(switchboard.StageOperation, "channel list: unexpected answer (HTTP %d)", status)
		}
		return pr.Pass("")
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return pr.Fail(switchboard.StageAuth, "%s", explainUnauthorized(ctx, client, base, c, status))
	case status == http.StatusBadRequest:
		msg := serverMessage(pr, body)
		if strings.Contains(strings.ToLower(msg), "appid") {
			return pr.Fail(switchboard.StageAuth, "App ID rejected: %s", msg)
		}
		return pr.Fail(switchboard.StageOperation, "channel list rejected (HTTP 400): %s", msg)
	case status == http.StatusTooManyRequests:
		return pr.Fail(switchboard.StageOperation, "rate limited (HTTP 429)")
	case status >= 500:
		return pr.Fail(switchboard.StageOperation, "server error (HTTP %d)", status)
	default:
		return pr.Fail(switchboard.StageOperation, "channel list: unexpected HTTP %d", status)
	}
}

// explainUnauthorized tells a wrong key pair from an App ID the key pair cannot
// see: Agora answers 401 to both, so it asks the project list, which needs only
// the key pair.
func explainUnauthorized(ctx context.Context, client *http.Client, base string, c switchboard.Credentials, status int) string {
	ps, body, err := get(ctx, client, base+"/dev/v1/projects", c)
	if err == nil && (ps == http.StatusOK || ps == http.StatusCreated) {
		var ans struct {
			Projects []json.RawMessage `json:"projects"`
		}
		if json.Unmarshal(body, &ans) == nil {
			return fmt.Sprintf("App ID not found for these credentials (HTTP %d)", status)
		}
	}
	return fmt.Sprintf("customer ID or customer secret rejected (HTTP %d)", status)
}

// get sends a GET with the customer credentials and reads at most maxBody
// bytes of the answer.
func get(ctx context.Context, client *http.Client, u string, c switchboard.Credentials) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, errors.New("build request: invalid base URL")
	}
	req.SetBasicAuth(c.CustomerID, c.CustomerSecret)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Content-Type", "application/json")
	return probe.Send(client, req, maxBody)
}

// basicCredentials is the encoded credentials of the Authorization header the
// probe sends, as secret as the credentials themselves.
func basicCredentials(id, secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(id + ":" + secret))
}

// serverMessage extracts the "message" of an Agora error answer, quoted for pr.
func serverMessage(pr *probe.Result, body []byte) string {
	var ans struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &ans) != nil || ans.Message == "" {
		return "no message"
	}
	return pr.Quote(ans.Message, 120)
}

// MintToken mints an RTC token for req.Room. A UserID in canonical decimal form
// that fits a uint32 is a numeric uid (empty means uid 0, any user); any other
// UserID is a user account. Publishers may publish audio, video and data
// streams; others may only join. TTL defaults to DefaultTTL and may not exceed
// Agora's 24-hour ceiling; token and privileges expire together.
func (a *Adapter) MintToken(p switchboard.Provider, req switchboard.TokenRequest, now time.Time) (switchboard.JoinToken, error) {
	if !isHex(p.Config.AppID, 32) {
		return switchboard.JoinToken{}, switchboard.Invalid("config.appId", "must be the 32-hex-character Agora App ID")
	}
	if p.Credentials.AppCertificate == "" {
		return switchboard.JoinToken{}, switchboard.Errorf(switchboard.EUnavailable, "provider %s has no app certificate to sign tokens with", p.Name)
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < time.Second || ttl > MaxExpire*time.Second {
		return switchboard.JoinToken{}, switchboard.Invalid("ttl", "must be from 1s to 24h")
	}
	if err := CheckChannel(req.Room); err != nil {
		return switchboard.JoinToken{}, switchboard.Invalid("room", "%s", err.Error())
	}
	if now.Unix() <= 0 || now.Unix() > int64(^uint32(0))-MaxExpire {
		return switchboard.JoinToken{}, switchboard.Invalid("now", "is outside the range of Agora timestamps")
	}
	salt, err := NewSalt(a.Rand)
	if err != nil {
		return switchboard.JoinToken{}, fmt.Errorf("mint agora token: %w", err)
	}
	issueTs, expire := uint32(now.Unix()), uint32(ttl/time.Second)
	var tok string
	if uid, ok := numericUID(req.UserID); ok {
		tok, err = BuildRTCToken(p.Config.AppID, p.Credentials.AppCertificate, req.Room, uid, req.Publisher, expire, expire, issueTs, salt)
	} else {
		if len(req.UserID) > MaxAccountLength {
			return switchboard.JoinToken{}, switchboard.Invalid("userId", "must be at most %d bytes", MaxAccountLength)
		}
		tok, err = BuildRTCTokenWithAccount(p.Config.AppID, p.Credentials.AppCertificate, req.Room, req.UserID, req.Publisher, expire, expire, issueTs, salt)
	}
	if err != nil {
		return switchboard.JoinToken{}, fmt.Errorf("mint agora token: %w", err)
	}
	return switchboard.JoinToken{Token: tok, ExpiresAt: time.Unix(int64(issueTs)+int64(expire), 0).UTC()}, nil
}

// numericUID reports whether id is a numeric Agora uid: empty (uid 0) or the
// canonical decimal form of a uint32, so that "007" stays a user account and
// never silently becomes uid 7.
func numericUID(id string) (uint32, bool) {
	if id == "" {
		return 0, true
	}
	v, err := strconv.ParseUint(id, 10, 32)
	if err != nil || strconv.FormatUint(v, 10) != id {
		return 0, false
	}
	return uint32(v), true
}

// NewSalt draws a token salt uniformly from [1, MaxSalt) out of r; nil means
// crypto/rand.
func NewSalt(r io.Reader) (uint32, error) {
	if r == nil {
		r = rand.Reader
	}
	n, err := rand.Int(r, big.NewInt(MaxSalt-1))
	if err != nil {
		return 0, fmt.Errorf("draw salt: %w", err)
	}
	return uint32(n.Int64()) + 1, nil
}
