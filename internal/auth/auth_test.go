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

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		user, pw string
		ok       bool
	}{
		{"alice", "a-long-and-unusual-passphrase", true},
		{"alice", "short", false},
		{"alice", "elevenchars", false},
		{"alice", "ééééééééééé", false}, // 11 characters, 22 bytes
		{"alice", "éééééééééééé", true}, // 12 characters
		{"administrator", "Administrator", false},
		{"alice", "Password1234", false},
		{"alice", "QWERTY123456", false},
		{"alice", "correct horse battery staple", false},
		{"alice", strings.Repeat("x", 1025), false},
		{"alice", "twelve chars\x00", false},
		{"alice", "twelve\xffchars", false},
	}
	for _, tt := range tests {
		why := CheckPassword(tt.user, tt.pw)
		if (why == "") != tt.ok {
			t.Errorf("CheckPassword(%q, %q) = %q, want ok %v", tt.user, shortPW(tt.pw), why, tt.ok)
		}
		if why != "" && strings.Contains(why, tt.pw) {
			t.Errorf("reason %q quotes the password", why)
		}
	}
	if n := len(commonPasswords()); n < 200 {
		t.Errorf("only %d common passwords", n)
	}
}

func shortPW(s string) string {
	if len(s) > 20 {
		return s[:20] + "…"
	}
	return s
}
