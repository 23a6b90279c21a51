package livekit

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboardhq/switchboard"
)

const (
	testKey    = "APIk3yForTests"
	testSecret = "s3cretS3cretS3cretS3cretS3cret-0123456789"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// payload decodes the claims of a JWT without verifying it, to check the exact
// JSON that LiveKit reads.
func payload(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("decode payload: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("unmarshal payload: %v", err)
	}
	return m
}

func TestMintJoinTokenClaims(t *testing.T) {
	tests := []struct {
		name      string
		publisher bool
		wantVideo map[string]any
	}{
		{"publisher", true, map[string]any{
			"roomJoin": true, "room": "stage-1", "canPublish": true, "canSubscribe": true, "canPublishData": true,
		}},
		{"subscriber", false, map[string]any{
			"roomJoin": true, "room": "stage-1", "canPublish": false, "canSubscribe": true, "canPublishData": false,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := MintJoinToken(testKey, testSecret, "stage-1", "alice", tt.publisher, 10*time.Minute, t0)
			if err != nil {
				t.Fatalf("MintJoinToken: %v", err)
			}
			got := payload(t, tok)
			want := map[string]any{
				"iss": testKey, "sub": "alice",
				"nbf": float64(t0.Unix()), "iat": float64(t0.Unix()), "exp": float64(t0.Add(10 * time.Minute).Unix()),
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("claim %s = %v, want %v", k, got[k], v)
				}
			}
			video, _ := got["video"].(map[string]any)
			if len(video) != len(tt.wantVideo) {
				t.Errorf("video = %v, want %v", video, tt.wantVideo)
			}
			for k, v := range tt.wantVideo {
				if video[k] != v {
					t.Errorf("video.%s = %v, want %v", k, video[k], v)
				}
			}

			c, err := VerifyTokenAt(tok, testKey, testSecret, t0.Add(time.Minute))
			if err != nil {
				t.Fatalf("VerifyTokenAt: %v", err)
			}
			if c.Subject != "alice" || c.Video == nil || !c.Video.RoomJoin || c.Video.Room != "stage-1" ||
				*c.Video.CanPublish != tt.publisher || !*c.Video.CanSubscribe || *c.Video.CanPublishData != tt.publisher {
				t.Errorf("round trip claims = %+v, video %+v", c, c.Video)
			}
		})
	}
}

func TestMintJoinTokenInvalid(t *testing.T) {
	tests := []struct {
		name                     string
		key, secret, room, ident string
		ttl                      time.Duration
		wantField                string
	}{
		{"no key", "", testSecret, "r", "i", time.Hour, "apiKey"},
		{"no secret", testKey, "", "r", "i", time.Hour, "apiSecret"},
		{"no room", testKey, testSecret, "", "i", time.Hour, "room"},
		{"no identity", testKey, testSecret, "r", "", time.Hour, "identity"},
		{"zero ttl", testKey, testSecret, "r", "i", 0, "ttl"},
		{"negative ttl", testKey, testSecret, "r", "i", -time.Second, "ttl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := MintJoinToken(tt.key, tt.secret, tt.room, tt.ident, true, tt.ttl, t0)
			var e *switchboard.Error
			if !errors.As(err, &e) || e.Code != switchboard.EInvalid || e.Field != tt.wantField {
				t.Fatalf("err = %v, want EInvalid on field %s", err, tt.wantField)
			}
		})
	}
}

func TestValidateKeys(t *testing.T) {
	tests := []struct {
		name        string
		key, secret string
		wantErr     bool
		wantWarning bool
	}{
		{"dev pair", DevAPIKey, DevAPISecret, false, true},
		{"31 characters", "k", strings.Repeat("x", 31), false, true},
		{"32 characters", "k", strings.Repeat("x", 32), false, false},
		{"no key", "", testSecret, true, false},
		{"no secret", testKey, "", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			warning, err := ValidateKeys(tt.key, tt.secret)
			if (err != nil) != tt.wantErr || (warning != "") != tt.wantWarning {
				t.Fatalf("ValidateKeys = %q, %v; want error %v, warning %v", warning, err, tt.wantErr, tt.wantWarning)
			}
			if tt.secret != "" && tt.secret != DevAPISecret && strings.Contains(warning, tt.secret) {
				t.Errorf("warning quotes the secret: %q", warning)
			}
		})
	}
}

func TestVerifyTokenAt(t *testing.T) {
	sign := func(method jwt.SigningMethod, key any, c Claims) string {
		t.Helper()
		s, err := jwt.NewWithClaims(method, c).SignedString(key)
		if err != nil {
			t.Fatalf("sign: %v", err)
		}
		return s
	}
	claims := func(mod func(*Claims)) Claims {
		c := Claims{
			RegisteredClaims: jwt.RegisteredClaims{
				Issuer: testKey, Subject: "bob",
				NotBefore: jwt.NewNumericDate(t0), IssuedAt: jwt.NewNumericDate(t0),
				ExpiresAt: jwt.NewNumericDate(t0.Add(time.Hour)),
			},
			Video: &VideoGrant{RoomList: true},
		}
		if mod != nil {
			mod(&c)
		}
		return c
	}
	valid := sign(jwt.SigningMethodHS256, []byte(testSecret), claims(nil))
	tests := []struct {
		name    string
		token   string
		at      time.Time
		wantErr error // nil: the token verifies
	}{
		{"valid", valid, t0.Add(time.Minute), nil},
		{"HS512", sign(jwt.SigningMethodHS512, []byte(testSecret), claims(nil)), t0, nil},
		{"expired within leeway", valid, t0.Add(time.Hour + 30*time.Second), nil},
		{"expired", valid, t0.Add(time.Hour + 2*time.Minute), jwt.ErrTokenExpired},
		{"not yet valid", valid, t0.Add(-2 * time.Minute), jwt.ErrTokenNotValidYet},
		{"wrong secret", sign(jwt.SigningMethodHS256, []byte("other-secret"), claims(nil)), t0, jwt.ErrTokenSignatureInvalid},
		{"wrong issuer", sign(jwt.SigningMethodHS256, []byte(testSecret), claims(func(c *Claims) { c.Issuer = "other" })), t0, ErrWrongIssuer},
		{"no exp", sign(jwt.SigningMethodHS256, []byte(testSecret), claims(func(c *Claims) { c.ExpiresAt = nil })), t0, jwt.ErrTokenRequiredClaimMissing},
		{"alg none", sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil)), t0, jwt.ErrTokenSignatureInvalid},
		{"garbled", "not.a.jwt", t0, ErrMalformedToken},
		{"empty", "", t0, ErrMalformedToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := VerifyTokenAt(tt.token, testKey, testSecret, tt.at)
			if tt.wantErr == nil {
				if err != nil || c == nil || c.Subject != "bob" || !c.Video.RoomList {
					t.Fatalf("VerifyTokenAt = %+v, %v; want the claims", c, err)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("VerifyTokenAt err = %v, want %v", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), testSecret) || (tt.token != "" && strings.Contains(err.Error(), tt.token)) {
				t.Errorf("error quotes a secret or the token: %v", err)
			}
		})
	}
}

func TestVerifyTokenNow(t *testing.T) {
	tok, err := MintJoinToken(testKey, testSecret, "r", "i", false, time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyToken(tok, testKey, testSecret); err != nil {
		t.Fatalf("VerifyToken: %v", err)
	}
	if _, err := VerifyToken(tok, testKey, ""); !switchboard.IsCode(err, switchboard.EInvalid) {
		t.Fatalf("VerifyToken without a secret: err = %v, want EInvalid", err)
	}
}

func FuzzVerifyToken(f *testing.F) {
	valid, err := MintJoinToken(testKey, testSecret, "room", "id", true, time.Hour, t0)
	if err != nil {
		f.Fatal(err)
	}
	api, _ := MintAPIToken(testKey, testSecret, VideoGrant{RoomList: true}, time.Minute, t0)
	for _, s := range []string{
		valid, api, "", ".", "..", "a.b.c", valid + "x", strings.Replace(valid, ".", "", 1),
		"eyJhbGciOiJub25lIn0.eyJpc3MiOiJBUElrM3lGb3JUZXN0cyJ9.",
		"eyJhbGciOiJIUzI1NiJ9.bnVsbA.sig",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := VerifyTokenAt(token, testKey, testSecret, t0)
		if err != nil {
			if c != nil {
				t.Fatalf("claims %+v returned with error %v", c, err)
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Fatalf("error quotes the secret: %v", err)
			}
			return
		}
		if c.Issuer != testKey || c.ExpiresAt == nil {
			t.Fatalf("verified claims without issuer or expiry: %+v", c)
		}
		_, _ = Issuer(token) // must not panic either
	})
}
