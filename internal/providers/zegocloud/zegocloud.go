// Package zegocloud is the ZEGOCLOUD adapter: a health probe against the RTC
// server API, token04 join tokens, and a loopback fake of the API for tests and
// demos.
//
// The probe calls DescribeUserNum for a room that need not exist (it counts 0),
// which checks the signature, the AppID and the RTC service in one read.
package zegocloud

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/providers/probe"
)

// DefaultBaseURL is ZEGOCLOUD's unified RTC server API host.
const DefaultBaseURL = "https://rtc-api.zego.im"

// ProbeRoom is the room whose user count the probe asks for.
const ProbeRoom = "switchboard-probe"

// DefaultTTL is the lifetime of a join token when the request names none.
const DefaultTTL = time.Hour

// MaxTTL bounds the lifetime of a minted token. ZEGOCLOUD documents no ceiling;
// this one matches Agora's so that a stream's tokens age alike on both.
const MaxTTL = 24 * time.Hour

const (
	fallbackTimeout = 10 * time.Second // bounds a probe whose context carries no deadline
	maxBody         = 1 << 20          // bounds how much of an answer the probe reads
)

// Return codes of the server API (its "Code" field).
const (
	CodeOK                 = 0
	CodeBusy               = 1
	CodeBadParameter       = 2
	CodeVerifyFailed       = 3
	CodeRateLimited        = 7
	CodeBadAppIDFormat     = 100000001
	CodeNoTimestamp        = 100000002
	CodeBadTimestamp       = 100000003
	CodeSignatureExpired   = 100000004
	CodeSignatureInvalid   = 100000005
	CodeNoAction           = 100000006
	CodeUnsupportedAction  = 100000007
	CodeNoSignatureNonce   = 100000008
	CodeNoSignature        = 100000009
	CodeNoSecret           = 100000010
	CodeNoSignatureVersion = 100000013
	CodeBadSignatureVer    = 100000014
	CodeNotProduction      = 100000016
)

// codeText describes the codes the probe reports; the server's own message is
// appended to it.
var codeText = map[int64]string{
	CodeBusy:             "server busy",
	CodeBadParameter:     "bad parameter",
	CodeVerifyFailed:     "verification failed",
	CodeRateLimited:      "rate limited",
	CodeSignatureExpired: "signature expired: check the clock of this host",
	CodeSignatureInvalid: "signature invalid: check the server secret",
	CodeNoSecret:         "no server secret for this AppID: check the AppID",
	CodeNotProduction:    "app not enabled for production",
}

// authCodes are the codes that mean the credentials or the AppID are wrong.
var authCodes = []int64{CodeVerifyFailed, CodeSignatureExpired, CodeSignatureInvalid, CodeNoSecret, CodeNotProduction}

// Adapter probes ZEGOCLOUD and mints its join tokens. The zero value is ready to use.
type Adapter struct {
	// Client sends the probe requests; nil means the shared probe client with
	// bounded dial, TLS and header timeouts. Redirects are never followed,
	// whatever Client.CheckRedirect says.
	Client *http.Client
	// Now gives the signature timestamps and stamps probe results; nil means time.Now.
	Now func() time.Time
	// Rand is the source of signature and token nonces; nil means crypto/rand.
	Rand io.Reader
}

var _ switchboard.Adapter = (*Adapter)(nil)

func (a *Adapter) rand() io.Reader {
	if a.Rand != nil {
		return a.Rand
	}
	return rand.Reader
}

// Sign returns the signature of a server API call: the lowercase hex MD5 of
// AppId, nonce, ServerSecret and timestamp concatenated.
func Sign(appID uint32, nonce, serverSecret string, timestamp int64) string {
	sum := md5.Sum([]byte(strconv.FormatUint(uint64(appID), 10) + nonce + serverSecret + strconv.FormatInt(timestamp, 10)))
	return hex.EncodeToString(sum[:])
}

// SignedQuery returns the common query parameters of a server API call for
// action, signed with serverSecret at now with a 16-hex-character nonce drawn
// from rnd.
func SignedQuery(action string, appID uint32, serverSecret string, now time.Time, rnd io.Reader) (url.Values, error) {
	var b [8]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return nil, fmt.Errorf("signature nonce: %w", err)
	}
	nonce, ts := hex.EncodeToString(b[:]), now.Unix()
	return url.Values{
		"Action":           {action},
		"AppId":            {strconv.FormatUint(uint64(appID), 10)},
		"SignatureNonce":   {nonce},
		"Timestamp":        {strconv.FormatInt(ts, 10)},
		"SignatureVersion": {"2.0"},
		"Signature":        {Sign(appID, nonce, serverSecret, ts)},
	}, nil
}

// envelope is the answer of every server API call.
type envelope struct {
	Code      *int64          `json:"Code"`
	Message   string          `json:"Message"`
	RequestID string          `json:"RequestId"`
	Data      json.RawMessage `json:"Data"`
}

// Probe checks that ZEGOCLOUD answers, that the signed request authenticates
// and that DescribeUserNum succeeds. It returns by ctx's deadline (or after
// 10 s if ctx has none) and never puts a credential or the request signature
// in its result. The result's At is when the probe started; its Latency is the
// round trip of the request, reported on failures too.
func (a *Adapter) Probe(ctx context.Context, p switchboard.Provider) switchboard.ProbeResult {
	now := probe.Now(a.Now)
	pr := probe.NewResult(now, p.Credentials.Values()...)
	appID, err := parseAppID(p.Config.AppID)
	if err != nil {
		return pr.Fail(switchboard.StageAuth, "config.appId is not a numeric AppID")
	}
	secret := p.Credentials.ServerSecret
	if secret == "" {
		return pr.Fail(switchboard.StageAuth, "server secret is not set")
	}
	if len(secret) != SecretLength {
		return pr.Fail(switchboard.StageAuth, "server secret must be exactly %d characters", SecretLength)
	}
	q, err := SignedQuery("DescribeUserNum", appID, secret, now, a.rand())
	if err != nil {
		return pr.Fail(switchboard.StageOperation, "cannot sign the request: %v", err)
	}
	pr.Protect(q.Get("Signature"))
	base := p.Config.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	// RoomId[] is written with literal brackets, as in ZEGOCLOUD's samples.
	u := strings.TrimRight(base, "/") + "/?" + q.Encode() + "&RoomId[]=" + url.QueryEscape(ProbeRoom)
	ctx, cancel := probe.WithFallbackTimeout(ctx, fallbackTimeout)
	defer cancel()

	start := time.Now()
	status, body, err := a.get(ctx, u)
	pr.SetLatency(time.Since(start))
	if err != nil {
		return pr.FailExchange(ctx, err)
	}
	var env envelope
	decoded := json.Unmarshal(body, &env) == nil && env.Code != nil
	switch {
	case status >= 500:
		return pr.Fail(switchboard.StageOperation, "server error (HTTP %d)", status)
	case status == http.StatusTooManyRequests:
		return pr.Fail(switchboard.StageOperation, "rate limited (HTTP 429)")
	case !decoded && (status == http.StatusUnauthorized || status == http.StatusForbidden):
		return pr.Fail(switchboard.StageAuth, "request rejected (HTTP %d)", status)
	case !decoded:
		return pr.Fail(switchboard.StageOperation, "DescribeUserNum: unexpected answer (HTTP %d)", status)
	case *env.Code == CodeOK && status/100 == 2:
		return pr.Pass("")
	case *env.Code == CodeOK:
		return pr.Fail(switchboard.StageOperation, "DescribeUserNum: unexpected HTTP %d", status)
	}
	stage := switchboard.StageOperation
	if slices.Contains(authCodes, *env.Code) {
		stage = switchboard.StageAuth
	}
	return pr.Fail(stage, "%s", describe(*env.Code, pr.Quote(env.Message, 120)))
}

// describe words a failed call: its code, what the code means, and the
// server's message, already quoted.
func describe(code int64, serverMsg string) string {
	msg := fmt.Sprintf("DescribeUserNum failed with code %d", code)
	if t, ok := codeText[code]; ok {
		msg += " (" + t + ")"
	}
	if serverMsg != "" {
		msg += ": " + serverMsg
	}
	return msg
}

func parseAppID(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v == 0 || strconv.FormatUint(v, 10) != s {
		return 0, errors.New("not a numeric AppID")
	}
	return uint32(v), nil
}

// get sends a GET and reads at most maxBody bytes of the answer.
func (a *Adapter) get(ctx context.Context, u string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, errors.New("build request: invalid base URL")
	}
	req.Header.Set("Accept", "application/json")
	return probe.Send(probe.Client(a.Client), req, maxBody)
}

// MintToken mints a token04 for req.UserID (required). With a room, the
// payload limits the token to that room: everyone may log in, publishers may
// also publish. TTL defaults to DefaultTTL and may not exceed MaxTTL.
func (a *Adapter) MintToken(p switchboard.Provider, req switchboard.TokenRequest, now time.Time) (switchboard.JoinToken, error) {
	appID, err := parseAppID(p.Config.AppID)
	if err != nil {
		return switchboard.JoinToken{}, switchboard.Invalid("config.appId", "must be the numeric ZEGOCLOUD AppID")
	}
	if len(p.Credentials.ServerSecret) != SecretLength {
		return switchboard.JoinToken{}, switchboard.Errorf(switchboard.EUnavailable, "provider %s has no valid server secret to sign tokens with", p.Name)
	}
	if req.UserID == "" || len(req.UserID) > MaxUserIDLength {
		return switchboard.JoinToken{}, switchboard.Invalid("userId", "must be 1 to %d bytes", MaxUserIDLength)
	}
	ttl := req.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	if ttl < time.Second || ttl > MaxTTL {
		return switchboard.JoinToken{}, switchboard.Invalid("ttl", "must be from 1s to %s", MaxTTL)
	}
	var payload string
	if req.Room != "" {
		if payload, err = RoomPayload(req.Room, req.Publisher); err != nil {
			return switchboard.JoinToken{}, switchboard.Invalid("room", "%s", err.Error())
		}
	}
	secs := int64(ttl / time.Second)
	tok, err := Build04(appID, req.UserID, p.Credentials.ServerSecret, secs, payload, now, a.rand())
	if err != nil {
		return switchboard.JoinToken{}, fmt.Errorf("mint zegocloud token: %w", err)
	}
	return switchboard.JoinToken{Token: tok, ExpiresAt: time.Unix(now.Unix()+secs, 0).UTC()}, nil
}
