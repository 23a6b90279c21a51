package client

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// parseAll reads every event of body.
func parseAll(t testing.TB, r io.Reader, max int) ([]sseEvent, *sseParser, error) {
	t.Helper()
	p := newSSEParser(r, max)
	var out []sseEvent
	for {
		ev, err := p.Next()
		if err == io.EOF {
			return out, p, nil
		}
		if err != nil {
			return out, p, err
		}
		out = append(out, ev)
	}
}

func TestSSEParser(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		want   []sseEvent
		lastID string
		retry  time.Duration
	}{
		{"one event", "data: a\n\n", []sseEvent{{Data: "a"}}, "", 0},
		{"multi-line data", "data: a\ndata:\ndata: b\n\n", []sseEvent{{Data: "a\n\nb"}}, "", 0},
		{"type and id", "id: 7\nevent: provider.status\ndata: {}\n\n", []sseEvent{{ID: "7", Type: "provider.status", Data: "{}"}}, "7", 0},
		{"one space removed, no more", "data:a\n\ndata:  b\n\n", []sseEvent{{Data: "a"}, {Data: " b"}}, "", 0},
		{"value after the first colon", "data: a: b\n\n", []sseEvent{{Data: "a: b"}}, "", 0},
		{"field without colon", "data\n\n", []sseEvent{{Data: ""}}, "", 0},
		{"comments", ": heartbeat\n:\ndata: a\n: inside\n\n", []sseEvent{{Data: "a"}}, "", 0},
		{"unknown field", "foo: bar\ndata: a\nData: b\n\n", []sseEvent{{Data: "a"}}, "", 0},
		{"CRLF", "id: 1\r\ndata: a\r\ndata: b\r\n\r\n", []sseEvent{{ID: "1", Data: "a\nb"}}, "1", 0},
		{"CR", "id: 1\rdata: a\rdata: b\r\r", []sseEvent{{ID: "1", Data: "a\nb"}}, "1", 0},
		{"mixed line ends", "data: a\r\ndata: b\rdata: c\n\r\n", []sseEvent{{Data: "a\nb\nc"}}, "", 0},
		{"LF CR is two line ends", "data: a\n\rdata: b\n\n", []sseEvent{{Data: "a"}, {Data: "b"}}, "", 0},
		{"BOM", "\uFEFFdata: a\n\n", []sseEvent{{Data: "a"}}, "", 0},
		{"BOM before an empty line", "\uFEFF\ndata: a\n\n", []sseEvent{{Data: "a"}}, "", 0},
		{"only one BOM", "\uFEFF\uFEFFdata: a\n\n", nil, "", 0},
		{"BOM later is data", "data: \uFEFFa\n\n", []sseEvent{{Data: "\uFEFFa"}}, "", 0},
		{"id persists", "id: 1\ndata: a\n\ndata: b\n\n", []sseEvent{{ID: "1", Data: "a"}, {ID: "1", Data: "b"}}, "1", 0},
		{"empty id resets", "id: 1\ndata: a\n\nid\ndata: b\n\n", []sseEvent{{ID: "1", Data: "a"}, {Data: "b"}}, "", 0},
		{"id with NUL ignored", "id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n", []sseEvent{{ID: "1", Data: "a"}, {ID: "1", Data: "b"}}, "1", 0},
		{"id without data is adopted", "data: a\n\nid: 5\nevent: x\n\n", []sseEvent{{Data: "a"}}, "5", 0},
		{"type reset without data", "event: x\n\ndata: a\n\n", []sseEvent{{Data: "a"}}, "", 0},
		{"retry", "retry: 1500\n\n", nil, "", 1500 * time.Millisecond},
		{"retry not digits", "retry: 1500\n\nretry: 1x\nretry: -1\nretry: \nretry:1 \n\n", nil, "", 1500 * time.Millisecond},
		{"retry capped", "retry: 99999999999999999999999\n\n", nil, "", maxRetryDelay},
		{"unterminated event dropped", "data: a\n\ndata: b\n", []sseEvent{{Data: "a"}}, "", 0},
		{"unterminated line dropped", "data: a\n\ndata: b", []sseEvent{{Data: "a"}}, "", 0},
		{"id of a dropped event not adopted", "id: 1\ndata: a\n\nid: 2\ndata: b\n", []sseEvent{{ID: "1", Data: "a"}}, "1", 0},
		{"empty body", "", nil, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Whole, and one byte at a time: the reads' boundaries do not matter.
			for _, r := range []io.Reader{strings.NewReader(tt.body), iotest.OneByteReader(strings.NewReader(tt.body))} {
				got, p, err := parseAll(t, r, 1<<10)
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("events = %q, want %q", got, tt.want)
				}
				if p.LastEventID() != tt.lastID || p.Retry() != tt.retry {
					t.Errorf("last id %q, retry %v; want %q, %v", p.LastEventID(), p.Retry(), tt.lastID, tt.retry)
				}
			}
		})
	}
}

// An event ended by CR is dispatched at once, without waiting for the next
// byte to see whether it is the LF of a CRLF.
func TestSSEParserCRDoesNotWait(t *testing.T) {
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = io.WriteString(pw, "data: a\r\r") }()
	p := newSSEParser(pr, 1<<10)
	ev, err := p.Next()
	if err != nil || ev.Data != "a" {
		t.Fatalf("Next = %q, %v", ev, err)
	}
	go func() { _, _ = io.WriteString(pw, "\ndata: b\r\n\r\n") }()
	if ev, err := p.Next(); err != nil || ev.Data != "b" {
		t.Errorf("Next after a LF = %q, %v; want b: an LF after CR CR is an empty line", ev, err)
	}
}

func TestSSEParserBounds(t *testing.T) {
	for _, body := range []string{
		"data: " + strings.Repeat("x", 100) + "\n\n",                    // one long line
		strings.Repeat("data: "+strings.Repeat("x", 30)+"\n", 5) + "\n", // long data across lines
	} {
		if _, _, err := parseAll(t, strings.NewReader(body), 64); !errors.Is(err, errSSETooLong) {
			t.Errorf("err = %v, want errSSETooLong", err)
		}
	}
	readErr := errors.New("boom")
	if _, _, err := parseAll(t, iotest.ErrReader(readErr), 64); !errors.Is(err, readErr) {
		t.Errorf("err = %v, want the reader's", err)
	}
}

// encodeSSE writes events as a server would.
func encodeSSE(evs []sseEvent) []byte {
	var b bytes.Buffer
	for _, ev := range evs {
		b.WriteString("id: " + ev.ID + "\n")
		if ev.Type != "" {
			b.WriteString("event: " + ev.Type + "\n")
		}
		for line := range strings.SplitSeq(ev.Data, "\n") {
			b.WriteString("data: " + line + "\n")
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

func FuzzSSEParser(f *testing.F) {
	for _, s := range []string{
		"data: a\n\n", "id: 1\r\nevent: x\r\ndata: a\r\ndata: b\r\n\r\n", "\uFEFFdata: a\r\r", ": c\nretry: 10\n\n",
		"id: \x00\ndata\n\n", "data: a\n\rdata: b\n\n", "event: resync\ndata: {\"reason\":\"x\"}\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		const max = 1 << 12
		want, p, err := parseAll(t, bytes.NewReader(body), max)
		if errors.Is(err, errSSETooLong) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		lastID := p.LastEventID()
		for _, ev := range want {
			if strings.ContainsAny(ev.ID, "\r\n\x00") || strings.ContainsAny(ev.Type, "\r\n") || strings.Contains(ev.Data, "\r") {
				t.Fatalf("event %q holds a line end or a NUL", ev)
			}
		}

		// The reads' boundaries do not matter.
		got, p2, err := parseAll(t, iotest.OneByteReader(bytes.NewReader(body)), max)
		if err != nil || !reflect.DeepEqual(got, want) || p2.LastEventID() != lastID || p2.Retry() != p.Retry() {
			t.Fatalf("one byte at a time: %q, %v; want %q", got, err, want)
		}

		// Neither does the style of line end, in a body with LF only.
		if !bytes.ContainsRune(body, '\r') {
			for _, end := range []string{"\r\n", "\r"} {
				other := bytes.ReplaceAll(body, []byte("\n"), []byte(end))
				got, _, err := parseAll(t, bytes.NewReader(other), max*2)
				if err != nil || !reflect.DeepEqual(got, want) {
					t.Fatalf("with %q line ends: %q, %v; want %q", end, got, err, want)
				}
			}
		}

		// The events, written again, read back the same.
		again, _, err := parseAll(t, bytes.NewReader(encodeSSE(want)), max*4)
		if err != nil || !reflect.DeepEqual(again, want) {
			t.Fatalf("round trip: %q, %v; want %q", again, err, want)
		}
	})
}
