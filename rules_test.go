package switchboard_test

import (
	"errors"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	sb "github.com/switchboardhq/switchboard"
)

// TestFormats: each format check agrees with the pattern the OpenAPI
// document states, and new stream ids pass.
func TestFormats(t *testing.T) {
	id1, id2 := sb.NewStreamID(), sb.NewStreamID()
	if id1 == id2 {
		t.Fatalf("two new ids are both %s", id1)
	}
	tests := []struct {
		name    string
		valid   func(string) bool
		pattern string
		in      string
		want    bool
	}{
		{"slug", sb.ValidSlug, sb.SlugPattern, "agora", true},
		{"slug", sb.ValidSlug, sb.SlugPattern, "us-east-1", true},
		{"slug", sb.ValidSlug, sb.SlugPattern, "0", true},
		{"slug", sb.ValidSlug, sb.SlugPattern, strings.Repeat("a", 63), true},
		{"slug", sb.ValidSlug, sb.SlugPattern, strings.Repeat("a", 64), false},
		{"slug", sb.ValidSlug, sb.SlugPattern, "", false},
		{"slug", sb.ValidSlug, sb.SlugPattern, "-agora", false},
		{"slug", sb.ValidSlug, sb.SlugPattern, "Agora", false},
		{"slug", sb.ValidSlug, sb.SlugPattern, "us_east", false},
		{"slug", sb.ValidSlug, sb.SlugPattern, "us east", false},
		{"slug", sb.ValidSlug, sb.SlugPattern, "agora\n", false},
		{"slug", sb.ValidSlug, sb.SlugPattern, "é", false},
		{"stream id", sb.ValidStreamID, sb.StreamIDPattern, id1, true},
		{"stream id", sb.ValidStreamID, sb.StreamIDPattern, id2, true},
		{"stream id", sb.ValidStreamID, sb.StreamIDPattern, "st_0123456789abcdef01234567", true},
		{"stream id", sb.ValidStreamID, sb.StreamIDPattern, "st_0123456789ABCDEF01234567", false},
		{"stream id", sb.ValidStreamID, sb.StreamIDPattern, "st_0123456789abcdef0123456", false},
		{"stream id", sb.ValidStreamID, sb.StreamIDPattern, "st_0123456789abcdef012345678", false},
		{"stream id", sb.ValidStreamID, sb.StreamIDPattern, "st_0123456789abcdef0123456g", false},
		{"stream id", sb.ValidStreamID, sb.StreamIDPattern, "xx_0123456789abcdef01234567", false},
		{"stream id", sb.ValidStreamID, sb.StreamIDPattern, "0123456789abcdef01234567", false},
		{"stream id", sb.ValidStreamID, sb.StreamIDPattern, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name+" "+tt.in, func(t *testing.T) {
			if got := tt.valid(tt.in); got != tt.want {
				t.Fatalf("valid(%q) = %v, want %v", tt.in, got, tt.want)
			}
			if got := regexp.MustCompile(tt.pattern).MatchString(tt.in); got != tt.want {
				t.Fatalf("%s matches %q: %v, want %v", tt.pattern, tt.in, got, tt.want)
			}
		})
	}
}

// TestStreamIDOrder: a stream id starts with its time in milliseconds, so
// that the ids of later streams sort after those of earlier ones (the store's
// indexes on stream ids grow at their end), and the rest is random.
func TestStreamIDOrder(t *testing.T) {
	before := time.Now().UnixMilli()
	id := sb.NewStreamID()
	after := time.Now().UnixMilli()
	ms, err := strconv.ParseInt(id[3:15], 16, 64)
	if err != nil {
		t.Fatalf("id %s: time part: %v", id, err)
	}
	if ms < before || ms > after {
		t.Fatalf("id %s holds %d ms, want between %d and %d", id, ms, before, after)
	}
	prev := id
	time.Sleep(2 * time.Millisecond)
	seen := map[string]bool{}
	for range 1000 {
		next := sb.NewStreamID()
		if next[:15] < prev[:15] {
			t.Fatalf("id %s made after %s sorts before it", next, prev)
		}
		if next[:15] == id[:15] {
			t.Fatalf("id %s made 2 ms after %s has its time", next, id)
		}
		if seen[next[15:]] {
			t.Fatalf("random part of %s made twice in 1000 ids", next)
		}
		seen[next[15:]] = true
		prev = next
	}
}

// wantInvalid fails unless err is an EInvalid *Error naming field with msg.
func wantInvalid(t *testing.T, err error, field, msg string) {
	t.Helper()
	var e *sb.Error
	if !errors.As(err, &e) || e.Code != sb.EInvalid || e.Field != field || e.Message != msg {
		t.Fatalf("error %v, want invalid %s: %s", err, field, msg)
	}
}

// TestFieldRules: each rule answers nil for a valid value, and otherwise an
// EInvalid error naming the field it is given, with the rule's one message.
func TestFieldRules(t *testing.T) {
	const (
		regionMsg  = "must be a lowercase region slug such as us-east"
		qualityMsg = "must be audio, sd, hd or fullhd"
	)
	tests := []struct {
		name string
		err  error
		msg  string // "" = valid
	}{
		{"region us-east", sb.ValidateRegion("f", "us-east"), ""},
		{"region eu1", sb.ValidateRegion("f", "eu1"), ""},
		{"region empty", sb.ValidateRegion("f", ""), regionMsg},
		{"region capitals", sb.ValidateRegion("f", "US-East"), regionMsg},
		{"region space", sb.ValidateRegion("f", "us east"), regionMsg},
		{"quality audio", sb.QualityAudio.Validate("f"), ""},
		{"quality sd", sb.QualitySD.Validate("f"), ""},
		{"quality hd", sb.QualityHD.Validate("f"), ""},
		{"quality fullhd", sb.QualityFullHD.Validate("f"), ""},
		{"quality empty", sb.Quality("").Validate("f"), qualityMsg},
		{"quality 4k", sb.Quality("4k").Validate("f"), qualityMsg},
		{"quality HD", sb.Quality("HD").Validate("f"), qualityMsg},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.msg == "" {
				if tt.err != nil {
					t.Fatalf("error %v, want none", tt.err)
				}
				return
			}
			wantInvalid(t, tt.err, "f", tt.msg)
		})
	}
}

func TestValidText(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want bool
	}{
		{"empty", "", true},
		{"ascii", "connection refused", true},
		{"multi-byte", "délai dépassé ✓ 🚀", true},
		{"newline", "two\nlines", true},
		{"nul", "a\x00b", false},
		{"invalid utf-8", "a\xffb", false},
		{"cut sequence", "\xe2\x9c", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sb.ValidText(tt.in); got != tt.want {
				t.Fatalf("ValidText(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestTruncate(t *testing.T) {
	tests := []struct {
		name string
		s    string
		n    int
		want string
	}{
		{"short", "abc", 5, "abc"},
		{"exact", "abc", 3, "abc"},
		{"ascii", "abcdef", 4, "abcd"},
		{"zero", "abc", 0, ""},
		{"negative", "abc", -1, ""},
		{"before a two-byte character", "abé", 2, "ab"},
		{"inside a two-byte character", "abé", 3, "ab"},
		{"after a two-byte character", "abéc", 4, "abé"},
		{"inside a three-byte character", "a✓b", 2, "a"},
		{"inside a three-byte character, later", "a✓b", 3, "a"},
		{"after a three-byte character", "a✓b", 4, "a✓"},
		{"inside a four-byte character", "x🚀y", 4, "x"},
		{"after a four-byte character", "x🚀y", 5, "x🚀"},
		{"only multi-byte", "ééé", 5, "éé"},
		{"invalid bytes are cut as bytes", "a\xff\xff\xff", 2, "a\xff"},
		{"stray continuation bytes", "\x80\x80\x80\x80\x80", 3, "\x80\x80\x80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sb.Truncate(tt.s, tt.n)
			if got != tt.want {
				t.Fatalf("Truncate(%q, %d) = %q, want %q", tt.s, tt.n, got, tt.want)
			}
			if utf8.ValidString(tt.s) && !utf8.ValidString(got) {
				t.Fatalf("Truncate(%q, %d) = %q: not valid UTF-8", tt.s, tt.n, got)
			}
		})
	}
}

func TestRound2(t *testing.T) {
	tests := []struct {
		in, want float64
	}{
		{0, 0},
		{0.5679, 0.57},
		{0.564, 0.56},
		{0.125, 0.13}, // half away from zero
		{-0.125, -0.13},
		{99.999, 100},
		{12.3, 12.3},
	}
	for _, tt := range tests {
		if got := sb.Round2(tt.in); got != tt.want {
			t.Errorf("Round2(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestMonthStart(t *testing.T) {
	utc := func(y int, m time.Month, d, h, min int) time.Time { return time.Date(y, m, d, h, min, 0, 0, time.UTC) }
	tokyo := time.FixedZone("JST", 9*3600)
	tests := []struct {
		name string
		in   time.Time
		want time.Time
	}{
		{"mid-month", utc(2026, 5, 17, 12, 0), utc(2026, 5, 1, 0, 0)},
		{"first instant", utc(2026, 5, 1, 0, 0), utc(2026, 5, 1, 0, 0)},
		{"last minute of the year", utc(2026, 12, 31, 23, 59), utc(2026, 12, 1, 0, 0)},
		{"another zone, next month there", time.Date(2026, 6, 1, 8, 0, 0, 0, tokyo), utc(2026, 5, 1, 0, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := sb.MonthStart(tt.in)
			if !got.Equal(tt.want) || got.Location() != time.UTC {
				t.Fatalf("MonthStart(%v) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestUsageCost(t *testing.T) {
	p := sb.Pricing{Currency: "USD", PerThousandMinutes: map[sb.Quality]float64{sb.QualityHD: 3.99, sb.QualityAudio: 0.99}}
	tests := []struct {
		name    string
		seconds map[sb.Quality]float64
		minutes map[sb.Quality]float64
		cost    float64
	}{
		// 120 hd minutes: 0.4788; 90 audio: 0.0891; total 0.5679 → 0.57.
		{"rounded to the cent", map[sb.Quality]float64{sb.QualityHD: 7200, sb.QualityAudio: 5400},
			map[sb.Quality]float64{sb.QualityHD: 120, sb.QualityAudio: 90}, 0.57},
		{"a tier without a price costs nothing", map[sb.Quality]float64{sb.QualityFullHD: 60_000},
			map[sb.Quality]float64{sb.QualityFullHD: 1000}, 0},
		{"no usage", nil, map[sb.Quality]float64{}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mins := sb.ProviderUsage{Seconds: tt.seconds}.Minutes()
			if len(mins) != len(tt.minutes) {
				t.Fatalf("Minutes() = %v, want %v", mins, tt.minutes)
			}
			for q, m := range tt.minutes {
				if mins[q] != m {
					t.Fatalf("Minutes() = %v, want %v", mins, tt.minutes)
				}
			}
			if got := p.Cost(mins); got != tt.cost {
				t.Fatalf("Cost = %v, want %v", got, tt.cost)
			}
		})
	}
}
