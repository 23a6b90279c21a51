package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/switchboardhq/switchboard"
)

// Audit page sizes.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 1000
)

// insertAudit writes e in tx. A zero At is the clock's time, a zero Actor the
// actor of ctx, and an empty Action or Target the given defaults.
func (s *Store) insertAudit(ctx context.Context, tx *sql.Tx, e switchboard.AuditEntry, action, target string) error {
	if e.Action == "" {
		e.Action = action
	}
	if e.Target == "" {
		e.Target = target
	}
	if e.Actor == (switchboard.Actor{}) {
		e.Actor = switchboard.ActorFrom(ctx)
	}
	if e.Action == "" {
		return switchboard.Invalid("action", "is required")
	}
	if len(e.Before) > 0 && !json.Valid(e.Before) {
		return switchboard.Invalid("before", "must be JSON")
	}
	if len(e.After) > 0 && !json.Valid(e.After) {
		return switchboard.Invalid("after", "must be JSON")
	}
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO audit_log
		(at, actor_kind, actor_name, actor_role, action, target, before, after)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`),
		dbTime(s.nowOr(e.At)), e.Actor.Kind, e.Actor.Name, int(e.Actor.Role),
		e.Action, e.Target, nullJSON(e.Before), nullJSON(e.After))
	return err
}

func nullJSON(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	return string(raw)
}

// AppendAudit records an entry that is not tied to another change, such as a
// login. A zero At is the clock's time and a zero Actor the actor of ctx.
func (s *Store) AppendAudit(ctx context.Context, e switchboard.AuditEntry) error {
	return wrap("append audit", s.write(ctx, func(tx *sql.Tx) error {
		return s.insertAudit(ctx, tx, e, "", "")
	}))
}

// ListAudit returns entries newest first: of one target when f.Target is set,
// older than f.BeforeID when it is set, at most f.Limit (100 when 0, at most 1000).
func (s *Store) ListAudit(ctx context.Context, f switchboard.AuditFilter) ([]switchboard.AuditEntry, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = defaultAuditLimit
	}
	limit = min(limit, maxAuditLimit)
	query := `SELECT id, at, actor_kind, actor_name, actor_role, action, target, before, after
		FROM audit_log WHERE 1 = 1`
	var args []any
	if f.Target != "" {
		query += ` AND target = ?`
		args = append(args, f.Target)
	}
	if f.BeforeID > 0 {
		query += ` AND id < ?`
		args = append(args, f.BeforeID)
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, wrap("list audit", err)
	}
	defer rows.Close()
	entries := []switchboard.AuditEntry{}
	for rows.Next() {
		var (
			e             switchboard.AuditEntry
			at            int64
			role          int
			before, after sql.NullString
		)
		if err := rows.Scan(&e.ID, &at, &e.Actor.Kind, &e.Actor.Name, &role, &e.Action, &e.Target, &before, &after); err != nil {
			return nil, wrap("list audit", err)
		}
		e.At, e.Actor.Role = goTime(at), switchboard.Role(role)
		if before.Valid {
			e.Before = json.RawMessage(before.String)
		}
		if after.Valid {
			e.After = json.RawMessage(after.String)
		}
		entries = append(entries, e)
	}
	return entries, wrap("list audit", rows.Err())
}
