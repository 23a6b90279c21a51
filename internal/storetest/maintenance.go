package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
)

func window(provider string, start, end time.Time) switchboard.MaintenanceWindow {
	return switchboard.MaintenanceWindow{ID: switchboard.NewMaintenanceID(), Provider: provider, Start: start, End: end,
		Reason: "vendor upgrade", Drain: true, DrainRate: 2.5, CreatedAt: start.Add(-time.Hour), CreatedBy: "alice"}
}

func ids(ws []switchboard.MaintenanceWindow) []string {
	out := []string{}
	for _, w := range ws {
		out = append(out, w.ID)
	}
	return out
}

// testMaintenance checks that a window round-trips with its audit entry,
// that an unknown provider or id is refused, that ending it early records
// when and is audited, and that ending it again conflicts and writes nothing.
func testMaintenance(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustCreate(t, s, AgoraProvider(t, "agora-main"))
	w := window("agora-main", t0, t0.Add(2*time.Hour))
	if err := s.CreateMaintenance(ctx, w, audit("")); err != nil {
		t.Fatalf("CreateMaintenance: %v", err)
	}
	got, err := s.GetMaintenance(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, w) {
		t.Errorf("GetMaintenance = %+v, want %+v", got, w)
	}
	before := len(mustAudit(t, s))
	entries := mustAudit(t, s)
	if e := entries[0]; e.Action != "maintenance.create" || e.Target != "maintenance:"+w.ID || e.Actor != actor ||
		!jsonEqual(e.After, `{"id":"`+w.ID+`","provider":"agora-main","start":"2025-03-10T00:00:00Z","end":"2025-03-10T02:00:00Z",`+
			`"reason":"vendor upgrade","drain":true,"drainRate":2.5,"createdAt":"2025-03-09T23:00:00Z","createdBy":"alice","endedAt":null,"drainProgress":null}`) {
		t.Errorf("audit entry = %+v after %s", e, e.After)
	}

	bad := window("nobody", t0, t0.Add(time.Hour))
	err = s.CreateMaintenance(ctx, bad, audit(""))
	wantCode(t, err, switchboard.EInvalid)
	var se *switchboard.Error
	if errors.As(err, &se) && se.Field != "provider" {
		t.Errorf("field = %q, want provider", se.Field)
	}
	inverted := window("agora-main", t0, t0)
	wantCode(t, s.CreateMaintenance(ctx, inverted, audit("")), switchboard.EInvalid)
	if err := s.CreateMaintenance(ctx, w, audit("")); switchboard.ErrorCode(err) != switchboard.EConflict {
		t.Errorf("CreateMaintenance of an existing id = %v, want conflict", err)
	}
	_, err = s.GetMaintenance(ctx, switchboard.NewMaintenanceID())
	wantCode(t, err, switchboard.ENotFound)
	if n := len(mustAudit(t, s)); n != before {
		t.Errorf("%d audit entries after refused changes, want %d", n, before)
	}

	at := t0.Add(30 * time.Minute)
	ended, err := s.EndMaintenance(ctx, w.ID, at, audit(""))
	if err != nil {
		t.Fatalf("EndMaintenance: %v", err)
	}
	if ended.EndedAt == nil || !ended.EndedAt.Equal(at) || !ended.Ends().Equal(at) {
		t.Errorf("ended window = %+v, want ended at %s", ended, at)
	}
	got, _ = s.GetMaintenance(ctx, w.ID)
	if got.EndedAt == nil || !got.EndedAt.Equal(at) || got.State(at) != switchboard.MaintenancePast {
		t.Errorf("stored window after its end = %+v", got)
	}
	e := mustAudit(t, s)[0]
	if e.Action != "maintenance.end" || e.Target != "maintenance:"+w.ID || !jsonEqual(e.Before, string(mustJSON(t, w))) {
		t.Errorf("end audit entry = %+v before %s", e, e.Before)
	}
	n := len(mustAudit(t, s))
	_, err = s.EndMaintenance(ctx, w.ID, at.Add(time.Minute), audit(""))
	wantCode(t, err, switchboard.EConflict)
	_, err = s.EndMaintenance(ctx, switchboard.NewMaintenanceID(), at, audit(""))
	wantCode(t, err, switchboard.ENotFound)
	if got := len(mustAudit(t, s)); got != n {
		t.Errorf("%d audit entries after refused ends, want %d", got, n)
	}

	// Deleting the provider deletes its windows.
	if err := s.DeleteProvider(ctx, "agora-main", audit("provider.delete")); err != nil {
		t.Fatal(err)
	}
	_, err = s.GetMaintenance(ctx, w.ID)
	wantCode(t, err, switchboard.ENotFound)
}

// testMaintenanceStates checks the filters of ListMaintenance and their
// orders.
func testMaintenanceStates(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustCreate(t, s, AgoraProvider(t, "agora-main"))
	mustCreate(t, s, AgoraProvider(t, "agora-backup"))
	now := t0.Add(10 * time.Hour)
	past := window("agora-main", t0, t0.Add(time.Hour))
	endedEarly := window("agora-backup", now.Add(-2*time.Hour), now.Add(time.Hour))
	active := window("agora-main", now.Add(-time.Hour), now.Add(time.Hour))
	active2 := window("agora-backup", now.Add(-30*time.Minute), now.Add(time.Hour))
	soon := window("agora-main", now.Add(time.Hour), now.Add(2*time.Hour))
	later := window("agora-backup", now.Add(3*time.Hour), now.Add(4*time.Hour))
	for _, w := range []switchboard.MaintenanceWindow{past, endedEarly, active, active2, soon, later} {
		if err := s.CreateMaintenance(ctx, w, audit("")); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.EndMaintenance(ctx, endedEarly.ID, now.Add(-time.Minute), audit("")); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		f    switchboard.MaintenanceFilter
		want []string
	}{
		{switchboard.MaintenanceFilter{State: switchboard.MaintenanceActive, At: now}, []string{active.ID, active2.ID}},
		{switchboard.MaintenanceFilter{State: switchboard.MaintenanceUpcoming, At: now}, []string{soon.ID, later.ID}},
		{switchboard.MaintenanceFilter{State: switchboard.MaintenancePast, At: now}, []string{endedEarly.ID, past.ID}},
		{switchboard.MaintenanceFilter{}, []string{later.ID, soon.ID, active2.ID, active.ID, endedEarly.ID, past.ID}},
		{switchboard.MaintenanceFilter{Provider: "agora-backup"}, []string{later.ID, active2.ID, endedEarly.ID}},
		{switchboard.MaintenanceFilter{State: switchboard.MaintenanceUpcoming, At: now, Limit: 1}, []string{soon.ID}},
		{switchboard.MaintenanceFilter{State: switchboard.MaintenanceActive, At: now.Add(5 * time.Hour)}, []string{}},
	} {
		got, err := s.ListMaintenance(ctx, tt.f)
		if err != nil {
			t.Fatalf("ListMaintenance(%+v): %v", tt.f, err)
		}
		if !reflect.DeepEqual(ids(got), tt.want) {
			t.Errorf("ListMaintenance(%+v) = %v, want %v", tt.f, ids(got), tt.want)
		}
	}
	_, err := s.ListMaintenance(ctx, switchboard.MaintenanceFilter{State: "soon"})
	wantCode(t, err, switchboard.EInvalid)
}

// testMaintenanceAnnounceAndDrain checks that each announcement is made once
// and in order, and that the drain's progress round-trips.
func testMaintenanceAnnounceAndDrain(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustCreate(t, s, AgoraProvider(t, "agora-main"))
	w := window("agora-main", t0, t0.Add(time.Hour))
	w2 := window("agora-main", t0, t0.Add(time.Hour))
	for _, x := range []switchboard.MaintenanceWindow{w, w2} {
		if err := s.CreateMaintenance(ctx, x, audit("")); err != nil {
			t.Fatal(err)
		}
	}
	for i, tt := range []struct {
		id, state string
		want      bool
	}{
		{w.ID, "started", true}, {w.ID, "started", false}, {w.ID, "ended", true}, {w.ID, "ended", false},
		{w.ID, "started", false},
		{w2.ID, "ended", true}, {w2.ID, "started", false}, // ended before it was announced started
	} {
		got, err := s.AnnounceMaintenance(ctx, tt.id, tt.state)
		if err != nil || got != tt.want {
			t.Errorf("%d: AnnounceMaintenance(%s) = %v, %v; want %v", i, tt.state, got, err, tt.want)
		}
	}
	_, err := s.AnnounceMaintenance(ctx, w.ID, "paused")
	wantCode(t, err, switchboard.EInvalid)

	done := t0.Add(time.Minute)
	d := switchboard.MaintenanceDrain{StartedAt: t0, Asked: 7, Moved: 6, Remaining: 0, UpdatedAt: done, DoneAt: &done, Late: true}
	if err := s.SetMaintenanceDrain(ctx, w.ID, d); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetMaintenance(ctx, w.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.DrainProgress == nil || !reflect.DeepEqual(*got.DrainProgress, d) || got.Announced != "ended" {
		t.Errorf("window after drain = %+v, progress %+v; want %+v", got, got.DrainProgress, d)
	}
	wantCode(t, s.SetMaintenanceDrain(ctx, switchboard.NewMaintenanceID(), d), switchboard.ENotFound)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
