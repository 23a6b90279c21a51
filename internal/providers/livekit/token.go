package livekit

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboardhq/switchboard"
)

// RecommendedSecretLength is the shortest API secret LiveKit recommends. Shorter
// secrets still work (livekit-server --dev uses "secret"), so they draw a
// warning, never a refusal.
const RecommendedSecretLength = 32

// Leeway is the clock skew LiveKit tolerates on nbf, iat and exp; VerifyToken
// allows the same.
const Leeway = time.Minute

// The development credentials of livekit-server --dev.
const (
	DevAPIKey    = "devkey"
	DevAPISecret = "secret"
)

// VideoGrant is the "video" claim of a LiveKit token. The join permissions
// CanPublish, CanSubscribe and CanPublishData are pointers because LiveKit reads an
// absent permission as granted.
type VideoGrant struct {
	// Room permissions, for participants.
	RoomJoin       bool   `json:"roomJoin,omitempty"`
	Room           string `json:"room,omitempty"`
	CanPublish     *bool  `json:"canPublish,omitempty"`
	CanSubscribe   *bool  `json:"canSubscribe,omitempty"`
	CanPublishData *bool  `json:"canPublishData,omitempty"`

	// Server API permissions.
	RoomList   bool `json:"roomList,omitempty"`
	RoomCreate bool `json:"roomCreate,omitempty"`
	RoomAdmin  bool `json:"roomAdmin,omitempty"`
}

// Claims are the claims of a LiveKit token: the registered claims (iss is the
// API key, sub the participant identity), an optional display name and metadata,
// and the video grant.
type Claims struct {
	jwt.RegisteredClaims
	Name     string      `json:"name,omitempty"`
	Metadata string      `json:"metadata,omitempty"`
	Video    *VideoGrant `json:"video,omitempty"`
}

// ValidateKeys checks a LiveKit API key pair. It returns an EInvalid error when
// either is empty and, for a secret shorter than RecommendedSecretLength, a
// warning meant for a log line or a CLI's standard error. Neither quotes a
// credential.
func ValidateKeys(apiKey, apiSecret string) (warning string, err error) {
	if apiKey == "" {
		return "", switchboard.Invalid("apiKey", "is required")
	}
	if apiSecret == "" {
		return "", switchboard.Invalid("apiSecret", "is required")
	}
	if len(apiSecret) < RecommendedSecretLength {
		warning = fmt.Sprintf("LiveKit recommends an API secret of at least %d characters", RecommendedSecretLength)
	}
	return warning, nil
}

// MintJoinToken returns a signed join token for identity in room, valid from now
// for ttl. A publisher may publish media and data; a subscriber may only
// subscribe. The token is an HS256 JWT signed with apiSecret, as LiveKit expects.
func MintJoinToken(apiKey, apiSecret, room, identity string, publisher bool, ttl time.Duration, now time.Time) (string, error) {
	if room == "" {
		return "", switchboard.Invalid("room", "is required")
	}
	if identity == "" {
		return "", switchboard.Invalid("identity", "is required")
	}
	grant := VideoGrant{
		RoomJoin:       true,
		Room:           room,
		CanPublish:     &publisher,
		CanSubscribe:   ptr(true),
		CanPublishData: &publisher,
	}
	return sign(apiKey, apiSecret, identity, grant, ttl, now)
}

// MintAPIToken returns a signed token for LiveKit's server API carrying grant,
// valid from now for ttl and with no participant identity. The health probe uses
// one with RoomList for ListRooms.
func MintAPIToken(apiKey, apiSecret string, grant VideoGrant, ttl time.Duration, now time.Time) (string, error) {
	return sign(apiKey, apiSecret, "", grant, ttl, now)
}

func sign(apiKey, apiSecret, identity string, grant VideoGrant, ttl time.Duration, now time.Time) (string, error) {
	if _, err := ValidateKeys(apiKey, apiSecret); err != nil {
		return "", err
	}
	if ttl <= 0 {
		return "", switchboard.Invalid("ttl", "must be positive")
	}
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    apiKey,
			Subject:   identity,
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
		Video: &grant,
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(apiSecret))
	if err != nil {
		// The error of an HMAC signer never holds the key.
		return "", fmt.Errorf("livekit: sign token: %w", err)
	}
	return s, nil
}

// VerifyToken checks token as a LiveKit server does, at the current time: see
// VerifyTokenAt.
func VerifyToken(token, apiKey, apiSecret string) (*Claims, error) {
	return VerifyTokenAt(token, apiKey, apiSecret, time.Now())
}

// Verification failures that callers may tell apart with errors.Is. Errors from
// VerifyTokenAt also wrap the golang-jwt error (jwt.ErrTokenExpired and so on).
var (
	ErrMalformedToken = errors.New("malformed token")
	ErrWrongIssuer    = errors.New("token issued for another API key")
)

// VerifyTokenAt checks token as a LiveKit server does at time now: an HMAC
// signature (HS256, HS384 or HS512) under apiSecret, iss equal to apiKey, exp
// present, and nbf, iat and exp respected within Leeway. It returns the claims of
// a valid token. Error messages never quote the token or a key.
func VerifyTokenAt(token, apiKey, apiSecret string, now time.Time) (*Claims, error) {
	if apiKey == "" || apiSecret == "" {
		return nil, switchboard.Errorf(switchboard.EInvalid, "livekit: verify token: API key and secret are required")
	}
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c,
		func(*jwt.Token) (any, error) { return []byte(apiSecret), nil },
		jwt.WithValidMethods([]string{"HS256", "HS384", "HS512"}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, fmt.Errorf("livekit: verify token: %w: %w", ErrMalformedToken, err)
	case err != nil:
		return nil, fmt.Errorf("livekit: verify token: %w", err)
	case c.Issuer != apiKey:
		// Checked after the signature, so that a forged token learns nothing.
		return nil, fmt.Errorf("livekit: verify token: %w", ErrWrongIssuer)
	}
	return &c, nil
}

// Issuer returns the unverified iss claim (the API key) of token, as a LiveKit
// server reads it to find the secret to verify the token with.
func Issuer(token string) (string, error) {
	var c jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(token, &c); err != nil {
		return "", fmt.Errorf("%w: %w", ErrMalformedToken, err)
	}
	return c.Issuer, nil
}

func ptr[T any](v T) *T { return &v }
