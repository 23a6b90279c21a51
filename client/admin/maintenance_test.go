package admin_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/client/admin"
)

func TestMaintenanceAgainstTheAPI(t *testing.T) {
	c, endpoint := newAdmin(t)
	ctx := context.Background()
	if _, err := c.CreateProvider(ctx, httpProvider("web", endpoint, 1)); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	w, err := c.ScheduleMaintenance(ctx, sb.MaintenanceInput{Provider: "web", End: end.Format(time.RFC3339), Reason: "upgrade", Drain: true})
	if err != nil || w.ID == "" || w.State != sb.MaintenanceActive || !w.End.Equal(end) || !w.Drain || w.DrainRate != sb.DefaultDrainRate || len(w.JSON) == 0 {
		t.Fatalf("ScheduleMaintenance = %+v, %v", w, err)
	}
	if got, err := c.GetMaintenance(ctx, w.ID); err != nil || got.ID != w.ID || got.Reason != "upgrade" {
		t.Errorf("GetMaintenance = %+v, %v", got, err)
	}
	l, err := c.ListMaintenance(ctx, sb.MaintenanceActive, "web")
	if err != nil || len(l.Windows) != 1 || l.Windows[0].ID != w.ID {
		t.Errorf("ListMaintenance(active) = %+v, %v", l, err)
	}
	ended, err := c.EndMaintenance(ctx, w.ID)
	if err != nil || ended.State != sb.MaintenancePast || ended.EndedAt == nil {
		t.Errorf("EndMaintenance = %+v, %v", ended, err)
	}
	var e *admin.Error
	if _, err := c.EndMaintenance(ctx, w.ID); !errors.As(err, &e) || e.StatusCode != http.StatusConflict {
		t.Errorf("EndMaintenance again = %v, want 409", err)
	}
	_, err = c.ScheduleMaintenance(ctx, sb.MaintenanceInput{Provider: "web", End: "soon", Reason: "x"})
	if !errors.As(err, &e) || e.StatusCode != http.StatusBadRequest || e.Field != "end" {
		t.Errorf("ScheduleMaintenance with a bad end = %v, want 400 naming end", err)
	}
	if l, err := c.ListMaintenance(ctx, "", ""); err != nil || len(l.Windows) != 1 {
		t.Errorf("ListMaintenance = %+v, %v; want the one window", l, err)
	}
}
