package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// TestClientInstancesOwnTheirStreams: every instance of an app shares the
// app's client token, so any instance could end, move or report on any
// stream of the app whose id it knew, and the ids were sent to all of them:
// a maintenance drain or a predicted failure asked each stream to move with
// a stream.migrate event that every event stream of the token received. An
// SDK instance that names itself (X-Switchboard-Instance) now owns the
// streams it starts: another instance, or a caller without the header, is
// answered 404 for them, and their events reach that instance's event
// stream alone. The value itself is never stored or shown, only a digest.
func TestClientInstancesOwnTheirStreams(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	e.createProvider(e.zegoProvider("zegocloud", 2))
	client := e.tokens[sb.RoleClient]
	const instA, instB = "instance-a-0123456789", "instance-b-0123456789"
	as := func(inst string) map[string]string {
		h := map[string]string{"Authorization": bearer(client)}
		if inst != "" {
			h[InstanceHeader] = inst
		}
		return h
	}
	st, b := e.doHeaders("POST", "/api/streams", map[string]any{"room": "r", "userId": "u", "role": "publisher"}, as(instA))
	if st != 201 {
		t.Fatalf("start as A: %d %s", st, b)
	}
	var a struct{ ID string }
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	var stored sb.Stream
	e.mustDo("GET", "/api/streams/"+a.ID, e.tokens[sb.RoleAdmin], nil, 200, &stored)
	if !strings.HasPrefix(stored.Owner, "token:") || !strings.Contains(stored.Owner, "/") || strings.Contains(stored.Owner, instA) {
		t.Fatalf("owner %q: want the token and a digest of the instance, never the instance itself", stored.Owner)
	}
	// Neither another instance nor the bare token may act on A's stream.
	for _, inst := range []string{instB, ""} {
		for _, op := range []struct{ path, body string }{
			{"/heartbeat", `{}`},
			{"/failures", `{"provider":"agora","stage":"connect"}`},
			{"/migrate", `{"reason":"x"}`},
			{"/end", `{}`},
		} {
			if st, b := e.doHeaders("POST", "/api/streams/"+a.ID+op.path, op.body, as(inst)); st != 404 {
				t.Fatalf("%s as %q: %d %s, want 404", op.path, inst, st, b)
			}
		}
	}
	if st, b := e.doHeaders("POST", "/api/streams/"+a.ID+"/heartbeat", `{}`, as(instA)); st != 200 {
		t.Fatalf("heartbeat as A: %d %s", st, b)
	}
	// A bad header is refused, naming it; admins are not bound by it.
	st, b = e.doHeaders("POST", "/api/streams/"+a.ID+"/heartbeat", `{}`, as("short"))
	if st != 400 || apiError(t, b).Field != InstanceHeader {
		t.Fatalf("a malformed instance: %d %s, want 400 naming %s", st, b, InstanceHeader)
	}
	if st, b := e.doHeaders("POST", "/api/streams/"+a.ID+"/heartbeat", `{}`, map[string]string{"Authorization": bearer(e.tokens[sb.RoleAdmin]), InstanceHeader: instB}); st != 200 {
		t.Fatalf("heartbeat as admin: %d %s", st, b)
	}

	// A stream.migrate event for A's stream reaches A's event stream only.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type sub struct {
		br     *bufio.Reader
		events chan string
	}
	open := func(inst string) sub {
		resp, br := e.openStream(ctx, as(inst))
		t.Cleanup(func() { resp.Body.Close() })
		s := sub{br, make(chan string, 16)}
		go func() {
			defer close(s.events)
			for {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if ev, ok := strings.CutPrefix(strings.TrimSpace(line), "data: "); ok {
					s.events <- ev
				}
			}
		}()
		return s
	}
	subA, subB, bare := open(instA), open(instB), open("")
	e.api.hub.Publish(sb.Event{Type: sb.EventStreamMigrate, At: time.Now(), Audience: sb.RoleClient, Owner: stored.Owner,
		Data: map[string]string{"streamId": a.ID, "from": "agora", "reason": "test"}})
	// Then an event for every client, after which nothing more is awaited.
	e.api.hub.Publish(sb.Event{Type: "provider.updated", At: time.Now(), Audience: sb.RoleClient, Data: map[string]string{"name": "marker"}})
	next := func(s sub, who string) string {
		select {
		case ev, ok := <-s.events:
			if !ok {
				t.Fatalf("%s: the event stream ended", who)
			}
			return ev
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: no event in 10 s", who)
		}
		return ""
	}
	if ev := next(subA, "A"); !strings.Contains(ev, a.ID) {
		t.Fatalf("A's first event: %s, want its stream's migrate", ev)
	}
	for who, s := range map[string]sub{"B": subB, "the bare token": bare} {
		if ev := next(s, who); strings.Contains(ev, a.ID) || !strings.Contains(ev, "marker") {
			t.Fatalf("%s received %s, want only the marker", who, ev)
		}
	}
	// The instance acts as a key: no log line holds it.
	for _, inst := range []string{instA, instB} {
		if strings.Contains(e.logs.String(), inst) {
			t.Fatalf("a log line holds the instance %s", inst)
		}
	}
}
