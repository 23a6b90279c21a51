package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/oidctest"
)

// withOIDC switches single sign-on on against a real OpenID provider started
// here, with sam (group sre: admin), pat (platform: superadmin) and nick
// (marketing: no role).
func (e *testEnv) withOIDC() *oidctest.Provider {
	e.t.Helper()
	op := oidctest.New(e.t)
	o, err := NewOIDC(OIDCConfig{Issuer: op.Issuer, ClientID: op.ClientID, ClientSecret: op.ClientSecret,
		Roles: map[string]sb.Role{"sre": sb.RoleAdmin, "platform": sb.RoleSuperadmin}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.api.oidc = o
	op.Start(e.srv.URL+oidcCallbackPath,
		oidctest.User{ID: "u-sam", Username: "sam", Password: "sam-idp-password", Email: "sam@example.com", Groups: []string{"sre"}},
		oidctest.User{ID: "u-pat", Username: "Pat", Password: "pat-idp-password", Email: "pat@example.com", Groups: []string{"sre", "platform"}},
		oidctest.User{ID: "u-nick", Username: "nick", Password: "nick-idp-password", Email: "nick@example.com", Groups: []string{"marketing"}},
	)
	return op
}

// ssoLogin goes through the single sign-on as a browser would: to the
// provider's login page, its form, and back. It returns the browser (its
// cookies), the last response's status and body.
func (e *testEnv) ssoLogin(op *oidctest.Provider, username, password string) (*http.Client, int, string) {
	e.t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	get := func(u string) *http.Response {
		req, _ := http.NewRequest("GET", u, nil)
		req.Header.Set("Accept", "text/html")
		resp, err := browser.Do(req)
		if err != nil {
			e.t.Fatal(err)
		}
		return resp
	}
	resp := get(e.srv.URL + "/api/auth/oidc/login")
	resp.Body.Close()
	id := resp.Request.URL.Query().Get("authRequestID")
	if resp.StatusCode != 200 || id == "" || !strings.HasPrefix(resp.Request.URL.String(), op.Issuer) {
		e.t.Fatalf("login did not reach the provider's login page: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	form := url.Values{"id": {id}, "username": {username}, "password": {password}}
	req, _ := http.NewRequest("POST", op.Issuer+"/login/username", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/html")
	resp, err := browser.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return browser, resp.StatusCode, string(b)
}

func (e *testEnv) meOf(browser *http.Client) (int, meResponse) {
	e.t.Helper()
	resp, err := browser.Get(e.srv.URL + "/api/auth/me")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var me meResponse
	_ = json.NewDecoder(resp.Body).Decode(&me)
	return resp.StatusCode, me
}

// TestOIDCLogin logs in through a real OpenID provider: the mapped roles,
// the users created at first login (marked SSO, without a password), the
// refusal of an unmapped or disabled user (audited), and local passwords
// working beside it.
func TestOIDCLogin(t *testing.T) {
	e := newTestEnv(t)
	op := e.withOIDC()
	su := e.tokens[sb.RoleSuperadmin]

	var methods struct{ SSO struct{ Enabled bool } }
	e.mustDo("GET", "/api/auth/methods", "", nil, 200, &methods)
	if !methods.SSO.Enabled {
		t.Fatal("methods do not show single sign-on")
	}

	browser, st, page := e.ssoLogin(op, "sam", "sam-idp-password")
	if st != 200 || !strings.Contains(page, "<html") {
		t.Fatalf("sso login ended with %d: %.200s", st, page)
	}
	st, me := e.meOf(browser)
	if st != 200 || me.Name != "sam" || me.Role != sb.RoleAdmin || me.Kind != "user" || me.MustChangePassword {
		t.Fatalf("me after sso = %d %+v", st, me)
	}
	var u userView
	e.mustDo("GET", "/api/users/sam", su, nil, 200, &u)
	if !u.SSO || u.Role != sb.RoleAdmin || !u.Enabled || u.LastLoginAt == nil || u.MustChangePassword {
		t.Fatalf("sso user = %+v", u)
	}
	if got := e.auditActions("sam"); strings.Join(got, ",") != "user.create,session.login" {
		t.Fatalf("audit of sam = %v", got)
	}
	// An SSO user has no local password.
	if st, _, _ := e.login("sam", "sam-idp-password"); st != 401 {
		t.Fatalf("password login of an sso user: %d", st)
	}
	e.mustDo("PUT", "/api/users/sam", su, map[string]any{"password": tempPassword}, 400, nil)

	// The highest mapped role wins; the username is lowercased.
	browser, _, _ = e.ssoLogin(op, "Pat", "pat-idp-password")
	if st, me := e.meOf(browser); st != 200 || me.Name != "pat" || me.Role != sb.RoleSuperadmin {
		t.Fatalf("pat = %d %+v", st, me)
	}
	// A second login finds the same user.
	browser, _, _ = e.ssoLogin(op, "sam", "sam-idp-password")
	if st, me := e.meOf(browser); st != 200 || me.Name != "sam" {
		t.Fatalf("second login = %d %+v", st, me)
	}
	var list struct{ Users []userView }
	e.mustDo("GET", "/api/users", su, nil, 200, &list)
	if len(list.Users) != 3 {
		t.Fatalf("users = %+v, want admin, pat and sam", list.Users)
	}

	// No mapped role: refused with a page that says why, audited, no user.
	browser, st, page = e.ssoLogin(op, "nick", "nick-idp-password")
	if st != 403 || !strings.Contains(page, "maps to no Switchboard role") {
		t.Fatalf("unmapped user: %d %.300s", st, page)
	}
	if st, _ := e.meOf(browser); st != 401 {
		t.Fatalf("unmapped user got a session: %d", st)
	}
	e.mustDo("GET", "/api/users/nick", su, nil, 404, nil)
	if got := e.auditActions("nick"); strings.Join(got, ",") != "session.refused" {
		t.Fatalf("audit of nick = %v", got)
	}

	// A disabled SSO user is refused.
	e.mustDo("PUT", "/api/users/sam", su, map[string]any{"enabled": false}, 200, nil)
	if _, st, page := e.ssoLogin(op, "sam", "sam-idp-password"); st != 403 || !strings.Contains(page, "disabled") {
		t.Fatalf("disabled sso user: %d %.300s", st, page)
	}

	// Local passwords keep working beside it.
	if st, s, _ := e.login("admin", adminPassword); st != 200 || s.me.Name != "admin" {
		t.Fatalf("local login: %d", st)
	}

	// No secret of the flow in responses or logs.
	for _, s := range []string{op.ClientSecret, "sam-idp-password", "pat-idp-password"} {
		if strings.Contains(e.logs.String(), s) {
			t.Errorf("secret %q… in the logs", s[:6])
		}
	}
}

// TestOIDCStateChecked: a callback whose state is not the one of the login
// in progress, or without a login in progress, is refused (400 naming
// state), and one with a forged code is refused by the provider.
func TestOIDCStateChecked(t *testing.T) {
	e := newTestEnv(t)
	op := e.withOIDC()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	resp, err := browser.Get(e.srv.URL + "/api/auth/oidc/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	authURL := resp.Request.URL
	_ = authURL
	check := func(c *http.Client, query string, want int, field string) {
		t.Helper()
		resp, err := c.Get(e.srv.URL + oidcCallbackPath + "?" + query)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if code, f := errCode(b); resp.StatusCode != want || code == "" || f != field {
			t.Fatalf("callback ?%s: %d %s, want %d naming %q", query, resp.StatusCode, b, want, field)
		}
	}
	check(browser, "state=forged&code=abc", 400, "state")
	check(http.DefaultClient, "state=forged&code=abc", 400, "state")
	// The real state with a forged code: the flow cookie is spent by the
	// refused callback above, so start again.
	resp, err = browser.Get(e.srv.URL + "/api/auth/oidc/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	state := ""
	for _, r := range []*http.Request{resp.Request} {
		for r != nil {
			if s := r.URL.Query().Get("state"); s != "" && strings.HasPrefix(r.URL.String(), op.Issuer) {
				state = s
			}
			if r.Response == nil {
				break
			}
			r = r.Response.Request
		}
	}
	if state == "" {
		t.Fatal("no state sent to the provider")
	}
	check(browser, "state="+url.QueryEscape(state)+"&code=forged-code", 401, "")
	check(browser, "error=access_denied", 401, "")
}
