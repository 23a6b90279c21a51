package auth

import (
	"strings"
	"testing"
)

func TestPasswordRoundTrip(t *testing.T) {
	h, err := HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(h, "correct horse") || !strings.HasPrefix(h, "$argon2id$") {
		t.Fatalf("unexpected hash %q", h)
	}
	if err := VerifyPassword(h, "correct horse"); err != nil {
		t.Fatalf("verify: %v", err)
	}
	if err := VerifyPassword(h, "wrong"); err != ErrMismatch {
		t.Fatalf("wrong password: got %v, want ErrMismatch", err)
	}
	for _, bad := range []string{"", "$argon2id$", "$bcrypt$v=19$m=1,t=1,p=1$AA$AA", "$argon2id$v=19$m=x$AA$AA"} {
		if err := VerifyPassword(bad, "x"); err == nil {
			t.Errorf("VerifyPassword(%q) succeeded", bad)
		}
	}
}

func TestTokensAreRandomAndHashed(t *testing.T) {
	a, b := NewToken(), NewToken()
	if a == b || !strings.HasPrefix(a, TokenPrefix) || len(a) < 40 {
		t.Fatalf("tokens %q %q", a, b)
	}
	if string(HashToken(a)) == string(HashToken(b)) || len(HashToken(a)) != 32 {
		t.Fatal("hashes collide or have the wrong size")
	}
	if !Equal(a, a) || Equal(a, b) {
		t.Fatal("Equal")
	}
}

// Ids are arguments of CLI commands (tokens revoke ID): none may read as a flag.
func TestNewIDNeverLooksLikeAFlag(t *testing.T) {
	for range 2000 {
		if id := NewID(); len(id) != 18 || strings.TrimLeft(id, "0123456789abcdef") != "" {
			t.Fatalf("NewID() = %q, want 18 hex digits", id)
		}
	}
}
