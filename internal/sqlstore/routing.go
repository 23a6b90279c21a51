package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/switchboardhq/switchboard"
)

// routingLock serialises the changes to the routing configuration, whose row
// may not exist yet.
const routingLock = "switchboard.routing"

// GetRouting returns the routing configuration, the default when none was
// set.
func (s *Store) GetRouting(ctx context.Context) (switchboard.RoutingConfig, error) {
	c, err := readRouting(ctx, s.r, "")
	return c, wrap("get routing", err)
}

// readRouting reads the routing row through q, with lock appended to the
// query (a row lock in a write transaction).
func readRouting(ctx context.Context, q interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}, lock string) (switchboard.RoutingConfig, error) {
	var data string
	err := q.QueryRowContext(ctx, `SELECT data FROM routing WHERE id = 1`+lock).Scan(&data)
	if errors.Is(err, sql.ErrNoRows) {
		return switchboard.DefaultRoutingConfig(), nil
	}
	if err != nil {
		return switchboard.RoutingConfig{}, err
	}
	c := switchboard.DefaultRoutingConfig()
	if err := json.Unmarshal([]byte(data), &c); err != nil {
		return switchboard.RoutingConfig{}, err
	}
	return c.Clone(), nil
}

// UpdateRouting reads the configuration, calls fn on it and, in one
// transaction, writes what fn returns (refused with EInvalid naming the field
// when it does not validate) and audit (default action routing.update,
// target "routing") with the configuration before and after. When fn changes
// nothing, nothing is written. fn's error is returned as it is.
func (s *Store) UpdateRouting(ctx context.Context, fn func(switchboard.RoutingConfig) (switchboard.RoutingConfig, error), audit switchboard.AuditEntry) (before, after switchboard.RoutingConfig, err error) {
	var fnErr error
	err = s.write(ctx, func(tx *sql.Tx) error {
		if err := s.lockKey(ctx, tx, routingLock); err != nil {
			return err
		}
		cur, err := readRouting(ctx, tx, s.d.lockRow)
		if err != nil {
			return err
		}
		before = cur
		a, err := fn(cur.Clone())
		if err != nil {
			fnErr = err
			return err
		}
		a = a.Clone()
		if err := a.Validate(); err != nil {
			return err
		}
		after = a
		if after.Equal(before) {
			return nil
		}
		data, err := json.Marshal(after)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO routing (id, data, updated_at) VALUES (1, ?, ?)
			ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at`),
			string(data), dbTime(s.clock.Now())); err != nil {
			return err
		}
		if audit.Before, err = json.Marshal(before); err != nil {
			return err
		}
		audit.After = data
		return s.insertAudit(ctx, tx, audit, "routing.update", "routing")
	})
	if fnErr != nil {
		return switchboard.RoutingConfig{}, switchboard.RoutingConfig{}, fnErr
	}
	if err != nil {
		return switchboard.RoutingConfig{}, switchboard.RoutingConfig{}, wrap("update routing", err)
	}
	return before, after, nil
}

// CountRoutingStart counts one stream started on provider under the policy
// of scope at at, in the bucket of at's hour.
func (s *Store) CountRoutingStart(ctx context.Context, scope, provider string, at time.Time) error {
	return s.CountRoutingStarts(ctx, map[time.Time]switchboard.RoutingStarts{
		at.Truncate(time.Hour): {scope: {provider: 1}}})
}

// CountRoutingStarts adds, in one transaction, the starts counted in memory,
// by bucket (truncated to its hour), scope and provider. The rows are
// written in one order (bucket, scope, provider), so that replicas writing
// theirs at once on PostgreSQL wait for each other rather than deadlock.
func (s *Store) CountRoutingStarts(ctx context.Context, starts map[time.Time]switchboard.RoutingStarts) error {
	type row struct {
		bucket          time.Time
		scope, provider string
		n               int64
	}
	var rows []row
	for bucket, byScope := range starts {
		for scope, byProvider := range byScope {
			for provider, n := range byProvider {
				if n != 0 {
					rows = append(rows, row{bucket.Truncate(time.Hour), scope, provider, n})
				}
			}
		}
	}
	if len(rows) == 0 {
		return nil
	}
	slices.SortFunc(rows, func(a, b row) int {
		if c := a.bucket.Compare(b.bucket); c != 0 {
			return c
		}
		if c := strings.Compare(a.scope, b.scope); c != 0 {
			return c
		}
		return strings.Compare(a.provider, b.provider)
	})
	err := s.write(ctx, func(tx *sql.Tx) error {
		for _, r := range rows {
			if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO routing_starts (bucket, scope, provider, n) VALUES (?, ?, ?, ?)
				ON CONFLICT (bucket, scope, provider) DO UPDATE SET n = routing_starts.n + excluded.n`),
				dbTime(r.bucket), r.scope, r.provider, r.n); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap("count routing starts", err)
}

// RoutingStarts returns the starts counted in the buckets from since's hour
// on, by scope and provider, after deleting the buckets older than
// switchboard.CommitWindow before since.
func (s *Store) RoutingStarts(ctx context.Context, since time.Time) (switchboard.RoutingStarts, error) {
	out := switchboard.RoutingStarts{}
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM routing_starts WHERE bucket < ?`),
			dbTime(since.Add(-switchboard.CommitWindow).Truncate(time.Hour))); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, s.q(`SELECT scope, provider, SUM(n) FROM routing_starts WHERE bucket >= ? GROUP BY scope, provider`),
			dbTime(since.Truncate(time.Hour)))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var scope, provider string
			var n int64
			if err := rows.Scan(&scope, &provider, &n); err != nil {
				return err
			}
			if out[scope] == nil {
				out[scope] = map[string]int64{}
			}
			out[scope][provider] = n
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrap("routing starts", err)
	}
	return out, nil
}
