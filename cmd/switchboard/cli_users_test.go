package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/auth"
	"github.com/switchboardhq/switchboard/internal/secrets"
	"github.com/switchboardhq/switchboard/internal/sqlstore"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

// loginStatus logs in to the server and returns the status and whether the
// answer asks for a password change.
func (e *cliEnv) loginStatus(username, password string) (int, bool) {
	e.t.Helper()
	body, _ := json.Marshal(map[string]string{"username": username, "password": password})
	resp, err := http.Post(e.url+"/api/auth/login", "application/json", bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var me struct{ MustChangePassword bool }
	_ = json.NewDecoder(resp.Body).Decode(&me)
	return resp.StatusCode, me.MustChangePassword
}

func TestUsersCLI(t *testing.T) {
	e := startServer(t)
	out := e.mustCLI("users", "add", "grace", "--role", "admin")
	if !strings.Contains(out, "grace") || !strings.Contains(out, "must change password") || !strings.Contains(out, "Temporary password") {
		t.Fatalf("users add:\n%s", out)
	}
	password := lastLine(out)
	if st, must := e.loginStatus("grace", password); st != 200 || !must {
		t.Fatalf("login with the printed password: %d, must change %v", st, must)
	}
	var list []struct {
		Username string
		Role     string
		Enabled  bool
	}
	var l struct {
		Users *[]struct {
			Username string
			Role     string
			Enabled  bool
		}
	}
	l.Users = &list
	e.mustJSON(&l, "users", "list")
	if len(list) != 2 || list[0].Username != "admin" || list[1].Username != "grace" || list[1].Role != "admin" {
		t.Fatalf("users list -o json = %+v", list)
	}
	out = e.mustCLI("users", "set", "grace", "--enabled", "false", "--role", "superadmin")
	if !strings.Contains(out, "disabled") || !strings.Contains(out, "superadmin") {
		t.Fatalf("users set:\n%s", out)
	}
	if st, _ := e.loginStatus("grace", password); st != 401 {
		t.Fatalf("login of a disabled user: %d", st)
	}
	e.mustCLI("users", "set", "grace", "--enabled", "true")
	var reset struct {
		User              struct{ MustChangePassword bool }
		TemporaryPassword string
	}
	e.mustJSON(&reset, "users", "passwd", "grace")
	if !reset.User.MustChangePassword || len(reset.TemporaryPassword) < 12 || reset.TemporaryPassword == password {
		t.Fatalf("users passwd -o json = %+v", reset)
	}
	if st, _ := e.loginStatus("grace", password); st != 401 {
		t.Fatalf("old password after passwd: %d", st)
	}
	if st, must := e.loginStatus("grace", reset.TemporaryPassword); st != 200 || !must {
		t.Fatalf("login with the new temporary password: %d %v", st, must)
	}
	if out := e.mustCLI("users", "delete", "grace"); out != "user grace deleted\n" {
		t.Fatalf("users delete: %q", out)
	}

	tests := []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"add without role", []string{"users", "add", "x"}, true, "usage: switchboard users add"},
		{"add without name", []string{"users", "add", "--role", "admin"}, true, "usage: switchboard users add"},
		{"set nothing", []string{"users", "set", "admin"}, true, "usage: switchboard users set"},
		{"set enabled bad", []string{"users", "set", "admin", "--enabled", "maybe"}, true, "users set: --enabled must be true or false"},
		{"add bad role", []string{"users", "add", "x", "--role", "client"}, false, "400 invalid: must be admin or superadmin (field role)"},
		{"add bad name", []string{"users", "add", "X Y", "--role", "admin"}, false, "400 invalid: "},
		{"delete last superadmin", []string{"users", "delete", "admin"}, false, "409 conflict: "},
		{"demote last superadmin", []string{"users", "set", "admin", "--role", "admin"}, false, "409 conflict: "},
		{"passwd unknown", []string{"users", "passwd", "nobody"}, false, "404 not_found: "},
		{"unknown verb", []string{"users", "rename"}, true, `users: unknown verb "rename"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := e.cli(tt.args...)
			if err == nil {
				t.Fatal("no error")
			}
			var ue usageError
			if isUsage := errors.As(err, &ue); isUsage != tt.usage {
				t.Errorf("usage error %v, want %v (%v)", isUsage, tt.usage, err)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %q, want prefix %q", err, tt.want)
			}
		})
	}
	// An admin token may not manage users.
	if _, _, err := e.cliAs("sbt_not-a-token", "users", "list"); err == nil {
		t.Fatal("users list with a bad token succeeded")
	}
}

// TestBootstrapAdminMustChangeGeneratedPassword: the generated first
// password of admin is temporary; the one from SWITCHBOARD_ADMIN_PASSWORD
// is not.
func TestBootstrapAdminMustChangeGeneratedPassword(t *testing.T) {
	for _, tt := range []struct {
		name, password string
		must           bool
	}{{"generated", "", true}, {"from the environment", "an-operator-chosen-password", false}} {
		t.Run(tt.name, func(t *testing.T) {
			sealer, err := secrets.NewAESGCM(bytes.Repeat([]byte{3}, 32))
			if err != nil {
				t.Fatal(err)
			}
			store, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "sb.db"), sealer, switchboard.SystemClock{})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			logs := &testutil.Buffer{}
			if err := bootstrapAdmin(context.Background(), store, tt.password, switchboard.SystemClock{}, slog.New(slog.NewTextHandler(logs, nil))); err != nil {
				t.Fatal(err)
			}
			u, err := store.GetUser(context.Background(), "admin")
			if err != nil {
				t.Fatal(err)
			}
			if u.MustChangePassword != tt.must || u.Role != switchboard.RoleSuperadmin || u.Disabled {
				t.Fatalf("admin = %+v, want must change %v", u, tt.must)
			}
			if tt.password != "" {
				if err := auth.VerifyPassword(u.PasswordHash, tt.password); err != nil {
					t.Fatal(err)
				}
				if strings.Contains(logs.String(), tt.password) {
					t.Fatal("the password from the environment is logged")
				}
			}
		})
	}
}
