package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
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
// its id there (see AppendEvents).
func (s *Store) AppendEvent(ctx context.Context, replica string, e switchboard.Event) (uint64, error) {
	ids, err := s.AppendEvents(ctx, replica, []switchboard.Event{e})
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// qAppendEvents appends a batch of events in one statement, and so in one
// transaction and one round trip: it takes the log's lock (held until the
// transaction ends), inserts the events in the order of the arrays, and
// announces the newest id at commit (the same payload for every row, which
// PostgreSQL sends once). The ids are drawn after the lock is taken: the
// rows reach the sort below only through the join with it.
const qAppendEvents = `WITH locked AS (SELECT pg_advisory_xact_lock($1::bigint)),
	ins AS (
		INSERT INTO switchboard_events (replica, type, audience, at, data, owner)
		SELECT $2::text, e.type, e.audience, e.at, e.data, e.owner
		FROM locked CROSS JOIN unnest($3::text[], $4::integer[], $5::timestamptz[], $6::text[], $7::text[])
			WITH ORDINALITY AS e(type, audience, at, data, owner, n)
		ORDER BY e.n
		RETURNING id)
	SELECT ins.id FROM ins CROSS JOIN (SELECT pg_notify($8::text, max(id)::text) FROM ins) AS announced
	ORDER BY ins.id`

// AppendEvents appends evs, published by replica, to the event log, in their
// order and in one transaction, and returns their ids there, which are the
// events' ids on every replica; the events' own IDs are ignored, and a zero
// At is the clock's time. Appends are serialised, so ids become visible in
// increasing order, and the newest id is announced to ListenEvents when the
// append commits.
func (s *Store) AppendEvents(ctx context.Context, replica string, evs []switchboard.Event) ([]uint64, error) {
	if err := s.replicated("append event"); err != nil {
		return nil, err
	}
	if len(evs) == 0 {
		return nil, nil
	}
	var (
		types     = make([]string, len(evs))
		audiences = make([]int32, len(evs))
		ats       = make([]time.Time, len(evs))
		datas     = make([]string, len(evs))
		owners    = make([]string, len(evs))
	)
	for i, e := range evs {
		data, err := json.Marshal(e.Data)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: append event: encode data: %w", err)
		}
		types[i], audiences[i], ats[i], datas[i], owners[i] = e.Type, int32(e.Audience), s.nowOr(e.At), string(data), e.Owner
	}
	ids := make([]uint64, 0, len(evs))
	err := func() error {
		rows, err := s.w.QueryContext(ctx, qAppendEvents, eventsLockKey, replica, types, audiences, ats, datas, owners, eventsChannel)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, uint64(id))
		}
		// Committed once the rows are read to the end without an error.
		if err := rows.Err(); err != nil {
			return err
		}
		return rows.Close()
	}()
	if err != nil {
		return nil, wrap("append event", err)
	}
	if len(ids) != len(evs) {
		return nil, fmt.Errorf("sqlstore: append event: %d ids for %d events", len(ids), len(evs))
	}
	return ids, nil
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
