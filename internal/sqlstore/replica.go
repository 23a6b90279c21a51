package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboardhq/switchboard"
)

// What replicas that share a PostgreSQL database coordinate through (see
// internal/replica, which runs the loops): leases, of which one replica at a
// time holds each, and an event log that every replica reads in id order.
// The tables are those of migration 0005_replicas. A SQLite database serves
// one node, so these methods fail on it: SupportsReplicas tells.

// eventsChannel is the PostgreSQL NOTIFY channel on which an appended event's
// id is announced.
const eventsChannel = "switchboard_events"

// eventsLockKey is the advisory lock that serialises appends to the event log,
// so that ids become visible in increasing order and reading "after the last
// id" never skips one.
const eventsLockKey int64 = 0x5377_6974_6368_0002 // "Switch" 2

// errNoReplicas is what the methods of this file return on SQLite.
var errNoReplicas = errors.New("replicas need a PostgreSQL database")

// SupportsReplicas reports whether several replicas may share the database of
// the store (PostgreSQL): whether it has leases and an event log.
func (s *Store) SupportsReplicas() bool { return s.d.replicas }

// SingleNode reports whether dsn names a database that serves one node only
// (SQLite), which no other replica can share.
func SingleNode(dsn string) bool {
	d, _ := parseDSN(dsn)
	return d != nil && !d.replicas
}

// replicated fails on a store without replicas.
func (s *Store) replicated(op string) error {
	if !s.d.replicas {
		return fmt.Errorf("sqlstore: %s: %w", op, errNoReplicas)
	}
	return nil
}

// AcquireLease takes the lease name for holder until ttl from now, or renews
// it, when it is free, expired or already holder's, and reports whether holder
// holds it. Expiry is on the database's clock, which all replicas share.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	if err := s.replicated("acquire lease"); err != nil {
		return false, err
	}
	var got string
	err := s.w.QueryRowContext(ctx, `INSERT INTO switchboard_leases (name, holder, expires_at)
		VALUES ($1, $2, now() + $3 * interval '1 millisecond')
		ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
		WHERE switchboard_leases.expires_at < now() OR switchboard_leases.holder = EXCLUDED.holder
		RETURNING holder`, name, holder, ttl.Milliseconds()).Scan(&got)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, wrap("lease "+name, err)
	}
	return got == holder, nil
}

// ReleaseLease lets the lease name expire now, if holder holds it, so that
// another replica can take it at once.
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	if err := s.replicated("release lease"); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, `UPDATE switchboard_leases SET expires_at = now()
		WHERE name = $1 AND holder = $2`, name, holder)
	return wrap("release lease "+name, err)
}

// Lease returns the holder of the lease name and when it expires; ENotFound
// when it was never taken.
func (s *Store) Lease(ctx context.Context, name string) (holder string, expires time.Time, err error) {
	if err := s.replicated("lease"); err != nil {
		return "", time.Time{}, err
	}
	err = s.r.QueryRowContext(ctx, `SELECT holder, expires_at FROM switchboard_leases WHERE name = $1`, name).
		Scan(&holder, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, switchboard.Errorf(switchboard.ENotFound, "lease %s not found", name)
	}
	if err != nil {
		return "", time.Time{}, wrap("lease "+name, err)
	}
	return holder, expires.UTC(), nil
}

// AppendEvent appends e, published by replica, to the event log and returns
// its id there, which is the event's id on every replica; e's own ID is
// ignored, and a zero e.At is the clock's time. Appends are serialised, and
// the id is announced to ListenEvents when the append commits.
func (s *Store) AppendEvent(ctx context.Context, replica string, e switchboard.Event) (uint64, error) {
	if err := s.replicated("append event"); err != nil {
		return 0, err
	}
	data, err := json.Marshal(e.Data)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: append event: encode data: %w", err)
	}
	var id int64
	err = s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, eventsLockKey); err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, `INSERT INTO switchboard_events (replica, type, audience, at, data, owner)
			VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
			replica, e.Type, int(e.Audience), s.nowOr(e.At), string(data), e.Owner).Scan(&id); err != nil {
			return err
		}
		// Delivered at commit.
		_, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, eventsChannel, strconv.FormatInt(id, 10))
		return err
	})
	if err != nil {
		return 0, wrap("append event", err)
	}
	return uint64(id), nil
}

// EventsAfter returns at most limit events of the log whose id is greater than
// after, in id order, with their Data as JSON (a json.RawMessage).
func (s *Store) EventsAfter(ctx context.Context, after uint64, limit int) ([]switchboard.Event, error) {
	if err := s.replicated("read events"); err != nil {
		return nil, err
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, type, audience, at, data, owner FROM switchboard_events
		WHERE id > $1 ORDER BY id LIMIT $2`, int64(after), limit)
	if err != nil {
		return nil, wrap("read events", err)
	}
	defer rows.Close()
	var evs []switchboard.Event
	for rows.Next() {
		var (
			id       int64
			audience int
			at       time.Time
			data     string
			e        switchboard.Event
		)
		if err := rows.Scan(&id, &e.Type, &audience, &at, &data, &e.Owner); err != nil {
			return evs, wrap("read events", err)
		}
		e.ID, e.At, e.Audience, e.Data = uint64(id), at.UTC(), switchboard.Role(audience), json.RawMessage(data)
		evs = append(evs, e)
	}
	if err := rows.Err(); err != nil {
		return evs, wrap("read events", err)
	}
	return evs, nil
}

// LastEventID returns the id of the newest event of the log, 0 when it is
// empty.
func (s *Store) LastEventID(ctx context.Context) (uint64, error) {
	if err := s.replicated("last event id"); err != nil {
		return 0, err
	}
	var last int64
	if err := s.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM switchboard_events`).Scan(&last); err != nil {
		return 0, wrap("last event id", err)
	}
	return uint64(last), nil
}

// PruneEvents deletes the events of the log from before t.
func (s *Store) PruneEvents(ctx context.Context, before time.Time) error {
	if err := s.replicated("prune events"); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, `DELETE FROM switchboard_events WHERE at < $1`, before)
	return wrap("prune events", err)
}

// ListenEvents opens a connection of its own, outside the pool, that listens
// for the events AppendEvent announces. It calls listening once it listens,
// then notified on every announcement, until ctx ends or the connection fails,
// and returns why it stopped. Announcements carry no event: read the log.
func (s *Store) ListenEvents(ctx context.Context, listening, notified func()) error {
	if err := s.replicated("listen for events"); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.Connect(cctx, s.dsn)
	cancel()
	if err != nil {
		return fmt.Errorf("sqlstore: listen for events: connect: %w", err)
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, `LISTEN `+eventsChannel); err != nil {
		return fmt.Errorf("sqlstore: listen for events: %w", err)
	}
	listening()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return fmt.Errorf("sqlstore: listen for events: %w", err)
		}
		notified()
	}
}
