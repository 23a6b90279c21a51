package sqlstore

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/switchboardhq/switchboard"
)

// decodeAnnounced decodes the announcement that qAppendEvents builds, field
// by field in the order it writes them, without reflection: every replica
// decodes every event, and encoding/json cost most of a replica's work on
// an announcement. It reports false on anything else (another order, an
// unexpected byte), and parseEventsPayload then decodes with encoding/json.
func decodeAnnounced(p string) ([]switchboard.Event, bool) {
	d := announceDecoder{s: p}
	if !d.lit(eventsPayloadHead) {
		return nil, false
	}
	var evs []switchboard.Event
	for {
		var (
			e   switchboard.Event
			ok  bool
			aud int64
			at  string
		)
		if !d.lit(`{"id":`) {
			return nil, false
		}
		if e.ID, ok = d.uint(); !ok || !d.lit(`,"type":`) {
			return nil, false
		}
		if e.Type, ok = d.str(); !ok || !d.lit(`,"audience":`) {
			return nil, false
		}
		if aud, ok = d.int(); !ok || !d.lit(`,"at":`) {
			return nil, false
		}
		if at, ok = d.str(); !ok || !d.lit(`,"data":`) {
			return nil, false
		}
		t, err := time.Parse(time.RFC3339Nano, at)
		if err != nil {
			return nil, false
		}
		data, ok := d.value()
		if !ok || !d.lit(`,"owner":`) {
			return nil, false
		}
		if e.Owner, ok = d.str(); !ok || !d.lit(`}`) {
			return nil, false
		}
		e.Audience, e.At, e.Data = switchboard.Role(aud), t.UTC(), json.RawMessage(data)
		evs = append(evs, e)
		if d.lit(",") {
			continue
		}
		if !d.lit(eventsPayloadTail) || d.i != len(d.s) {
			return nil, false
		}
		return evs, true
	}
}

type announceDecoder struct {
	s string
	i int
}

// lit consumes lit if the input continues with it.
func (d *announceDecoder) lit(lit string) bool {
	if !strings.HasPrefix(d.s[d.i:], lit) {
		return false
	}
	d.i += len(lit)
	return true
}

// digits consumes an optional minus sign and the digits that follow.
func (d *announceDecoder) digits() string {
	start := d.i
	if d.i < len(d.s) && d.s[d.i] == '-' {
		d.i++
	}
	for d.i < len(d.s) && d.s[d.i] >= '0' && d.s[d.i] <= '9' {
		d.i++
	}
	return d.s[start:d.i]
}

func (d *announceDecoder) uint() (uint64, bool) {
	n, err := strconv.ParseUint(d.digits(), 10, 64)
	return n, err == nil
}

func (d *announceDecoder) int() (int64, bool) {
	n, err := strconv.ParseInt(d.digits(), 10, 32)
	return n, err == nil
}

// str consumes a JSON string and returns its value.
func (d *announceDecoder) str() (string, bool) {
	raw, escaped, ok := d.skipString()
	if !ok {
		return "", false
	}
	if v := raw[1 : len(raw)-1]; !escaped && utf8.ValidString(v) {
		// A copy: the event must not hold the whole announcement.
		return strings.Clone(v), true
	}
	// Escapes, or bytes that are not UTF-8, which encoding/json replaces.
	var v string
	if json.Unmarshal([]byte(raw), &v) != nil {
		return "", false
	}
	return v, true
}

// skipString consumes a JSON string and returns it, quotes included, and
// whether it holds an escape.
func (d *announceDecoder) skipString() (raw string, escaped, ok bool) {
	start := d.i
	if d.i >= len(d.s) || d.s[d.i] != '"' {
		return "", false, false
	}
	for d.i++; d.i < len(d.s); d.i++ {
		switch c := d.s[d.i]; {
		case c == '\\':
			escaped = true
			d.i++ // the escaped byte; \uXXXX's digits need no care
		case c == '"':
			d.i++
			return d.s[start:d.i], escaped, true
		case c < 0x20:
			return "", false, false
		}
	}
	return "", false, false
}

// value consumes a JSON value and returns it as it is written, checked by
// json.Valid unless it is a string without escapes.
func (d *announceDecoder) value() (string, bool) {
	start := d.i
	if d.i >= len(d.s) {
		return "", false
	}
	switch d.s[d.i] {
	case '"':
		raw, escaped, ok := d.skipString()
		return raw, ok && (!escaped || json.Valid([]byte(raw)))
	case '{', '[':
		depth := 0
		for d.i < len(d.s) {
			switch d.s[d.i] {
			case '"':
				if _, _, ok := d.skipString(); !ok {
					return "", false
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
			}
			d.i++
			if depth == 0 {
				v := d.s[start:d.i]
				return v, json.Valid([]byte(v))
			}
		}
		return "", false
	}
	// A number, true, false or null.
	for d.i < len(d.s) && d.s[d.i] != ',' && d.s[d.i] != '}' && d.s[d.i] != ']' {
		d.i++
	}
	v := d.s[start:d.i]
	return v, v != "" && json.Valid([]byte(v))
}
