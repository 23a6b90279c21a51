package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/switchboardhq/switchboard"
)

const userColumns = `username, role, enabled, password_hash, must_change_password, sso_subject, created_at, last_login_at`

func scanUser(sc scanner) (switchboard.User, error) {
	var (
		u         switchboard.User
		role      int
		sso       sql.NullString
		createdAt int64
		lastLogin sql.NullInt64
	)
	var enabled bool
	if err := sc.Scan(&u.Username, &role, &enabled, &u.PasswordHash, &u.MustChangePassword, &sso, &createdAt, &lastLogin); err != nil {
		return u, err
	}
	u.Disabled = !enabled
	u.Role, u.SSOSubject, u.CreatedAt, u.LastLoginAt = switchboard.Role(role), sso.String, goTime(createdAt), goTimePtr(lastLogin)
	return u, nil
}

func userNotFound(username string) error {
	return switchboard.Errorf(switchboard.ENotFound, "user %s not found", username)
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// CreateUser stores a dashboard user without an audit entry: it is how the
// first user is made at start-up. A zero CreatedAt is the clock's time.
// Errors: EInvalid (no username), EConflict when the username is taken.
func (s *Store) CreateUser(ctx context.Context, u switchboard.User) error {
	return wrap("create user", s.addUser(ctx, u, nil))
}

// AddUser stores a user with its audit entry (default action user.create,
// After the user). A zero CreatedAt is the clock's time. Errors: EInvalid (no
// username), EConflict when the username or the SSO subject is taken.
func (s *Store) AddUser(ctx context.Context, u switchboard.User, audit switchboard.AuditEntry) error {
	return wrap("add user", s.addUser(ctx, u, &audit))
}

func (s *Store) addUser(ctx context.Context, u switchboard.User, audit *switchboard.AuditEntry) error {
	if u.Username == "" {
		return switchboard.Invalid("username", "is required")
	}
	u.CreatedAt = s.nowOr(u.CreatedAt)
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO users (`+userColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
			u.Username, int(u.Role), !u.Disabled, u.PasswordHash, u.MustChangePassword, nullString(u.SSOSubject),
			dbTime(u.CreatedAt), dbTimePtr(u.LastLoginAt))
		if s.d.isUnique(err) {
			return switchboard.Errorf(switchboard.EConflict, "user %s already exists", u.Username)
		}
		if err != nil || audit == nil {
			return err
		}
		a := *audit
		a.Before = nil
		if a.After, err = json.Marshal(u); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, a, "user.create", u.Username)
	})
}

// GetUser returns a user. Errors: ENotFound.
func (s *Store) GetUser(ctx context.Context, username string) (switchboard.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, s.q(`SELECT `+userColumns+` FROM users WHERE username = ?`), username))
	if errors.Is(err, sql.ErrNoRows) {
		return switchboard.User{}, userNotFound(username)
	}
	if err != nil {
		return switchboard.User{}, wrap("get user", err)
	}
	return u, nil
}

// UserBySSO returns the user of an SSO subject. Errors: ENotFound.
func (s *Store) UserBySSO(ctx context.Context, subject string) (switchboard.User, error) {
	if subject == "" {
		return switchboard.User{}, switchboard.Errorf(switchboard.ENotFound, "no user for an empty subject")
	}
	u, err := scanUser(s.r.QueryRowContext(ctx, s.q(`SELECT `+userColumns+` FROM users WHERE sso_subject = ?`), subject))
	if errors.Is(err, sql.ErrNoRows) {
		return switchboard.User{}, switchboard.Errorf(switchboard.ENotFound, "no user for this single sign-on identity")
	}
	if err != nil {
		return switchboard.User{}, wrap("user by sso", err)
	}
	return u, nil
}

// ListUsers returns every user, ordered by username.
func (s *Store) ListUsers(ctx context.Context) ([]switchboard.User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+userColumns+` FROM users ORDER BY username`)
	if err != nil {
		return nil, wrap("list users", err)
	}
	defer rows.Close()
	us := []switchboard.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, wrap("list users", err)
		}
		us = append(us, u)
	}
	return us, wrap("list users", rows.Err())
}

// CountUsers returns the number of users.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`).Scan(&n)
	return n, wrap("count users", err)
}

// superadminsKey is the lock taken by changes that may remove a superadmin,
// so that two concurrent ones cannot each leave the other as the last.
const superadminsKey = "users.superadmins"

// keepsASuperadmin returns EConflict when, once user is no longer an enabled
// superadmin, no other enabled superadmin would be left.
func (s *Store) keepsASuperadmin(ctx context.Context, tx *sql.Tx, username, what string) error {
	var n int
	if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM users WHERE role = ? AND enabled = ? AND username <> ?`),
		int(switchboard.RoleSuperadmin), true, username).Scan(&n); err != nil {
		return err
	}
	if n == 0 {
		return switchboard.Errorf(switchboard.EConflict, "%s is the last enabled superadmin: it cannot be %s", username, what)
	}
	return nil
}

func enabledSuperadmin(u switchboard.User) bool {
	return !u.Disabled && u.Role >= switchboard.RoleSuperadmin
}

// UpdateUser reads the user, calls fn on it and stores what fn returns, with
// its audit entry (default action user.update; Before and After the user).
// The username and the SSO subject cannot change (fn's changes to them are
// ignored). When the user is disabled or its password hash changes, its
// sessions are deleted in the same transaction and ended is true.
// Errors: ENotFound, EConflict (the last enabled superadmin would be
// disabled or demoted), fn's error.
func (s *Store) UpdateUser(ctx context.Context, username string, fn func(switchboard.User) (switchboard.User, error),
	audit switchboard.AuditEntry) (before, after switchboard.User, ended bool, err error) {
	err = s.write(ctx, func(tx *sql.Tx) error {
		if err := s.lockKey(ctx, tx, superadminsKey); err != nil {
			return err
		}
		b, err := scanUser(tx.QueryRowContext(ctx, s.q(`SELECT `+userColumns+` FROM users WHERE username = ?`+s.d.lockRow), username))
		if errors.Is(err, sql.ErrNoRows) {
			return userNotFound(username)
		}
		if err != nil {
			return err
		}
		a, err := fn(b)
		if err != nil {
			return err
		}
		a.Username, a.SSOSubject, a.CreatedAt, a.LastLoginAt = b.Username, b.SSOSubject, b.CreatedAt, b.LastLoginAt
		if enabledSuperadmin(b) && !enabledSuperadmin(a) {
			what := "demoted"
			if a.Disabled {
				what = "disabled"
			}
			if err := s.keepsASuperadmin(ctx, tx, username, what); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE users SET role = ?, enabled = ?, password_hash = ?, must_change_password = ?
			WHERE username = ?`), int(a.Role), !a.Disabled, a.PasswordHash, a.MustChangePassword, username); err != nil {
			return err
		}
		end := (!b.Disabled && a.Disabled) || a.PasswordHash != b.PasswordHash
		if end {
			if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE username = ?`), username); err != nil {
				return err
			}
		}
		if audit.Before, err = json.Marshal(b); err != nil {
			return err
		}
		if audit.After, err = json.Marshal(a); err != nil {
			return err
		}
		if err := s.insertAudit(ctx, tx, audit, "user.update", username); err != nil {
			return err
		}
		before, after, ended = b, a, end
		return nil
	})
	if err != nil {
		return switchboard.User{}, switchboard.User{}, false, wrap("update user", err)
	}
	return before, after, ended, nil
}

// DeleteUser deletes a user and its sessions, with its audit entry (default
// action user.delete; Before the user). Errors: ENotFound, EConflict (the
// last enabled superadmin).
func (s *Store) DeleteUser(ctx context.Context, username string, audit switchboard.AuditEntry) (switchboard.User, error) {
	var gone switchboard.User
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := s.lockKey(ctx, tx, superadminsKey); err != nil {
			return err
		}
		u, err := scanUser(tx.QueryRowContext(ctx, s.q(`SELECT `+userColumns+` FROM users WHERE username = ?`+s.d.forDelete), username))
		if errors.Is(err, sql.ErrNoRows) {
			return userNotFound(username)
		}
		if err != nil {
			return err
		}
		if enabledSuperadmin(u) {
			if err := s.keepsASuperadmin(ctx, tx, username, "deleted"); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE username = ?`), username); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM users WHERE username = ?`), username); err != nil {
			return err
		}
		audit.After = nil
		if audit.Before, err = json.Marshal(u); err != nil {
			return err
		}
		gone = u
		return s.insertAudit(ctx, tx, audit, "user.delete", username)
	})
	if err != nil {
		return switchboard.User{}, wrap("delete user", err)
	}
	return gone, nil
}

// CreateSession stores a session (the hash of its cookie, never the cookie)
// and records the login as the user's last, with its audit entry (default
// action session.create, target the username). A zero CreatedAt is the
// clock's time. It also deletes the sessions that have expired by then, so
// the table does not grow without bound.
// Errors: EInvalid (no hash, or no expiry), ENotFound when the user does not
// exist, EConflict when the hash is taken.
func (s *Store) CreateSession(ctx context.Context, sess switchboard.Session, audit switchboard.AuditEntry) error {
	if len(sess.Hash) == 0 {
		return switchboard.Invalid("hash", "is required")
	}
	if sess.ExpiresAt.IsZero() {
		return switchboard.Invalid("expiresAt", "is required")
	}
	sess.CreatedAt = s.nowOr(sess.CreatedAt)
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE expires_at <= ?`), dbTime(sess.CreatedAt)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO sessions (hash, username, role, csrf_token, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?)`), sess.Hash, sess.Username, int(sess.Role), sess.CSRFToken,
			dbTime(sess.CreatedAt), dbTime(sess.ExpiresAt))
		switch {
		case s.d.isUnique(err):
			return switchboard.Errorf(switchboard.EConflict, "session already exists")
		case s.d.isForeignKey(err):
			return userNotFound(sess.Username)
		case err != nil:
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE users SET last_login_at = ? WHERE username = ?`),
			dbTime(sess.CreatedAt), sess.Username); err != nil {
			return err
		}
		if audit.After == nil {
			audit.After, _ = json.Marshal(map[string]any{"username": sess.Username, "expiresAt": sess.ExpiresAt})
		}
		return s.insertAudit(ctx, tx, audit, "session.create", sess.Username)
	})
	return wrap("create session", err)
}

// SessionByHash returns the session with this hash if it expires after now
// and its user is enabled, with the user's role and MustChangePassword as
// they are now. Errors: ENotFound when it is missing, expired or its user
// disabled.
func (s *Store) SessionByHash(ctx context.Context, hash []byte, now time.Time) (switchboard.Session, error) {
	var (
		sess                 switchboard.Session
		role                 int
		createdAt, expiresAt int64
	)
	err := s.r.QueryRowContext(ctx, s.q(`SELECT s.hash, s.username, u.role, u.must_change_password, s.csrf_token, s.created_at, s.expires_at
		FROM sessions s JOIN users u ON u.username = s.username
		WHERE s.hash = ? AND s.expires_at > ? AND u.enabled = ?`), hash, dbTime(now), true).
		Scan(&sess.Hash, &sess.Username, &role, &sess.MustChangePassword, &sess.CSRFToken, &createdAt, &expiresAt)
	if errors.Is(err, sql.ErrNoRows) {
		return sess, switchboard.Errorf(switchboard.ENotFound, "session not found")
	}
	if err != nil {
		return switchboard.Session{}, wrap("session by hash", err)
	}
	sess.Role, sess.CreatedAt, sess.ExpiresAt = switchboard.Role(role), goTime(createdAt), goTime(expiresAt)
	return sess, nil
}

// DeleteSession deletes a session and, when there was one, writes its audit
// entry (default action session.delete, target the username). Deleting a
// session that does not exist is not an error, so that logging out twice is
// harmless.
func (s *Store) DeleteSession(ctx context.Context, hash []byte, audit switchboard.AuditEntry) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		var username string
		err := tx.QueryRowContext(ctx, s.q(`SELECT username FROM sessions WHERE hash = ?`+s.d.forDelete), hash).Scan(&username)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM sessions WHERE hash = ?`), hash); err != nil {
			return err
		}
		if audit.Actor.Name == "" {
			// The caller knew the cookie only: the actor is the session's user.
			audit.Actor = switchboard.Actor{Kind: "user", Name: username}
		}
		return s.insertAudit(ctx, tx, audit, "session.delete", username)
	})
	return wrap("delete session", err)
}
