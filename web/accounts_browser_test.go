package web_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/httpapi"
	"github.com/switchboardhq/switchboard/internal/oidctest"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

const (
	tempPassword = "temporary-Password-for-newbie"
	ownPassword  = "newbie-chose-this-Password-42"
)

// visible is a JavaScript expression: the element of sel is shown.
func visible(sel string) string {
	return `(() => { const el = document.querySelector(` + jsString(sel) + `); return !!el && !el.hidden && el.offsetParent !== null; })()`
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// TestDashboardAccounts runs the accounts in headless Chromium: the forced
// change of a temporary password, the users page, and the single sign-on
// against a real OpenID provider.
func TestDashboardAccounts(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() { testutil.CheckGoroutines(t, before) })
	b := newBrowser(t)

	t.Run("a new admin changes the temporary password, then uses the dashboard", func(t *testing.T) {
		srv := newServer(t)
		srv.addProviders()
		srv.call("POST", "/api/users", map[string]string{"username": "newbie", "role": "admin", "password": tempPassword}, 201, nil)
		p := b.open(t, srv)
		p.do("log in with the temporary password", chromedp.Navigate(srv.url+"/"), chromedp.WaitVisible(chromedp.CSS("#login-username")),
			chromedp.SendKeys(chromedp.CSS("#login-username"), "newbie"),
			chromedp.SendKeys(chromedp.CSS("#login-password"), tempPassword),
			chromedp.Click(chromedp.CSS(`#login-form button[type="submit"]`)))
		p.waitFor("the password form", visible("#password-form"))
		if !eval[bool](p, `document.querySelector('#dashboard').hidden`) {
			t.Fatal("the dashboard shows before the password is changed")
		}
		if got := eval[string](p, textOf("#password-reason")); !strings.Contains(got, "temporary") {
			t.Errorf("reason = %q", got)
		}
		if eval[bool](p, visible("#password-cancel")) {
			t.Error("a forced change can be cancelled")
		}
		// A weak password is refused, naming the field.
		p.do("try a common password",
			chromedp.SendKeys(chromedp.CSS("#password-current"), tempPassword),
			chromedp.SendKeys(chromedp.CSS("#password-new"), "password1234"),
			chromedp.SendKeys(chromedp.CSS("#password-confirm"), "password1234"),
			chromedp.Click(chromedp.CSS(`#password-form button[type="submit"]`)))
		p.waitFor("the field error", textOf("#password-new-error")+`.includes('too common')`)
		p.do("choose a good password",
			chromedp.Evaluate[chromedp.Void](`document.querySelector('#password-new').value = ''; document.querySelector('#password-confirm').value = ''`),
			chromedp.SendKeys(chromedp.CSS("#password-new"), ownPassword),
			chromedp.SendKeys(chromedp.CSS("#password-confirm"), ownPassword),
			chromedp.Click(chromedp.CSS(`#password-form button[type="submit"]`)))
		p.waitFor("the dashboard", `!document.querySelector('#dashboard').hidden && document.querySelector('[data-provider="agora"]') !== null`)
		p.waitFor("the live event stream", `document.querySelector('#live-status').classList.contains('on')`)
		if got := eval[string](p, textOf("#user-name")); got != "newbie" {
			t.Errorf("user shown = %q", got)
		}
		if eval[bool](p, visible("#users-section")) {
			t.Error("an admin sees the users page")
		}
		// The dashboard works: disable Agora.
		p.click("disable Agora", card("agora", `input[name="enabled"]`))
		p.waitFor("Agora DISABLED", textOf(card("agora", `[data-stat="status"]`))+` === 'DISABLED'`)
		var got struct{ Enabled bool }
		srv.call("GET", "/api/streaming/providers/agora", nil, 200, &got)
		if got.Enabled {
			t.Fatal("the API still has Agora enabled")
		}
		var u struct{ MustChangePassword bool }
		srv.call("GET", "/api/users/newbie", nil, 200, &u)
		if u.MustChangePassword {
			t.Fatal("the server still asks for a password change")
		}
		p.screenshot("accounts-1-after-password-change")
	})

	t.Run("a superadmin manages users", func(t *testing.T) {
		srv := newServer(t)
		srv.addProviders()
		p := b.open(t, srv)
		p.login("")
		p.waitFor("the users page", visible("#users-section")+` && document.querySelector('#users tr[data-user="admin"]') !== null`)
		p.do("add a user",
			chromedp.SendKeys(chromedp.CSS("#uf-username"), "ops"),
			chromedp.SendKeys(chromedp.CSS("#uf-password"), tempPassword),
			chromedp.Click(chromedp.CSS(`#user-form button[type="submit"]`)))
		p.waitFor("ops listed", `document.querySelector('#users tr[data-user="ops"]') !== null`)
		if got := eval[string](p, textOf(`#users tr[data-user="ops"] td:nth-child(3)`)); got != "enabled, must change password" {
			t.Errorf("state of ops = %q", got)
		}
		p.click("disable ops", `#users button[data-action="disable"][data-user="ops"]`)
		p.waitFor("ops disabled", textOf(`#users tr[data-user="ops"] td:nth-child(3)`)+`.startsWith('disabled')`)
		// Disabling ops already showed "Saved ops.": clear it so that the
		// wait below sees the role change's own confirmation.
		p.do("make ops a superadmin", chromedp.Evaluate[chromedp.Void](`document.querySelector('#users-status').textContent = ''`),
			chromedp.SetValue(chromedp.CSS(`#users select[data-user="ops"]`), "superadmin"),
			chromedp.Evaluate[chromedp.Void](`document.querySelector('#users select[data-user="ops"]').dispatchEvent(new Event('change'))`))
		p.waitFor("the role saved", textOf("#users-status")+` === 'Saved ops.'`)
		var u struct {
			Role    string
			Enabled bool
		}
		srv.call("GET", "/api/users/ops", nil, 200, &u)
		if u.Role != "superadmin" || u.Enabled {
			t.Fatalf("ops = %+v", u)
		}
		p.click("set a temporary password", `#users button[data-action="reset"][data-user="ops"]`)
		p.do("type it", chromedp.WaitVisible(chromedp.CSS("#reset-password")),
			chromedp.SendKeys(chromedp.CSS("#reset-password"), ownPassword),
			chromedp.Click(chromedp.CSS(`#reset-form button[type="submit"]`)))
		p.waitFor("the reset done", textOf("#users-status")+`.includes('new temporary password')`)
		// The last superadmin cannot be disabled: the error shows.
		srv.call("DELETE", "/api/users/ops", nil, 204, nil)
		p.click("refresh the users", "#users-refresh")
		p.waitFor("ops gone", `document.querySelector('#users tr[data-user="ops"]') === null`)
		if !eval[bool](p, `document.querySelector('#users button[data-action="disable"][data-user="admin"]').disabled`) {
			t.Error("one can disable oneself")
		}
		srv.call("POST", "/api/users", map[string]string{"username": "temp", "role": "admin", "password": tempPassword}, 201, nil)
		p.click("refresh the users", "#users-refresh")
		p.click("delete temp", `#users button[data-action="delete"][data-user="temp"]`)
		p.waitFor("the confirmation", textOf(`#users button[data-action="delete"][data-user="temp"]`)+` === 'Confirm delete'`)
		p.click("confirm", `#users button[data-action="delete"][data-user="temp"]`)
		p.waitFor("temp gone", `document.querySelector('#users tr[data-user="temp"]') === null`)
		srv.call("GET", "/api/users/temp", nil, 404, nil)
		p.screenshot("accounts-2-users")
	})

	t.Run("single sign-on through a real OpenID provider", func(t *testing.T) {
		op := oidctest.New(t)
		srv := newServerWith(t, func(o *httpapi.Options) {
			sso, err := httpapi.NewOIDC(httpapi.OIDCConfig{Issuer: op.Issuer, ClientID: op.ClientID, ClientSecret: op.ClientSecret,
				Roles: map[string]sb.Role{"sre": sb.RoleAdmin, "platform": sb.RoleSuperadmin}})
			if err != nil {
				t.Fatal(err)
			}
			o.OIDC = sso
		})
		op.Start(srv.url+"/api/auth/oidc/callback",
			oidctest.User{ID: "u-sam", Username: "sam", Password: "sam-idp-password", Email: "sam@example.com", Groups: []string{"sre"}})
		srv.addProviders()
		p := b.open(t, srv)
		p.do("open the dashboard", chromedp.Navigate(srv.url+"/"), chromedp.WaitVisible(chromedp.CSS("#login-username")))
		p.waitFor("the single sign-on button", visible("#sso-login"))
		p.do("sign in at the provider", chromedp.Click(chromedp.CSS("#sso-login")),
			chromedp.WaitVisible(chromedp.CSS(`input[name="username"]#username`)),
			chromedp.SendKeys(chromedp.CSS("#username"), "sam"),
			chromedp.SendKeys(chromedp.CSS("#password"), "sam-idp-password"),
			chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS("#providers [data-provider]")))
		p.waitFor("the dashboard", `location.href.startsWith(`+jsString(srv.url)+`) && !!document.querySelector('#dashboard') && !document.querySelector('#dashboard').hidden && document.querySelector('[data-provider="agora"]') !== null`)
		if got := eval[string](p, textOf("#user-name")); got != "sam" {
			t.Errorf("user shown = %q", got)
		}
		if got := eval[string](p, textOf("#user-role")); got != "admin" {
			t.Errorf("role shown = %q", got)
		}
		var u struct {
			SSO  bool
			Role string
		}
		srv.call("GET", "/api/users/sam", nil, 200, &u)
		if !u.SSO || u.Role != "admin" {
			t.Fatalf("sam = %+v", u)
		}
		p.screenshot("accounts-3-sso")
	})
}
