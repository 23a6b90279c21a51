package zegocloud

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

const testSecret = "0123456789abcdef0123456789abcdef"

// seqRand is a deterministic randomness source.
func seqRand() *bytes.Reader {
	b := make([]byte, 256)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return bytes.NewReader(b)
}

func TestBuild04RoundTrip(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	payload, err := RoomPayload("room-1", true)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		userID  string
		ttl     int64
		payload string
	}{
		{"no payload", "alice", 3600, ""},
		{"room payload", "bob", 60, payload},
		{"long user", strings.Repeat("u", MaxUserIDLength), 1, ""},
		{"unicode user", "zoë", 86400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := Build04(123456789, tt.userID, testSecret, tt.ttl, tt.payload, now, seqRand())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(tok, "04") {
				t.Fatalf("token %q lacks the 04 prefix", tok)
			}
			c, err := Decrypt04(tok, testSecret)
			if err != nil {
				t.Fatal(err)
			}
			want := Claims{AppID: 123456789, UserID: tt.userID, CTime: now.Unix(), Expire: now.Unix() + tt.ttl,
				Nonce: int32(binary.BigEndian.Uint32([]byte{0, 7, 14, 21})), Payload: tt.payload}
			if c != want {
				t.Errorf("claims = %+v, want %+v", c, want)
			}
			if !c.ExpiresAt().Equal(now.Add(time.Duration(tt.ttl) * time.Second)) {
				t.Errorf("ExpiresAt = %v", c.ExpiresAt())
			}
			// Same inputs and randomness give the same token; the layout is fixed.
			again, _ := Build04(123456789, tt.userID, testSecret, tt.ttl, tt.payload, now, seqRand())
			if again != tok {
				t.Error("Build04 is not deterministic for fixed randomness")
			}
			raw, _ := base64.StdEncoding.DecodeString(tok[2:])
			if got := int64(binary.BigEndian.Uint64(raw)); got != want.Expire {
				t.Errorf("clear expiry %d, want %d", got, want.Expire)
			}
			if binary.BigEndian.Uint16(raw[8:]) != 12 || raw[len(raw)-1] != 1 {
				t.Errorf("layout: nonce length %d, mode byte %d", binary.BigEndian.Uint16(raw[8:]), raw[len(raw)-1])
			}
		})
	}
}

func TestRoomPayload(t *testing.T) {
	for _, tt := range []struct {
		publisher bool
		want      string
	}{
		{false, `{"room_id":"r1","privilege":{"1":1,"2":0},"stream_id_list":null}`},
		{true, `{"room_id":"r1","privilege":{"1":1,"2":1},"stream_id_list":null}`},
	} {
		got, err := RoomPayload("r1", tt.publisher)
		if err != nil || got != tt.want {
			t.Errorf("RoomPayload(r1, %v) = %s, %v; want %s", tt.publisher, got, err, tt.want)
		}
	}
	if _, err := RoomPayload("", false); err == nil {
		t.Error("empty room accepted")
	}
	if _, err := RoomPayload(strings.Repeat("r", MaxRoomIDLength+1), false); err == nil {
		t.Error("long room accepted")
	}
}

func TestBuild04Invalid(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name   string
		appID  uint32
		userID string
		secret string
		ttl    int64
	}{
		{"zero app", 0, "u", testSecret, 60},
		{"empty user", 1, "", testSecret, 60},
		{"long user", 1, strings.Repeat("u", MaxUserIDLength+1), testSecret, 60},
		{"short secret", 1, "u", "short", 60},
		{"long secret", 1, "u", testSecret + "x", 60},
		{"zero ttl", 1, "u", testSecret, 0},
		{"negative ttl", 1, "u", testSecret, -1},
		{"overflowing ttl", 1, "u", testSecret, 1<<63 - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Build04(tt.appID, tt.userID, tt.secret, tt.ttl, "", now, seqRand())
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), testSecret) {
				t.Errorf("error %q holds the secret", err)
			}
		})
	}
	if _, err := Build04(1, "u", testSecret, 60, "", now, bytes.NewReader(nil)); err == nil {
		t.Error("empty randomness accepted")
	}
}

func TestDecrypt04Rejects(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	tok, err := Build04(7, "u", testSecret, 60, "", now, seqRand())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(tok[2:])
	tamperedExpiry := append([]byte(nil), raw...)
	tamperedExpiry[7]++
	flipped := append([]byte(nil), raw...)
	flipped[len(flipped)-5] ^= 1
	enc := func(b []byte) string { return "04" + base64.StdEncoding.EncodeToString(b) }
	tests := []struct {
		name, token, secret string
	}{
		{"wrong secret", tok, strings.Repeat("z", 32)},
		{"bad secret length", tok, "short"},
		{"wrong prefix", "03" + tok[2:], testSecret},
		{"empty", "", testSecret},
		{"bad base64", "04!!!", testSecret},
		{"truncated", enc(raw[:20]), testSecret},
		{"clear expiry changed", enc(tamperedExpiry), testSecret},
		{"ciphertext flipped", enc(flipped), testSecret},
		{"no mode byte", enc(raw[:len(raw)-1]), testSecret},
		{"too long", "04" + strings.Repeat("A", maxTokenLength), testSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := Decrypt04(tt.token, tt.secret); err == nil {
				t.Fatalf("decrypted %+v", c)
			}
		})
	}
}

// TestDecrypt04Legacy decrypts the deprecated AES-256-CBC form, built here by
// hand from its documented layout.
func TestDecrypt04Legacy(t *testing.T) {
	want := Claims{AppID: 42, UserID: "legacy", CTime: 1_700_000_000, Expire: 1_700_003_600, Nonce: 99}
	plain, _ := json.Marshal(want)
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	plain = append(plain, bytes.Repeat([]byte{byte(pad)}, pad)...)
	iv := []byte("0123456789abcdef")
	block, _ := aes.NewCipher([]byte(testSecret))
	ct := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, plain)
	var b bytes.Buffer
	b.Write(binary.BigEndian.AppendUint64(nil, uint64(want.Expire)))
	b.Write(binary.BigEndian.AppendUint16(nil, 16))
	b.Write(iv)
	b.Write(binary.BigEndian.AppendUint16(nil, uint16(len(ct))))
	b.Write(ct)
	tok := "04" + base64.StdEncoding.EncodeToString(b.Bytes())
	got, err := Decrypt04(tok, testSecret)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("claims = %+v, want %+v", got, want)
	}
	if _, err := Decrypt04(tok, strings.Repeat("z", 32)); err == nil {
		t.Error("legacy token decrypted with the wrong secret")
	}
}

func TestSign(t *testing.T) {
	// md5("1234567890" + "abcdef0123456789" + secret + "1700000000"), computed independently.
	got := Sign(1234567890, "abcdef0123456789", testSecret, 1_700_000_000)
	if want := "c9f50687154d45e527c585aa4ce9790f"; got != want {
		t.Errorf("Sign = %s, want %s", got, want)
	}
}

func FuzzDecrypt04(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	for _, p := range []string{"", `{"room_id":"r"}`} {
		tok, err := Build04(1, "u", testSecret, 60, p, now, seqRand())
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok)
	}
	f.Add("04")
	f.Add("04AAAAAAAAAAAAAAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := Decrypt04(tok, testSecret)
		if err != nil {
			return
		}
		// Anything that decrypts is a well-formed token whose clear expiry matched.
		if _, err := json.Marshal(c); err != nil {
			t.Fatal(err)
		}
	})
}
