package alerts

import (
	"context"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/maintenance"
)

// TestMaintenanceSilencesAlerts wires the real maintenance windows as the
// dispatcher's Silencer, as serve does: a provider that turns CRITICAL inside
// its window pages nobody; once the window is over, the same outage does.
func TestMaintenanceSilencesAlerts(t *testing.T) {
	w := newWorld(t, "sqlite::memory:")
	ctx := context.Background()
	maint := maintenance.New(maintenance.Config{Store: w.store, Clock: w.clock})
	d := w.dispatcher(nil, "main")
	d.SetSilencer(maint)

	in := sb.MaintenanceInput{Provider: "agora", End: w.clock.Now().Add(time.Hour).Format(time.RFC3339), Reason: "vendor upgrade"}
	win, err := in.Window(w.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.store.CreateMaintenance(ctx, win, sb.AuditEntry{Actor: sb.Actor{Kind: "user", Name: "test", Role: sb.RoleAdmin}}); err != nil {
		t.Fatal(err)
	}
	if err := maint.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	w.setStatus("agora", sb.StatusCritical, "5 consecutive failures")
	if err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(w.rc.requests()); n != 0 {
		t.Fatalf("%d notifications for a provider in maintenance", n)
	}

	// The window ends with the provider still CRITICAL: now it alerts.
	w.clock.Advance(time.Hour + time.Minute)
	if err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := transitions(w.bodies()); got != "provider.critical/trigger" {
		t.Fatalf("notifications after the window = %s", got)
	}
}
