package agora

import (
	"bytes"
	"compress/zlib"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Version is the prefix of every AccessToken2 token.
const Version = "007"

// Service types of AccessToken2.
const (
	ServiceRTC uint16 = 1
	ServiceRTM uint16 = 2
)

// Privileges of the RTC service.
const (
	PrivilegeJoinChannel        uint16 = 1
	PrivilegePublishAudioStream uint16 = 2
	PrivilegePublishVideoStream uint16 = 3
	PrivilegePublishDataStream  uint16 = 4
)

// PrivilegeLogin is the privilege of the RTM service.
const PrivilegeLogin uint16 = 1

// Limits of the token inputs.
const (
	// MaxExpire is Agora's documented 24-hour ceiling, in seconds, for a token
	// and for each of its privileges.
	MaxExpire = 24 * 60 * 60
	// MaxSalt bounds the salt: salts are drawn from [1, MaxSalt).
	MaxSalt = 99999999
	// MaxChannelLength is the longest channel name Agora accepts, in bytes.
	MaxChannelLength = 64
	// MaxAccountLength is the longest user account Agora accepts, in bytes.
	MaxAccountLength = 255

	maxTokenLength   = 16 << 10 // no real token comes near this
	maxContentLength = 64 << 10 // decompression limit against zlib bombs
)

// channelChars is the character set Agora documents for channel names.
const channelChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !#$%&()+-:;<=.>?@[]^_{}|~,"

// Service is one service of an access token: its type, its privileges with
// their expiries (seconds after the token's issue time) and its own fields.
type Service struct {
	Type       uint16
	Privileges map[uint16]uint32
	// ChannelName and UID are the fields of the RTC service. UID is the decimal
	// form of a numeric uid, empty for uid 0, or a user account.
	ChannelName string
	UID         string
	// UserID is the field of the RTM service.
	UserID string
}

// AccessToken is a decoded AccessToken2 ("007") token.
type AccessToken struct {
	AppID    string
	IssueTs  uint32 // unix seconds
	Expire   uint32 // seconds after IssueTs
	Salt     uint32
	Services []Service // ascending by Type

	signature []byte
	signed    []byte // the SIGNED bytes the signature covers
}

// ExpiresAt is the instant the token stops being valid.
func (t *AccessToken) ExpiresAt() time.Time {
	return time.Unix(int64(t.IssueTs)+int64(t.Expire), 0)
}

// Service returns the service of type typ, if present.
func (t *AccessToken) Service(typ uint16) (Service, bool) {
	for _, s := range t.Services {
		if s.Type == typ {
			return s, true
		}
	}
	return Service{}, false
}

// Content returns the decompressed content of the token: the signature followed
// by the signed bytes. Tests compare it across implementations, whose zlib output
// differs.
func (t *AccessToken) Content() []byte {
	var b bytes.Buffer
	putBytes(&b, t.signature)
	b.Write(t.signed)
	return b.Bytes()
}

// Verify checks the token's signature against appCertificate in constant time.
// It does not look at the expiry.
func (t *AccessToken) Verify(appCertificate string) error {
	if !isHex(appCertificate, 32) {
		return errors.New("verify token: app certificate must be 32 hex characters")
	}
	want := sign(appCertificate, t.IssueTs, t.Salt, t.signed)
	if !hmac.Equal(want, t.signature) {
		return errors.New("verify token: signature mismatch")
	}
	return nil
}

// Build signs t with appCertificate and encodes it. Services are written in
// ascending type order and privileges in ascending id order whatever their order
// in t; t itself is not modified.
func (t *AccessToken) Build(appCertificate string) (string, error) {
	if !isHex(t.AppID, 32) {
		return "", errors.New("build token: app ID must be 32 hex characters")
	}
	if !isHex(appCertificate, 32) {
		return "", errors.New("build token: app certificate must be 32 hex characters")
	}
	signed, err := t.marshalSigned()
	if err != nil {
		return "", fmt.Errorf("build token: %w", err)
	}
	var content bytes.Buffer
	putBytes(&content, sign(appCertificate, t.IssueTs, t.Salt, signed))
	content.Write(signed)

	var z bytes.Buffer
	zw := zlibWriters.Get().(*zlib.Writer)
	defer zlibWriters.Put(zw)
	zw.Reset(&z)
	if _, err := zw.Write(content.Bytes()); err != nil {
		return "", fmt.Errorf("build token: compress: %w", err)
	}
	if err := zw.Close(); err != nil {
		return "", fmt.Errorf("build token: compress: %w", err)
	}
	return Version + base64.StdEncoding.EncodeToString(z.Bytes()), nil
}

// zlibWriters reuses the compressors of Build: a new one allocates several
// hundred kilobytes of state, which was a fifth of the CPU of a stream start.
// Reset gives the same output as a new writer.
//
// The content is stored in the zlib stream without compression. A token's
// content is mostly a signature, a salt and hex digits, which the default
// level shrank by 2 bytes of about 140 at a cost of 25 to 60 µs a token
// (clearing its match tables and building its Huffman codes: 13 % of the CPU
// of a stream start): a token is now about 20 characters longer and costs
// about 1 µs to wrap. Any zlib reader, Agora's included, reads stored blocks.
var zlibWriters = sync.Pool{New: func() any {
	zw, err := zlib.NewWriterLevel(nil, zlib.NoCompression)
	if err != nil {
		panic(err) // the level is valid
	}
	return zw
}}

func (t *AccessToken) marshalSigned() ([]byte, error) {
	services := slices.Clone(t.Services)
	slices.SortFunc(services, func(a, b Service) int { return int(a.Type) - int(b.Type) })
	for i := 1; i < len(services); i++ {
		if services[i].Type == services[i-1].Type {
			return nil, fmt.Errorf("service type %d appears twice", services[i].Type)
		}
	}
	var b bytes.Buffer
	putString(&b, t.AppID)
	putU32(&b, t.IssueTs)
	putU32(&b, t.Expire)
	putU32(&b, t.Salt)
	putU16(&b, uint16(len(services)))
	for _, s := range services {
		putU16(&b, s.Type)
		ids := make([]uint16, 0, len(s.Privileges))
		for id := range s.Privileges {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		putU16(&b, uint16(len(ids)))
		for _, id := range ids {
			putU16(&b, id)
			putU32(&b, s.Privileges[id])
		}
		switch s.Type {
		case ServiceRTC:
			if len(s.ChannelName) > 0xffff || len(s.UID) > 0xffff {
				return nil, errors.New("rtc service field too long")
			}
			putString(&b, s.ChannelName)
			putString(&b, s.UID)
		case ServiceRTM:
			if len(s.UserID) > 0xffff {
				return nil, errors.New("rtm service field too long")
			}
			putString(&b, s.UserID)
		default:
			return nil, fmt.Errorf("unsupported service type %d", s.Type)
		}
	}
	return b.Bytes(), nil
}

// Parse decodes an AccessToken2 token without verifying its signature (see
// Verify). It understands the RTC and RTM services and rejects any other.
func Parse(token string) (*AccessToken, error) {
	if len(token) > maxTokenLength {
		return nil, errors.New("parse token: too long")
	}
	if !strings.HasPrefix(token, Version) {
		return nil, errors.New("parse token: not an AccessToken2 (007) token")
	}
	raw, err := base64.StdEncoding.DecodeString(token[len(Version):])
	if err != nil {
		return nil, errors.New("parse token: invalid base64")
	}
	zr, err := zlib.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, errors.New("parse token: invalid zlib stream")
	}
	defer zr.Close()
	content, err := io.ReadAll(io.LimitReader(zr, maxContentLength+1))
	if err != nil {
		return nil, errors.New("parse token: invalid zlib stream")
	}
	if len(content) > maxContentLength {
		return nil, errors.New("parse token: content too large")
	}
	t, err := unmarshalContent(content)
	if err != nil {
		return nil, fmt.Errorf("parse token: %w", err)
	}
	return t, nil
}

func unmarshalContent(content []byte) (*AccessToken, error) {
	r := &reader{b: content}
	t := &AccessToken{signature: r.bytes()}
	start := r.off
	t.AppID = string(r.bytes())
	t.IssueTs = r.u32()
	t.Expire = r.u32()
	t.Salt = r.u32()
	n := r.u16()
	for i := 0; i < int(n) && r.err == nil; i++ {
		s := Service{Type: r.u16(), Privileges: map[uint16]uint32{}}
		np := r.u16()
		for j := 0; j < int(np) && r.err == nil; j++ {
			id := r.u16()
			s.Privileges[id] = r.u32()
		}
		switch s.Type {
		case ServiceRTC:
			s.ChannelName = string(r.bytes())
			s.UID = string(r.bytes())
		case ServiceRTM:
			s.UserID = string(r.bytes())
		default:
			if r.err == nil {
				return nil, fmt.Errorf("unsupported service type %d", s.Type)
			}
		}
		t.Services = append(t.Services, s)
	}
	if r.err != nil {
		return nil, r.err
	}
	if r.off != len(content) {
		return nil, errors.New("trailing bytes after the services")
	}
	if len(t.signature) != sha256.Size {
		return nil, errors.New("signature is not 32 bytes")
	}
	t.signed = content[start:]
	return t, nil
}

// sign computes the AccessToken2 signature of signed.
func sign(appCertificate string, issueTs, salt uint32, signed []byte) []byte {
	k1 := hmacSHA256(binary.LittleEndian.AppendUint32(nil, issueTs), []byte(appCertificate))
	key := hmacSHA256(binary.LittleEndian.AppendUint32(nil, salt), k1)
	return hmacSHA256(key, signed)
}

func hmacSHA256(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

// BuildRTCToken builds an RTC token for a numeric uid (0 lets any user join).
// A subscriber gets the join privilege only; a publisher also gets the publish
// audio, video and data stream privileges. expire and privilegeExpire are
// seconds after issueTs, each from 1 to MaxExpire; salt is in [1, MaxSalt).
func BuildRTCToken(appID, appCertificate, channel string, uid uint32, publisher bool, expire, privilegeExpire, issueTs, salt uint32) (string, error) {
	return buildRTC(appID, appCertificate, channel, UIDString(uid), publisher, expire, privilegeExpire, issueTs, salt)
}

// BuildRTCTokenWithAccount is BuildRTCToken for a user account (Agora's
// string uid), 1 to MaxAccountLength bytes.
func BuildRTCTokenWithAccount(appID, appCertificate, channel, account string, publisher bool, expire, privilegeExpire, issueTs, salt uint32) (string, error) {
	if account == "" || len(account) > MaxAccountLength {
		return "", fmt.Errorf("build rtc token: user account must be 1 to %d bytes", MaxAccountLength)
	}
	return buildRTC(appID, appCertificate, channel, account, publisher, expire, privilegeExpire, issueTs, salt)
}

func buildRTC(appID, appCertificate, channel, uid string, publisher bool, expire, privilegeExpire, issueTs, salt uint32) (string, error) {
	if err := checkCommon(appID, appCertificate, expire, salt); err != nil {
		return "", fmt.Errorf("build rtc token: %w", err)
	}
	if privilegeExpire == 0 || privilegeExpire > MaxExpire {
		return "", fmt.Errorf("build rtc token: privilege expire must be from 1 to %d seconds", MaxExpire)
	}
	if err := CheckChannel(channel); err != nil {
		return "", fmt.Errorf("build rtc token: %w", err)
	}
	privs := map[uint16]uint32{PrivilegeJoinChannel: privilegeExpire}
	if publisher {
		privs[PrivilegePublishAudioStream] = privilegeExpire
		privs[PrivilegePublishVideoStream] = privilegeExpire
		privs[PrivilegePublishDataStream] = privilegeExpire
	}
	t := AccessToken{AppID: appID, IssueTs: issueTs, Expire: expire, Salt: salt, Services: []Service{
		{Type: ServiceRTC, Privileges: privs, ChannelName: channel, UID: uid},
	}}
	return t.Build(appCertificate)
}

// BuildRTMToken builds an RTM (signaling) login token for userID, valid for
// expire seconds after issueTs.
func BuildRTMToken(appID, appCertificate, userID string, expire, issueTs, salt uint32) (string, error) {
	if err := checkCommon(appID, appCertificate, expire, salt); err != nil {
		return "", fmt.Errorf("build rtm token: %w", err)
	}
	if userID == "" || len(userID) > MaxAccountLength {
		return "", fmt.Errorf("build rtm token: user ID must be 1 to %d bytes", MaxAccountLength)
	}
	t := AccessToken{AppID: appID, IssueTs: issueTs, Expire: expire, Salt: salt, Services: []Service{
		{Type: ServiceRTM, Privileges: map[uint16]uint32{PrivilegeLogin: expire}, UserID: userID},
	}}
	return t.Build(appCertificate)
}

func checkCommon(appID, appCertificate string, expire, salt uint32) error {
	if !isHex(appID, 32) {
		return errors.New("app ID must be 32 hex characters")
	}
	if !isHex(appCertificate, 32) {
		return errors.New("app certificate must be 32 hex characters")
	}
	if expire == 0 || expire > MaxExpire {
		return fmt.Errorf("expire must be from 1 to %d seconds", MaxExpire)
	}
	if salt == 0 || salt >= MaxSalt {
		return fmt.Errorf("salt must be in [1, %d)", MaxSalt)
	}
	return nil
}

// CheckChannel reports whether channel is a valid Agora channel name: 1 to 64
// bytes from Agora's documented character set.
func CheckChannel(channel string) error {
	if channel == "" || len(channel) > MaxChannelLength {
		return fmt.Errorf("channel name must be 1 to %d bytes", MaxChannelLength)
	}
	for _, r := range channel {
		if !strings.ContainsRune(channelChars, r) {
			return errors.New("channel name may hold only letters, digits, spaces and !#$%&()+-:;<=.>?@[]^_{}|~,")
		}
	}
	return nil
}

// UIDString is the token form of a numeric uid: its decimal string, or the
// empty string for uid 0.
func UIDString(uid uint32) string {
	if uid == 0 {
		return ""
	}
	return strconv.FormatUint(uint64(uid), 10)
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

func putU16(b *bytes.Buffer, v uint16) { b.Write(binary.LittleEndian.AppendUint16(nil, v)) }
func putU32(b *bytes.Buffer, v uint32) { b.Write(binary.LittleEndian.AppendUint32(nil, v)) }
func putString(b *bytes.Buffer, s string) {
	putU16(b, uint16(len(s)))
	b.WriteString(s)
}
func putBytes(b *bytes.Buffer, p []byte) {
	putU16(b, uint16(len(p)))
	b.Write(p)
}

// reader decodes little-endian fields and remembers the first error.
type reader struct {
	b   []byte
	off int
	err error
}

var errShort = errors.New("truncated content")

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b)-r.off < n {
		r.err = errShort
		return nil
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p
}

func (r *reader) u16() uint16 {
	if p := r.take(2); p != nil {
		return binary.LittleEndian.Uint16(p)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.LittleEndian.Uint32(p)
	}
	return 0
}

func (r *reader) bytes() []byte {
	n := r.u16()
	return r.take(int(n))
}
