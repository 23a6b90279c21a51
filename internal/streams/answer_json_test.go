package streams

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// sameAsMarshal fails unless a.AppendJSON writes exactly what json.Marshal
// writes for a, or both refuse it.
func sameAsMarshal[A interface {
	AppendJSON([]byte) ([]byte, error)
}](t *testing.T, a A) {
	t.Helper()
	want, wantErr := json.Marshal(a)
	prefix := []byte("prefix")
	got, err := a.AppendJSON(append([]byte(nil), prefix...))
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("AppendJSON error %v, json.Marshal error %v, for %+v", err, wantErr, a)
	}
	if err != nil {
		return
	}
	if !bytes.HasPrefix(got, prefix) {
		t.Fatalf("AppendJSON lost what it appended to: %q", got)
	}
	if got = got[len(prefix):]; !bytes.Equal(got, want) {
		t.Fatalf("AppendJSON differs from json.Marshal:\n got %s\nwant %s", got, want)
	}
}

func TestHeartbeatAnswerJSONIsMarshal(t *testing.T) {
	started := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	beat := time.Date(2026, 3, 4, 5, 7, 8, 123456789, time.UTC)
	ended := time.Date(2026, 3, 4, 6, 0, 0, 500000000, time.FixedZone("", 2*3600+30*60))
	expires := time.Date(2026, 3, 4, 6, 7, 8, 120000000, time.UTC)
	stream := sb.Stream{ID: "st_0123456789abcdefghijklmn", Room: "room-1", UserID: "user-1", Role: sb.RolePublisher,
		Quality: "hd", Provider: "agora", Status: sb.StreamActive, Owner: "token:abc", StartedAt: started, LastHeartbeat: beat}
	standby := &Standby{Provider: ProviderInfo{Name: "zego-backup", Kind: sb.KindZegocloud, Priority: 2, Status: sb.StatusHealthy, AppID: "1234567890"},
		Token: "04AAAAAG...==", TokenExpiresAt: &expires}
	cases := map[string]HeartbeatAnswer{
		"no standby": {Stream: stream},
		"standby":    {Stream: stream, Standby: standby},
		"every optional field": {Stream: func() sb.Stream {
			s := stream
			s.Region, s.IdempotencyKey, s.EndedAt, s.EndReason, s.Migrations, s.Status = "eu", "key-1", &ended, "ended", 3, sb.StreamEnded
			return s
		}()},
		"standby without expiry, on a URL": {Stream: stream, Standby: &Standby{
			Provider: ProviderInfo{Name: "lk", Kind: sb.KindLiveKit, Priority: -4, Status: sb.StatusWarning, URL: "wss://lk.example/?a=1&b=<2>"}, Token: "t"}},
		"zero values":       {},
		"zero standby":      {Standby: &Standby{}},
		"text to escape":    {Stream: sb.Stream{ID: "a\"b\\c\n\r\t\b\f\x00\x1f\x7f<>&", Room: "é€😀\u2028\u2029", UserID: "bad\xff\xfeutf8\xe2\x82", Owner: "tail\xc3"}},
		"times far and odd": {Stream: sb.Stream{StartedAt: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", -(23*3600+59*60))), LastHeartbeat: time.Date(0, 1, 1, 0, 0, 0, 1, time.UTC)}},
		"year past 9999":    {Stream: sb.Stream{StartedAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}},
		"year before 0":     {Stream: sb.Stream{LastHeartbeat: time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}},
		"offset of a day":   {Stream: sb.Stream{StartedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 24*3600))}},
		"offset in seconds": {Stream: sb.Stream{StartedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", 3600+30))}},
		"bad standby expiry": {Stream: stream, Standby: &Standby{Token: "t", TokenExpiresAt: func() *time.Time {
			t := time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)
			return &t
		}()}},
		"bad end": {Stream: sb.Stream{EndedAt: func() *time.Time {
			t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("", -25*3600))
			return &t
		}()}},
	}
	for name, a := range cases {
		t.Run(name, func(t *testing.T) { sameAsMarshal(t, a) })
	}
	// The refusals must be refusals, not bytes that happen to match.
	for _, name := range []string{"year past 9999", "year before 0", "offset of a day", "bad standby expiry", "bad end"} {
		if _, err := cases[name].AppendJSON(nil); err == nil {
			t.Errorf("%s: AppendJSON wrote a time json.Marshal refuses", name)
		}
	}
}

// TestHeartbeatAnswerJSONRandom compares the two encodings on streams drawn
// at random: every optional field present or not, strings from a pool that
// holds every character class the escaping treats apart, times anywhere in
// the years 0–9999 in any offset.
func TestHeartbeatAnswerJSONRandom(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	pieces := []string{"", "a", "agora", "Z09-_.", "\"", "\\", "<", ">", "&", "\n", "\t", "\x00", "\x1f", "\x7f", " ", "é", "€", "😀",
		"\u2028", "\u2029", "\xff", "\xc3", "\xe2\x82", "\xed\xa0\x80", "\ufffd", "/", "'"}
	str := func() string {
		var b strings.Builder
		for range rnd.IntN(5) {
			b.WriteString(pieces[rnd.IntN(len(pieces))])
		}
		return b.String()
	}
	tm := func() time.Time {
		sec := rnd.Int64N(253402300800) - 62135596800 // 0001-01-01 .. 9999-12-31 in Unix seconds
		zone := time.UTC
		if rnd.IntN(2) == 0 {
			zone = time.FixedZone("", (rnd.IntN(48*60)-24*60)*60)
		}
		return time.Unix(sec, rnd.Int64N(1e9)/int64([]int{1, 1000, 1e6, 1e9}[rnd.IntN(4)])).In(zone)
	}
	ptm := func() *time.Time {
		if rnd.IntN(2) == 0 {
			return nil
		}
		t := tm()
		return &t
	}
	for range 5000 {
		a := HeartbeatAnswer{Stream: sb.Stream{ID: str(), Room: str(), UserID: str(), Role: sb.StreamRole(str()), Region: str(),
			Quality: sb.Quality(str()), Provider: str(), Status: sb.StreamStatus(str()), Owner: str(), IdempotencyKey: str(),
			StartedAt: tm(), LastHeartbeat: tm(), EndedAt: ptm(), EndReason: str(), Migrations: rnd.IntN(1e6) - 10}}
		if rnd.IntN(3) > 0 {
			a.Standby = &Standby{Provider: ProviderInfo{Name: str(), Kind: sb.Kind(str()), Priority: rnd.IntN(200) - 100,
				Status: sb.Status(str()), AppID: str(), URL: str()}, Token: str(), TokenExpiresAt: ptm()}
		}
		sameAsMarshal(t, a)
	}
}

func FuzzHeartbeatAnswerJSON(f *testing.F) {
	f.Add("st_1", "room", "u\"<1>", "eu", "key", "ended", int64(1767225600), int64(5), 3600, 2, true, "zego", "tok\u2028", "wss://x?a&b")
	f.Add("", "\xff", "\x00", "", "", "", int64(-62135596800), int64(0), 0, 0, false, "", "", "")
	f.Fuzz(func(t *testing.T, id, room, user, region, key, reason string, sec, nsec int64, offset, migrations int, standby bool, name, token, url string) {
		at := time.Unix(sec, nsec).In(time.FixedZone("", offset))
		a := HeartbeatAnswer{Stream: sb.Stream{ID: id, Room: room, UserID: user, Role: sb.RoleSubscriber, Region: region,
			Quality: "sd", Provider: name, Status: sb.StreamActive, Owner: user, IdempotencyKey: key,
			StartedAt: at, LastHeartbeat: at.Add(time.Second), EndReason: reason, Migrations: migrations}}
		if reason != "" {
			a.EndedAt = &at
		}
		if standby {
			a.Standby = &Standby{Provider: ProviderInfo{Name: name, Kind: sb.KindLiveKit, Priority: migrations, Status: sb.StatusHealthy, URL: url},
				Token: token, TokenExpiresAt: &at}
		}
		sameAsMarshal(t, a)
	})
}

func TestAssignmentJSONIsMarshal(t *testing.T) {
	expires := time.Date(2026, 3, 4, 6, 7, 8, 120000000, time.UTC)
	far := time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)
	provider := ProviderInfo{Name: "agora-main", Kind: sb.KindAgora, Priority: 1, Status: sb.StatusHealthy, AppID: "0123456789abcdef"}
	standby := &Standby{Provider: ProviderInfo{Name: "lk", Kind: sb.KindLiveKit, Priority: 2, Status: sb.StatusWarning, URL: "wss://lk.example/?a=1&b=<2>"},
		Token: "eyJ...", TokenExpiresAt: &expires}
	a := Assignment{ID: "st_0123456789abcdefghijklmn", Room: "room-1", UserID: "user-1", Role: sb.RolePublisher, Provider: provider,
		Token: "007eJxT...", TokenExpiresAt: &expires, Fallbacks: []string{"lk", "zego"}, Status: sb.StreamActive, Standby: standby}
	cases := map[string]Assignment{
		"standby":             a,
		"no standby":          func() Assignment { c := a; c.Standby = nil; return c }(),
		"least bad":           func() Assignment { c := a; c.LeastBad, c.Standby = true, nil; return c }(),
		"no fallbacks":        func() Assignment { c := a; c.Fallbacks = []string{}; return c }(),
		"nil fallbacks":       func() Assignment { c := a; c.Fallbacks = nil; return c }(),
		"no expiry":           func() Assignment { c := a; c.TokenExpiresAt = nil; return c }(),
		"zero values":         {},
		"text to escape":      {ID: "a\"b\\c\n<>&", Room: "é€😀\u2028", UserID: "bad\xff", Fallbacks: []string{"\x00", "<&>", "\u2029"}},
		"bad expiry":          func() Assignment { c := a; c.TokenExpiresAt = &far; return c }(),
		"bad standby expiry":  func() Assignment { c := a; c.Standby = &Standby{TokenExpiresAt: &far}; return c }(),
		"a hundred fallbacks": func() Assignment { c := a; c.Fallbacks = make([]string, 100); return c }(),
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) { sameAsMarshal(t, c) })
	}
	for _, name := range []string{"bad expiry", "bad standby expiry"} {
		if _, err := cases[name].AppendJSON(nil); err == nil {
			t.Errorf("%s: AppendJSON wrote a time json.Marshal refuses", name)
		}
	}
}

func FuzzAssignmentJSON(f *testing.F) {
	f.Add("st_1", "room", "u\"<1>", "agora", "tok", int64(1767225600), int64(5), 3600, 2, "zego,lk", true, false)
	f.Add("", "\xff", "\x00", "", "", int64(-62135596800), int64(0), 0, 0, "", false, true)
	f.Fuzz(func(t *testing.T, id, room, user, name, token string, sec, nsec int64, offset, priority int, fallbacks string, standby, leastBad bool) {
		at := time.Unix(sec, nsec).In(time.FixedZone("", offset))
		a := Assignment{ID: id, Room: room, UserID: user, Role: sb.RoleSubscriber,
			Provider: ProviderInfo{Name: name, Kind: sb.KindAgora, Priority: priority, Status: sb.StatusHealthy, AppID: token},
			Token:    token, TokenExpiresAt: &at, Fallbacks: strings.Split(fallbacks, ","), LeastBad: leastBad, Status: sb.StreamActive}
		if standby {
			a.Standby = &Standby{Provider: ProviderInfo{Name: user, Kind: sb.KindLiveKit, Status: sb.StatusWarning, URL: room}, Token: token, TokenExpiresAt: &at}
		}
		sameAsMarshal(t, a)
	})
}
