package httpapi

import (
	"context"
	"errors"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/auth"
)

// timeTouchEvery bounds how often a token's last-used time is written.
const timeTouchEvery = time.Minute

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

type meResponse struct {
	Name      string     `json:"name"`
	Kind      string     `json:"kind"`
	Role      sb.Role    `json:"role"`
	CSRFToken string     `json:"csrfToken,omitempty"`
	ExpiresAt *time.Time `json:"expiresAt,omitempty"`
	// MustChangePassword: the session may only change its password
	// (PUT /api/auth/password) until it does.
	MustChangePassword bool `json:"mustChangePassword"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Username == "" || len(req.Username) > 128 || !sb.ValidText(req.Username) {
		s.writeError(w, r, sb.Invalid("username", "is required (at most 128 characters of text)"))
		return
	}
	if req.Password == "" || len(req.Password) > 1024 {
		s.writeError(w, r, sb.Invalid("password", "is required (at most 1024 characters)"))
		return
	}
	addr := s.clientAddr(r)
	key := throttleKey(addr)
	// The address's failures first: a throttled attempt is refused without
	// looking at the password. Only this address waits; others do not.
	if wait := s.failures.wait(key, time.Now()); wait > 0 {
		s.refuseLogin(w, r, req.Username, addr, wait)
		return
	}
	if wait, ok := s.logins.allow("ip:" + key); !ok {
		s.refuseLogin(w, r, req.Username, addr, wait)
		return
	}
	u, err := s.checkLogin(r.Context(), req.Username, req.Password)
	switch {
	case errors.Is(err, errBadLogin):
		s.loginFailed(r, req.Username, addr, key)
		s.writeError(w, r, sb.Errorf(sb.EUnauthorized, "invalid username or password"))
		return
	case errors.Is(err, auth.ErrBusy):
		s.metrics.loginRefused.WithLabelValues(loginBusy).Inc()
		s.passwordsBusy(w, r)
		return
	case err != nil:
		s.writeError(w, r, err)
		return
	}
	s.failures.succeeded(key)
	sess, err := s.startSession(w, r, u, s.clock.Now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.logger.InfoContext(r.Context(), "login", "username", u.Username, "role", u.Role.String(), "must_change_password", u.MustChangePassword)
	writeJSON(w, http.StatusOK, meResponse{Name: u.Username, Kind: "user", Role: u.Role, CSRFToken: sess.CSRFToken,
		ExpiresAt: &sess.ExpiresAt, MustChangePassword: u.MustChangePassword})
}

// errBadLogin is checkLogin's answer to a wrong username or password.
var errBadLogin = errors.New("invalid username or password")

// checkLogin returns the user whose username and password these are, or
// errBadLogin, in about the same time whether the user exists or not. It
// holds one of the server's password hashing slots while it looks, so that
// a burst of logins waits in line rather than hashing all at once; it
// returns auth.ErrBusy when no slot came free in time (before it looked).
func (s *Server) checkLogin(ctx context.Context, username, password string) (sb.User, error) {
	release, err := s.passwords.Acquire(ctx)
	if err != nil {
		return sb.User{}, err
	}
	defer release()
	u, err := s.store.GetUser(ctx, username)
	if sb.IsCode(err, sb.ENotFound) {
		// Spend the same time as a real check so that timing does not reveal users.
		_ = auth.VerifyPassword(dummyHash(), password)
		return sb.User{}, errBadLogin
	}
	if err != nil {
		return sb.User{}, err
	}
	if u.PasswordHash == "" || u.Disabled {
		// A user of single sign-on has no password; a disabled one may not
		// log in. Both answer as a wrong password, in the same time.
		_ = auth.VerifyPassword(dummyHash(), password)
		return sb.User{}, errBadLogin
	}
	if err := auth.VerifyPassword(u.PasswordHash, password); err != nil {
		if !errors.Is(err, auth.ErrMismatch) {
			s.logger.ErrorContext(ctx, "verify password", "username", u.Username, "err", err.Error())
		}
		return sb.User{}, errBadLogin
	}
	return u, nil
}

// passwordsBusy answers a request that found no password hashing slot in
// time: 503 with Retry-After, as a request shed by admission control, and
// without a log line above debug, since a burst may bring thousands.
func (s *Server) passwordsBusy(w http.ResponseWriter, r *http.Request) {
	s.logger.DebugContext(r.Context(), "password check shed", "request_id", requestID(r.Context()), "route", r.Pattern)
	writeShed(w, "server busy checking passwords: retry in a few seconds")
}

// hashSlot takes a password hashing slot for a request that hashes a
// password, or answers it (busy, or its client went away) and returns false.
func (s *Server) hashSlot(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	release, err := s.passwords.Acquire(r.Context())
	if errors.Is(err, auth.ErrBusy) {
		s.passwordsBusy(w, r)
		return nil, false
	}
	if err != nil {
		s.writeError(w, r, err)
		return nil, false
	}
	return release, true
}

// anonymous is the actor of the audit entries of refused logins.
func anonymous(username string) sb.Actor {
	return sb.Actor{Kind: "anonymous", Name: username, Role: sb.RoleAnonymous}
}

// loginFailed records a wrong username or password from addr: the address
// is slowed down, and the refusal logged, audited and counted.
func (s *Server) loginFailed(r *http.Request, username, addr, key string) {
	wait := s.failures.failed(key, time.Now())
	s.metrics.loginRefused.WithLabelValues(loginInvalid).Inc()
	s.logger.InfoContext(r.Context(), "login failed", "username", username, "remote", addr)
	after := map[string]any{"remote": addr, "reason": loginInvalid}
	if wait > 0 {
		after["retryAfterSeconds"] = int(wait.Seconds() + 0.999)
	}
	s.audit(r, sb.AuditEntry{At: s.clock.Now(), Actor: anonymous(username), Action: "session.login_failed", Target: username, After: mustJSON(after)})
}

// refuseLogin answers 429 to an attempt from an address that must wait; the
// refusal is logged, audited and counted.
func (s *Server) refuseLogin(w http.ResponseWriter, r *http.Request, username, addr string, wait time.Duration) {
	s.metrics.loginRefused.WithLabelValues(loginThrottled).Inc()
	s.logger.InfoContext(r.Context(), "login throttled", "username", username, "remote", addr, "retry_after", wait.String())
	s.audit(r, sb.AuditEntry{At: s.clock.Now(), Actor: anonymous(username), Action: "session.login_throttled", Target: username,
		After: mustJSON(map[string]any{"remote": addr, "reason": loginThrottled, "retryAfterSeconds": int(wait.Seconds() + 0.999)})})
	s.writeRateLimited(w, r, wait, "too many failed logins from this address: retry later")
}

// audit appends an entry that goes with no other change; a failure to write
// it is logged, not answered.
func (s *Server) audit(r *http.Request, e sb.AuditEntry) {
	if err := s.store.AppendAudit(r.Context(), e); err != nil {
		s.logger.ErrorContext(r.Context(), "append audit entry", "action", e.Action, "err", err.Error())
	}
}

// dummyHash is verified against when a login names no user. It is made on
// first use: hashing is slow on purpose and must not delay start-up.
var dummyHash = sync.OnceValue(func() string {
	h, err := auth.HashPassword("switchboard-dummy-password")
	if err != nil {
		panic(err)
	}
	return h
})

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		hash := auth.HashToken(c.Value)
		sess, err := s.store.SessionByHash(r.Context(), hash, s.clock.Now())
		if err == nil && !auth.Equal(r.Header.Get(csrfHeader), sess.CSRFToken) {
			s.writeError(w, r, sb.Errorf(sb.EForbidden, "missing or invalid %s header", csrfHeader))
			return
		}
		if err := s.store.DeleteSession(r.Context(), hash, s.sessionAudit(r, sess.Username, "session.logout", s.clock.Now())); err != nil && !sb.IsCode(err, sb.ENotFound) {
			s.writeError(w, r, err)
			return
		}
		// The streams opened with the session end with it.
		s.EndPrincipal(SessionPrincipal(hash))
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1, Secure: s.secureCookies(r)})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	id := identityFrom(r.Context())
	resp := meResponse{Name: id.actor.Name, Kind: id.actor.Kind, Role: id.actor.Role}
	if id.session != nil {
		resp.CSRFToken, resp.ExpiresAt = id.session.CSRFToken, &id.session.ExpiresAt
		resp.MustChangePassword = id.session.MustChangePassword
	}
	writeJSON(w, http.StatusOK, resp)
}

type tokenRequest struct {
	Name string `json:"name"`
	Role string `json:"role"`
}

type tokenCreated struct {
	sb.APIToken
	Token string `json:"token"`
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Name == "" || len(req.Name) > 100 || strings.ContainsAny(req.Name, "\x00\r\n") {
		s.writeError(w, r, sb.Invalid("name", "is required: at most 100 characters on one line"))
		return
	}
	role, ok := sb.ParseTokenRole(req.Role)
	if !ok {
		s.writeError(w, r, sb.Invalid("role", "must be client, admin, superadmin or agent"))
		return
	}
	token := auth.NewToken()
	t := sb.APIToken{ID: auth.NewID(), Name: req.Name, Role: role, Hash: auth.HashToken(token), CreatedAt: s.clock.Now()}
	audit := sb.AuditEntry{Actor: sb.ActorFrom(r.Context()), Action: "token.create", Target: t.ID, At: t.CreatedAt,
		After: mustJSON(map[string]any{"id": t.ID, "name": t.Name, "role": t.Role})}
	if err := s.store.CreateAPIToken(r.Context(), t, audit); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.logger.InfoContext(r.Context(), "token created", "token_id", t.ID, "name", t.Name, "role", role.String())
	writeJSON(w, http.StatusCreated, tokenCreated{APIToken: t, Token: token})
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := s.store.ListAPITokens(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ts == nil {
		ts = []sb.APIToken{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": ts})
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !tokenIDRE.MatchString(id) {
		s.writeError(w, r, sb.Invalid("id", "is not a token id"))
		return
	}
	now := s.clock.Now()
	audit := sb.AuditEntry{Actor: sb.ActorFrom(r.Context()), Action: "token.revoke", Target: id, At: now}
	if err := s.store.RevokeAPIToken(r.Context(), id, now, audit); err != nil {
		s.writeError(w, r, err)
		return
	}
	// The event streams opened with the token end now, not at their next
	// request (they make none).
	s.EndPrincipal(TokenPrincipal(id))
	s.logger.InfoContext(r.Context(), "token revoked", "token_id", id)
	w.WriteHeader(http.StatusNoContent)
}

// tokenIDRE matches token ids: auth.NewID makes hex digits, earlier ids were base64url.
var tokenIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// clientIP is the remote address of the connection. X-Forwarded-For is not
// trusted: a proxy in front of Switchboard should rate limit at its edge.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// limiterSet keeps a token bucket per key, forgetting idle ones: every
// minute, and as soon as a second has passed when it holds maxLimiterKeys,
// so that a client with many addresses cannot fill memory between sweeps.
type limiterSet struct {
	every time.Duration
	burst int

	mu   sync.Mutex
	m    map[string]*limiterEntry
	last time.Time // last sweep
}

type limiterEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiterSet(every time.Duration, burst int) *limiterSet {
	return &limiterSet{every: every, burst: burst, m: map[string]*limiterEntry{}}
}

// maxLimiterKeys is how many buckets a limiterSet holds before it forgets
// the idle ones ahead of its minute.
const maxLimiterKeys = 1 << 16

// writeRateLimited answers 429 with msg, and Retry-After: wait in whole
// seconds, rounded up.
func (s *Server) writeRateLimited(w http.ResponseWriter, r *http.Request, wait time.Duration, msg string) {
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
	s.writeError(w, r, sb.Errorf(sb.ERateLimited, "%s", msg))
}

// allow takes one token from the bucket of every key; when any is empty it
// takes none and says how long to wait.
func (l *limiterSet) allow(keys ...string) (time.Duration, bool) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if since := now.Sub(l.last); since > time.Minute || (len(l.m) >= maxLimiterKeys && since > time.Second) {
		for k, e := range l.m {
			if now.Sub(e.seen) > time.Duration(l.burst)*l.every {
				delete(l.m, k)
			}
		}
		l.last = now
	}
	rs := make([]*rate.Reservation, 0, len(keys))
	var wait time.Duration
	for _, k := range keys {
		e := l.m[k]
		if e == nil {
			e = &limiterEntry{lim: rate.NewLimiter(rate.Every(l.every), l.burst)}
			l.m[k] = e
		}
		e.seen = now
		res := e.lim.ReserveN(now, 1)
		rs = append(rs, res)
		wait = max(wait, res.DelayFrom(now))
	}
	if wait > 0 {
		for _, res := range rs {
			res.CancelAt(now)
		}
		return wait, false
	}
	return 0, true
}
