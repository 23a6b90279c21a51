package streams

import (
	"strconv"
	"time"
	"unicode/utf8"

	sb "github.com/switchboardhq/switchboard"
)

// AppendJSON appends the JSON encoding of a to b: byte for byte what
// json.Marshal(a) makes (the same fields in the same order, the same
// omissions, strings escaped as encoding/json escapes them, times in RFC 3339
// with nanoseconds), without reflection. Heartbeats are the busiest path of
// the API, and walking the stream and its standby by reflection was most of
// their handler's cost. A time json.Marshal refuses (a year outside
// 0–9999, an offset of a day or more) is an error here too.
func (a HeartbeatAnswer) AppendJSON(b []byte) ([]byte, error) {
	b, err := appendStream(b, a.Stream)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"standby":`...)
	if a.Standby == nil {
		b = append(b, "null}"...)
		return b, nil
	}
	if b, err = appendStandby(b, a.Standby); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// appendStream appends the fields of st as json.Marshal writes them, from
// the opening brace up to (not including) the closing one, so that a type
// embedding the stream can add its own fields.
func appendStream(b []byte, st sb.Stream) ([]byte, error) {
	var err error
	b = append(b, `{"id":`...)
	b = appendString(b, st.ID)
	b = append(b, `,"room":`...)
	b = appendString(b, st.Room)
	b = append(b, `,"userId":`...)
	b = appendString(b, st.UserID)
	b = append(b, `,"role":`...)
	b = appendString(b, string(st.Role))
	if st.Region != "" {
		b = append(b, `,"region":`...)
		b = appendString(b, st.Region)
	}
	b = append(b, `,"quality":`...)
	b = appendString(b, string(st.Quality))
	b = append(b, `,"provider":`...)
	b = appendString(b, st.Provider)
	b = append(b, `,"status":`...)
	b = appendString(b, string(st.Status))
	b = append(b, `,"owner":`...)
	b = appendString(b, st.Owner)
	if st.IdempotencyKey != "" {
		b = append(b, `,"idempotencyKey":`...)
		b = appendString(b, st.IdempotencyKey)
	}
	b = append(b, `,"startedAt":`...)
	if b, err = appendTime(b, st.StartedAt); err != nil {
		return nil, err
	}
	b = append(b, `,"lastHeartbeat":`...)
	if b, err = appendTime(b, st.LastHeartbeat); err != nil {
		return nil, err
	}
	b = append(b, `,"endedAt":`...)
	if b, err = appendTimePtr(b, st.EndedAt); err != nil {
		return nil, err
	}
	if st.EndReason != "" {
		b = append(b, `,"endReason":`...)
		b = appendString(b, st.EndReason)
	}
	b = append(b, `,"migrations":`...)
	b = strconv.AppendInt(b, int64(st.Migrations), 10)
	return b, nil
}

// AppendJSON appends the JSON encoding of a to b, byte for byte what
// json.Marshal(a) makes, as HeartbeatAnswer's does: every start answers one,
// and with many providers its fallbacks were most of the reflection's walk.
func (a Assignment) AppendJSON(b []byte) ([]byte, error) {
	b = append(b, `{"id":`...)
	b = appendString(b, a.ID)
	b = append(b, `,"room":`...)
	b = appendString(b, a.Room)
	b = append(b, `,"userId":`...)
	b = appendString(b, a.UserID)
	b = append(b, `,"role":`...)
	b = appendString(b, string(a.Role))
	b = append(b, `,"provider":`...)
	b = appendProvider(b, &a.Provider)
	b = append(b, `,"token":`...)
	b = appendString(b, a.Token)
	b = append(b, `,"tokenExpiresAt":`...)
	b, err := appendTimePtr(b, a.TokenExpiresAt)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"fallbacks":`...)
	if a.Fallbacks == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, f := range a.Fallbacks {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, f)
		}
		b = append(b, ']')
	}
	if a.LeastBad {
		b = append(b, `,"leastBad":true`...)
	}
	b = append(b, `,"status":`...)
	b = appendString(b, string(a.Status))
	b = append(b, `,"standby":`...)
	if a.Standby == nil {
		return append(b, "null}"...), nil
	}
	if b, err = appendStandby(b, a.Standby); err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// appendStandby appends s as json.Marshal writes it.
func appendStandby(b []byte, s *Standby) ([]byte, error) {
	b = append(b, `{"provider":`...)
	b = appendProvider(b, &s.Provider)
	b = append(b, `,"token":`...)
	b = appendString(b, s.Token)
	b = append(b, `,"tokenExpiresAt":`...)
	b, err := appendTimePtr(b, s.TokenExpiresAt)
	if err != nil {
		return nil, err
	}
	return append(b, '}'), nil
}

// appendProvider appends p as json.Marshal writes it.
func appendProvider(b []byte, p *ProviderInfo) []byte {
	b = append(b, `{"name":`...)
	b = appendString(b, p.Name)
	b = append(b, `,"kind":`...)
	b = appendString(b, string(p.Kind))
	b = append(b, `,"priority":`...)
	b = strconv.AppendInt(b, int64(p.Priority), 10)
	b = append(b, `,"status":`...)
	b = appendString(b, string(p.Status))
	if p.AppID != "" {
		b = append(b, `,"appId":`...)
		b = appendString(b, p.AppID)
	}
	if p.URL != "" {
		b = append(b, `,"url":`...)
		b = appendString(b, p.URL)
	}
	return append(b, '}')
}

// appendTime appends t as time.Time's MarshalJSON does: AppendText is the
// same strict RFC 3339, refusing what cannot be written in it; its text
// never needs escaping.
func appendTime(b []byte, t time.Time) ([]byte, error) {
	b = append(b, '"')
	b, err := t.AppendText(b)
	if err != nil {
		return nil, err
	}
	return append(b, '"'), nil
}

func appendTimePtr(b []byte, t *time.Time) ([]byte, error) {
	if t == nil {
		return append(b, "null"...), nil
	}
	return appendTime(b, *t)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way encoding/json writes it
// by default: '"' and '\\' escaped with a backslash; \b, \f, \n, \r and \t
// by name; other control characters and the HTML-sensitive <, > and & as
// \u00XX; invalid UTF-8 as \ufffd; U+2028 and U+2029 as \u2028 and \u2029.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
