package auth

import (
	_ "embed"
	"strings"
	"sync"
	"unicode/utf8"
)

// MinPasswordLength and MaxPasswordLength bound a new password (characters
// and bytes respectively).
const (
	MinPasswordLength = 12
	MaxPasswordLength = 1024
)

//go:embed common-passwords.txt
var commonPasswordList string

var commonPasswords = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for line := range strings.SplitSeq(commonPasswordList, "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			m[line] = true
		}
	}
	return m
})

// CheckPassword applies the password policy to a new password of username:
// at least MinPasswordLength characters, at most MaxPasswordLength bytes,
// not the username (ignoring case), not on the built-in list of common
// passwords (ignoring case). It returns "" when the password is acceptable,
// else why not, in words that never quote the password.
func CheckPassword(username, password string) string {
	switch {
	case !utf8.ValidString(password) || strings.ContainsRune(password, 0):
		return "must be valid UTF-8 text without NUL characters"
	case utf8.RuneCountInString(password) < MinPasswordLength:
		return "must be at least 12 characters long"
	case len(password) > MaxPasswordLength:
		return "must be at most 1024 bytes long"
	case username != "" && strings.EqualFold(strings.TrimSpace(password), username):
		return "must not be the username"
	case commonPasswords()[strings.ToLower(password)]:
		return "is too common: choose one that is not on lists of leaked passwords"
	}
	return ""
}
