package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
)

type migration struct {
	version int
	name    string
	sql     string
}

func sortMigrations(ms []migration) {
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
}

// migrate applies, in order, the migrations not yet recorded in
// schema_migrations, each in its own write transaction together with its
// record. Whether a migration is applied is checked inside that transaction,
// so processes opening the same database at once apply each migration once.
// A database that has a migration this build does not know is refused: it was
// written by a newer Switchboard. On PostgreSQL it all runs under an advisory
// lock, since concurrent CREATE TABLE IF NOT EXISTS can fail there.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := s.d.migrationFiles()
	if err != nil {
		return fmt.Errorf("sqlstore: migrations: %w", err)
	}
	unlock, err := s.migrationLock(ctx)
	if err != nil {
		return fmt.Errorf("sqlstore: migrations: %w", err)
	}
	defer unlock()
	// In a write transaction: as a lone statement it would read the schema,
	// then upgrade to a write lock, which a concurrent Open can make fail at once.
	if err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.d.migrationsTable)
		return err
	}); err != nil {
		return fmt.Errorf("sqlstore: create schema_migrations: %w", err)
	}
	var latest sql.NullInt64
	if err := s.w.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&latest); err != nil {
		return fmt.Errorf("sqlstore: read schema version: %w", err)
	}
	if len(ms) > 0 && latest.Valid && latest.Int64 > int64(ms[len(ms)-1].version) {
		return fmt.Errorf("sqlstore: database schema version %d is newer than this build knows (%d): upgrade Switchboard",
			latest.Int64, ms[len(ms)-1].version)
	}
	for _, m := range ms {
		err := s.write(ctx, func(tx *sql.Tx) error {
			var n int
			if err := tx.QueryRowContext(ctx, s.d.rebind(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), m.version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, s.d.rebind(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
				m.version, m.name, dbTime(s.clock.Now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("sqlstore: migration %s: %w", m.name, err)
		}
	}
	return nil
}
