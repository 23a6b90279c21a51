// Package secrets seals provider credentials at rest with AES-256-GCM and loads
// the key that does it.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the length in bytes of an AES-256 key.
const KeySize = 32

// formatV1 is the version byte that starts every sealed value:
// version (1) || nonce (12) || AES-256-GCM ciphertext and tag.
// A later format gets a new version byte, and Open keeps reading the old ones.
const formatV1 byte = 1

// formatV2 is the version byte of a value bound to additional data (SealBound):
// version (1) || nonce (12) || AES-256-GCM ciphertext and tag, the additional
// data being the version byte followed by the caller's binding. The binding is
// not stored: the value opens only where the same binding is given again.
const formatV2 byte = 2

// ErrOpen is returned (wrapped) when a sealed value cannot be opened: it was
// sealed with another key, or it was altered.
var ErrOpen = errors.New("secrets: cannot decrypt: wrong key or corrupted data")

// Sealer encrypts and authenticates small secrets.
type Sealer interface {
	// Seal encrypts plaintext. Each call uses a fresh random nonce, so sealing
	// the same plaintext twice gives different results.
	Seal(plaintext []byte) ([]byte, error)
	// Open decrypts what Seal returned, and fails if it was altered or sealed
	// with another key.
	Open(ciphertext []byte) ([]byte, error)
}

// BoundSealer seals secrets bound to a context, such as the destination the
// secret may be sent to: a value opens only with the binding it was sealed
// with, so that a value moved to another context, or whose context changed
// without it being sealed again, cannot be read.
type BoundSealer interface {
	Sealer
	// SealBound encrypts plaintext bound to binding.
	SealBound(plaintext, binding []byte) ([]byte, error)
	// OpenBound decrypts what SealBound returned with the same binding. A
	// value of the unbound format (made by Seal) also opens, whatever the
	// binding: legacy reports it, so that the caller can seal it again.
	OpenBound(ciphertext, binding []byte) (plaintext []byte, legacy bool, err error)
}

// IsBound reports whether ciphertext was made by SealBound (as opposed to Seal).
func IsBound(ciphertext []byte) bool { return len(ciphertext) > 0 && ciphertext[0] == formatV2 }

// AESGCM is a Sealer using AES-256-GCM with a random 96-bit nonce per value.
// It is safe for concurrent use.
type AESGCM struct {
	aead cipher.AEAD
}

var _ BoundSealer = (*AESGCM)(nil)

// NewAESGCM returns a Sealer for a 32-byte key.
func NewAESGCM(key []byte) (*AESGCM, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("secrets: key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	return &AESGCM{aead: aead}, nil
}

// Seal encrypts plaintext as version || nonce || ciphertext.
func (a *AESGCM) Seal(plaintext []byte) ([]byte, error) {
	ns := a.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plaintext)+a.aead.Overhead())
	out[0] = formatV1
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("secrets: nonce: %w", err)
	}
	// The version byte is authenticated as additional data, so it cannot be
	// swapped to make a value be read under another format.
	return a.aead.Seal(out, out[1:], plaintext, out[:1]), nil
}

// SealBound encrypts plaintext as version || nonce || ciphertext, with the
// version byte and binding as additional data.
func (a *AESGCM) SealBound(plaintext, binding []byte) ([]byte, error) {
	ns := a.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plaintext)+a.aead.Overhead())
	out[0] = formatV2
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("secrets: nonce: %w", err)
	}
	return a.aead.Seal(out, out[1:], plaintext, boundAD(binding)), nil
}

// OpenBound decrypts a value made by SealBound with the same binding, or a
// value made by Seal (legacy is then true). Its errors never include the data.
func (a *AESGCM) OpenBound(ciphertext, binding []byte) ([]byte, bool, error) {
	if len(ciphertext) == 0 || ciphertext[0] != formatV2 {
		pt, err := a.Open(ciphertext)
		return pt, err == nil, err
	}
	ns := a.aead.NonceSize()
	if len(ciphertext) < 1+ns+a.aead.Overhead() {
		return nil, false, fmt.Errorf("%w (value too short)", ErrOpen)
	}
	pt, err := a.aead.Open(nil, ciphertext[1:1+ns], ciphertext[1+ns:], boundAD(binding))
	if err != nil {
		return nil, false, ErrOpen
	}
	return pt, false, nil
}

func boundAD(binding []byte) []byte {
	return append([]byte{formatV2}, binding...)
}

// Open decrypts a value made by Seal. Its errors never include the data.
func (a *AESGCM) Open(ciphertext []byte) ([]byte, error) {
	if len(ciphertext) == 0 {
		return nil, fmt.Errorf("%w (empty value)", ErrOpen)
	}
	switch ciphertext[0] {
	case formatV2:
		return nil, fmt.Errorf("%w (value bound to a context: open it with OpenBound)", ErrOpen)
	case formatV1:
		ns := a.aead.NonceSize()
		if len(ciphertext) < 1+ns+a.aead.Overhead() {
			return nil, fmt.Errorf("%w (value too short)", ErrOpen)
		}
		pt, err := a.aead.Open(nil, ciphertext[1:1+ns], ciphertext[1+ns:], ciphertext[:1])
		if err != nil {
			return nil, ErrOpen
		}
		return pt, nil
	default:
		return nil, fmt.Errorf("%w (unknown format version %d)", ErrOpen, ciphertext[0])
	}
}

// LoadKey returns the 32-byte sealing key.
//
// When envValue (the content of SWITCHBOARD_SECRET_KEY) is not empty, it is
// decoded as 64 hexadecimal characters or as standard or URL-safe base64, with
// or without padding, and must give exactly 32 bytes. Otherwise the key is read
// from keyFile, which must hold exactly 32 raw bytes and be readable by its
// owner only; when keyFile does not exist it is created, exclusively, with 32
// random bytes and mode 0600. Errors never quote the key.
func LoadKey(envValue string, keyFile string) ([]byte, error) {
	if v := strings.TrimSpace(envValue); v != "" {
		return decodeKey(v)
	}
	if keyFile == "" {
		return nil, errors.New("secrets: no key: set SWITCHBOARD_SECRET_KEY or a key file")
	}
	key, err := readKeyFile(keyFile)
	if errors.Is(err, fs.ErrNotExist) {
		key, err = createKeyFile(keyFile)
		if errors.Is(err, fs.ErrExist) {
			// Another process created it between our read and our create.
			key, err = readKeyFile(keyFile)
		}
	}
	return key, err
}

func decodeKey(v string) ([]byte, error) {
	if len(v) == 2*KeySize {
		if k, err := hex.DecodeString(v); err == nil {
			return k, nil
		}
	}
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding,
	} {
		k, err := enc.DecodeString(v)
		if err != nil {
			continue
		}
		if len(k) != KeySize {
			return nil, fmt.Errorf("secrets: SWITCHBOARD_SECRET_KEY decodes to %d bytes, want %d", len(k), KeySize)
		}
		return k, nil
	}
	return nil, fmt.Errorf("secrets: SWITCHBOARD_SECRET_KEY must be %d bytes as 64 hex characters or base64 (for example the output of `openssl rand -base64 32`)", KeySize)
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secrets: key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secrets: key file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("secrets: key file %s is not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("secrets: key file %s has mode %#o: it must be accessible by its owner only (chmod 600)", path, perm)
	}
	key, err := io.ReadAll(io.LimitReader(f, KeySize+1))
	if err != nil {
		return nil, fmt.Errorf("secrets: key file: %w", err)
	}
	if len(key) != KeySize {
		return nil, fmt.Errorf("secrets: key file %s must hold exactly %d bytes", path, KeySize)
	}
	return key, nil
}

// createKeyFile writes a new random key to path, failing with fs.ErrExist if
// path exists. The key is written to a temporary file in the same directory
// that is then hard-linked into place, so that no reader ever sees a partial
// key and two processes racing to create it agree on one.
func createKeyFile(path string) ([]byte, error) {
	key := make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("secrets: generate key: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".switchboard-key-*") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("secrets: create key file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("secrets: create key file: %w", err)
	}
	if _, err := tmp.Write(key); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("secrets: write key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("secrets: write key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("secrets: write key file: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("secrets: create key file: %w", err)
		}
		// The file system has no hard links: create the file exclusively instead.
		return key, writeExclusive(path, key)
	}
	return key, nil
}

func writeExclusive(path string, key []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("secrets: create key file: %w", err)
	}
	_, err = f.Write(key)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("secrets: write key file: %w", err)
	}
	return nil
}
