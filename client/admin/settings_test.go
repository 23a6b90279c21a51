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

func TestSettingsAgainstTheAPI(t *testing.T) {
	c, _ := newAdmin(t)
	ctx := context.Background()
	s, err := c.GetSettings(ctx)
	if err != nil || s.Settings != sb.DefaultSettings() || len(s.JSON) == 0 {
		t.Fatalf("GetSettings = %+v, %v; want the defaults", s, err)
	}
	retries, lease := 6, sb.Duration(12*time.Second)
	s, err = c.UpdateSettings(ctx, sb.SettingsInput{MaxRetries: &retries, LeaderLease: &lease})
	if err != nil || s.MaxRetries != 6 || s.LeaderLease != lease || s.MaxFailures != 3 {
		t.Fatalf("UpdateSettings = %+v, %v", s, err)
	}
	if s, err = c.GetSettings(ctx); err != nil || s.MaxRetries != 6 {
		t.Errorf("GetSettings after = %+v, %v", s, err)
	}
	bad := 0.0
	_, err = c.UpdateSettings(ctx, sb.SettingsInput{RetryBudget: &bad})
	var e *admin.Error
	if !errors.As(err, &e) || e.StatusCode != http.StatusBadRequest || e.Field != "retryBudget" {
		t.Errorf("UpdateSettings out of range = %v, want 400 naming retryBudget", err)
	}
}
