// Package auth holds the credentials of Switchboard's own users: password hashing
// with Argon2id, bearer and session tokens (stored as SHA-256 hashes) and CSRF
// tokens.
package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters (RFC 9106's second recommended option, lighter on memory):
// 64 MiB, 3 passes, 2 lanes.
const (
	argonTime    = 3
	argonMemory  = 64 * 1024
	argonThreads = 2
	argonKeyLen  = 32
	saltLen      = 16
)

// HashPassword returns a PHC-style Argon2id hash of password.
func HashPassword(password string) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// ErrMismatch is returned by VerifyPassword for a wrong password.
var ErrMismatch = errors.New("password does not match")

// VerifyPassword checks password against a hash made by HashPassword, in
// constant time.
func VerifyPassword(hash, password string) error {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return errors.New("verify password: unsupported hash format")
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return errors.New("verify password: unsupported argon2 version")
	}
	var mem, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &mem, &t, &p); err != nil {
		return errors.New("verify password: bad parameters")
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil {
		return errors.New("verify password: bad salt")
	}
	want, err := enc.DecodeString(parts[5])
	if err != nil || len(want) == 0 {
		return errors.New("verify password: bad key")
	}
	got := argon2.IDKey([]byte(password), salt, t, mem, p, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return ErrMismatch
	}
	return nil
}

// TokenPrefix starts every bearer token Switchboard issues, so that secret
// scanners can recognise a leaked one.
const TokenPrefix = "sbt_"

// NewToken returns a new random bearer token (256 bits).
func NewToken() string { return TokenPrefix + randomString(32) }

// NewSessionToken returns a new random session cookie value.
func NewSessionToken() string { return randomString(32) }

// NewID returns a short random identifier that is not a secret: 18 lowercase
// hex digits, so that it never starts with "-" and reads as a flag when given
// to the CLI (as base64url ids did, one time in 64).
func NewID() string {
	b := make([]byte, 9)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b)
}

// HashToken is how tokens and session cookies are stored: SHA-256, since they
// already carry 256 bits of entropy.
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// RandomPassword returns a random password for the bootstrap admin user.
func RandomPassword() string { return randomString(18) }

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error()) // crypto/rand never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// Equal compares two secrets in constant time.
func Equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
