package httpapi

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/maintenance"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

type windowView struct {
	ID            string     `json:"id"`
	Provider      string     `json:"provider"`
	Start         time.Time  `json:"start"`
	End           time.Time  `json:"end"`
	Reason        string     `json:"reason"`
	Drain         bool       `json:"drain"`
	DrainRate     float64    `json:"drainRate"`
	CreatedBy     string     `json:"createdBy"`
	EndedAt       *time.Time `json:"endedAt"`
	State         string     `json:"state"`
	DrainStart    *time.Time `json:"drainStart"`
	DrainProgress *struct {
		Asked, Moved, Ended, Remaining int
		DoneAt                         *time.Time
		Late                           bool
	} `json:"drainProgress"`
}

type streamView struct {
	Provider string `json:"provider"`
	Status   string `json:"status"`
	Trail    []struct {
		Kind     string `json:"kind"`
		Provider string `json:"provider"`
		From     string `json:"from"`
		Reason   string `json:"reason"`
	} `json:"trail"`
}

func (e *testEnv) getStream(id string) streamView {
	e.t.Helper()
	var st streamView
	e.mustDo("GET", "/api/streams/"+id, e.tokens[sb.RoleAdmin], nil, 200, &st)
	return st
}

type configView struct {
	Providers []struct {
		Name        string `json:"name"`
		Maintenance *struct {
			Until  time.Time `json:"until"`
			Reason string    `json:"reason"`
		} `json:"maintenance"`
	} `json:"providers"`
}

func (e *testEnv) inMaintenance(name string) (bool, string) {
	e.t.Helper()
	var cfg configView
	e.mustDo("GET", "/api/streaming/config", e.tokens[sb.RoleClient], nil, 200, &cfg)
	for _, p := range cfg.Providers {
		if p.Name == name && p.Maintenance != nil {
			return true, p.Maintenance.Reason
		}
	}
	return false, ""
}

func rfc(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// TestMaintenanceWindow schedules a window on a running server: inside it
// the provider takes no new stream and the decision trail says maintenance,
// the configuration tells SDKs, live streams stay (no drain asked), alerts
// are silenced; ending it early is audited, announced and gives the provider
// back.
func TestMaintenanceWindow(t *testing.T) {
	testutil.LeakCheck(t)
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	e.createProvider(e.zegoProvider("zegocloud", 2))
	client, admin := e.tokens[sb.RoleClient], e.tokens[sb.RoleAdmin]
	live := e.start(client, streamBody("before", "u1"))
	if live.Provider.Name != "agora" {
		t.Fatalf("stream on %s before the window, want agora", live.Provider.Name)
	}

	now := e.clock.Now()
	var w windowView
	e.mustDo("POST", "/api/maintenance", admin, map[string]any{"provider": "agora", "end": rfc(now.Add(time.Hour)),
		"reason": "vendor upgrade"}, 201, &w)
	if w.Provider != "agora" || w.State != sb.MaintenanceActive || !w.Start.Equal(now) || !w.End.Equal(now.Add(time.Hour)) ||
		w.Reason != "vendor upgrade" || w.Drain || w.DrainRate != sb.DefaultDrainRate || w.CreatedBy != "admin-token" || w.EndedAt != nil {
		t.Fatalf("created window = %+v", w)
	}
	var got windowView
	e.mustDo("GET", "/api/maintenance/"+w.ID, admin, nil, 200, &got)
	if got.ID != w.ID || got.State != sb.MaintenanceActive {
		t.Errorf("GET window = %+v", got)
	}

	// Inside the window: new streams go elsewhere, and the trail says why.
	a := e.start(client, streamBody("during", "u2"))
	if a.Provider.Name != "zegocloud" || slices.Contains(a.Fallbacks, "agora") || (a.Standby != nil && a.Standby.Provider.Name == "agora") {
		t.Fatalf("stream during the window: %s, fallbacks %v: want zegocloud only", a.Provider.Name, a.Fallbacks)
	}
	st := e.getStream(a.ID)
	if len(st.Trail) == 0 || !strings.Contains(st.Trail[0].Reason, "agora is in maintenance until") || !strings.Contains(st.Trail[0].Reason, "vendor upgrade") {
		t.Errorf("assign trail = %+v, want it to name agora's maintenance", st.Trail)
	}
	if in, reason := e.inMaintenance("agora"); !in || reason != "vendor upgrade" {
		t.Errorf("configuration: agora in maintenance %v (%q), want true", in, reason)
	}
	if in, _ := e.inMaintenance("zegocloud"); in {
		t.Error("configuration: zegocloud in maintenance")
	}
	// A live stream cannot be moved onto the provider either.
	st2, b := e.do("POST", "/api/streams/"+a.ID+"/migrate", client, map[string]any{"to": "agora", "reason": "test"})
	if st2 != 409 || !strings.Contains(string(b), "maintenance") {
		t.Errorf("migrate to the provider in maintenance: %d %s, want 409 naming maintenance", st2, b)
	}

	// Alerts are silenced inside the window only.
	if ok, reason := e.maint.Silenced("agora", now.Add(time.Minute)); !ok || reason != "vendor upgrade" {
		t.Errorf("Silenced(agora, inside) = %v %q", ok, reason)
	}
	for _, at := range []time.Time{now.Add(-time.Minute), now.Add(time.Hour), now.Add(2 * time.Hour)} {
		if ok, _ := e.maint.Silenced("agora", at); ok {
			t.Errorf("Silenced(agora, %s) = true outside the window", at)
		}
	}
	if ok, _ := e.maint.Silenced("zegocloud", now.Add(time.Minute)); ok {
		t.Error("Silenced(zegocloud) = true")
	}

	// The leader announces the start; no drain was asked: the live stream stays.
	ctx, cancel := context.WithTimeout(t.Context(), testutil.Patience)
	defer cancel()
	if _, err := e.events.Next(ctx, sb.EventMaintenanceStarted); err != nil {
		t.Fatal("no maintenance.started event:", err)
	}
	if got := e.getStream(live.ID); got.Provider != "agora" || got.Status != "active" {
		t.Errorf("live stream after the start = %+v, want still on agora", got)
	}

	// Ending it early: audited, announced, and the provider takes streams again.
	var ended windowView
	e.mustDo("POST", "/api/maintenance/"+w.ID+"/end", admin, nil, 200, &ended)
	if ended.State != sb.MaintenancePast || ended.EndedAt == nil || !ended.EndedAt.Equal(now) {
		t.Errorf("ended window = %+v", ended)
	}
	if st, b := e.do("POST", "/api/maintenance/"+w.ID+"/end", admin, nil); st != 409 {
		t.Errorf("ending it again: %d %s, want 409", st, b)
	}
	if in, _ := e.inMaintenance("agora"); in {
		t.Error("configuration: agora still in maintenance after the end")
	}
	if a := e.start(client, streamBody("after", "u3")); a.Provider.Name != "agora" {
		t.Errorf("stream after the window on %s, want agora", a.Provider.Name)
	}
	if ok, _ := e.maint.Silenced("agora", now); ok {
		t.Error("Silenced after the early end")
	}

	var audit struct{ Entries []sb.AuditEntry }
	e.mustDo("GET", "/api/audit?target=maintenance:"+w.ID, admin, nil, 200, &audit)
	var actions []string
	for _, en := range audit.Entries {
		actions = append(actions, en.Action)
		if en.Actor.Name != "admin-token" {
			t.Errorf("audit actor = %+v", en.Actor)
		}
	}
	if !slices.Equal(actions, []string{"maintenance.end", "maintenance.create"}) {
		t.Errorf("audit actions = %v", actions)
	}

	var types []string
	for _, ev := range e.events.Events() {
		if strings.HasPrefix(ev.Type, "maintenance.") {
			types = append(types, ev.Type)
			if ev.Audience != sb.RoleClient {
				t.Errorf("%s audience %s", ev.Type, ev.Audience)
			}
			if b, _ := json.Marshal(ev.Data); strings.Contains(string(b), "createdBy") || !strings.Contains(string(b), w.ID) {
				t.Errorf("%s data %s: want the window without who scheduled it", ev.Type, b)
			}
		}
		if ev.Type == sb.EventStreamMigrate {
			t.Errorf("stream.migrate published though the window asks for no drain: %+v", ev)
		}
	}
	if !slices.Equal(types, []string{sb.EventMaintenanceScheduled, sb.EventMaintenanceStarted, sb.EventMaintenanceEnded}) {
		t.Errorf("events = %v, want scheduled, started, ended once each", types)
	}

	// Listing by state.
	var list struct{ Windows []windowView }
	e.mustDo("GET", "/api/maintenance?state=past", admin, nil, 200, &list)
	if len(list.Windows) != 1 || list.Windows[0].ID != w.ID {
		t.Errorf("past windows = %+v", list.Windows)
	}
	e.mustDo("GET", "/api/maintenance?state=active", admin, nil, 200, &list)
	if len(list.Windows) != 0 {
		t.Errorf("active windows = %+v", list.Windows)
	}
}

// TestMaintenanceDrain checks that a window that asks for a drain asks the
// owners of the provider's live streams to move them, through events meant
// for them, and reports the drain's progress until none is left; the test
// moves each stream as an SDK would, through the migrate endpoint.
func TestMaintenanceDrain(t *testing.T) {
	testutil.LeakCheck(t)
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	e.createProvider(e.zegoProvider("zegocloud", 2))
	client, admin := e.tokens[sb.RoleClient], e.tokens[sb.RoleAdmin]
	var ids []string
	for i := range 4 {
		a := e.start(client, streamBody("room", "u"+string(rune('a'+i))))
		if a.Provider.Name != "agora" {
			t.Fatalf("stream on %s, want agora", a.Provider.Name)
		}
		ids = append(ids, a.ID)
	}
	now := e.clock.Now()
	var w windowView
	e.mustDo("POST", "/api/maintenance", admin, map[string]any{"provider": "agora", "start": rfc(now.Add(time.Minute)),
		"end": rfc(now.Add(time.Hour)), "reason": "vendor upgrade", "drain": true, "drainRate": 50}, 201, &w)
	if w.State != sb.MaintenanceUpcoming || w.DrainStart == nil || !w.DrainStart.Equal(now) || w.DrainRate != 50 {
		t.Fatalf("window = %+v, want upcoming, draining from now", w)
	}
	// While it drains, the provider takes no new stream.
	if a := e.start(client, streamBody("new", "n")); a.Provider.Name != "zegocloud" {
		t.Errorf("new stream while draining on %s, want zegocloud", a.Provider.Name)
	}

	ctx, cancel := context.WithTimeout(t.Context(), testutil.Patience)
	defer cancel()
	var owner string
	for range ids {
		ev, err := e.events.Next(ctx, sb.EventStreamMigrate)
		if err != nil {
			t.Fatal("waiting for stream.migrate:", err)
		}
		d := ev.Data.(maintenance.MigrateData)
		if !slices.Contains(ids, d.StreamID) || d.From != "agora" || d.Window != w.ID || !strings.Contains(d.Reason, "vendor upgrade") {
			t.Fatalf("stream.migrate data = %+v", d)
		}
		if ev.Owner == "" || (owner != "" && ev.Owner != owner) || ev.Audience != sb.RoleClient {
			t.Fatalf("stream.migrate for owner %q audience %s", ev.Owner, ev.Audience)
		}
		owner = ev.Owner
		var moved struct{ Provider struct{ Name string } }
		e.mustDo("POST", "/api/streams/"+d.StreamID+"/migrate", client, map[string]any{"reason": d.Reason}, 200, &moved)
		if moved.Provider.Name != "zegocloud" {
			t.Errorf("stream moved to %s, want zegocloud", moved.Provider.Name)
		}
	}
	testutil.Eventually(t, "the drain reports every stream moved", func() bool {
		var got windowView
		e.mustDo("GET", "/api/maintenance/"+w.ID, admin, nil, 200, &got)
		p := got.DrainProgress
		return p != nil && p.Remaining == 0 && p.Moved == len(ids) && p.Asked == len(ids) && p.DoneAt != nil && !p.Late
	})
	for _, id := range ids {
		if st := e.getStream(id); st.Provider != "zegocloud" || st.Status != "active" {
			t.Errorf("stream %s after the drain: %+v", id, st)
		}
	}
	if n := len(slices.DeleteFunc(e.events.Events(), func(ev sb.Event) bool { return ev.Type != sb.EventStreamMigrate })); n != len(ids) {
		t.Errorf("%d stream.migrate events, want one per stream (%d)", n, len(ids))
	}
}

// TestMaintenanceBadInput sends bad windows: each is refused with 400 naming
// the field, and nothing is stored, audited or announced. A client token may
// not schedule one.
func TestMaintenanceBadInput(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	admin := e.tokens[sb.RoleAdmin]
	now := e.clock.Now()
	ok := map[string]any{"provider": "agora", "start": rfc(now.Add(time.Hour)), "end": rfc(now.Add(2 * time.Hour)), "reason": "upgrade"}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range ok {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(m, kv[i].(string))
			} else {
				m[kv[i].(string)] = kv[i+1]
			}
		}
		return m
	}
	auditBefore := len(e.auditEntries())
	eventsBefore := len(e.events.Events())
	for _, c := range []struct {
		name  string
		body  any
		field string
	}{
		{"unknown provider", with("provider", "ghost"), "provider"},
		{"bad provider name", with("provider", "Not A Name"), "provider"},
		{"no provider", with("provider", nil), "provider"},
		{"end before start", with("end", rfc(now.Add(30*time.Minute))), "end"},
		{"end equals start", with("end", rfc(now.Add(time.Hour))), "end"},
		{"end in the past", with("start", rfc(now.Add(-2*time.Hour)), "end", rfc(now.Add(-time.Hour))), "end"},
		{"no end", with("end", nil), "end"},
		{"start not RFC 3339", with("start", "tomorrow"), "start"},
		{"start a number", with("start", 1700000000), "start"},
		{"end not RFC 3339", with("end", "2026-13-01T00:00:00Z"), "end"},
		{"end without zone", with("end", now.Add(2*time.Hour).Format("2006-01-02T15:04:05")), "end"},
		{"too long", with("end", rfc(now.Add(40*24*time.Hour))), "end"},
		{"too far ahead", with("start", rfc(now.Add(400*24*time.Hour)), "end", rfc(now.Add(401*24*time.Hour))), "start"},
		{"no reason", with("reason", nil), "reason"},
		{"blank reason", with("reason", "   "), "reason"},
		{"reason too long", with("reason", strings.Repeat("r", 257)), "reason"},
		{"reason control character", with("reason", "a\x00b"), "reason"},
		{"drainRate zero", with("drain", true, "drainRate", 0), "drainRate"},
		{"drainRate negative", with("drain", true, "drainRate", -1), "drainRate"},
		{"drainRate too high", with("drain", true, "drainRate", 1000), "drainRate"},
		{"drainRate string", with("drain", true, "drainRate", "fast"), "drainRate"},
		{"drain string", with("drain", "yes"), "drain"},
		{"unknown field", with("colour", "red"), "colour"},
		{"not an object", `[1]`, "body"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			st, b := e.do("POST", "/api/maintenance", admin, c.body)
			var eb errorBody
			if st != 400 || json.Unmarshal(b, &eb) != nil || eb.Error.Field != c.field || eb.Error.Message == "" {
				t.Fatalf("status %d %s, want 400 naming %s", st, b, c.field)
			}
		})
	}
	e.t = t
	for _, q := range []string{"state=soon", "provider=Bad%20Name", "limit=0"} {
		if st, b := e.do("GET", "/api/maintenance?"+q, admin, nil); st != 400 {
			t.Errorf("GET ?%s: %d %s, want 400", q, st, b)
		}
	}
	for _, p := range []string{"/api/maintenance/nope", "/api/maintenance/" + sb.NewMaintenanceID()} {
		if st, _ := e.do("GET", p, admin, nil); st != 404 {
			t.Errorf("GET %s: %d, want 404", p, st)
		}
		if st, _ := e.do("POST", p+"/end", admin, nil); st != 404 {
			t.Errorf("POST %s/end: %d, want 404", p, st)
		}
	}
	// A client may not schedule or end windows.
	if st, _ := e.do("POST", "/api/maintenance", e.tokens[sb.RoleClient], ok); st != 403 {
		t.Errorf("client POST: %d, want 403", st)
	}
	var list struct{ Windows []windowView }
	e.mustDo("GET", "/api/maintenance", admin, nil, 200, &list)
	if len(list.Windows) != 0 {
		t.Errorf("windows stored by refused requests: %+v", list.Windows)
	}
	if n := len(e.auditEntries()); n != auditBefore {
		t.Errorf("%d audit entries after refused requests, want %d", n, auditBefore)
	}
	if n := len(e.events.Events()); n != eventsBefore {
		t.Errorf("events published by refused requests: %v", e.events.Events()[eventsBefore:])
	}
}

func (e *testEnv) auditEntries() []sb.AuditEntry {
	e.t.Helper()
	var out struct{ Entries []sb.AuditEntry }
	e.mustDo("GET", "/api/audit?limit=1000", e.tokens[sb.RoleAdmin], nil, 200, &out)
	return out.Entries
}
