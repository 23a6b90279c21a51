package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
)

func mustAddUser(t *testing.T, s switchboard.Store, u switchboard.User) {
	t.Helper()
	if err := s.AddUser(context.Background(), u, audit("")); err != nil {
		t.Fatalf("AddUser %s: %v", u.Username, err)
	}
}

func newSession(username string, hash string, now time.Time) switchboard.Session {
	return switchboard.Session{Hash: []byte(hash), Username: username, Role: switchboard.RoleAdmin,
		CSRFToken: "csrf-" + hash, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
}

// auditActions returns the actions of the audit log, oldest first.
func auditActions(t *testing.T, s switchboard.Store) []string {
	t.Helper()
	es := mustAudit(t, s)
	out := make([]string, len(es))
	for i, e := range es {
		out[len(es)-1-i] = e.Action + " " + e.Target
	}
	return out
}

// testUserAccounts checks the audited creation, the listing, the update of
// role, enabled, password and must-change, and the deletion of users, and
// that no password hash reaches the audit log.
func testUserAccounts(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	created := time.Date(2025, 6, 1, 8, 0, 0, 5, time.UTC)
	mustAddUser(t, s, switchboard.User{Username: "root", Role: switchboard.RoleSuperadmin, PasswordHash: "$argon2id$root-hash", CreatedAt: created})
	mustAddUser(t, s, switchboard.User{Username: "bob", Role: switchboard.RoleAdmin, PasswordHash: "$argon2id$bob-hash", MustChangePassword: true})
	wantCode(t, s.AddUser(ctx, switchboard.User{Username: "bob", Role: switchboard.RoleAdmin, PasswordHash: "x"}, audit("")), switchboard.EConflict)
	wantCode(t, s.AddUser(ctx, switchboard.User{Role: switchboard.RoleAdmin}, audit("")), switchboard.EInvalid)

	us, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(us) != 2 || us[0].Username != "bob" || us[1].Username != "root" {
		t.Fatalf("ListUsers = %+v, want bob then root", us)
	}
	bob := us[0]
	if bob.Disabled || !bob.MustChangePassword || bob.Role != switchboard.RoleAdmin || bob.LastLoginAt != nil || bob.SSO() || bob.CreatedAt.IsZero() {
		t.Errorf("bob = %+v", bob)
	}
	if !us[1].CreatedAt.Equal(created) {
		t.Errorf("root created %v, want %v", us[1].CreatedAt, created)
	}

	before, after, ended, err := s.UpdateUser(ctx, "bob", func(u switchboard.User) (switchboard.User, error) {
		u.Role, u.Username = switchboard.RoleSuperadmin, "renamed"
		return u, nil
	}, audit(""))
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	if before.Role != switchboard.RoleAdmin || after.Role != switchboard.RoleSuperadmin || after.Username != "bob" || ended {
		t.Errorf("UpdateUser = %+v → %+v (ended %v)", before, after, ended)
	}
	got, err := s.GetUser(ctx, "bob")
	if err != nil || got.Role != switchboard.RoleSuperadmin || got.PasswordHash != "$argon2id$bob-hash" {
		t.Fatalf("GetUser after update = %+v, %v", got, err)
	}
	_, _, _, err = s.UpdateUser(ctx, "nobody", func(u switchboard.User) (switchboard.User, error) { return u, nil }, audit(""))
	wantCode(t, err, switchboard.ENotFound)
	refuse := switchboard.Invalid("role", "no")
	_, _, _, err = s.UpdateUser(ctx, "bob", func(u switchboard.User) (switchboard.User, error) {
		u.Disabled = true
		return u, refuse
	}, audit(""))
	if !errors.Is(err, refuse) {
		t.Fatalf("fn's error = %v", err)
	}
	if got, _ := s.GetUser(ctx, "bob"); got.Disabled {
		t.Fatal("a refused update changed the user")
	}

	_, err = s.DeleteUser(ctx, "nobody", audit(""))
	wantCode(t, err, switchboard.ENotFound)
	gone, err := s.DeleteUser(ctx, "bob", audit(""))
	if err != nil || gone.Username != "bob" {
		t.Fatalf("DeleteUser = %+v, %v", gone, err)
	}
	_, err = s.GetUser(ctx, "bob")
	wantCode(t, err, switchboard.ENotFound)

	want := []string{"user.create root", "user.create bob", "user.update bob", "user.delete bob"}
	if got := auditActions(t, s); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("audit = %v, want %v", got, want)
	}
	for _, e := range mustAudit(t, s) {
		if strings.Contains(string(e.Before)+string(e.After), "argon2id") {
			t.Errorf("audit entry %s holds a password hash: %s %s", e.Action, e.Before, e.After)
		}
	}
}

// testLastSuperadmin checks that the last enabled superadmin can be neither
// deleted, disabled nor demoted, and that a refused change writes nothing.
func testLastSuperadmin(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustAddUser(t, s, switchboard.User{Username: "root", Role: switchboard.RoleSuperadmin, PasswordHash: "h"})
	mustAddUser(t, s, switchboard.User{Username: "off", Role: switchboard.RoleSuperadmin, PasswordHash: "h", Disabled: true})
	mustAddUser(t, s, switchboard.User{Username: "ops", Role: switchboard.RoleAdmin, PasswordHash: "h"})
	n := len(mustAudit(t, s))
	for name, fn := range map[string]func(u switchboard.User) switchboard.User{
		"demote":  func(u switchboard.User) switchboard.User { u.Role = switchboard.RoleAdmin; return u },
		"disable": func(u switchboard.User) switchboard.User { u.Disabled = true; return u },
	} {
		_, _, _, err := s.UpdateUser(ctx, "root", func(u switchboard.User) (switchboard.User, error) { return fn(u), nil }, audit(""))
		if switchboard.ErrorCode(err) != switchboard.EConflict {
			t.Errorf("%s the last superadmin: %v, want a conflict", name, err)
		}
	}
	_, err := s.DeleteUser(ctx, "root", audit(""))
	wantCode(t, err, switchboard.EConflict)
	if got, _ := s.GetUser(ctx, "root"); got.Disabled || got.Role != switchboard.RoleSuperadmin {
		t.Fatalf("root changed by refused writes: %+v", got)
	}
	if len(mustAudit(t, s)) != n {
		t.Fatal("a refused change wrote an audit entry")
	}
	// Other users change freely, and once another superadmin is enabled,
	// root may go.
	if _, err := s.DeleteUser(ctx, "ops", audit("")); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := s.UpdateUser(ctx, "off", func(u switchboard.User) (switchboard.User, error) {
		u.Disabled = false
		return u, nil
	}, audit("")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteUser(ctx, "root", audit("")); err != nil {
		t.Fatalf("delete root beside another superadmin: %v", err)
	}
	_, err = s.DeleteUser(ctx, "off", audit(""))
	wantCode(t, err, switchboard.EConflict)
}

// testSessionsFollowUser checks that sessions take the user's current role
// and must-change flag, end when the user is disabled, deleted or changes
// password, and that logins record the last login.
func testSessionsFollowUser(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustAddUser(t, s, switchboard.User{Username: "root", Role: switchboard.RoleSuperadmin, PasswordHash: "h"})
	mustAddUser(t, s, switchboard.User{Username: "bob", Role: switchboard.RoleAdmin, PasswordHash: "h1", MustChangePassword: true})
	now := time.Date(2025, 6, 2, 9, 0, 0, 7, time.UTC)
	for _, h := range []string{"a", "b"} {
		if err := s.CreateSession(ctx, newSession("bob", h, now), audit("")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateSession(ctx, newSession("root", "r", now), audit("")); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.GetUser(ctx, "bob"); u.LastLoginAt == nil || !u.LastLoginAt.Equal(now) {
		t.Errorf("last login = %v, want %v", u.LastLoginAt, now)
	}
	sess, err := s.SessionByHash(ctx, []byte("a"), now)
	if err != nil || !sess.MustChangePassword || sess.Role != switchboard.RoleAdmin {
		t.Fatalf("session = %+v, %v", sess, err)
	}
	// A role change applies to open sessions at once and keeps them.
	_, _, ended, err := s.UpdateUser(ctx, "bob", func(u switchboard.User) (switchboard.User, error) {
		u.Role = switchboard.RoleSuperadmin
		return u, nil
	}, audit(""))
	if err != nil || ended {
		t.Fatalf("role change: ended %v, %v", ended, err)
	}
	if sess, err := s.SessionByHash(ctx, []byte("a"), now); err != nil || sess.Role != switchboard.RoleSuperadmin {
		t.Fatalf("session after role change = %+v, %v", sess, err)
	}
	// A password change ends every session of the user, and only its.
	_, _, ended, err = s.UpdateUser(ctx, "bob", func(u switchboard.User) (switchboard.User, error) {
		u.PasswordHash, u.MustChangePassword = "h2", false
		return u, nil
	}, audit(""))
	if err != nil || !ended {
		t.Fatalf("password change: ended %v, %v", ended, err)
	}
	for _, h := range []string{"a", "b"} {
		_, err := s.SessionByHash(ctx, []byte(h), now)
		wantCode(t, err, switchboard.ENotFound)
	}
	if _, err := s.SessionByHash(ctx, []byte("r"), now); err != nil {
		t.Fatalf("another user's session ended: %v", err)
	}
	// Disabling ends the sessions; a session made while disabled is not
	// honoured either.
	if err := s.CreateSession(ctx, newSession("bob", "c", now), audit("")); err != nil {
		t.Fatal(err)
	}
	if sess, err := s.SessionByHash(ctx, []byte("c"), now); err != nil || sess.MustChangePassword {
		t.Fatalf("session after password change = %+v, %v", sess, err)
	}
	_, _, ended, err = s.UpdateUser(ctx, "bob", func(u switchboard.User) (switchboard.User, error) {
		u.Disabled = true
		return u, nil
	}, audit(""))
	if err != nil || !ended {
		t.Fatalf("disable: ended %v, %v", ended, err)
	}
	_, err = s.SessionByHash(ctx, []byte("c"), now)
	wantCode(t, err, switchboard.ENotFound)
	if err := s.CreateSession(ctx, newSession("bob", "d", now), audit("")); err != nil {
		t.Fatal(err)
	}
	_, err = s.SessionByHash(ctx, []byte("d"), now)
	wantCode(t, err, switchboard.ENotFound)
	// Deleting the user ends its sessions.
	if err := s.CreateSession(ctx, newSession("root", "r2", now), audit("")); err != nil {
		t.Fatal(err)
	}
	mustAddUser(t, s, switchboard.User{Username: "zed", Role: switchboard.RoleSuperadmin, PasswordHash: "h"})
	if _, err := s.DeleteUser(ctx, "root", audit("")); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"r", "r2"} {
		_, err := s.SessionByHash(ctx, []byte(h), now)
		wantCode(t, err, switchboard.ENotFound)
	}
	// Logging out is audited once.
	if err := s.CreateSession(ctx, newSession("zed", "z", now), audit("")); err != nil {
		t.Fatal(err)
	}
	n := len(mustAudit(t, s))
	for range 2 {
		if err := s.DeleteSession(ctx, []byte("z"), audit("")); err != nil {
			t.Fatal(err)
		}
	}
	es := mustAudit(t, s)
	if len(es) != n+1 || es[0].Action != "session.delete" || es[0].Target != "zed" {
		t.Fatalf("logout audit: %d new entries, newest %+v", len(es)-n, es[0])
	}
}

// testSSOUsers checks users made by single sign-on: found by subject, the
// subject unique, and fixed by updates.
func testSSOUsers(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustAddUser(t, s, switchboard.User{Username: "jane", Role: switchboard.RoleAdmin, SSOSubject: "https://idp.example jane-1"})
	wantCode(t, s.AddUser(ctx, switchboard.User{Username: "jane2", Role: switchboard.RoleAdmin, SSOSubject: "https://idp.example jane-1"}, audit("")), switchboard.EConflict)
	u, err := s.UserBySSO(ctx, "https://idp.example jane-1")
	if err != nil || u.Username != "jane" || !u.SSO() || u.PasswordHash != "" {
		t.Fatalf("UserBySSO = %+v, %v", u, err)
	}
	_, err = s.UserBySSO(ctx, "https://idp.example other")
	wantCode(t, err, switchboard.ENotFound)
	_, err = s.UserBySSO(ctx, "")
	wantCode(t, err, switchboard.ENotFound)
	_, after, _, err := s.UpdateUser(ctx, "jane", func(u switchboard.User) (switchboard.User, error) {
		u.SSOSubject = ""
		return u, nil
	}, audit(""))
	if err != nil || after.SSOSubject != "https://idp.example jane-1" {
		t.Fatalf("update changed the subject: %+v, %v", after, err)
	}
	if got, _ := s.GetUser(ctx, "jane"); !got.SSO() {
		t.Fatal("stored user lost its subject")
	}
}

// testConcurrentLastSuperadmin: of two enabled superadmins, one demoted and
// the other deleted at once, exactly one change succeeds and one superadmin
// remains (on PostgreSQL, where writers run concurrently, the changes take a
// shared lock).
func testConcurrentLastSuperadmin(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	demote := func(u switchboard.User) (switchboard.User, error) {
		u.Role = switchboard.RoleAdmin
		return u, nil
	}
	survivor := ""
	for round := range 5 {
		a, b := fmt.Sprintf("a%d", round), fmt.Sprintf("b%d", round)
		mustAddUser(t, s, switchboard.User{Username: a, Role: switchboard.RoleSuperadmin, PasswordHash: "h"})
		mustAddUser(t, s, switchboard.User{Username: b, Role: switchboard.RoleSuperadmin, PasswordHash: "h"})
		if survivor != "" {
			if _, _, _, err := s.UpdateUser(ctx, survivor, demote, audit("")); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, 2)
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, _, _, err := s.UpdateUser(ctx, a, demote, audit(""))
			errs <- err
		}()
		go func() {
			defer wg.Done()
			_, err := s.DeleteUser(ctx, b, audit(""))
			errs <- err
		}()
		failed := waitErrs(&wg, errs)
		if len(failed) != 1 || switchboard.ErrorCode(failed[0]) != switchboard.EConflict {
			t.Fatalf("round %d: errors %v, want exactly one conflict", round, failed)
		}
		us, err := s.ListUsers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var left []string
		for _, u := range us {
			if !u.Disabled && u.Role == switchboard.RoleSuperadmin {
				left = append(left, u.Username)
			}
		}
		if len(left) != 1 {
			t.Fatalf("round %d: enabled superadmins %v, want one", round, left)
		}
		survivor = left[0]
	}
}
