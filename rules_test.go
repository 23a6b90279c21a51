package switchboard_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	sb "github.com/switchboardhq/switchboard"
)

func TestValidSlug(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"agora", true},
		{"us-east-1", true},
		{"0", true},
		{strings.Repeat("a", 63), true},
		{strings.Repeat("a", 64), false},
		{"", false},
		{"-agora", false},
		{"Agora", false},
		{"us_east", false},
		{"us east", false},
		{"agora\n", false},
		{"é", false},
	}
	re := regexp.MustCompile(sb.SlugPattern)
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := sb.ValidSlug(tt.in); got != tt.want {
				t.Fatalf("ValidSlug(%q) = %v, want %v", tt.in, got, tt.want)
			}
			if got := re.MatchString(tt.in); got != tt.want {
				t.Fatalf("SlugPattern matches %q: %v, want %v", tt.in, got, tt.want)
			}
		})
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

func TestValidateRegion(t *testing.T) {
	tests := []struct {
		region string
		ok     bool
	}{
		{"us-east", true},
		{"eu1", true},
		{"", false},
		{"US-East", false},
		{"us east", false},
	}
	for _, tt := range tests {
		t.Run(tt.region, func(t *testing.T) {
			err := sb.ValidateRegion("regions[2]", tt.region)
			if tt.ok {
				if err != nil {
					t.Fatalf("ValidateRegion(%q) = %v", tt.region, err)
				}
				return
			}
			wantInvalid(t, err, "regions[2]", "must be a lowercase region slug such as us-east")
		})
	}
}

func TestQualityValidate(t *testing.T) {
	tests := []struct {
		q  sb.Quality
		ok bool
	}{
		{sb.QualityAudio, true},
		{sb.QualitySD, true},
		{sb.QualityHD, true},
		{sb.QualityFullHD, true},
		{"", false},
		{"4k", false},
		{"HD", false},
	}
	for _, tt := range tests {
		t.Run(string(tt.q), func(t *testing.T) {
			err := tt.q.Validate("quality")
			if tt.ok {
				if err != nil {
					t.Fatalf("Validate(%q) = %v", tt.q, err)
				}
				return
			}
			wantInvalid(t, err, "quality", "must be audio, sd, hd or fullhd")
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

func TestStreamID(t *testing.T) {
	re := regexp.MustCompile(sb.StreamIDPattern)
	a, b := sb.NewStreamID(), sb.NewStreamID()
	if a == b {
		t.Fatalf("two new ids are both %s", a)
	}
	tests := []struct {
		id   string
		want bool
	}{
		{a, true},
		{b, true},
		{"st_0123456789abcdef01234567", true},
		{"st_0123456789ABCDEF01234567", false},
		{"st_0123456789abcdef0123456", false},
		{"st_0123456789abcdef012345678", false},
		{"st_0123456789abcdef0123456g", false},
		{"xx_0123456789abcdef01234567", false},
		{"0123456789abcdef01234567", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			if got := sb.ValidStreamID(tt.id); got != tt.want {
				t.Fatalf("ValidStreamID(%q) = %v, want %v", tt.id, got, tt.want)
			}
			if got := re.MatchString(tt.id); got != tt.want {
				t.Fatalf("StreamIDPattern matches %q: %v, want %v", tt.id, got, tt.want)
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
