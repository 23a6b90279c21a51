package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/providers/zegocloud"
	"github.com/switchboardhq/switchboard/internal/streams"
)

// TestStandbyAssignments covers the standby protocol: a start answers a ready
// assignment on the first fallback, heartbeats refresh it, and a client that
// moved to it reports the move afterwards, once or many times.
func TestStandbyAssignments(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	e.createProvider(e.zegoProvider("zegocloud", 2))
	client := e.tokens[sb.RoleClient]

	a := e.start(client, streamBody("room-sb", "u-sb"))
	if a.Provider.Name != "agora" || a.Standby == nil || a.Standby.Provider.Name != "zegocloud" {
		t.Fatalf("start: standby %+v", a.Standby)
	}
	// The standby token has the primary's scope and lifetime.
	claims, err := zegocloud.Decrypt04(a.Standby.Token, secretZego)
	if err != nil || claims.UserID != "u-sb" {
		t.Fatalf("standby token: %+v %v", claims, err)
	}
	if a.Standby.TokenExpiresAt == nil || a.TokenExpiresAt == nil || !a.Standby.TokenExpiresAt.Equal(*a.TokenExpiresAt) {
		t.Fatalf("standby expiry %v, primary %v", a.Standby.TokenExpiresAt, a.TokenExpiresAt)
	}

	t.Run("heartbeat refreshes the standby", func(t *testing.T) {
		e.t = t
		var hb streams.HeartbeatAnswer
		e.mustDo("POST", "/api/streams/"+a.ID+"/heartbeat", client, nil, 200, &hb)
		if hb.ID != a.ID || hb.Standby == nil || hb.Standby.Provider.Name != "zegocloud" || hb.Standby.Token == "" {
			t.Fatalf("heartbeat answer %+v", hb)
		}
		// A client without an engine for zegocloud gets no standby on it.
		var raw map[string]json.RawMessage
		e.mustDo("POST", "/api/streams/"+a.ID+"/heartbeat", client, map[string]any{"exclude": []string{"zegocloud"}}, 200, &raw)
		if string(raw["standby"]) != "null" {
			t.Fatalf("standby with zegocloud excluded: %s", raw["standby"])
		}
		code, body := e.do("POST", "/api/streams/"+a.ID+"/heartbeat", client, map[string]any{"exclude": []string{"Not A Name"}})
		if code != 400 || !strings.Contains(string(body), `"field":"exclude[0]"`) {
			t.Fatalf("bad exclude: %d %s", code, body)
		}
		code, body = e.do("POST", "/api/streams/"+a.ID+"/heartbeat", client, map[string]any{"standby": true})
		if code != 400 || !strings.Contains(string(body), `"field":"standby"`) {
			t.Fatalf("unknown field: %d %s", code, body)
		}
	})

	t.Run("bad reports change nothing", func(t *testing.T) {
		e.t = t
		past := e.clock.Now().Add(-2 * time.Second)
		for _, c := range []struct {
			body  map[string]any
			field string
		}{
			{map[string]any{"reason": "media error", "movedAt": past}, "to"},
			{map[string]any{"to": "nowhere", "reason": "media error", "movedAt": past}, "to"},
			{map[string]any{"to": "zegocloud", "reason": "media error", "movedAt": e.clock.Now().Add(time.Hour)}, "movedAt"},
			{map[string]any{"to": "zegocloud", "reason": "media error", "movedAt": "yesterday"}, "movedAt"},
		} {
			code, body := e.do("POST", "/api/streams/"+a.ID+"/migrate", client, c.body)
			if code != 400 || !strings.Contains(string(body), `"field":"`+c.field+`"`) {
				t.Fatalf("%v: %d %s", c.body, code, body)
			}
		}
		st, _ := e.store.GetStream(t.Context(), a.ID)
		if st.Provider != "agora" || st.Migrations != 0 {
			t.Fatalf("after refused reports: %+v", st)
		}
	})

	t.Run("a late report of a move is recorded once", func(t *testing.T) {
		e.t = t
		movedAt := e.clock.Now().Add(-3 * time.Second).Truncate(time.Millisecond)
		body := map[string]any{"to": "zegocloud", "reason": "CONNECTION_LOST on agora", "movedAt": movedAt}
		for range 3 { // the client retries: the same report, the same answer
			var got streams.Assignment
			e.mustDo("POST", "/api/streams/"+a.ID+"/migrate", client, body, 200, &got)
			if got.Provider.Name != "zegocloud" || got.Token == "" || got.Standby == nil || got.Standby.Provider.Name != "agora" {
				t.Fatalf("report answer: provider %s standby %+v", got.Provider.Name, got.Standby)
			}
		}
		st, _ := e.store.GetStream(t.Context(), a.ID)
		if st.Provider != "zegocloud" || st.Migrations != 1 {
			t.Fatalf("after the report: provider %s migrations %d", st.Provider, st.Migrations)
		}
		trail, _ := e.store.StreamTrail(t.Context(), a.ID)
		last := trail[len(trail)-1]
		if last.Kind != sb.TrailMigrate || last.From != "agora" || !last.At.Equal(movedAt) || last.ReportedAt == nil ||
			!last.ReportedAt.Equal(e.clock.Now()) {
			t.Fatalf("trail entry %+v (moved at %v, now %v)", last, movedAt, e.clock.Now())
		}
		var view struct {
			Trail []map[string]any `json:"trail"`
		}
		e.mustDo("GET", "/api/streams/"+a.ID, e.tokens[sb.RoleAdmin], nil, 200, &view)
		if _, ok := view.Trail[len(view.Trail)-1]["reportedAt"]; !ok {
			t.Fatalf("the API's trail has no reportedAt: %v", view.Trail[len(view.Trail)-1])
		}
		// The failure of the provider left may be reported after the move.
		e.mustDo("POST", "/api/streams/"+a.ID+"/failures", client,
			map[string]any{"provider": "agora", "stage": "media", "code": "CONNECTION_LOST"}, 202, nil)
	})

	t.Run("another client's stream stays hidden", func(t *testing.T) {
		e.t = t
		var other struct{ Token string }
		e.mustDo("POST", "/api/auth/tokens", bootstrapToken, map[string]string{"name": "other-app", "role": "client"}, 201, &other)
		code, _ := e.do("POST", "/api/streams/"+a.ID+"/migrate", other.Token,
			map[string]any{"to": "agora", "reason": "x", "movedAt": e.clock.Now()})
		if code != 404 {
			t.Fatalf("another client's report: %d", code)
		}
	})
}
