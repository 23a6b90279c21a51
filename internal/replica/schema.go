// Package replica coordinates several Switchboard replicas that share one
// PostgreSQL database: a cross-replica event bus (Events) and leadership for
// scheduled work (Leader). A single node on SQLite needs neither: its bus is
// the in-process hub, and it is always the leader (Solo).
package replica

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/switchboardhq/switchboard/internal/sqlstore"
)

// schema is the tables of this package. They are created here rather than in
// the store's migrations because only replicated (PostgreSQL) deployments have
// them; the statements are idempotent and run under the store's migration lock.
const schema = `
CREATE TABLE IF NOT EXISTS switchboard_events (
    id       BIGSERIAL   PRIMARY KEY, -- the event id, the same on every replica
    replica  TEXT        NOT NULL,    -- the replica that published it
    type     TEXT        NOT NULL,
    audience INTEGER     NOT NULL,
    at       TIMESTAMPTZ NOT NULL,
    data     TEXT        NOT NULL     -- JSON
);
CREATE TABLE IF NOT EXISTS switchboard_leases (
    name       TEXT        PRIMARY KEY,
    holder     TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);`

// EnsureSchema creates the tables of this package if they are missing. Replicas
// may call it at the same time.
func EnsureSchema(ctx context.Context, db *sql.DB) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("replica: schema: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, sqlstore.MigrationLockKey); err != nil {
		return fmt.Errorf("replica: schema: lock: %w", err)
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("replica: schema: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("replica: schema: %w", err)
	}
	return nil
}
