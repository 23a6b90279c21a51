package secrets

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func mustKey(t *testing.T) []byte {
	t.Helper()
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSealer(t *testing.T, key []byte) *AESGCM {
	t.Helper()
	s, err := NewAESGCM(key)
	if err != nil {
		t.Fatalf("NewAESGCM: %v", err)
	}
	return s
}

func TestSealOpenRoundTrip(t *testing.T) {
	s := mustSealer(t, mustKey(t))
	for _, pt := range [][]byte{{}, []byte("x"), []byte(`{"customerSecret":"s3cr3t"}`), bytes.Repeat([]byte("a"), 1<<16)} {
		ct, err := s.Seal(pt)
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		if len(pt) >= 8 && bytes.Contains(ct, pt) {
			t.Fatalf("ciphertext contains the plaintext")
		}
		if ct[0] != formatV1 {
			t.Fatalf("version byte = %d, want %d", ct[0], formatV1)
		}
		got, err := s.Open(ct)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("round trip changed the value")
		}
	}
}

func TestSealUsesFreshNonce(t *testing.T) {
	s := mustSealer(t, mustKey(t))
	a, _ := s.Seal([]byte("same"))
	b, _ := s.Seal([]byte("same"))
	if bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext are equal")
	}
}

func TestOpenRejects(t *testing.T) {
	s := mustSealer(t, mustKey(t))
	other := mustSealer(t, mustKey(t))
	ct, err := s.Seal([]byte("secret-value"))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		c := bytes.Clone(ct)
		c[i] ^= 1
		return c
	}
	tests := []struct {
		name string
		s    *AESGCM
		ct   []byte
	}{
		{"wrong key", other, ct},
		{"empty", s, nil},
		{"short", s, ct[:10]},
		{"flipped version", s, flip(0)},
		{"flipped nonce", s, flip(3)},
		{"flipped body", s, flip(len(ct) - 1)},
		{"unknown version", s, append([]byte{9}, ct[1:]...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.s.Open(tt.ct)
			if !errors.Is(err, ErrOpen) {
				t.Fatalf("Open error = %v, want ErrOpen", err)
			}
			if strings.Contains(err.Error(), "secret-value") {
				t.Fatalf("error leaks the plaintext: %v", err)
			}
		})
	}
}

func TestNewAESGCMKeySize(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33} {
		if _, err := NewAESGCM(make([]byte, n)); err == nil {
			t.Errorf("NewAESGCM(%d bytes) succeeded, want an error", n)
		}
	}
}

func TestLoadKeyFromEnv(t *testing.T) {
	key := mustKey(t)
	tests := []struct {
		name, env string
	}{
		{"hex", hex.EncodeToString(key)},
		{"hex upper", strings.ToUpper(hex.EncodeToString(key))},
		{"base64 std", base64.StdEncoding.EncodeToString(key)},
		{"base64 url", base64.URLEncoding.EncodeToString(key)},
		{"base64 raw std", base64.RawStdEncoding.EncodeToString(key)},
		{"base64 raw url", base64.RawURLEncoding.EncodeToString(key)},
		{"surrounding space", " " + base64.StdEncoding.EncodeToString(key) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A key file that must not be touched when the env value is set.
			file := filepath.Join(t.TempDir(), "key")
			got, err := LoadKey(tt.env, file)
			if err != nil {
				t.Fatalf("LoadKey: %v", err)
			}
			if !bytes.Equal(got, key) {
				t.Fatal("LoadKey returned another key")
			}
			if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("key file created although the env value was set: %v", err)
			}
		})
	}
}

func TestLoadKeyBadEnv(t *testing.T) {
	tests := []struct{ name, env string }{
		{"too short base64", base64.StdEncoding.EncodeToString([]byte("0123456789abcdef"))},
		{"too long base64", base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 48))},
		{"not base64 nor hex", "this-is-not-a-key-but-a-passphrase!!"},
		{"63 hex", strings.Repeat("a", 63)},
		{"64 non-hex", strings.Repeat("z", 64)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadKey(tt.env, "")
			if err == nil {
				t.Fatal("LoadKey succeeded, want an error")
			}
			if strings.Contains(err.Error(), tt.env) {
				t.Fatalf("error echoes the value: %v", err)
			}
			if !strings.Contains(err.Error(), "SWITCHBOARD_SECRET_KEY") {
				t.Fatalf("error does not name the variable: %v", err)
			}
		})
	}
}

func TestLoadKeyCreatesFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secret.key")
	k1, err := LoadKey("", file)
	if err != nil {
		t.Fatalf("LoadKey: %v", err)
	}
	if len(k1) != KeySize {
		t.Fatalf("key is %d bytes", len(k1))
	}
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %#o, want 0600", st.Mode().Perm())
	}
	k2, err := LoadKey("", file)
	if err != nil {
		t.Fatalf("second LoadKey: %v", err)
	}
	if !bytes.Equal(k1, k2) {
		t.Fatal("second LoadKey returned another key")
	}
	entries, _ := os.ReadDir(filepath.Dir(file))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the key file", len(entries))
	}
}

func TestLoadKeyConcurrentCreate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "secret.key")
	const n = 8
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { keys[i], errs[i] = LoadKey("", file) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("LoadKey %d: %v", i, errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("LoadKey %d returned another key than LoadKey 0", i)
		}
	}
}

func TestLoadKeyFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // WriteFile is subject to the umask
			t.Fatal(err)
		}
		return p
	}
	key := mustKey(t)
	tests := []struct {
		name, path, want string
	}{
		{"group readable", write("g", key, 0o640), "owner only"},
		{"world readable", write("w", key, 0o644), "owner only"},
		{"short", write("s", key[:16], 0o600), "exactly 32 bytes"},
		{"long", write("l", append(key, '\n'), 0o600), "exactly 32 bytes"},
		{"directory", dir, "not a regular file"},
		{"missing directory", filepath.Join(dir, "nope", "key"), "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := LoadKey("", tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadKey error = %v, want it to mention %q", err, tt.want)
			}
		})
	}
	if _, err := LoadKey("", ""); err == nil {
		t.Fatal("LoadKey with no env value and no file succeeded")
	}
}

func TestLoadKeyReadsExistingFile(t *testing.T) {
	key := mustKey(t)
	p := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(p, key, 0o400); err != nil {
		t.Fatal(err)
	}
	got, err := LoadKey("", p)
	if err != nil {
		t.Fatalf("LoadKey: %v", err)
	}
	if !bytes.Equal(got, key) {
		t.Fatal("LoadKey returned another key")
	}
}

func TestSealBound(t *testing.T) {
	a, err := NewAESGCM(bytes.Repeat([]byte{3}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	pt := []byte("customer-secret")
	v, err := a.SealBound(pt, []byte("web|https://a.example"))
	if err != nil {
		t.Fatal(err)
	}
	if !IsBound(v) {
		t.Fatal("IsBound = false for a bound value")
	}
	got, legacy, err := a.OpenBound(v, []byte("web|https://a.example"))
	if err != nil || legacy || !bytes.Equal(got, pt) {
		t.Fatalf("OpenBound = %q, %v, %v", got, legacy, err)
	}
	if _, _, err := a.OpenBound(v, []byte("web|https://b.example")); !errors.Is(err, ErrOpen) {
		t.Errorf("OpenBound with another binding: %v, want ErrOpen", err)
	}
	if _, err := a.Open(v); !errors.Is(err, ErrOpen) {
		t.Errorf("Open of a bound value: %v, want ErrOpen", err)
	}
	// A legacy value opens whatever the binding, and says so.
	old, err := a.Seal(pt)
	if err != nil {
		t.Fatal(err)
	}
	if IsBound(old) {
		t.Error("IsBound = true for a legacy value")
	}
	got, legacy, err = a.OpenBound(old, []byte("anything"))
	if err != nil || !legacy || !bytes.Equal(got, pt) {
		t.Fatalf("OpenBound(legacy) = %q, %v, %v", got, legacy, err)
	}
	// The version byte is authenticated: a bound value relabelled as legacy fails.
	relabelled := bytes.Clone(v)
	relabelled[0] = formatV1
	if _, _, err := a.OpenBound(relabelled, []byte("web|https://a.example")); !errors.Is(err, ErrOpen) {
		t.Errorf("relabelled value: %v, want ErrOpen", err)
	}
}
