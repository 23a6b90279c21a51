package httpapi

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/auth"
)

// OIDCConfig configures the OpenID Connect login of the dashboard.
type OIDCConfig struct {
	// Issuer is the OpenID provider's issuer URL; its discovery document and
	// keys are fetched from it on first use.
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is the callback registered at the provider
	// (…/api/auth/oidc/callback); "" derives it from each login request.
	RedirectURL string
	// RoleClaim names the claim (a string or a list of strings) whose values
	// Roles maps to roles; the highest mapped role wins. A user none of whose
	// values is mapped is refused.
	RoleClaim string
	Roles     map[string]sb.Role
	// HTTPClient talks to the provider; nil: a client with a 10 s timeout.
	HTTPClient *http.Client
}

// OIDC is the single sign-on of the dashboard: the authorization code flow
// with PKCE, state and nonce, the ID token verified against the issuer's keys.
type OIDC struct {
	cfg    OIDCConfig
	client *http.Client
	// flowKey signs the cookie that carries a login's state, nonce and PKCE
	// verifier between its two legs. It derives from the client secret, so
	// that every replica accepts the callback of a login another started.
	flowKey []byte

	mu       sync.Mutex
	provider *oidc.Provider // discovered on first use
}

// NewOIDC checks cfg and returns the single sign-on it configures.
func NewOIDC(cfg OIDCConfig) (*OIDC, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" {
		return nil, errors.New("oidc: issuer and client id are required")
	}
	if len(cfg.Roles) == 0 {
		return nil, errors.New("oidc: a role mapping is required (such as sre=admin,platform=superadmin)")
	}
	for v, r := range cfg.Roles {
		if r != sb.RoleAdmin && r != sb.RoleSuperadmin {
			return nil, fmt.Errorf("oidc: claim value %q maps to %s: roles must be admin or superadmin", v, r)
		}
	}
	if cfg.RoleClaim == "" {
		cfg.RoleClaim = "groups"
	}
	o := &OIDC{cfg: cfg, client: cfg.HTTPClient}
	if o.client == nil {
		o.client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.ClientSecret != "" {
		h := sha256.Sum256([]byte("switchboard oidc flow\x00" + cfg.ClientSecret))
		o.flowKey = h[:]
	} else {
		o.flowKey = make([]byte, 32)
		_, _ = rand.Read(o.flowKey)
	}
	return o, nil
}

// discover returns the provider, fetching its discovery document the first
// time (and again after a failure).
func (o *OIDC) discover(ctx context.Context) (*oidc.Provider, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return o.provider, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, o.client), o.cfg.Issuer)
	if err != nil {
		return nil, err
	}
	o.provider = p
	return p, nil
}

func (o *OIDC) oauthConfig(p *oidc.Provider, r *http.Request) oauth2.Config {
	redirect := o.cfg.RedirectURL
	if redirect == "" {
		scheme := "http"
		if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
			scheme = "https"
		}
		redirect = scheme + "://" + r.Host + oidcCallbackPath
	}
	return oauth2.Config{
		ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, RedirectURL: redirect,
		Endpoint: p.Endpoint(), Scopes: []string{oidc.ScopeOpenID, "profile", "email"},
	}
}

const (
	oidcCallbackPath = "/api/auth/oidc/callback"
	oidcFlowCookie   = "switchboard_oidc"
	oidcFlowTTL      = 10 * time.Minute
)

// oidcFlow is what the flow cookie carries from the login to its callback.
type oidcFlow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Expires  int64  `json:"e"`
}

func (o *OIDC) sealFlow(f oidcFlow) string {
	b, _ := json.Marshal(f)
	mac := hmac.New(sha256.New, o.flowKey)
	mac.Write(b)
	return base64.RawURLEncoding.EncodeToString(b) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func (o *OIDC) openFlow(v string, now time.Time) (oidcFlow, bool) {
	body, sig, ok := strings.Cut(v, ".")
	if !ok {
		return oidcFlow{}, false
	}
	b, err1 := base64.RawURLEncoding.DecodeString(body)
	got, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil {
		return oidcFlow{}, false
	}
	mac := hmac.New(sha256.New, o.flowKey)
	mac.Write(b)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return oidcFlow{}, false
	}
	var f oidcFlow
	if json.Unmarshal(b, &f) != nil || f.State == "" || f.Nonce == "" || f.Verifier == "" || now.Unix() > f.Expires {
		return oidcFlow{}, false
	}
	return f, true
}

// authMethods tells the login page how one may log in.
func (s *Server) authMethods(w http.ResponseWriter, r *http.Request) {
	type sso struct {
		Enabled  bool   `json:"enabled"`
		LoginURL string `json:"loginUrl,omitempty"`
	}
	out := struct {
		Password bool `json:"password"`
		SSO      sso  `json:"sso"`
	}{Password: true}
	if s.oidc != nil {
		out.SSO = sso{Enabled: true, LoginURL: "/api/auth/oidc/login"}
	}
	writeJSON(w, http.StatusOK, out)
}

// oidcLogin starts a single sign-on: it sends the browser to the provider.
func (s *Server) oidcLogin(w http.ResponseWriter, r *http.Request) {
	if s.oidc == nil {
		s.writeError(w, r, sb.Errorf(sb.ENotFound, "single sign-on is not configured"))
		return
	}
	p, err := s.oidc.discover(r.Context())
	if err != nil {
		s.logger.WarnContext(r.Context(), "oidc discovery", "issuer", s.oidc.cfg.Issuer, "err", err.Error())
		s.ssoRefused(w, r, sb.Errorf(sb.EUnavailable, "the identity provider cannot be reached: try again later"))
		return
	}
	f := oidcFlow{State: auth.NewSessionToken(), Nonce: auth.NewSessionToken(), Verifier: oauth2.GenerateVerifier(),
		Expires: s.clock.Now().Add(oidcFlowTTL).Unix()}
	conf := s.oidc.oauthConfig(p, r)
	http.SetCookie(w, &http.Cookie{
		Name: oidcFlowCookie, Value: s.oidc.sealFlow(f), Path: "/api/auth/oidc/", HttpOnly: true,
		// Lax: the cookie must come back with the provider's redirect.
		SameSite: http.SameSiteLaxMode, Secure: s.secureCookies(r),
		MaxAge: int(oidcFlowTTL.Seconds()),
	})
	http.Redirect(w, r, conf.AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), http.StatusFound)
}

// ssoClaims are the claims read from the ID token and the userinfo endpoint.
type ssoClaims struct {
	Subject           string `json:"sub"`
	PreferredUsername string `json:"preferred_username"`
	Email             string `json:"email"`
	Nonce             string `json:"nonce"`
}

// oidcCallback finishes a single sign-on: it checks the state, exchanges the
// code with the PKCE verifier, verifies the ID token and its nonce, maps the
// role claim to a role, finds or creates the user and starts a session.
func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request) {
	if s.oidc == nil {
		s.writeError(w, r, sb.Errorf(sb.ENotFound, "single sign-on is not configured"))
		return
	}
	// The flow cookie is for one use.
	http.SetCookie(w, &http.Cookie{Name: oidcFlowCookie, Value: "", Path: "/api/auth/oidc/", HttpOnly: true, MaxAge: -1})
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		s.ssoRefused(w, r, sb.Errorf(sb.EUnauthorized, "the identity provider refused the login (%s)", sb.Truncate(sanitizeWord(e), 64)))
		return
	}
	c, err := r.Cookie(oidcFlowCookie)
	if err != nil {
		s.ssoRefused(w, r, sb.Invalid("state", "no login in progress from this browser: start again"))
		return
	}
	f, ok := s.oidc.openFlow(c.Value, s.clock.Now())
	if !ok || !auth.Equal(q.Get("state"), f.State) {
		s.ssoRefused(w, r, sb.Invalid("state", "does not match the login in progress: start again"))
		return
	}
	code := q.Get("code")
	if code == "" || len(code) > 4096 {
		s.ssoRefused(w, r, sb.Invalid("code", "is required"))
		return
	}
	p, err := s.oidc.discover(r.Context())
	if err != nil {
		s.ssoRefused(w, r, sb.Errorf(sb.EUnavailable, "the identity provider cannot be reached: try again later"))
		return
	}
	ctx := oidc.ClientContext(r.Context(), s.oidc.client)
	conf := s.oidc.oauthConfig(p, r)
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(f.Verifier))
	if err != nil {
		s.logger.WarnContext(r.Context(), "oidc code exchange failed", "err", oauthErrText(err))
		s.ssoRefused(w, r, sb.Errorf(sb.EUnauthorized, "the identity provider did not accept the login code"))
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		s.ssoRefused(w, r, sb.Errorf(sb.EUnauthorized, "the identity provider sent no ID token"))
		return
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: s.oidc.cfg.ClientID, Now: s.clock.Now}).Verify(ctx, raw)
	if err != nil {
		s.logger.WarnContext(r.Context(), "oidc id token refused", "err", err.Error())
		s.ssoRefused(w, r, sb.Errorf(sb.EUnauthorized, "the ID token did not verify"))
		return
	}
	if !auth.Equal(idt.Nonce, f.Nonce) {
		s.ssoRefused(w, r, sb.Errorf(sb.EUnauthorized, "the ID token's nonce does not match the login"))
		return
	}
	claims, values, err := s.oidc.claims(ctx, p, idt, tok)
	if err != nil {
		s.logger.WarnContext(r.Context(), "oidc claims", "err", err.Error())
		s.ssoRefused(w, r, sb.Errorf(sb.EUnauthorized, "the identity provider's user information could not be read"))
		return
	}
	username := ssoUsername(claims)
	subject := idt.Issuer + " " + idt.Subject
	role := sb.RoleAnonymous
	for _, v := range values {
		if m, ok := s.oidc.cfg.Roles[v]; ok && m > role {
			role = m
		}
	}
	if role < sb.RoleAdmin {
		s.auditSSORefusal(r, username, "no role mapped from claim "+s.oidc.cfg.RoleClaim)
		s.ssoRefused(w, r, sb.Errorf(sb.EForbidden, "your account at the identity provider maps to no Switchboard role (claim %q): ask an administrator", s.oidc.cfg.RoleClaim))
		return
	}
	if username == "" {
		s.auditSSORefusal(r, idt.Subject, "no usable username")
		s.ssoRefused(w, r, sb.Errorf(sb.EForbidden, "the identity provider gave no usable username (preferred_username or email)"))
		return
	}
	u, err := s.ssoUser(r, subject, username, role)
	if err != nil {
		s.ssoRefused(w, r, err)
		return
	}
	if _, err := s.startSession(w, r, u, s.clock.Now()); err != nil {
		s.ssoRefused(w, r, err)
		return
	}
	s.logger.InfoContext(r.Context(), "login", "username", u.Username, "role", u.Role.String(), "sso", true)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// claims merges the ID token's claims with the userinfo endpoint's (when the
// provider has one and its subject is the token's) and returns them with the
// values of the role claim.
func (o *OIDC) claims(ctx context.Context, p *oidc.Provider, idt *oidc.IDToken, tok *oauth2.Token) (ssoClaims, []string, error) {
	var c ssoClaims
	all := map[string]any{}
	if err := idt.Claims(&c); err != nil {
		return c, nil, err
	}
	if err := idt.Claims(&all); err != nil {
		return c, nil, err
	}
	if p.UserInfoEndpoint() != "" {
		ui, err := p.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return c, nil, err
		}
		if ui.Subject != idt.Subject {
			return c, nil, errors.New("userinfo subject differs from the ID token's")
		}
		var uc ssoClaims
		extra := map[string]any{}
		if err := ui.Claims(&uc); err != nil {
			return c, nil, err
		}
		if err := ui.Claims(&extra); err != nil {
			return c, nil, err
		}
		if c.PreferredUsername == "" {
			c.PreferredUsername = uc.PreferredUsername
		}
		if c.Email == "" {
			c.Email = uc.Email
		}
		for k, v := range extra {
			if _, ok := all[k]; !ok {
				all[k] = v
			}
		}
	}
	var values []string
	switch v := all[o.cfg.RoleClaim].(type) {
	case string:
		values = []string{v}
	case []any:
		for _, x := range v {
			if s, ok := x.(string); ok {
				values = append(values, s)
			}
		}
	}
	return c, values, nil
}

// ssoUsername is the username of an SSO identity: its preferred_username, or
// else its e-mail address, lowercased; "" when neither is a valid username.
func ssoUsername(c ssoClaims) string {
	for _, v := range []string{c.PreferredUsername, c.Email} {
		if v = strings.ToLower(strings.TrimSpace(v)); usernameRE.MatchString(v) {
			return v
		}
	}
	return ""
}

// ssoUser finds the user of an SSO subject, creating it at its first login
// and following its mapped role afterwards.
func (s *Server) ssoUser(r *http.Request, subject, username string, role sb.Role) (sb.User, error) {
	ctx := r.Context()
	actor := sb.Actor{Kind: "sso", Name: username, Role: role}
	u, err := s.store.UserBySSO(ctx, subject)
	if sb.IsCode(err, sb.ENotFound) {
		u = sb.User{Username: username, Role: role, SSOSubject: subject, CreatedAt: s.clock.Now()}
		err := s.store.AddUser(ctx, u, sb.AuditEntry{Actor: actor, Action: "user.create", Target: username, At: u.CreatedAt})
		if sb.IsCode(err, sb.EConflict) {
			s.auditSSORefusal(r, username, "username taken by another user")
			return sb.User{}, sb.Errorf(sb.EConflict, "the username %s belongs to another Switchboard user: ask an administrator", username)
		}
		if err != nil {
			return sb.User{}, err
		}
		s.logger.InfoContext(ctx, "user created", "username", username, "role", role.String(), "sso", true)
		return u, nil
	}
	if err != nil {
		return sb.User{}, err
	}
	if u.Disabled {
		s.auditSSORefusal(r, u.Username, "user disabled")
		return sb.User{}, sb.Errorf(sb.EForbidden, "your Switchboard account is disabled: ask an administrator")
	}
	if u.Role != role {
		_, after, _, err := s.store.UpdateUser(ctx, u.Username, func(cur sb.User) (sb.User, error) {
			cur.Role = role
			return cur, nil
		}, sb.AuditEntry{Actor: actor, Action: "user.update", Target: u.Username, At: s.clock.Now()})
		if err != nil {
			if sb.IsCode(err, sb.EConflict) {
				s.auditSSORefusal(r, u.Username, "would demote the last enabled superadmin")
			}
			return sb.User{}, err
		}
		u = after
	}
	return u, nil
}

// auditSSORefusal records a refused single sign-on.
func (s *Server) auditSSORefusal(r *http.Request, who, why string) {
	after, _ := json.Marshal(map[string]string{"reason": why})
	err := s.store.AppendAudit(r.Context(), sb.AuditEntry{Actor: sb.Actor{Kind: "sso", Name: who}, Action: "session.refused",
		Target: who, At: s.clock.Now(), After: after})
	if err != nil {
		s.logger.ErrorContext(r.Context(), "audit sso refusal", "err", err.Error())
	}
	s.logger.InfoContext(r.Context(), "sso login refused", "username", who, "reason", why, "remote", clientIP(r))
}

var refusedPage = template.Must(template.New("refused").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign-in refused · Switchboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font-family: system-ui, sans-serif; max-width: 36rem; margin: 4rem auto; padding: 0 1rem">
<h1>Sign-in refused</h1>
<p id="sso-error" data-code="{{.Code}}">{{.Message}}</p>
<p><a href="/">Back to the sign-in page</a></p>
</body></html>
`))

// ssoRefused answers a failed single sign-on: a page for a browser, the JSON
// error for anything else.
func (s *Server) ssoRefused(w http.ResponseWriter, r *http.Request, err error) {
	var e *sb.Error
	if !errors.As(err, &e) || !slices.ContainsFunc(strings.Split(r.Header.Get("Accept"), ","), func(t string) bool {
		return strings.HasPrefix(strings.TrimSpace(t), "text/html")
	}) {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(statusOf(e.Code))
	_ = refusedPage.Execute(w, e)
}

// sanitizeWord keeps the letters, digits and _ of an error code from the
// provider.
func sanitizeWord(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, s)
}

// oauthErrText describes a failed code exchange without the response body,
// which is the provider's and may echo what was sent.
func oauthErrText(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return fmt.Sprintf("token endpoint answered %d (%s)", re.Response.StatusCode, sanitizeWord(re.ErrorCode))
	}
	return err.Error()
}
