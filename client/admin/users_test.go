package admin_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/switchboardhq/switchboard/client/admin"
)

func TestUsersAgainstTheAPI(t *testing.T) {
	c, _ := newAdmin(t)
	ctx := context.Background()
	const password = "a-temporary-Password-9f3c"
	u, err := c.CreateUser(ctx, "alice", "superadmin", password)
	if err != nil || u.Username != "alice" || u.Role != "superadmin" || !u.Enabled || !u.MustChangePassword || len(u.JSON) == 0 {
		t.Fatalf("CreateUser = %+v, %v", u, err)
	}
	if _, err := c.CreateUser(ctx, "bob", "admin", "short"); !isField(err, http.StatusBadRequest, "password") {
		t.Errorf("CreateUser with a short password = %v, want 400 naming password", err)
	}
	if _, err := c.CreateUser(ctx, "bob", "admin", password); err != nil {
		t.Fatal(err)
	}
	l, err := c.ListUsers(ctx)
	if err != nil || len(l.Users) != 2 || l.Users[0].Username != "alice" || l.Users[1].Username != "bob" {
		t.Fatalf("ListUsers = %+v, %v", l, err)
	}
	// alice is the only superadmin: she cannot be disabled.
	off := false
	if _, err := c.UpdateUser(ctx, "alice", admin.UserUpdate{Enabled: &off}); !admin.IsStatus(err, http.StatusConflict) {
		t.Errorf("disabling the last superadmin = %v, want 409", err)
	}
	role := "superadmin"
	u, err = c.UpdateUser(ctx, "bob", admin.UserUpdate{Role: &role, Enabled: &off})
	if err != nil || u.Role != "superadmin" || u.Enabled {
		t.Fatalf("UpdateUser = %+v, %v", u, err)
	}
	if u, err = c.GetUser(ctx, "bob"); err != nil || u.Enabled {
		t.Fatalf("GetUser = %+v, %v", u, err)
	}
	if err := c.DeleteUser(ctx, "bob"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetUser(ctx, "bob"); !admin.IsStatus(err, http.StatusNotFound) {
		t.Errorf("GetUser of a deleted user = %v, want 404", err)
	}
}

func isField(err error, status int, field string) bool {
	var e *admin.Error
	return errors.As(err, &e) && e.StatusCode == status && e.Field == field
}
