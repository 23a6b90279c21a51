package switchboard

import (
	"crypto/rand"
	"encoding/hex"
	"math"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// SlugPattern is the format of provider names and region slugs: lowercase
// letters, digits and hyphens, not starting with a hyphen, at most 63
// characters. The OpenAPI document states the same pattern.
const SlugPattern = `^[a-z0-9][a-z0-9-]{0,62}$`

var slugRE = regexp.MustCompile(SlugPattern)

// ValidSlug reports whether s matches SlugPattern: a provider name or a region.
func ValidSlug(s string) bool { return slugRE.MatchString(s) }

// ValidateProviderName returns an EInvalid error naming "name" unless name
// is a slug (see SlugPattern) that is none of reserved. The reserved names
// are the literal path segments that stand where a provider's name stands in
// the API's routes, such as "priorities" in /api/streaming/providers/priorities:
// a provider so named could not be reached at its own path.
func ValidateProviderName(name string, reserved []string) error {
	if !ValidSlug(name) {
		return Invalid("name", "must match %s", SlugPattern)
	}
	for _, r := range reserved {
		if name == r {
			return Invalid("name", "%q is reserved: it is a path of the API; reserved names are %s", name, strings.Join(reserved, ", "))
		}
	}
	return nil
}

// ValidateRegion returns an EInvalid error naming field unless region is a
// slug.
func ValidateRegion(field, region string) error {
	if !ValidSlug(region) {
		return Invalid(field, "must be a lowercase region slug such as us-east")
	}
	return nil
}

// ValidText reports whether s can be stored as text by every store: valid
// UTF-8 without NUL, which PostgreSQL refuses in a text column.
func ValidText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// Truncate cuts s to at most n bytes without splitting a UTF-8 sequence: a
// character that would straddle the cut is left out whole.
func Truncate(s string, n int) string {
	if n >= len(s) {
		return s
	}
	if n <= 0 {
		return ""
	}
	// Find the start of the sequence that holds s[n], at most UTFMax-1 bytes
	// back; cut before it if it is a valid character that crosses n.
	for i := n; i >= 0 && i > n-utf8.UTFMax; i-- {
		if utf8.RuneStart(s[i]) {
			if _, size := utf8.DecodeRuneInString(s[i:]); i+size > n {
				return s[:i]
			}
			break
		}
	}
	return s[:n]
}

// StreamIDPattern is the format of stream ids, as NewStreamID makes them and
// the OpenAPI document states them.
const StreamIDPattern = `^st_[0-9a-f]{24}$`

const (
	streamIDPrefix = "st_"
	streamIDBytes  = 12 // hex-encoded: streamIDTimeBytes of time, then random bytes
	// streamIDTimeBytes is the start of a stream id: the milliseconds since
	// the Unix epoch, big-endian.
	streamIDTimeBytes = 6
)

// NewStreamID returns a new stream id (see StreamIDPattern): the time in
// milliseconds, then 48 random bits. The ids of later streams sort after
// those of earlier ones, so that every index on a stream id (the streams'
// key, their segments' and trail's) grows at its end: random ids put each
// start's rows on a page of its own in each of them, and writing those pages
// to SQLite's log was most of what committing a group of starts cost. An id
// says when its stream started, which its owner reads in the stream anyway;
// it grants nothing: every call on a stream checks its owner.
func NewStreamID() string {
	var b [streamIDBytes]byte
	ms := uint64(time.Now().UnixMilli())
	for i := streamIDTimeBytes - 1; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	_, _ = rand.Read(b[streamIDTimeBytes:]) // crypto/rand.Read never fails
	var out [len(streamIDPrefix) + 2*streamIDBytes]byte
	copy(out[:], streamIDPrefix)
	hex.Encode(out[len(streamIDPrefix):], b[:])
	return string(out[:])
}

// ValidStreamID reports whether id matches StreamIDPattern.
func ValidStreamID(id string) bool {
	hexPart, ok := strings.CutPrefix(id, streamIDPrefix)
	if !ok || len(hexPart) != 2*streamIDBytes {
		return false
	}
	for i := range len(hexPart) {
		if c := hexPart[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Round2 rounds x to two decimals, half away from zero: an amount to the
// cent, and the percentages, minutes and latencies the API serves.
func Round2(x float64) float64 { return math.Round(x*100) / 100 }

// MonthStart returns the first instant of t's month, in UTC: usage and costs
// are counted by calendar month in UTC.
func MonthStart(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// Minutes converts u's stream seconds per tier to minutes per tier.
func (u ProviderUsage) Minutes() map[Quality]float64 {
	out := make(map[Quality]float64, len(u.Seconds))
	for q, s := range u.Seconds {
		out[q] = s / 60
	}
	return out
}

// Cost prices minutes per tier at pr's list prices per thousand minutes,
// rounded to the cent. A tier without a price costs nothing.
func (pr Pricing) Cost(minutes map[Quality]float64) float64 {
	var c float64
	for q, m := range minutes {
		c += m * pr.PerThousandMinutes[q] / 1000
	}
	return Round2(c)
}
