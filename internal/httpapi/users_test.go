package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	sb "github.com/switchboardhq/switchboard"
)

// Passwords of the account tests; leak tests look for them everywhere.
const (
	tempPassword  = "temporary-Password-81f3c2"
	newPassword   = "new-Password-of-bob-77aa19"
	resetPassword = "reset-Password-by-admin-4c0d"
)

var accountSecrets = []string{tempPassword, newPassword, resetPassword, adminPassword}

// session is a dashboard login: its cookie and CSRF token.
type session struct {
	cookie string
	me     meResponse
}

func (s session) headers() map[string]string {
	return map[string]string{"Cookie": s.cookie, csrfHeader: s.me.CSRFToken, "Authorization": ""}
}

// login logs username in and returns the status and, on success, the session.
func (e *testEnv) login(username, password string) (int, session, []byte) {
	e.t.Helper()
	req, err := http.NewRequest("POST", e.srv.URL+"/api/auth/login",
		strings.NewReader(`{"username":`+jsonString(username)+`,"password":`+jsonString(password)+`}`))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, sessionFrom(e.t, resp, body), body
}

func sessionFrom(t testing.TB, resp *http.Response, body []byte) session {
	var s session
	for _, c := range resp.Cookies() {
		if c.Name == sessionCookie && c.Value != "" {
			s.cookie = c.Name + "=" + c.Value
		}
	}
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(body, &s.me); err != nil {
			t.Fatalf("login body %s: %v", body, err)
		}
	}
	return s
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// doSession sends a request with a session's cookie and CSRF token.
func (e *testEnv) doSession(s session, method, path string, body any) (int, []byte) {
	e.t.Helper()
	return e.doHeaders(method, path, body, s.headers())
}

// changePasswordAs changes the password of a session and returns the status
// and the new session.
func (e *testEnv) changePasswordAs(s session, current, next string) (int, session, []byte) {
	e.t.Helper()
	js, _ := json.Marshal(map[string]string{"currentPassword": current, "newPassword": next})
	req, _ := http.NewRequest("PUT", e.srv.URL+"/api/auth/password", strings.NewReader(string(js)))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Cookie", s.cookie)
	req.Header.Set(csrfHeader, s.me.CSRFToken)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, sessionFrom(e.t, resp, body), body
}

func errCode(b []byte) (code, field string) {
	var eb errorBody
	_ = json.Unmarshal(b, &eb)
	return eb.Error.Code, eb.Error.Field
}

// endedRecorder records the calls of OnUserSessionsEnded.
type endedRecorder struct {
	mu    sync.Mutex
	names []string
}

func (r *endedRecorder) ended(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.names = append(r.names, name)
}

func (r *endedRecorder) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.names)
}

func (e *testEnv) auditActions(target string) []string {
	e.t.Helper()
	es, err := e.store.ListAudit(e.t.(*testing.T).Context(), sb.AuditFilter{Target: target, Limit: 200})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for i := len(es) - 1; i >= 0; i-- {
		out = append(out, es[i].Action)
	}
	return out
}

// TestTemporaryPasswordFlow: a superadmin adds a user with a temporary
// password; its login says it must change it, and until it does, every call
// but the change is refused with password_change_required; the change ends
// the old session and gives a new one that works.
func TestTemporaryPasswordFlow(t *testing.T) {
	e := newTestEnv(t)
	rec := &endedRecorder{}
	e.api.onSessionsEnded = rec.ended
	su := e.tokens[sb.RoleSuperadmin]
	var created userView
	e.mustDo("POST", "/api/users", su, map[string]string{"username": "bob", "role": "admin", "password": tempPassword}, 201, &created)
	if created.Username != "bob" || created.Role != sb.RoleAdmin || !created.Enabled || !created.MustChangePassword || created.SSO {
		t.Fatalf("created = %+v", created)
	}
	st, bob, b := e.login("bob", tempPassword)
	if st != 200 || !bob.me.MustChangePassword || bob.me.Role != sb.RoleAdmin {
		t.Fatalf("login with a temporary password: %d %s", st, b)
	}
	if !strings.Contains(string(b), `"mustChangePassword":true`) {
		t.Fatalf("login body lacks mustChangePassword: %s", b)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/streaming/providers"}, {"GET", "/api/audit"}, {"GET", "/api/settings"}, {"GET", "/api/streams"},
		{"POST", "/api/streaming/providers/health-check-all"},
	} {
		st, b := e.doSession(bob, c.method, c.path, nil)
		if code, _ := errCode(b); st != 403 || code != sb.EPasswordChange {
			t.Errorf("%s %s before the change: %d %s", c.method, c.path, st, b)
		}
	}
	if st := e.statusOnlyHeaders("GET", "/api/events", bob.headers()); st != 403 {
		t.Errorf("event stream before the change: %d", st)
	}
	st, b = e.doSession(bob, "GET", "/api/auth/me", nil)
	if st != 200 || !strings.Contains(string(b), `"mustChangePassword":true`) {
		t.Fatalf("me: %d %s", st, b)
	}
	// Refused changes change nothing.
	for _, c := range []struct{ current, next, field string }{
		{"wrong-password-123", newPassword, "currentPassword"},
		{tempPassword, "short", "newPassword"},
		{tempPassword, "Bob", "newPassword"},
		{tempPassword, "password1234", "newPassword"},
		{tempPassword, tempPassword, "newPassword"},
		{"", newPassword, "currentPassword"},
	} {
		st, _, b := e.changePasswordAs(bob, c.current, c.next)
		if code, field := errCode(b); st != 400 || code != sb.EInvalid || field != c.field {
			t.Errorf("change %q → %q…: %d %s, want 400 naming %s", c.current, c.next[:min(4, len(c.next))], st, b, c.field)
		}
	}
	if got := e.auditActions("bob"); strings.Join(got, ",") != "user.create,session.login" {
		t.Fatalf("audit after refused changes: %v", got)
	}
	st, bob2, b := e.changePasswordAs(bob, tempPassword, newPassword)
	if st != 200 || bob2.cookie == "" || bob2.cookie == bob.cookie || bob2.me.CSRFToken == bob.me.CSRFToken || bob2.me.MustChangePassword {
		t.Fatalf("change: %d %s", st, b)
	}
	if st, _ := e.doSession(bob, "GET", "/api/streaming/providers", nil); st != 401 {
		t.Fatalf("old session after the change: %d", st)
	}
	if st, b := e.doSession(bob2, "GET", "/api/streaming/providers", nil); st != 200 {
		t.Fatalf("new session: %d %s", st, b)
	}
	if st, _ := e.doSession(bob2, "GET", "/api/users", nil); st != 403 {
		t.Fatalf("admin reads users: %d", st)
	}
	if got := rec.calls(); !slices.Equal(got, []string{"bob"}) {
		t.Fatalf("sessions-ended hook calls = %v", got)
	}
	if st, _, _ := e.login("bob", tempPassword); st != 401 {
		t.Fatalf("old password still logs in: %d", st)
	}
	if st, s, _ := e.login("bob", newPassword); st != 200 || s.me.MustChangePassword {
		t.Fatalf("login with the new password: %d", st)
	}
	want := "user.create,session.login,user.password.change,session.login,session.login_failed,session.login"
	if got := e.auditActions("bob"); strings.Join(got, ",") != want {
		t.Fatalf("audit = %v, want %s", got, want)
	}
	// A token belongs to no user: it cannot change a password.
	st, b = e.do("PUT", "/api/auth/password", su, map[string]string{"currentPassword": "x", "newPassword": newPassword})
	if code, _ := errCode(b); st != 403 || code != sb.EForbidden {
		t.Fatalf("password change with a token: %d %s", st, b)
	}
}

// statusOnlyHeaders is statusOnly with headers instead of a token.
func (e *testEnv) statusOnlyHeaders(method, path string, headers map[string]string) int {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.(*testing.T).Context(), method, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range headers {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestUserChangesEndSessions: disabling, resetting the password of and
// deleting a user end its sessions at once (the next request is refused) and
// call the hook that ends its event streams; role changes apply at once.
func TestUserChangesEndSessions(t *testing.T) {
	e := newTestEnv(t)
	rec := &endedRecorder{}
	e.api.onSessionsEnded = rec.ended
	su := e.tokens[sb.RoleSuperadmin]
	e.mustDo("POST", "/api/users", su, map[string]string{"username": "carol", "role": "superadmin", "password": tempPassword}, 201, nil)
	_, s, _ := e.login("carol", tempPassword)
	st, carol, b := e.changePasswordAs(s, tempPassword, newPassword)
	if st != 200 {
		t.Fatalf("change: %d %s", st, b)
	}
	if st, _ := e.doSession(carol, "GET", "/api/users", nil); st != 200 {
		t.Fatalf("superadmin session lists users: %d", st)
	}
	// A demotion applies to the open session at once.
	e.mustDo("PUT", "/api/users/carol", su, map[string]any{"role": "admin"}, 200, nil)
	if st, _ := e.doSession(carol, "GET", "/api/users", nil); st != 403 {
		t.Fatalf("demoted session lists users: %d", st)
	}
	if st, _ := e.doSession(carol, "GET", "/api/streaming/providers", nil); st != 200 {
		t.Fatalf("demoted session reads providers: %d", st)
	}
	// Disabling ends the session and refuses logins.
	var v userView
	e.mustDo("PUT", "/api/users/carol", su, map[string]any{"enabled": false}, 200, &v)
	if v.Enabled {
		t.Fatalf("disabled user shows enabled: %+v", v)
	}
	if st, _ := e.doSession(carol, "GET", "/api/streaming/providers", nil); st != 401 {
		t.Fatalf("session of a disabled user: %d", st)
	}
	if st, _, b := e.login("carol", newPassword); st != 401 || !strings.Contains(string(b), "invalid username or password") {
		t.Fatalf("login of a disabled user: %d %s", st, b)
	}
	e.mustDo("PUT", "/api/users/carol", su, map[string]any{"enabled": true}, 200, nil)
	st, carol, _ = e.login("carol", newPassword)
	if st != 200 {
		t.Fatalf("login once enabled: %d", st)
	}
	// A reset by a superadmin sets a temporary password and ends the sessions.
	e.mustDo("PUT", "/api/users/carol", su, map[string]any{"password": resetPassword}, 200, &v)
	if !v.MustChangePassword {
		t.Fatalf("reset password is not temporary: %+v", v)
	}
	if st, _ := e.doSession(carol, "GET", "/api/streaming/providers", nil); st != 401 {
		t.Fatalf("session after a reset: %d", st)
	}
	st, carol, _ = e.login("carol", resetPassword)
	if st != 200 || !carol.me.MustChangePassword {
		t.Fatalf("login after reset: %d %+v", st, carol.me)
	}
	// Deleting ends the session.
	e.mustDo("DELETE", "/api/users/carol", su, nil, 204, nil)
	if st, _ := e.doSession(carol, "GET", "/api/auth/me", nil); st != 401 {
		t.Fatalf("session of a deleted user: %d", st)
	}
	e.mustDo("GET", "/api/users/carol", su, nil, 404, nil)
	if got := rec.calls(); !slices.Equal(got, []string{"carol", "carol", "carol", "carol"}) {
		t.Fatalf("hook calls = %v, want carol for the password change, disable, reset and delete", got)
	}
	want := "user.create,session.login,user.password.change,session.login,user.update,user.update,session.login_failed,user.update,session.login,user.password.reset,session.login,user.delete"
	if got := e.auditActions("carol"); strings.Join(got, ",") != want {
		t.Fatalf("audit = %v\nwant %s", got, want)
	}
}

// TestLastSuperadminViaAPI: the last enabled superadmin cannot be deleted,
// disabled or demoted (409), and nothing changes.
func TestLastSuperadminViaAPI(t *testing.T) {
	e := newTestEnv(t)
	su := e.tokens[sb.RoleSuperadmin]
	e.mustDo("POST", "/api/users", su, map[string]string{"username": "ops", "role": "admin", "password": tempPassword}, 201, nil)
	for _, c := range []struct {
		method string
		body   any
	}{{"DELETE", nil}, {"PUT", map[string]any{"enabled": false}}, {"PUT", map[string]any{"role": "admin"}}} {
		st, b := e.do(c.method, "/api/users/admin", su, c.body)
		if code, _ := errCode(b); st != 409 || code != sb.EConflict {
			t.Errorf("%s admin %v: %d %s", c.method, c.body, st, b)
		}
	}
	var u userView
	e.mustDo("GET", "/api/users/admin", su, nil, 200, &u)
	if !u.Enabled || u.Role != sb.RoleSuperadmin {
		t.Fatalf("admin changed: %+v", u)
	}
	if got := e.auditActions("admin"); len(got) != 0 {
		t.Fatalf("refused changes audited: %v", got)
	}
	// Beside a second superadmin, admin may go.
	e.mustDo("PUT", "/api/users/ops", su, map[string]any{"role": "superadmin"}, 200, nil)
	e.mustDo("PUT", "/api/users/admin", su, map[string]any{"role": "admin"}, 200, nil)
	var list struct{ Users []userView }
	e.mustDo("GET", "/api/users", su, nil, 200, &list)
	if len(list.Users) != 2 || list.Users[0].Username != "admin" || list.Users[1].Username != "ops" {
		t.Fatalf("list = %+v", list.Users)
	}
}

// TestUsersBadInput: every malformed request is a 4xx naming the field,
// and changes no user and writes no audit entry.
func TestUsersBadInput(t *testing.T) {
	e := newTestEnv(t)
	su := e.tokens[sb.RoleSuperadmin]
	e.mustDo("POST", "/api/users", su, map[string]string{"username": "dave", "role": "admin", "password": tempPassword}, 201, nil)
	_, s, _ := e.login("dave", tempPassword)
	snapshot := func() string {
		_, b := e.do("GET", "/api/users", su, nil)
		_, a := e.do("GET", "/api/audit?limit=500", su, nil)
		return string(b) + string(a)
	}
	before := snapshot()
	const U = "/api/users"
	cases := []struct {
		name, method, path string
		body               any
		status             int
		field              string
	}{
		{"malformed", "POST", U, `{"username":`, 400, "body"},
		{"not an object", "POST", U, `[]`, 400, "body"},
		{"unknown field", "POST", U, map[string]any{"username": "x1", "role": "admin", "password": tempPassword, "email": "x"}, 400, "email"},
		{"no username", "POST", U, map[string]any{"role": "admin", "password": tempPassword}, 400, "username"},
		{"upper username", "POST", U, map[string]any{"username": "Eve", "role": "admin", "password": tempPassword}, 400, "username"},
		{"long username", "POST", U, map[string]any{"username": strings.Repeat("e", 65), "role": "admin", "password": tempPassword}, 400, "username"},
		{"username with space", "POST", U, map[string]any{"username": "e ve", "role": "admin", "password": tempPassword}, 400, "username"},
		{"username number", "POST", U, map[string]any{"username": 7, "role": "admin", "password": tempPassword}, 400, "username"},
		{"client role", "POST", U, map[string]any{"username": "eve", "role": "client", "password": tempPassword}, 400, "role"},
		{"bad role", "POST", U, map[string]any{"username": "eve", "role": "root", "password": tempPassword}, 400, "role"},
		{"no password", "POST", U, map[string]any{"username": "eve", "role": "admin"}, 400, "password"},
		{"short password", "POST", U, map[string]any{"username": "eve", "role": "admin", "password": "short"}, 400, "password"},
		{"password is username", "POST", U, map[string]any{"username": "evelyn-smith", "role": "admin", "password": "EVELYN-SMITH"}, 400, "password"},
		{"common password", "POST", U, map[string]any{"username": "eve", "role": "admin", "password": "qwerty123456"}, 400, "password"},
		{"huge password", "POST", U, map[string]any{"username": "eve", "role": "admin", "password": strings.Repeat("p", 2000)}, 400, "password"},
		{"taken username", "POST", U, map[string]any{"username": "dave", "role": "admin", "password": tempPassword}, 409, ""},
		{"update nothing", "PUT", U + "/dave", map[string]any{}, 400, "body"},
		{"update bad role", "PUT", U + "/dave", map[string]any{"role": "client"}, 400, "role"},
		{"update enabled string", "PUT", U + "/dave", map[string]any{"enabled": "no"}, 400, "enabled"},
		{"update weak password", "PUT", U + "/dave", map[string]any{"password": "dave"}, 400, "password"},
		{"update unknown field", "PUT", U + "/dave", map[string]any{"username": "other"}, 400, "username"},
		{"update unknown user", "PUT", U + "/nobody", map[string]any{"enabled": false}, 404, ""},
		{"bad path username", "GET", U + "/Dave", nil, 400, "username"},
		{"bad path username put", "PUT", U + "/a%20b", map[string]any{"enabled": false}, 400, "username"},
		{"delete unknown", "DELETE", U + "/nobody", nil, 404, ""},
		{"delete bad name", "DELETE", U + "/-x", nil, 400, "username"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			st, b := e.do(c.method, c.path, su, c.body)
			code, field := errCode(b)
			if st != c.status || code == "" || field != c.field {
				t.Fatalf("%d %s, want %d naming %q", st, b, c.status, c.field)
			}
			for _, p := range accountSecrets {
				if strings.Contains(string(b), p) {
					t.Fatalf("error echoes a password: %s", b)
				}
			}
		})
	}
	e.t = t
	// The password change's bad bodies.
	for _, c := range []struct {
		body  string
		field string
	}{
		{`{"currentPassword":`, "body"},
		{`{"currentPassword":"` + tempPassword + `","newPassword":"` + newPassword + `","x":1}`, "x"},
		{`{"currentPassword":1,"newPassword":"` + newPassword + `"}`, "currentPassword"},
		{`{"currentPassword":"` + tempPassword + `"}`, "newPassword"},
	} {
		st, b := e.doSession(s, "PUT", "/api/auth/password", c.body)
		if code, field := errCode(b); st != 400 || code != sb.EInvalid || field != c.field {
			t.Errorf("password change %s: %d %s, want 400 naming %s", c.body, st, b, c.field)
		}
	}
	if st, _ := e.doHeaders("POST", U, `{"username":"eve","role":"admin","password":"`+tempPassword+`"}`,
		map[string]string{"Authorization": bearer(su), "Content-Type": "text/plain"}); st != 415 {
		t.Fatalf("text/plain: %d", st)
	}
	if after := snapshot(); after != before {
		t.Fatalf("a rejected request changed users or the audit log")
	}
}

// TestAccountSecretsNeverLeak runs the account API and looks for every
// password in every response, the logs, the events and the audit log.
func TestAccountSecretsNeverLeak(t *testing.T) {
	e := newTestEnv(t)
	su := e.tokens[sb.RoleSuperadmin]
	var bodies []string
	rec := func(st int, b []byte) { bodies = append(bodies, string(b)) }
	rec(e.do("POST", "/api/users", su, map[string]string{"username": "fay", "role": "admin", "password": tempPassword}))
	rec(e.do("POST", "/api/users", su, map[string]string{"username": "fay2", "role": "admin", "password": newPassword + "x"}))
	_, s, b := e.login("fay", tempPassword)
	rec(0, b)
	_, _, b = e.login("fay", newPassword)
	rec(0, b)
	_, s2, b := e.changePasswordAs(s, tempPassword, newPassword)
	rec(0, b)
	_, _, b = e.changePasswordAs(s2, "wrong-"+resetPassword, newPassword+"2")
	rec(0, b)
	rec(e.do("PUT", "/api/users/fay", su, map[string]any{"password": resetPassword}))
	rec(e.do("PUT", "/api/users/fay", su, map[string]any{"password": "fay"}))
	for _, p := range []string{"/api/users", "/api/users/fay", "/api/audit?limit=500", "/api/auth/me", "/metrics"} {
		rec(e.do("GET", p, su, nil))
	}
	es, err := e.store.ListAudit(t.Context(), sb.AuditFilter{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	audit, _ := json.Marshal(es)
	evs, _ := json.Marshal(e.events.Events())
	haystacks := map[string]string{"responses": strings.Join(bodies, "\n"), "logs": e.logs.String(), "events": string(evs), "audit": string(audit)}
	for where, text := range haystacks {
		for _, p := range append(accountSecrets, newPassword+"x", newPassword+"2", "argon2id") {
			if strings.Contains(text, p) {
				t.Errorf("secret %q… found in %s", p[:6], where)
			}
		}
	}
	if !strings.Contains(haystacks["audit"], "user.password.reset") || !strings.Contains(haystacks["audit"], "user.password.change") {
		t.Error("the password changes are not audited")
	}
}

func newUserBody(name string) map[string]string {
	return map[string]string{"username": name, "role": "admin", "password": tempPassword}
}

// withUser is an auth matrix setup: a new user, and its path.
func withUser(body any) func(*testEnv) (string, any) {
	return func(e *testEnv) (string, any) {
		name := uniq("u")
		// Straight into the store, with the cached hash: Argon2id is slow.
		if err := e.store.AddUser(context.Background(), sb.User{Username: name, Role: sb.RoleAdmin, PasswordHash: hashOnce()}, sb.AuditEntry{}); err != nil {
			e.t.Fatal(err)
		}
		return "/api/users/" + name, body
	}
}
