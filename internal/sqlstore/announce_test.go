package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/pgtest"
)

// assemble builds the notifications of a batch as qAppendEvents does, with the
// given ids.
func assemble(ids []uint64, bodies []string, chunks []int32) []string {
	var out []string
	for i := 0; i < len(ids); {
		j := i
		for j < len(ids) && chunks[j] == chunks[i] {
			j++
		}
		if bodies[i] == "" {
			out = append(out, fmt.Sprint(ids[j-1]))
		} else {
			entries := make([]string, 0, j-i)
			for k := i; k < j; k++ {
				entries = append(entries, fmt.Sprintf(`{"id":%d%s`, ids[k], bodies[k]))
			}
			out = append(out, eventsPayloadHead+strings.Join(entries, ",")+eventsPayloadTail)
		}
		i = j
	}
	return out
}

// A batch is announced in notifications that each stay under PostgreSQL's
// limit whatever the ids, carry the events as the log holds them, and announce
// an event too large for one by its id alone.
func TestEventsPayloadChunks(t *testing.T) {
	const n = 300
	var (
		types     = make([]string, n)
		audiences = make([]int32, n)
		ats       = make([]time.Time, n)
		datas     = make([]string, n)
		owners    = make([]string, n)
		ids       = make([]uint64, n)
	)
	at := time.Date(2026, 12, 6, 20, 0, 0, 123456000, time.UTC)
	for i := range n {
		data, _ := json.Marshal(map[string]string{"pad": strings.Repeat("x", (i*37)%900), "q": `"<é>&` + "\n"})
		types[i], audiences[i], ats[i], datas[i], owners[i] = "stream.started", int32(i%3), at.Add(time.Duration(i)*time.Second), string(data), `token:"t"é`
		ids[i] = 1<<63 - 1 - n + uint64(i) // the longest ids
	}
	oversize, _ := json.Marshal(strings.Repeat("y", maxEventsPayload))
	datas[100] = string(oversize)
	nearly, _ := json.Marshal(strings.Repeat("z", maxEventsPayload-200))
	datas[101] = string(nearly)
	bodies, chunks := eventsPayload(types, audiences, ats, datas, owners)

	if chunks[0] != 0 {
		t.Fatalf("first notification numbered %d", chunks[0])
	}
	for i := 1; i < n; i++ {
		if chunks[i] != chunks[i-1] && chunks[i] != chunks[i-1]+1 {
			t.Fatalf("event %d in notification %d after %d", i, chunks[i], chunks[i-1])
		}
	}
	for i := range n {
		if (bodies[i] == "") != (i == 100) {
			t.Errorf("event %d announced by id only: %v", i, bodies[i] == "")
		}
	}
	if chunks[99] == chunks[100] || chunks[100] == chunks[101] {
		t.Errorf("the oversize event shares a notification: %d %d %d", chunks[99], chunks[100], chunks[101])
	}
	payloads := assemble(ids, bodies, chunks)
	if len(payloads) < 10 {
		t.Fatalf("%d notifications for %d events of about 500 bytes", len(payloads), n)
	}
	var got []switchboard.Event
	idOnly := 0
	for _, p := range payloads {
		if len(p) > maxEventsPayload {
			t.Errorf("notification of %d bytes: %.80s", len(p), p)
		}
		evs := parseEventsPayload(p)
		if len(evs) == 0 {
			idOnly++
			if p != fmt.Sprint(ids[100]) {
				t.Errorf("notification without events: %.80s", p)
			}
			continue
		}
		got = append(got, evs...)
	}
	if idOnly != 1 || len(got) != n-1 {
		t.Fatalf("%d events carried and %d by id only, want %d and 1", len(got), idOnly, n-1)
	}
	for k, e := range got {
		i := k
		if k >= 100 {
			i++
		}
		if e.ID != ids[i] || e.Type != types[i] || e.Audience != switchboard.Role(audiences[i]) || !e.At.Equal(ats[i]) ||
			e.At.Location() != time.UTC || string(e.Data.(json.RawMessage)) != datas[i] || e.Owner != owners[i] {
			t.Fatalf("event %d carried as %+v", i, e)
		}
	}

	// What this version cannot read is no event: the log is read instead.
	for _, p := range []string{"", "42", `{"v":2,"events":[]}`, eventsPayloadHead + `{"id":1`, eventsPayloadHead + eventsPayloadTail,
		eventsPayloadHead + `{"id":2,"data":{}},{"id":1,"data":{}}` + eventsPayloadTail} {
		if evs := parseEventsPayload(p); len(evs) != 0 {
			t.Errorf("parseEventsPayload(%q) = %+v, want none", p, evs)
		}
	}
}

func TestEventsChannelFor(t *testing.T) {
	if got := eventsChannelFor("public"); got != "switchboard_events" {
		t.Errorf("public schema: channel %q, want the channel of earlier versions", got)
	}
	if got := eventsChannelFor("sbtest_1"); got != "switchboard_events:sbtest_1" {
		t.Errorf("channel %q", got)
	}
	long1, long2 := eventsChannelFor(strings.Repeat("s", 100)+"1"), eventsChannelFor(strings.Repeat("s", 100)+"2")
	if len(long1) > maxIdentifier || len(long2) > maxIdentifier || long1 == long2 {
		t.Errorf("long schemas: channels %q and %q", long1, long2)
	}
}

// listenRaw listens on channel on a connection of its own and returns the
// payloads it receives.
func listenRaw(t *testing.T, ctx context.Context, channel string) <-chan string {
	t.Helper()
	conn, err := pgx.Connect(ctx, pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	payloads, done := make(chan string, 1000), make(chan struct{})
	go func() {
		defer close(done)
		defer conn.Close(context.Background())
		for {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				return
			}
			payloads <- n.Payload
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	return payloads
}

// The events of an append reach a listener in its notifications, chunked
// under PostgreSQL's limit, exactly as the log then returns them; an event too
// large for a notification is announced by id only.
func TestPostgresEventsAnnounced(t *testing.T) {
	s := mustOpen(t, pgtest.DSN(t), newSealer(t))
	// A channel that needs quoting, of the longest length.
	s.eventsChannel = `Sb "Events" x` + strings.Repeat("é", 25)
	if len(s.eventsChannel) != maxIdentifier {
		t.Fatalf("channel of %d bytes", len(s.eventsChannel))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	raw := listenRaw(t, ctx, s.eventsChannel)
	listening, notified := make(chan struct{}), make(chan []switchboard.Event, 100)
	stopped := make(chan error, 1)
	go func() {
		stopped <- s.ListenEvents(ctx, func() { close(listening) }, func(evs []switchboard.Event) { notified <- evs })
	}()
	<-listening

	const n = 60
	evs := make([]switchboard.Event, n)
	for i := range evs {
		evs[i] = switchboard.Event{Type: "stream.started", Audience: switchboard.RoleAdmin, Owner: `token:"é"`,
			At:   time.Date(2026, 12, 6, 20, 0, 0, 123456789, time.UTC),
			Data: map[string]any{"i": i, "pad": strings.Repeat("<x>", 150)}}
	}
	evs[30].Data = strings.Repeat("y", 9000)
	ids, err := s.AppendEvents(ctx, "r1", evs)
	if err != nil {
		t.Fatal(err)
	}
	logged, err := s.EventsAfter(ctx, 0, n+1)
	if err != nil || len(logged) != n {
		t.Fatalf("EventsAfter = %d events, %v", len(logged), err)
	}
	var carried []switchboard.Event
	notifications, idOnly := 0, 0
	for len(carried)+idOnly < n {
		select {
		case got := <-notified:
			notifications++
			if len(got) == 0 {
				idOnly++
			}
			carried = append(carried, got...)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d events announced of %d", len(carried)+idOnly, n)
		}
	}
	if idOnly != 1 || notifications < 5 {
		t.Errorf("%d notifications, %d of them by id only; want at least 5, and 1", notifications, idOnly)
	}
	want := append(append([]switchboard.Event{}, logged[:30]...), logged[31:]...)
	for i, e := range carried {
		w := want[i]
		if e.ID != w.ID || e.Type != w.Type || e.Audience != w.Audience || !e.At.Equal(w.At) || e.At != w.At ||
			string(e.Data.(json.RawMessage)) != string(w.Data.(json.RawMessage)) || e.Owner != w.Owner {
			t.Fatalf("announced %+v, the log has %+v", e, w)
		}
	}
	for range notifications {
		p := <-raw
		if len(p) >= 8000 || len(p) > maxEventsPayload {
			t.Errorf("notification of %d bytes", len(p))
		}
		if !strings.HasPrefix(p, eventsPayloadHead) && p != fmt.Sprint(ids[30]) {
			t.Errorf("notification %.80q", p)
		}
	}
	cancel()
	<-stopped
}

// Each schema has its own channel: a replica does not hear the appends of
// another schema on the same server.
func TestPostgresEventsChannelPerSchema(t *testing.T) {
	a := mustOpen(t, pgtest.DSN(t), newSealer(t))
	b := mustOpen(t, pgtest.DSN(t), newSealer(t))
	if a.eventsChannel == b.eventsChannel || !strings.HasPrefix(a.eventsChannel, "switchboard_events:sbtest_") {
		t.Fatalf("channels %q and %q", a.eventsChannel, b.eventsChannel)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	listening, notified := make(chan struct{}), make(chan []switchboard.Event, 100)
	stopped := make(chan error, 1)
	go func() {
		stopped <- a.ListenEvents(ctx, func() { close(listening) }, func(evs []switchboard.Event) { notified <- evs })
	}()
	<-listening
	for range 5 {
		if _, err := b.AppendEvent(ctx, "b", switchboard.Event{Type: "other.schema", Data: 1}); err != nil {
			t.Fatal(err)
		}
	}
	id, err := a.AppendEvent(ctx, "a", switchboard.Event{Type: "own.schema", Data: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Notifications arrive in commit order: those of b's appends, had they
	// come, would come first.
	select {
	case evs := <-notified:
		if len(evs) != 1 || evs[0].ID != id || evs[0].Type != "own.schema" {
			t.Fatalf("first notification %+v, want the append to a's schema", evs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notification")
	}
	select {
	case evs := <-notified:
		t.Fatalf("another notification: %+v", evs)
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	<-stopped
}

// The decoder of announcements reads what encoding/json reads from them, for
// any text and data, and refuses what it does not expect (encoding/json then
// decodes it, or nothing does).
func TestDecodeAnnounced(t *testing.T) {
	strs := []string{"", "stream.started", `"quoted"`, `back\slash`, "<é>&\u2028\t\n\x01", "日本語", `{"not":"data"}`, `\u0041`}
	datas := []any{nil, true, 12.5, -3, "text", `"}]{[`, map[string]any{"a": []any{1, "}", map[string]string{"b": `\"`}}, "c": nil},
		[]any{}, map[string]any{}, strings.Repeat("x", 300)}
	var types, owners, datasJSON []string
	var audiences []int32
	var ats []time.Time
	at := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	for i := range 40 {
		data, _ := json.Marshal(datas[i%len(datas)])
		types, owners, datasJSON = append(types, strs[i%len(strs)]), append(owners, strs[(i+3)%len(strs)]), append(datasJSON, string(data))
		audiences, ats = append(audiences, int32(i%3)), append(ats, at.Add(time.Duration(i)*time.Microsecond*123457))
	}
	bodies, chunks := eventsPayload(types, audiences, ats, datasJSON, owners)
	ids := make([]uint64, len(types))
	for i := range ids {
		ids[i] = uint64(1000 + i)
	}
	for _, p := range assemble(ids, bodies, chunks) {
		got, ok := decodeAnnounced(p)
		want, wok := decodeAnnouncedJSON(p)
		if !ok || !wok || len(got) != len(want) {
			t.Fatalf("decoded %d events (%v), encoding/json %d (%v): %.200s", len(got), ok, len(want), wok, p)
		}
		for i := range got {
			g, w := got[i], want[i]
			if g.ID != w.ID || g.Type != w.Type || g.Audience != w.Audience || g.At != w.At || g.Owner != w.Owner ||
				string(g.Data.(json.RawMessage)) != string(w.Data.(json.RawMessage)) {
				t.Fatalf("decoded %+v, encoding/json %+v", g, w)
			}
		}
		if evs := parseEventsPayload(p); len(evs) != len(got) {
			t.Fatalf("parseEventsPayload: %d events, want %d", len(evs), len(got))
		}
	}

	// Announcements of another shape.
	for _, p := range []string{
		eventsPayloadHead + eventsPayloadTail,
		eventsPayloadHead + `{"id":1,"type":"t","audience":0,"at":"2026-12-06T20:00:00Z","data":{"a":1},"owner":"o"}`,
		eventsPayloadHead + `{"id":1,"type":"t","audience":0,"at":"2026-12-06T20:00:00Z","data":{"a":1,"owner":"o"}` + eventsPayloadTail,
		eventsPayloadHead + `{"id":1,"type":"t","audience":0,"at":"yesterday","data":1,"owner":"o"}` + eventsPayloadTail,
		eventsPayloadHead + `{"id":1,"type":"t","audience":0,"at":"2026-12-06T20:00:00Z","data":tru,"owner":"o"}` + eventsPayloadTail,
		eventsPayloadHead + `{"id":1,"type":"t","audience":0,"at":"2026-12-06T20:00:00Z","data":{"a":},"owner":"o"}` + eventsPayloadTail,
		eventsPayloadHead + `{"id":-1,"type":"t","audience":0,"at":"2026-12-06T20:00:00Z","data":1,"owner":"o"}` + eventsPayloadTail,
		eventsPayloadHead + `{"type":"t","id":1,"audience":0,"at":"2026-12-06T20:00:00Z","data":1,"owner":"o"}` + eventsPayloadTail,
		eventsPayloadHead + `{"id":1,"type":"t","audience":0,"at":"2026-12-06T20:00:00Z","data":1,"owner":"o"}` + eventsPayloadTail + " ",
	} {
		if evs, ok := decodeAnnounced(p); ok {
			t.Errorf("decodeAnnounced(%s) = %+v, want a refusal", p, evs)
		}
	}
	// Another order of the fields: encoding/json reads it.
	p := eventsPayloadHead + `{"type":"t","id":7,"audience":2,"at":"2026-12-06T20:00:00Z","data":[1],"owner":"o"}` + eventsPayloadTail
	if evs := parseEventsPayload(p); len(evs) != 1 || evs[0].ID != 7 || evs[0].Audience != 2 || string(evs[0].Data.(json.RawMessage)) != "[1]" {
		t.Errorf("parseEventsPayload(%s) = %+v", p, evs)
	}
}

func BenchmarkParseEventsPayload(b *testing.B) {
	const n = 20
	var types, owners, datas []string
	var audiences []int32
	var ats []time.Time
	for i := range n {
		data, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("st_%032d", i), "room": "room-1", "provider": "agora", "region": "eu"})
		types, owners, datas = append(types, "stream.started"), append(owners, "token:abc"), append(datas, string(data))
		audiences, ats = append(audiences, 1), append(ats, time.Now())
	}
	bodies, chunks := eventsPayload(types, audiences, ats, datas, owners)
	ids := make([]uint64, n)
	for i := range ids {
		ids[i] = uint64(123456 + i)
	}
	p := assemble(ids, bodies, chunks)[0]
	b.Run("decoder", func(b *testing.B) {
		for b.Loop() {
			if _, ok := decodeAnnounced(p); !ok {
				b.Fatal("refused")
			}
		}
	})
	b.Run("encoding/json", func(b *testing.B) {
		for b.Loop() {
			if _, ok := decodeAnnouncedJSON(p); !ok {
				b.Fatal("refused")
			}
		}
	})
}

// FuzzDecodeAnnounced: whatever a notification holds, the decoder does not
// panic, and what it accepts encoding/json reads the same.
func FuzzDecodeAnnounced(f *testing.F) {
	at := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC)
	bodies, chunks := eventsPayload([]string{"stream.started", `a"b`}, []int32{1, 2}, []time.Time{at, at},
		[]string{`{"id":"st_1","n":[1,2,{"x":"}"}]}`, `"s"`}, []string{"token:o", `\u00e9`})
	for _, p := range assemble([]uint64{1, 2}, bodies, chunks) {
		f.Add(p)
	}
	f.Add(eventsPayloadHead + `{"id":1,"type":"t","audience":0,"at":"2026-12-06T20:00:00Z","data":"\q","owner":"o"}` + eventsPayloadTail)
	f.Add(eventsPayloadHead + `{"id":1,"type":"t","audience":0,"at":"2026-12-06T20:00:00Z","data":-,"owner":"o"}` + eventsPayloadTail)
	f.Fuzz(func(t *testing.T, p string) {
		got, ok := decodeAnnounced(p)
		if !ok {
			return
		}
		want, wok := decodeAnnouncedJSON(p)
		if !wok || len(got) != len(want) {
			t.Fatalf("decoded %d events, encoding/json %d (%v): %q", len(got), len(want), wok, p)
		}
		for i := range got {
			g, w := got[i], want[i]
			if g.ID != w.ID || g.Type != w.Type || g.Audience != w.Audience || !g.At.Equal(w.At) || g.Owner != w.Owner ||
				string(g.Data.(json.RawMessage)) != string(w.Data.(json.RawMessage)) {
				t.Fatalf("decoded %+v, encoding/json %+v: %q", g, w, p)
			}
		}
	})
}
