package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/switchboardhq/switchboard"
)

// What replicas that share a PostgreSQL database coordinate through (see
// internal/replica, which runs the loops): leases, of which one replica at a
// time holds each, and an event log that every replica reads in id order.
// The tables are those of migration 0005_replicas. A SQLite database serves
// one node, so these methods fail on it: SupportsReplicas tells.

// publicEventsChannel is the PostgreSQL NOTIFY channel on which the appends to
// the event log of the public schema are announced: the one channel that all
// schemas shared before each got its own, kept for public so that replicas of
// both versions hear each other during a rolling upgrade.
const publicEventsChannel = "switchboard_events"

// eventsChannelFor returns the NOTIFY channel of the event log of schema:
// replicas of one schema listen to their own channel only, so that appends in
// another schema of the same server (another deployment, tests) do not wake
// them. A channel name is an identifier, at most 63 bytes: a schema whose
// derived name would be longer is named by a hash.
func eventsChannelFor(schema string) string {
	if schema == "" || schema == "public" {
		return publicEventsChannel
	}
	if ch := publicEventsChannel + ":" + schema; len(ch) <= maxIdentifier {
		return ch
	}
	sum := sha256.Sum256([]byte(schema))
	return publicEventsChannel + "#" + hex.EncodeToString(sum[:20])
}

// maxIdentifier is the longest PostgreSQL identifier, in bytes (NAMEDATALEN-1).
const maxIdentifier = 63

// resolveEventsChannel sets the NOTIFY channel of the store's event log from
// the schema that holds the log (the first of search_path that has it).
func (s *Store) resolveEventsChannel(ctx context.Context) error {
	var schema sql.NullString
	err := s.r.QueryRowContext(ctx, `SELECT n.nspname FROM pg_catalog.pg_class c
		JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.oid = to_regclass('switchboard_events')`).Scan(&schema)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("sqlstore: the event log's schema: %w", err)
	}
	s.eventsChannel = eventsChannelFor(schema.String)
	return nil
}

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
// announces them at commit, in notifications that carry them (see
// eventsPayload). The ids are drawn after the lock is taken: the rows reach
// the sort below only through the join with it. An event's id is the n-th
// smallest of the batch when it is the n-th of the arrays; $9 holds each
// event's announcement without its id, or "" for an event announced by id
// only, and $10 the notification that announces it. The notifications are
// sent in the order of the batch, and PostgreSQL delivers those of one
// transaction in the order they were sent.
const qAppendEvents = `WITH locked AS (SELECT pg_advisory_xact_lock($1::bigint)),
	ins AS (
		INSERT INTO switchboard_events (replica, type, audience, at, data, owner)
		SELECT $2::text, e.type, e.audience, e.at, e.data, e.owner
		FROM locked CROSS JOIN unnest($3::text[], $4::integer[], $5::timestamptz[], $6::text[], $7::text[])
			WITH ORDINALITY AS e(type, audience, at, data, owner, n)
		ORDER BY e.n
		RETURNING id),
	numbered AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM ins),
	payloads AS (
		SELECT a.chunk, CASE WHEN bool_or(a.body = '') THEN max(x.id)::text
			ELSE '` + eventsPayloadHead + `' || string_agg('{"id":' || x.id::text || a.body, ',' ORDER BY x.id) || '` + eventsPayloadTail + `'
			END AS payload
		FROM numbered x JOIN unnest($9::text[], $10::integer[]) WITH ORDINALITY AS a(body, chunk, n) ON a.n = x.n
		GROUP BY a.chunk ORDER BY a.chunk),
	announced AS (SELECT count(pg_notify($8::text, p.payload)) AS sent FROM (SELECT payload FROM payloads ORDER BY chunk) AS p)
	SELECT ins.id FROM ins CROSS JOIN announced
	ORDER BY ins.id`

// Announcements of appended events. PostgreSQL takes payloads shorter than
// 8,000 bytes: the events of an append are announced in as many notifications
// as they need, each at most maxEventsPayload bytes, of the form
//
//	{"v":1,"events":[{"id":1,"type":"...","audience":2,"at":"...","data":{...},"owner":"..."},...]}
//
// with the events in id order, their fields as the log holds them. An event
// too large for a notification of its own is announced by its id alone, as
// earlier versions announced every append: a listener reads the log then.
const (
	eventsPayloadHead = `{"v":1,"events":[`
	eventsPayloadTail = `]}`
	maxEventsPayload  = 7900
	// eventsPayloadIDRoom is what an entry takes besides its body: {"id":
	// and the digits of the largest id.
	eventsPayloadIDRoom = len(`{"id":`) + 20
)

// eventsPayload encodes the announcement of the events of a batch: the
// entry of each without its id (its body), "" for one announced by id only,
// and the notification that carries it, numbered from 0 in batch order.
func eventsPayload(types []string, audiences []int32, ats []time.Time, datas, owners []string) (bodies []string, chunks []int32) {
	bodies, chunks = make([]string, len(types)), make([]int32, len(types))
	chunk, size := int32(-1), 0 // size of the open notification, 0 when none is open
	var b strings.Builder
	for i := range types {
		b.Reset()
		b.WriteString(`,"type":`)
		writeJSONString(&b, types[i])
		b.WriteString(`,"audience":`)
		b.WriteString(strconv.Itoa(int(audiences[i])))
		b.WriteString(`,"at":"`)
		b.WriteString(ats[i].UTC().Format(time.RFC3339Nano))
		b.WriteString(`","data":`)
		b.WriteString(datas[i])
		b.WriteString(`,"owner":`)
		writeJSONString(&b, owners[i])
		b.WriteString(`}`)
		entry := eventsPayloadIDRoom + b.Len()
		switch {
		case len(eventsPayloadHead)+entry+len(eventsPayloadTail) > maxEventsPayload:
			chunk++ // a notification of its own, by id
			chunks[i], size = chunk, 0
			continue
		case size > 0 && size+1+entry <= maxEventsPayload:
			size += 1 + entry
		default:
			chunk++
			size = len(eventsPayloadHead) + entry + len(eventsPayloadTail)
		}
		bodies[i], chunks[i] = b.String(), chunk
	}
	return bodies, chunks
}

// writeJSONString writes s to b as a JSON string.
func writeJSONString(b *strings.Builder, s string) {
	enc, _ := json.Marshal(s) // a string always encodes
	b.Write(enc)
}

// parseEventsPayload returns the events that a notification carries, in id
// order, with their Data as JSON (a json.RawMessage), as EventsAfter would
// return them; none when it announces an id only or is not a form this
// version knows.
func parseEventsPayload(payload string) []switchboard.Event {
	if !strings.HasPrefix(payload, eventsPayloadHead) {
		return nil
	}
	evs, ok := decodeAnnounced(payload)
	if !ok {
		if evs, ok = decodeAnnouncedJSON(payload); !ok {
			return nil
		}
	}
	for i, e := range evs {
		if e.ID == 0 || len(e.Data.(json.RawMessage)) == 0 || (i > 0 && e.ID <= evs[i-1].ID) {
			return nil
		}
	}
	return evs
}

// decodeAnnouncedJSON decodes an announcement with encoding/json.
func decodeAnnouncedJSON(payload string) ([]switchboard.Event, bool) {
	var msg struct {
		V      int `json:"v"`
		Events []struct {
			ID       uint64          `json:"id"`
			Type     string          `json:"type"`
			Audience int             `json:"audience"`
			At       time.Time       `json:"at"`
			Data     json.RawMessage `json:"data"`
			Owner    string          `json:"owner"`
		} `json:"events"`
	}
	if err := json.Unmarshal([]byte(payload), &msg); err != nil || msg.V != 1 {
		return nil, false
	}
	evs := make([]switchboard.Event, len(msg.Events))
	for i, e := range msg.Events {
		evs[i] = switchboard.Event{ID: e.ID, Type: e.Type, Audience: switchboard.Role(e.Audience), At: e.At.UTC(),
			Data: e.Data, Owner: e.Owner}
	}
	return evs, true
}

// AppendEvents appends evs, published by replica, to the event log, in their
// order and in one transaction, and returns their ids there, which are the
// events' ids on every replica; the events' own IDs are ignored, and a zero
// At is the clock's time (kept to the microsecond, as the log keeps it).
// Appends are serialised, so ids become visible in increasing order, and the
// events are announced to ListenEvents when the append commits.
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
		at := s.nowOr(e.At).UTC().Truncate(time.Microsecond)
		types[i], audiences[i], ats[i], datas[i], owners[i] = e.Type, int32(e.Audience), at, string(data), e.Owner
	}
	bodies, chunks := eventsPayload(types, audiences, ats, datas, owners)
	ids := make([]uint64, 0, len(evs))
	err := func() error {
		rows, err := s.w.QueryContext(ctx, qAppendEvents, eventsLockKey, replica, types, audiences, ats, datas, owners,
			s.eventsChannel, bodies, chunks)
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

// PruneEvents deletes the events of the log from before t: those whose id is
// below the first event at or after t (all of them when there is none). The
// log has no index on the time, and every replica prunes every minute: a
// condition on the time alone read the whole log each time (an hour of a
// launch's events), where this reads the primary key from its start, over
// the events it deletes. An event appended late with an older time (held
// while the database was out of reach) stays until the events before it
// have gone; no event from t on is deleted.
func (s *Store) PruneEvents(ctx context.Context, before time.Time) error {
	if err := s.replicated("prune events"); err != nil {
		return err
	}
	_, err := s.w.ExecContext(ctx, `DELETE FROM switchboard_events WHERE id < COALESCE(
		(SELECT id FROM switchboard_events WHERE at >= $1 ORDER BY id LIMIT 1),
		(SELECT MAX(id) + 1 FROM switchboard_events))`, before)
	return wrap("prune events", err)
}

// ListenEvents opens a connection of its own, outside the pool, that listens
// for the announcements of AppendEvents on the channel of the store's schema.
// It calls listening once it listens, then notified on every announcement with
// the events it carries, in id order, until ctx ends or the connection fails,
// and returns why it stopped. An announcement may carry no event (an event too
// large, or an announcement from an earlier version): the listener reads the
// log then, which is the source of truth in any case.
func (s *Store) ListenEvents(ctx context.Context, listening func(), notified func([]switchboard.Event)) error {
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
	if _, err := conn.Exec(ctx, `LISTEN `+pgx.Identifier{s.eventsChannel}.Sanitize()); err != nil {
		return fmt.Errorf("sqlstore: listen for events: %w", err)
	}
	listening()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("sqlstore: listen for events: %w", err)
		}
		notified(parseEventsPayload(n.Payload))
	}
}
