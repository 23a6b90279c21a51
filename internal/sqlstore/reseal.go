package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/secrets"
)

// resealLegacy seals again, bound to their provider's destination, the
// credentials that an earlier version sealed unbound, so that an upgrade keeps
// every credential and leaves none readable at another destination. Values
// that do not open (another secret key) are left as they are: reading them
// reports the error, as before. Each row is replaced only if it still holds
// the value read, so replicas starting together do not undo each other.
func (s *Store) resealLegacy(ctx context.Context) error {
	type legacyRow struct {
		name, kind, config string
		sealed             []byte
	}
	rows, err := s.r.QueryContext(ctx, `SELECT name, kind, config, credentials FROM providers WHERE credentials IS NOT NULL`)
	if err != nil {
		return fmt.Errorf("reseal credentials: %w", err)
	}
	var todo []legacyRow
	for rows.Next() {
		var r legacyRow
		if err := rows.Scan(&r.name, &r.kind, &r.config, &r.sealed); err != nil {
			rows.Close()
			return fmt.Errorf("reseal credentials: %w", err)
		}
		if !secrets.IsBound(r.sealed) {
			todo = append(todo, r)
		}
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("reseal credentials: %w", err)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reseal credentials: %w", err)
	}
	for _, r := range todo {
		p := switchboard.Provider{Name: r.name, Kind: switchboard.Kind(r.kind)}
		if err := json.Unmarshal([]byte(r.config), &p.Config); err != nil {
			continue // reading the provider reports it
		}
		c, legacy, err := s.openCredentials(p, r.sealed)
		if err != nil || !legacy {
			continue
		}
		p.Credentials = c
		sealed, err := s.sealCredentials(p)
		if err != nil {
			return fmt.Errorf("reseal credentials of provider %s: %w", r.name, err)
		}
		err = s.write(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, s.q(`UPDATE providers SET credentials = ? WHERE name = ? AND credentials = ?`), sealed, r.name, r.sealed)
			return err
		})
		if err != nil {
			return fmt.Errorf("reseal credentials of provider %s: %w", r.name, err)
		}
	}
	return nil
}
