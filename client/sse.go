package client

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"
	"time"
)

// sseEvent is one event of a text/event-stream.
type sseEvent struct {
	ID   string // the last event ID when the event was dispatched
	Type string // the event field; "" for the default type, "message"
	Data string // the data lines, joined with "\n"
}

// errSSETooLong is returned when a line or an event's data exceeds the
// parser's bound.
var errSSETooLong = errors.New("client: event stream line or event too long")

// sseParser reads events from a text/event-stream body, following the
// WHATWG HTML standard's rules ("Server-sent events", section 9.2.6,
// "Interpreting an event stream"). The TypeScript SDK's parser follows the
// same description:
//
//   - One leading byte order mark (U+FEFF) is ignored. The body is otherwise
//     taken as UTF-8 as is: invalid sequences are not repaired here (the data
//     of every Switchboard event is JSON, whose decoder rejects them).
//   - A line ends at CRLF, LF or CR, and a CRLF split across reads is one line
//     end. Waiting for the byte after a CR never delays an event.
//   - An empty line dispatches the event being built. A line that starts with
//     ":" is a comment, ignored (the server's heartbeats are comments).
//   - Any other line is a field: the name is what comes before the first ":",
//     the value what comes after it, less one leading space; a line without
//     ":" is a field with an empty value. Unknown fields are ignored.
//   - "event" sets the event type. "data" appends its value and a "\n" to the
//     data buffer. "id" sets the last event ID, unless the value holds a NUL;
//     the last event ID persists from event to event until another "id"
//     changes it, and an empty "id" resets it. "retry" sets the reconnection
//     delay in milliseconds when its value is ASCII digits only, and is
//     ignored otherwise.
//   - Dispatching first adopts the last event ID (LastEventID reports it, even
//     when no event follows). Then, when the data buffer is empty, the event
//     type is reset and nothing is dispatched; otherwise the final "\n" of the
//     data is removed and the event is returned with its type (empty for the
//     default "message"), data and the last event ID. The type and data
//     buffers are reset for the next event.
//   - At the end of the body, an event not yet dispatched by an empty line is
//     discarded.
//
// A line, or an event's data, longer than max bytes ends the parse with
// errSSETooLong.
type sseParser struct {
	r       *bufio.Reader
	max     int
	line    []byte
	started bool // the first line has been read (its BOM dropped)
	skipLF  bool // the last line ended with CR: a LF right after it is part of that line end

	typ    string
	data   strings.Builder
	lastID string // the last event ID buffer
	seenID string // the last event ID adopted by a dispatch
	retry  time.Duration
}

// newSSEParser returns a parser of r whose lines and events are at most max
// bytes long.
func newSSEParser(r io.Reader, max int) *sseParser {
	return &sseParser{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// LastEventID is the last event ID adopted by a dispatch: what a reconnection
// sends as Last-Event-ID.
func (p *sseParser) LastEventID() string { return p.seenID }

// Retry is the reconnection delay the stream asked for, or zero.
func (p *sseParser) Retry() time.Duration { return p.retry }

// Next returns the next event. At the end of the body it returns io.EOF, and
// any other error of the reader as is.
func (p *sseParser) Next() (sseEvent, error) {
	for {
		line, err := p.readLine()
		if err != nil {
			return sseEvent{}, err
		}
		if len(line) == 0 {
			if ev, ok := p.dispatch(); ok {
				return ev, nil
			}
			continue
		}
		if line[0] == ':' {
			continue
		}
		if err := p.field(line); err != nil {
			return sseEvent{}, err
		}
	}
}

// field processes one field line.
func (p *sseParser) field(line []byte) error {
	name, value := line, []byte(nil)
	if i := bytes.IndexByte(line, ':'); i >= 0 {
		name, value = line[:i], line[i+1:]
		if len(value) > 0 && value[0] == ' ' {
			value = value[1:]
		}
	}
	switch string(name) {
	case "event":
		p.typ = string(value)
	case "data":
		if p.data.Len()+len(value)+1 > p.max {
			return errSSETooLong
		}
		p.data.Write(value)
		p.data.WriteByte('\n')
	case "id":
		if bytes.IndexByte(value, 0) < 0 {
			p.lastID = string(value)
		}
	case "retry":
		if ms, ok := digits(value); ok {
			p.retry = time.Duration(ms) * time.Millisecond
		}
	}
	return nil
}

// digits parses a value made of ASCII digits only; a value too large for a
// delay is capped rather than refused.
func digits(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	for _, b := range v {
		if b < '0' || b > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || n > int64(maxRetryDelay/time.Millisecond) {
		n = int64(maxRetryDelay / time.Millisecond)
	}
	return n, true
}

// maxRetryDelay caps the reconnection delay a stream can ask for.
const maxRetryDelay = time.Hour

// dispatch ends the event being built and returns it, if it has data.
func (p *sseParser) dispatch() (sseEvent, bool) {
	p.seenID = p.lastID
	if p.data.Len() == 0 {
		p.typ = ""
		return sseEvent{}, false
	}
	data := p.data.String()
	ev := sseEvent{ID: p.lastID, Type: p.typ, Data: data[:len(data)-1]}
	p.typ = ""
	p.data.Reset()
	return ev, true
}

// readLine returns the next line without its line end. The slice is valid
// until the next call. A body that ends in the middle of a line ends it.
func (p *sseParser) readLine() ([]byte, error) {
	p.line = p.line[:0]
	for {
		b, err := p.r.ReadByte()
		if err != nil {
			// An unterminated last line is dropped, with the event it
			// belonged to: that event is never dispatched.
			return nil, err
		}
		if p.skipLF {
			p.skipLF = false
			if b == '\n' {
				continue
			}
		}
		switch b {
		case '\r':
			p.skipLF = true
			return p.firstLine(), nil
		case '\n':
			return p.firstLine(), nil
		}
		if len(p.line) >= p.max {
			return nil, errSSETooLong
		}
		p.line = append(p.line, b)
	}
}

// firstLine drops the byte order mark from the first line of the body.
func (p *sseParser) firstLine() []byte {
	if !p.started {
		p.started = true
		p.line = bytes.TrimPrefix(p.line, []byte("\uFEFF"))
	}
	return p.line
}
