package zegocloud

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// Token04Prefix starts every token04.
const Token04Prefix = "04"

// Limits of the token inputs.
const (
	// MaxUserIDLength is the longest user ID, in bytes.
	MaxUserIDLength = 64
	// SecretLength is the length of a ServerSecret, which is the AES-256 key.
	SecretLength = 32

	gcmNonceSize     = 12
	cbcIVSize        = 16
	modeGCM          = 0x01
	maxTokenLength   = 16 << 10
	maxPayloadLength = 8 << 10
)

// Privilege keys of the room privilege payload.
const (
	PrivilegeLogin   = "1" // log in to the room
	PrivilegePublish = "2" // publish streams
)

// Claims are the plaintext of a token04.
type Claims struct {
	AppID   uint32 `json:"app_id"`
	UserID  string `json:"user_id"`
	CTime   int64  `json:"ctime"`  // unix seconds
	Expire  int64  `json:"expire"` // unix seconds, absolute
	Nonce   int32  `json:"nonce"`
	Payload string `json:"payload"`
}

// ExpiresAt is the instant the token stops being valid.
func (c Claims) ExpiresAt() time.Time { return time.Unix(c.Expire, 0) }

// Build04 builds a token04 in its current AES-256-GCM form for userID of app
// appID, valid for ttl seconds from now. payload is an opaque string, typically
// a RoomPayload. rand supplies the nonces; nil means crypto/rand.
func Build04(appID uint32, userID, serverSecret string, ttl int64, payload string, now time.Time, rand io.Reader) (string, error) {
	if err := checkInputs(appID, userID, serverSecret); err != nil {
		return "", fmt.Errorf("build token04: %w", err)
	}
	ctime := now.Unix()
	if ttl <= 0 || ttl > math.MaxInt64-ctime {
		return "", errors.New("build token04: ttl must be a positive number of seconds")
	}
	if len(payload) > maxPayloadLength {
		return "", fmt.Errorf("build token04: payload longer than %d bytes", maxPayloadLength)
	}
	if rand == nil {
		rand = cryptoRand
	}
	var rnd [4 + gcmNonceSize]byte
	if _, err := io.ReadFull(rand, rnd[:]); err != nil {
		return "", fmt.Errorf("build token04: read random: %w", err)
	}
	c := Claims{
		AppID: appID, UserID: userID, CTime: ctime, Expire: ctime + ttl,
		Nonce:   int32(binary.BigEndian.Uint32(rnd[:4]) & math.MaxInt32),
		Payload: payload,
	}
	plain, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("build token04: %w", err)
	}
	aead, err := newGCM(serverSecret)
	if err != nil {
		return "", fmt.Errorf("build token04: %w", err)
	}
	nonce := rnd[4:]
	sealed := aead.Seal(nil, nonce, plain, nil)

	var b bytes.Buffer
	b.Write(binary.BigEndian.AppendUint64(nil, uint64(c.Expire)))
	b.Write(binary.BigEndian.AppendUint16(nil, gcmNonceSize))
	b.Write(nonce)
	b.Write(binary.BigEndian.AppendUint16(nil, uint16(len(sealed))))
	b.Write(sealed)
	b.WriteByte(modeGCM)
	return Token04Prefix + base64.StdEncoding.EncodeToString(b.Bytes()), nil
}

var cryptoRand = rand.Reader

func checkInputs(appID uint32, userID, serverSecret string) error {
	if appID == 0 {
		return errors.New("app ID must not be 0")
	}
	if userID == "" || len(userID) > MaxUserIDLength {
		return fmt.Errorf("user ID must be 1 to %d bytes", MaxUserIDLength)
	}
	if len(serverSecret) != SecretLength {
		return fmt.Errorf("server secret must be exactly %d characters", SecretLength)
	}
	return nil
}

func newGCM(secret string) (cipher.AEAD, error) {
	block, err := aes.NewCipher([]byte(secret))
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return aead, nil
}

// Decrypt04 decrypts and authenticates a token04, in its GCM form or its
// legacy CBC form, with serverSecret. It checks that the expiry in the clear
// matches the encrypted one, not that the token is still valid.
func Decrypt04(token, serverSecret string) (Claims, error) {
	if len(serverSecret) != SecretLength {
		return Claims{}, fmt.Errorf("decrypt token04: server secret must be exactly %d characters", SecretLength)
	}
	if len(token) > maxTokenLength {
		return Claims{}, errors.New("decrypt token04: too long")
	}
	if len(token) < len(Token04Prefix) || token[:len(Token04Prefix)] != Token04Prefix {
		return Claims{}, errors.New("decrypt token04: not a token04")
	}
	raw, err := base64.StdEncoding.DecodeString(token[len(Token04Prefix):])
	if err != nil {
		return Claims{}, errors.New("decrypt token04: invalid base64")
	}
	if len(raw) < 12 {
		return Claims{}, errors.New("decrypt token04: truncated")
	}
	expire := int64(binary.BigEndian.Uint64(raw))
	rest := raw[8:]
	nonce, rest, ok := cut16(rest)
	if !ok {
		return Claims{}, errors.New("decrypt token04: truncated")
	}
	sealed, rest, ok := cut16(rest)
	if !ok {
		return Claims{}, errors.New("decrypt token04: truncated")
	}
	var plain []byte
	switch {
	case len(rest) == 1 && rest[0] == modeGCM && len(nonce) == gcmNonceSize:
		aead, err := newGCM(serverSecret)
		if err != nil {
			return Claims{}, fmt.Errorf("decrypt token04: %w", err)
		}
		if plain, err = aead.Open(nil, nonce, sealed, nil); err != nil {
			return Claims{}, errors.New("decrypt token04: authentication failed")
		}
	case len(rest) == 0 && len(nonce) == cbcIVSize:
		if plain, err = decryptCBC(serverSecret, nonce, sealed); err != nil {
			return Claims{}, fmt.Errorf("decrypt token04: %w", err)
		}
	default:
		return Claims{}, errors.New("decrypt token04: unknown layout")
	}
	var c Claims
	if err := json.Unmarshal(plain, &c); err != nil {
		return Claims{}, errors.New("decrypt token04: plaintext is not the expected JSON")
	}
	if c.Expire != expire {
		return Claims{}, errors.New("decrypt token04: expiry in the clear does not match the encrypted one")
	}
	return c, nil
}

// decryptCBC decrypts the legacy form: AES-256-CBC with PKCS#7 padding. It
// offers no integrity: a wrong secret shows as bad padding or bad JSON.
func decryptCBC(secret string, iv, ct []byte) ([]byte, error) {
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, errors.New("cbc ciphertext is not whole blocks")
	}
	block, err := aes.NewCipher([]byte(secret))
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	plain := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ct)
	n := int(plain[len(plain)-1])
	if n == 0 || n > aes.BlockSize {
		return nil, errors.New("bad padding")
	}
	for _, p := range plain[len(plain)-n:] {
		if int(p) != n {
			return nil, errors.New("bad padding")
		}
	}
	return plain[:len(plain)-n], nil
}

// cut16 splits a big-endian u16-length-prefixed field off b.
func cut16(b []byte) (field, rest []byte, ok bool) {
	if len(b) < 2 {
		return nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b)-2 < n {
		return nil, nil, false
	}
	return b[2 : 2+n], b[2+n:], true
}

// RoomPrivilege is the privilege payload of a token04 that limits it to one room.
type RoomPrivilege struct {
	RoomID       string         `json:"room_id"`
	Privilege    map[string]int `json:"privilege"` // PrivilegeLogin, PrivilegePublish → 0 or 1
	StreamIDList []string       `json:"stream_id_list"`
}

// RoomPayload returns the privilege payload for room: everyone may log in,
// only publishers may publish.
func RoomPayload(room string, publisher bool) (string, error) {
	if room == "" || len(room) > MaxRoomIDLength {
		return "", fmt.Errorf("room ID must be 1 to %d bytes", MaxRoomIDLength)
	}
	pub := 0
	if publisher {
		pub = 1
	}
	b, err := json.Marshal(RoomPrivilege{RoomID: room, Privilege: map[string]int{PrivilegeLogin: 1, PrivilegePublish: pub}})
	if err != nil {
		return "", fmt.Errorf("room payload: %w", err)
	}
	return string(b), nil
}

// MaxRoomIDLength is the longest room ID ZEGOCLOUD accepts, in bytes.
const MaxRoomIDLength = 128
