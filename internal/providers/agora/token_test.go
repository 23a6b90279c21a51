package agora

import (
	"bytes"
	"encoding/hex"
	"maps"
	"strings"
	"sync"
	"testing"
)

// Inputs of the reference vectors (repository AgoraIO/Tools, DynamicKey/AgoraDynamicKey).
const (
	vecAppID   = "970CA35de60c44645bbae8a215061b33"
	vecCert    = "5CFd2fd1755d40ecb72977518be15d3b"
	vecChannel = "7d72365eb983485397e3e3f9d460bdda"
	vecUID     = uint32(2882341273)
	vecUIDStr  = "2882341273"
	vecIssueTs = uint32(1111111)
	vecSalt    = uint32(1)
	vecExpire  = uint32(600)
	vecUser    = "test_user"
	vecAccount = "^ZSgT<%q:Fj*@`92>#OHL?\"hkm~nGYiP"
)

// vecSubscriberContent is the published CONTENT of the subscriber vector in the
// provider contracts.
const vecSubscriberContent = "200016a0b84c5a5e82cbf74fb813d09f59c54bdac9c06120580539ac97578e958b1a2000393730434133356465363063343436343562626165386132313530363162333347f410005802000001000000010001000100010058020000200037643732333635656239383334383533393765336533663964343630626464610a0032383832333431323733"

// Tokens produced by the reference implementations (Go and Python) for the
// inputs above. Their compressed bytes differ from ours; their content must not.
var referenceTokens = map[string]string{
	"empty":             "007eJxSYEiJ9+zw7Gb1viNuGtMfy3JriuZNp+1h1iLu/rOePHlS91WBwdLcwNnR2DQl1cwg2cTEzMQ0KSkx1SLRyNDUwMwwydjY/YsAQwQTAwMjAwgAAgAA//+rZxiv",
	"rtc-go":            "007eJxSYBBbsMMnKq7p9Hf/HcIX5kce9b518kCiQgSr5Zrp4X1Tu6UUGCzNDZwdjU1TUs0Mkk1MzExMk5ISUy0SjQxNDcwMk4yN3b8IMEQwMTAwMoAwBIL4CgzmKeZGxmamqUmWFsYmFqbGluapxqnGaZYpJmYGSSkpiVwMRhYWRsYmhkbmxoAAAAD//8JqJOM=",
	"rtc-python":        "007eJxTYBBbsMMnKq7p9Hf/HcIX5kce9b518kCiQgSr5Zrp4X1Tu6UUGCzNDZwdjU1TUs0Mkk1MzExMk5ISUy0SjQxNDcwMk4yN3b8IMEQwMTAwMoAwBIL4CgzmKeZGxmamqUmWFsYmFqbGluapxqnGaZYpJmYGSSkpiVwMRhYWRsYmhkbmxgDCaiTj",
	"rtc-uid0":          "007eJxSYLhzZP08Lxa1Pg57+TcXb/3cZ3wi4V6kbpbOog0G2dOYk20UGCzNDZwdjU1TUs0Mkk1MzExMk5ISUy0SjQxNDcwMk4yN3b8IMEQwMTAwMoAwBIL4CgzmKeZGxmamqUmWFsYmFqbGluapxqnGaZYpJmYGSSkpiQwMgAAAAP//Npwiag==",
	"rtm":               "007eJxSYOCdJftjyTM2zxW6Xhm/5T0j5LdcUt/xYVt48fb5Mp3PX9coMFiaGzg7GpumpJoZJJuYmJmYJiUlplokGhmaGpgZJhkbu38RYIhgYmBgZABhJgZGBkYwn5OhJLW4JL60OLUIEAAA//9ZVh6A",
	"rtc-rtm-python":    "007eJxTYOAQsrQ5s3TfH+1tvy8zZZ46EpCc0V43JXdGd2jS8porKo4KDJbmBs6OxqYpqWYGySYmZiamSUmJqRaJRoamBmaGScbG7l8EGCKYGBgYGRgYmIAkCxCD+ExgkhlMsoBJBQbzFHMjYzPT1CRLC2MTC1NjS/NU41TjNMsUEzODpJSURC4GIwsLI2MTQyNzY5BZEJM4GUpSi0viS4tTiwAipyp4",
	"streaming-unknown": "007eJxSYGBj//4jzGnul2n88j7n7tb9njDzn/j5BhulK6yLV5/YlWKnwGBpbuDsaGyakmpmkGxiYmZimpSUmGqRaGRoamBmmGRs7P5FgCGCiYGBkQGEmRkYGRjBfAUG8xRzI2Mz09QkSwtjEwtTY0vzVONU4zTLFBMzg6SUlEQuBiMLCyNjE0Mjc2NAAAAA//8zyyXw",
}

func mustParse(t *testing.T, tok string) *AccessToken {
	t.Helper()
	at, err := Parse(tok)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return at
}

func TestPublishedVector(t *testing.T) {
	tok, err := BuildRTCToken(vecAppID, vecCert, vecChannel, vecUID, false, vecExpire, vecExpire, vecIssueTs, vecSalt)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "007") {
		t.Fatalf("token %q lacks the 007 prefix", tok)
	}
	want, _ := hex.DecodeString(vecSubscriberContent)
	if got := mustParse(t, tok).Content(); !bytes.Equal(got, want) {
		t.Fatalf("content\n got %x\nwant %x", got, want)
	}
}

func TestReferenceTokens(t *testing.T) {
	rtc := func(uid string, publisher bool) []Service {
		p := map[uint16]uint32{PrivilegeJoinChannel: vecExpire}
		if publisher {
			p[PrivilegePublishAudioStream], p[PrivilegePublishVideoStream], p[PrivilegePublishDataStream] = vecExpire, vecExpire, vecExpire
		}
		return []Service{{Type: ServiceRTC, Privileges: p, ChannelName: vecChannel, UID: uid}}
	}
	rtm := Service{Type: ServiceRTM, Privileges: map[uint16]uint32{PrivilegeLogin: vecExpire}, UserID: vecUser}
	tests := []struct {
		name     string
		services []Service
		build    func() (string, error) // our builder for the same inputs, if it has one
	}{
		{"empty", nil, nil},
		{"rtc-go", rtc(vecUIDStr, false), func() (string, error) {
			return BuildRTCToken(vecAppID, vecCert, vecChannel, vecUID, false, vecExpire, vecExpire, vecIssueTs, vecSalt)
		}},
		{"rtc-python", rtc(vecUIDStr, false), nil},
		{"rtc-uid0", rtc("", false), func() (string, error) {
			return BuildRTCToken(vecAppID, vecCert, vecChannel, 0, false, vecExpire, vecExpire, vecIssueTs, vecSalt)
		}},
		{"rtm", []Service{rtm}, func() (string, error) {
			return BuildRTMToken(vecAppID, vecCert, vecUser, vecExpire, vecIssueTs, vecSalt)
		}},
		{"rtc-rtm-python", append(rtc(vecUIDStr, true), rtm), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := mustParse(t, referenceTokens[tt.name])
			if err := ref.Verify(vecCert); err != nil {
				t.Fatalf("reference token does not verify: %v", err)
			}
			if ref.AppID != vecAppID || ref.IssueTs != vecIssueTs || ref.Salt != vecSalt || ref.Expire != vecExpire {
				t.Errorf("header = %s %d %d %d", ref.AppID, ref.IssueTs, ref.Salt, ref.Expire)
			}
			if len(ref.Services) != len(tt.services) {
				t.Fatalf("got %d services, want %d", len(ref.Services), len(tt.services))
			}
			for i, want := range tt.services {
				got := ref.Services[i]
				if got.Type != want.Type || got.ChannelName != want.ChannelName || got.UID != want.UID ||
					got.UserID != want.UserID || !maps.Equal(got.Privileges, want.Privileges) {
					t.Errorf("service %d = %+v, want %+v", i, got, want)
				}
			}
			// Rebuilding the parsed token reproduces the reference content exactly.
			ours := &AccessToken{AppID: vecAppID, IssueTs: vecIssueTs, Expire: vecExpire, Salt: vecSalt, Services: tt.services}
			tok, err := ours.Build(vecCert)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := mustParse(t, tok).Content(), ref.Content(); !bytes.Equal(got, want) {
				t.Fatalf("rebuilt content\n got %x\nwant %x", got, want)
			}
			if tt.build != nil {
				tok, err := tt.build()
				if err != nil {
					t.Fatal(err)
				}
				if got, want := mustParse(t, tok).Content(), ref.Content(); !bytes.Equal(got, want) {
					t.Fatalf("builder content\n got %x\nwant %x", got, want)
				}
			}
		})
	}
}

func TestParseRejectsUnknownService(t *testing.T) {
	// The reference "streaming" service (a type this package does not know).
	if _, err := Parse(referenceTokens["streaming-unknown"]); err == nil {
		t.Fatal("Parse accepted an unknown service type")
	}
}

func TestBuildRTCTokenRoles(t *testing.T) {
	for _, tt := range []struct {
		name      string
		publisher bool
		want      []uint16
	}{
		{"subscriber", false, []uint16{PrivilegeJoinChannel}},
		{"publisher", true, []uint16{PrivilegeJoinChannel, PrivilegePublishAudioStream, PrivilegePublishVideoStream, PrivilegePublishDataStream}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, build := range []func() (string, error){
				func() (string, error) {
					return BuildRTCToken(vecAppID, vecCert, vecChannel, vecUID, tt.publisher, 3600, 1800, vecIssueTs, 42)
				},
				func() (string, error) {
					return BuildRTCTokenWithAccount(vecAppID, vecCert, vecChannel, vecAccount, tt.publisher, 3600, 1800, vecIssueTs, 42)
				},
			} {
				tok, err := build()
				if err != nil {
					t.Fatal(err)
				}
				at := mustParse(t, tok)
				if err := at.Verify(vecCert); err != nil {
					t.Fatal(err)
				}
				s, ok := at.Service(ServiceRTC)
				if !ok {
					t.Fatal("no RTC service")
				}
				if len(s.Privileges) != len(tt.want) {
					t.Fatalf("privileges = %v, want ids %v", s.Privileges, tt.want)
				}
				for _, id := range tt.want {
					if s.Privileges[id] != 1800 {
						t.Errorf("privilege %d expires %d, want 1800", id, s.Privileges[id])
					}
				}
				if at.Expire != 3600 || at.Salt != 42 {
					t.Errorf("expire %d salt %d", at.Expire, at.Salt)
				}
				if s.UID != vecUIDStr && s.UID != vecAccount {
					t.Errorf("uid = %q", s.UID)
				}
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	tok, err := BuildRTCToken(vecAppID, vecCert, vecChannel, vecUID, true, 600, 600, vecIssueTs, 7)
	if err != nil {
		t.Fatal(err)
	}
	at := mustParse(t, tok)
	if err := at.Verify(strings.Repeat("a", 32)); err == nil {
		t.Error("Verify accepted the wrong certificate")
	}
	if err := at.Verify("short"); err == nil {
		t.Error("Verify accepted a malformed certificate")
	}
	at.Salt++ // the salt feeds the signing key
	if err := at.Verify(vecCert); err == nil {
		t.Error("Verify accepted a token whose salt changed")
	}
}

func TestBuildRTCTokenInvalid(t *testing.T) {
	tests := []struct {
		name                          string
		appID, cert, channel          string
		expire, privilegeExpire, salt uint32
	}{
		{"short app id", "abc", vecCert, vecChannel, 600, 600, 1},
		{"non-hex app id", "Z70CA35de60c44645bbae8a215061b33", vecCert, vecChannel, 600, 600, 1},
		{"empty certificate", vecAppID, "", vecChannel, 600, 600, 1},
		{"non-hex certificate", vecAppID, "5CFd2fd1755d40ecb72977518be15d3Z", vecChannel, 600, 600, 1},
		{"empty channel", vecAppID, vecCert, "", 600, 600, 1},
		{"long channel", vecAppID, vecCert, strings.Repeat("c", 65), 600, 600, 1},
		{"bad channel char", vecAppID, vecCert, "a/b", 600, 600, 1},
		{"zero expire", vecAppID, vecCert, vecChannel, 0, 600, 1},
		{"expire above 24h", vecAppID, vecCert, vecChannel, MaxExpire + 1, 600, 1},
		{"privilege above 24h", vecAppID, vecCert, vecChannel, 600, MaxExpire + 1, 1},
		{"zero privilege", vecAppID, vecCert, vecChannel, 600, 0, 1},
		{"zero salt", vecAppID, vecCert, vecChannel, 600, 600, 0},
		{"salt too large", vecAppID, vecCert, vecChannel, 600, 600, MaxSalt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := BuildRTCToken(tt.appID, tt.cert, tt.channel, 1, true, tt.expire, tt.privilegeExpire, vecIssueTs, tt.salt)
			if err == nil {
				t.Fatalf("built %q", tok)
			}
			if tt.cert != "" && strings.Contains(err.Error(), tt.cert) {
				t.Errorf("error %q quotes the certificate", err)
			}
		})
	}
	if _, err := BuildRTCToken(vecAppID, vecCert, vecChannel, 1, true, MaxExpire, MaxExpire, vecIssueTs, MaxSalt-1); err != nil {
		t.Errorf("24 h token rejected: %v", err)
	}
	if _, err := BuildRTCTokenWithAccount(vecAppID, vecCert, vecChannel, "", false, 600, 600, vecIssueTs, 1); err == nil {
		t.Error("empty account accepted")
	}
	if _, err := BuildRTCTokenWithAccount(vecAppID, vecCert, vecChannel, strings.Repeat("u", 256), false, 600, 600, vecIssueTs, 1); err == nil {
		t.Error("256-byte account accepted")
	}
}

func TestParseMalformed(t *testing.T) {
	good, err := BuildRTCToken(vecAppID, vecCert, vecChannel, vecUID, false, 600, 600, vecIssueTs, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{
		"", "007", "006abc", "007!!!!", "007" + "AAAA", good[:len(good)-8], "007" + strings.Repeat("A", maxTokenLength),
	} {
		if _, err := Parse(tok); err == nil {
			t.Errorf("Parse(%.20q...) succeeded", tok)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, tok := range referenceTokens {
		f.Add(tok)
	}
	f.Add("007")
	f.Fuzz(func(t *testing.T, tok string) {
		at, err := Parse(tok)
		if err != nil {
			return
		}
		// Whatever parses re-encodes to content that parses to the same header.
		again, err := unmarshalContent(at.Content())
		if err != nil {
			t.Fatalf("content of a parsed token does not parse: %v", err)
		}
		if again.AppID != at.AppID || again.IssueTs != at.IssueTs || len(again.Services) != len(at.Services) {
			t.Fatal("round trip changed the token")
		}
		_ = at.Verify(vecCert)
	})
}

// TestBuildReusesCompressor: tokens built one after another, and at once,
// with the pooled compressors are the same as the first.
func TestBuildReusesCompressor(t *testing.T) {
	first, err := BuildRTCToken(vecAppID, vecCert, vecChannel, vecUID, false, vecExpire, vecExpire, vecIssueTs, vecSalt)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				got, err := BuildRTCToken(vecAppID, vecCert, vecChannel, vecUID, false, vecExpire, vecExpire, vecIssueTs, vecSalt)
				if err != nil || got != first {
					t.Errorf("rebuilt token differs: %v\n got %s\nwant %s", err, got, first)
					return
				}
			}
		})
	}
	wg.Wait()
}
