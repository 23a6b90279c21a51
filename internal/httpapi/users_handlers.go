package httpapi

import (
	"errors"
	"net/http"
	"regexp"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/auth"
)

// usernameRE is what a username may be: lowercase letters, digits and
// . _ @ + -, starting with a letter or digit, at most 64 characters (an
// e-mail address of single sign-on fits).
var usernameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._@+-]{0,63}$`)

const usernameRule = "must be 1 to 64 lowercase letters, digits or . _ @ + -, starting with a letter or digit"

// userView is a user as the API shows it: never a password or its hash.
type userView struct {
	Username           string     `json:"username"`
	Role               sb.Role    `json:"role"`
	Enabled            bool       `json:"enabled"`
	SSO                bool       `json:"sso"`
	MustChangePassword bool       `json:"mustChangePassword"`
	CreatedAt          time.Time  `json:"createdAt"`
	LastLoginAt        *time.Time `json:"lastLoginAt"`
}

func viewUser(u sb.User) userView {
	return userView{Username: u.Username, Role: u.Role, Enabled: !u.Disabled, SSO: u.SSO(),
		MustChangePassword: u.MustChangePassword, CreatedAt: u.CreatedAt, LastLoginAt: u.LastLoginAt}
}

// userCreate is the body of POST /api/users.
type userCreate struct {
	Username string `json:"username"`
	Role     string `json:"role"`
	Password string `json:"password"`
}

// userUpdate is the body of PUT /api/users/{username}: the fields to change.
// A password sets a temporary password, to be changed at the next login.
type userUpdate struct {
	Role     *string `json:"role"`
	Enabled  *bool   `json:"enabled"`
	Password *string `json:"password"`
}

// passwordChange is the body of PUT /api/auth/password.
type passwordChange struct {
	CurrentPassword string `json:"currentPassword"`
	NewPassword     string `json:"newPassword"`
}

// userRole parses the role of a user: admin or superadmin.
func userRole(field, s string) (sb.Role, error) {
	role, ok := sb.ParseRole(s)
	if !ok || role < sb.RoleAdmin {
		return 0, sb.Invalid(field, "must be admin or superadmin")
	}
	return role, nil
}

// validate checks a new user and returns it with its temporary password hashed.
func (c userCreate) validate() (sb.User, error) {
	if !usernameRE.MatchString(c.Username) {
		return sb.User{}, sb.Invalid("username", usernameRule)
	}
	role, err := userRole("role", c.Role)
	if err != nil {
		return sb.User{}, err
	}
	if c.Password == "" {
		return sb.User{}, sb.Invalid("password", "is required: the temporary password the user changes at the first login")
	}
	if why := auth.CheckPassword(c.Username, c.Password); why != "" {
		return sb.User{}, sb.Invalid("password", "%s", why)
	}
	return sb.User{Username: c.Username, Role: role, MustChangePassword: true}, nil
}

// validate checks an update and returns the role and whether a password is
// set; the password is checked against the policy of username.
func (u userUpdate) validate(username string) (role sb.Role, err error) {
	if u.Role == nil && u.Enabled == nil && u.Password == nil {
		return 0, sb.Invalid("body", "names nothing to change: send role, enabled or password")
	}
	if u.Role != nil {
		if role, err = userRole("role", *u.Role); err != nil {
			return 0, err
		}
	}
	if u.Password != nil {
		if why := auth.CheckPassword(username, *u.Password); why != "" {
			return 0, sb.Invalid("password", "%s", why)
		}
	}
	return role, nil
}

func (c passwordChange) validate(username string) error {
	if c.CurrentPassword == "" || len(c.CurrentPassword) > auth.MaxPasswordLength {
		return sb.Invalid("currentPassword", "is required (at most 1024 bytes)")
	}
	if c.NewPassword == "" {
		return sb.Invalid("newPassword", "is required")
	}
	if why := auth.CheckPassword(username, c.NewPassword); why != "" {
		return sb.Invalid("newPassword", "%s", why)
	}
	if c.NewPassword == c.CurrentPassword {
		return sb.Invalid("newPassword", "must differ from the current password")
	}
	return nil
}

// pathUsername reads and checks the {username} of the path.
func pathUsername(r *http.Request) (string, error) {
	name := r.PathValue("username")
	if !usernameRE.MatchString(name) {
		return "", sb.Invalid("username", usernameRule)
	}
	return name, nil
}

// sessionAudit is the audit entry of a login or a logout of username.
func (s *Server) sessionAudit(r *http.Request, username, action string, at time.Time) sb.AuditEntry {
	actor := sb.ActorFrom(r.Context())
	if actor == (sb.Actor{}) {
		actor = sb.Actor{Kind: "user", Name: username}
	}
	return sb.AuditEntry{Actor: actor, Action: action, Target: username, At: at}
}

// sessionsEnded is called once a user's sessions were deleted (the user was
// disabled or deleted, or its password changed): the per-request
// authentication already refuses them; the event streams they still hold
// open end here, on every replica.
func (s *Server) sessionsEnded(username string) {
	s.EndPrincipal(UserPrincipal(username))
	if s.onSessionsEnded != nil {
		s.onSessionsEnded(username)
	}
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	us, err := s.store.ListUsers(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]userView, len(us))
	for i, u := range us {
		out[i] = viewUser(u)
	}
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request) {
	name, err := pathUsername(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.store.GetUser(r.Context(), name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, viewUser(u))
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) {
	var req userCreate
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := req.validate()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	release, ok := s.hashSlot(w, r)
	if !ok {
		return
	}
	u.PasswordHash, err = auth.HashPassword(req.Password)
	release()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u.CreatedAt = s.clock.Now()
	audit := sb.AuditEntry{Actor: sb.ActorFrom(r.Context()), Action: "user.create", Target: u.Username, At: u.CreatedAt}
	if err := s.store.AddUser(r.Context(), u, audit); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.logger.InfoContext(r.Context(), "user created", "username", u.Username, "role", u.Role.String())
	writeJSON(w, http.StatusCreated, viewUser(u))
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) {
	name, err := pathUsername(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var req userUpdate
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	role, err := req.validate(name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var hash string
	if req.Password != nil {
		release, ok := s.hashSlot(w, r)
		if !ok {
			return
		}
		hash, err = auth.HashPassword(*req.Password)
		release()
		if err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	action := "user.update"
	if req.Password != nil {
		action = "user.password.reset"
	}
	audit := sb.AuditEntry{Actor: sb.ActorFrom(r.Context()), Action: action, Target: name, At: s.clock.Now()}
	_, after, ended, err := s.store.UpdateUser(r.Context(), name, func(u sb.User) (sb.User, error) {
		if req.Password != nil {
			if u.SSO() {
				return u, sb.Invalid("password", "a user of single sign-on has no local password")
			}
			u.PasswordHash, u.MustChangePassword = hash, true
		}
		if req.Role != nil {
			u.Role = role
		}
		if req.Enabled != nil {
			u.Disabled = !*req.Enabled
		}
		return u, nil
	}, audit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ended {
		s.sessionsEnded(name)
	}
	s.logger.InfoContext(r.Context(), "user updated", "username", name, "role", after.Role.String(),
		"enabled", !after.Disabled, "password_reset", req.Password != nil, "sessions_ended", ended)
	writeJSON(w, http.StatusOK, viewUser(after))
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	name, err := pathUsername(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	audit := sb.AuditEntry{Actor: sb.ActorFrom(r.Context()), Action: "user.delete", Target: name, At: s.clock.Now()}
	if _, err := s.store.DeleteUser(r.Context(), name, audit); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.sessionsEnded(name)
	s.logger.InfoContext(r.Context(), "user deleted", "username", name)
	w.WriteHeader(http.StatusNoContent)
}

// changePassword changes the caller's own password. It needs a dashboard
// session: API tokens belong to no user. Every session of the user ends,
// and the caller gets a new one (a new cookie and CSRF token).
func (s *Server) changePassword(w http.ResponseWriter, r *http.Request) {
	id := identityFrom(r.Context())
	if id.session == nil {
		s.writeError(w, r, sb.Errorf(sb.EForbidden, "changing a password needs a dashboard session: API tokens belong to no user"))
		return
	}
	var req passwordChange
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	username := id.session.Username
	if err := req.validate(username); err != nil {
		s.writeError(w, r, err)
		return
	}
	if wait, ok := s.logins.allow("password:" + username); !ok {
		s.writeRateLimited(w, r, wait, "too many password change attempts: retry later")
		return
	}
	u, err := s.store.GetUser(r.Context(), username)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if u.SSO() {
		s.writeError(w, r, sb.Errorf(sb.EForbidden, "a user of single sign-on changes its password at its identity provider"))
		return
	}
	release, ok := s.hashSlot(w, r)
	if !ok {
		return
	}
	if err := auth.VerifyPassword(u.PasswordHash, req.CurrentPassword); err != nil {
		release()
		if !errors.Is(err, auth.ErrMismatch) {
			s.logger.ErrorContext(r.Context(), "verify password", "username", username, "err", err.Error())
		}
		s.writeError(w, r, sb.Invalid("currentPassword", "is not the current password"))
		return
	}
	hash, err := auth.HashPassword(req.NewPassword)
	release()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.clock.Now()
	audit := sb.AuditEntry{Actor: sb.ActorFrom(r.Context()), Action: "user.password.change", Target: username, At: now}
	_, after, _, err := s.store.UpdateUser(r.Context(), username, func(cur sb.User) (sb.User, error) {
		if cur.PasswordHash != u.PasswordHash {
			return cur, sb.Errorf(sb.EConflict, "the password changed meanwhile: log in again")
		}
		cur.PasswordHash, cur.MustChangePassword = hash, false
		return cur, nil
	}, audit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.sessionsEnded(username)
	s.logger.InfoContext(r.Context(), "password changed", "username", username)
	sess, err := s.startSession(w, r, after, now)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, meResponse{Name: after.Username, Kind: "user", Role: after.Role,
		CSRFToken: sess.CSRFToken, ExpiresAt: &sess.ExpiresAt})
}

// startSession stores a new session of u, audited, and sets its cookie.
func (s *Server) startSession(w http.ResponseWriter, r *http.Request, u sb.User, now time.Time) (sb.Session, error) {
	token := auth.NewSessionToken()
	sess := sb.Session{
		Hash: auth.HashToken(token), Username: u.Username, Role: u.Role, MustChangePassword: u.MustChangePassword,
		CSRFToken: auth.NewSessionToken(), CreatedAt: now, ExpiresAt: now.Add(s.ttl),
	}
	if err := s.store.CreateSession(r.Context(), sess, s.sessionAudit(r, u.Username, "session.login", now)); err != nil {
		return sb.Session{}, err
	}
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: token, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: s.secureCookies(r),
		Expires: sess.ExpiresAt, MaxAge: int(s.ttl.Seconds()),
	})
	return sess, nil
}

// duringPasswordChange reports whether a session that must change its
// password may call the route: only to change it, see who it is, or leave.
func duringPasswordChange(rt route) bool {
	switch rt.Method + " " + rt.Path {
	case "PUT /api/auth/password", "GET /api/auth/me", "POST /api/auth/logout":
		return true
	}
	return false
}
