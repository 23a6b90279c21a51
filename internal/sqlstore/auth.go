package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/switchboardhq/switchboard"
)

const tokenColumns = `id, name, role, hash, created_at, last_used_at, revoked_at`

func scanToken(sc scanner) (switchboard.APIToken, error) {
	var (
		t                 switchboard.APIToken
		role              int
		createdAt         int64
		lastUsed, revoked sql.NullInt64
	)
	if err := sc.Scan(&t.ID, &t.Name, &role, &t.Hash, &createdAt, &lastUsed, &revoked); err != nil {
		return t, err
	}
	t.Role, t.CreatedAt = switchboard.Role(role), goTime(createdAt)
	t.LastUsedAt, t.RevokedAt = goTimePtr(lastUsed), goTimePtr(revoked)
	return t, nil
}

func tokenNotFound(id string) error {
	return switchboard.Errorf(switchboard.ENotFound, "token %s not found", id)
}

// CreateAPIToken stores a token (its hash, never the token) with its audit
// entry (default action token.create, After the token, which has no hash in
// JSON). A zero CreatedAt is the clock's time. Errors: EInvalid (no id or hash),
// EConflict when the id or the hash is taken.
func (s *Store) CreateAPIToken(ctx context.Context, t switchboard.APIToken, audit switchboard.AuditEntry) error {
	if t.ID == "" {
		return switchboard.Invalid("id", "is required")
	}
	if len(t.Hash) == 0 {
		return switchboard.Invalid("hash", "is required")
	}
	t.CreatedAt = s.nowOr(t.CreatedAt)
	after, err := json.Marshal(t)
	if err != nil {
		return wrap("create token", err)
	}
	audit.Before, audit.After = nil, after
	err = s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO api_tokens (`+tokenColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`),
			t.ID, t.Name, int(t.Role), t.Hash, dbTime(t.CreatedAt), dbTimePtr(t.LastUsedAt), dbTimePtr(t.RevokedAt))
		if s.d.isUnique(err) {
			return switchboard.Errorf(switchboard.EConflict, "token %s already exists", t.ID)
		}
		if err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, audit, "token.create", t.ID)
	})
	return wrap("create token", err)
}

// ListAPITokens returns every token, revoked ones included, newest first.
func (s *Store) ListAPITokens(ctx context.Context) ([]switchboard.APIToken, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+tokenColumns+` FROM api_tokens ORDER BY created_at DESC, id DESC`)
	if err != nil {
		return nil, wrap("list tokens", err)
	}
	defer rows.Close()
	ts := []switchboard.APIToken{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, wrap("list tokens", err)
		}
		ts = append(ts, t)
	}
	return ts, wrap("list tokens", rows.Err())
}

// RevokeAPIToken marks a token revoked at at (the clock's time when zero), with
// its audit entry (default action token.revoke, Before and After the token).
// Errors: ENotFound when there is no such unrevoked token.
func (s *Store) RevokeAPIToken(ctx context.Context, id string, at time.Time, audit switchboard.AuditEntry) error {
	at = s.nowOr(at)
	err := s.write(ctx, func(tx *sql.Tx) error {
		t, err := scanToken(tx.QueryRowContext(ctx, s.q(`SELECT `+tokenColumns+` FROM api_tokens
			WHERE id = ? AND revoked_at IS NULL`+s.d.lockRow), id))
		if errors.Is(err, sql.ErrNoRows) {
			return tokenNotFound(id)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE api_tokens SET revoked_at = ? WHERE id = ?`), dbTime(at), id); err != nil {
			return err
		}
		if audit.Before, err = json.Marshal(t); err != nil {
			return err
		}
		t.RevokedAt = &at
		if audit.After, err = json.Marshal(t); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, audit, "token.revoke", id)
	})
	return wrap("revoke token", err)
}

const qTokenByHash = `SELECT ` + tokenColumns + ` FROM api_tokens WHERE hash = ? AND revoked_at IS NULL`

// APITokenByHash returns the unrevoked token with this hash.
// Errors: ENotFound when there is none (missing or revoked).
func (s *Store) APITokenByHash(ctx context.Context, hash []byte) (switchboard.APIToken, error) {
	t, err := scanToken(s.readRow(ctx, qTokenByHash, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return t, switchboard.Errorf(switchboard.ENotFound, "token not found")
	}
	return t, wrap("token by hash", err)
}

// TouchAPIToken records that a token was used at at. It takes the writer, so
// callers should not touch a token on every request (once a minute is plenty).
// Errors: ENotFound.
func (s *Store) TouchAPIToken(ctx context.Context, id string, at time.Time) error {
	at = s.nowOr(at)
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.q(`UPDATE api_tokens SET last_used_at = ? WHERE id = ?`), dbTime(at), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return tokenNotFound(id)
		}
		return nil
	})
	return wrap("touch token", err)
}
