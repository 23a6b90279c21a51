package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"

	"github.com/switchboardhq/switchboard"
)

// settingsLock serialises the changes to the settings, whose row may not
// exist yet.
const settingsLock = "switchboard.settings"

// GetSettings returns the settings set so far; the others are zero.
func (s *Store) GetSettings(ctx context.Context) (switchboard.Settings, error) {
	set, err := readSettings(ctx, s.r, "")
	return set, wrap("get settings", err)
}

// readSettings reads the settings row through q, with lock appended to the
// query (a row lock in a write transaction).
func readSettings(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, lock string) (switchboard.Settings, error) {
	var set switchboard.Settings
	var data string
	err := q.QueryRowContext(ctx, `SELECT data FROM settings WHERE id = 1`+lock).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return set, nil
	}
	if err != nil {
		return set, err
	}
	if err := json.Unmarshal([]byte(data), &set); err != nil {
		return set, err
	}
	return set, nil
}

// UpdateSettings reads the settings set so far, filled from defaults, calls
// fn on them and, in one transaction, sets the fields fn changed (refusing
// one out of range with EInvalid naming it) and writes audit (default action settings.update, target "settings") with the
// settings before and after, defaults filled in. When fn changes nothing,
// nothing is written. fn's error is returned as it is.
func (s *Store) UpdateSettings(ctx context.Context, defaults switchboard.Settings, fn func(switchboard.Settings) (switchboard.Settings, error), audit switchboard.AuditEntry) (before, after switchboard.Settings, err error) {
	var fnErr error
	err = s.write(ctx, func(tx *sql.Tx) error {
		if err := s.lockKey(ctx, tx, settingsLock); err != nil {
			return err
		}
		set, err := readSettings(ctx, tx, s.d.lockRow)
		if err != nil {
			return err
		}
		before = set.Or(defaults)
		a, err := fn(before)
		if err != nil {
			fnErr = err
			return err
		}
		// Only the settings set are checked: the defaults are the server's.
		set = set.Set(before, a)
		if err := set.Validate(); err != nil {
			return err
		}
		after = a
		if after == before {
			return nil
		}
		data, err := json.Marshal(set)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO settings (id, data, updated_at) VALUES (1, ?, ?)
			ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`),
			string(data), dbTime(s.clock.Now())); err != nil {
			return err
		}
		if audit.Before, err = json.Marshal(before); err != nil {
			return err
		}
		if audit.After, err = json.Marshal(after); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, audit, "settings.update", "settings")
	})
	if fnErr != nil {
		return switchboard.Settings{}, switchboard.Settings{}, fnErr
	}
	if err != nil {
		return switchboard.Settings{}, switchboard.Settings{}, wrap("update settings", err)
	}
	return before, after, nil
}
