// Package sqlstore implements switchboard.Store on SQL databases: SQLite for
// one node, PostgreSQL for several replicas. Queries are written once and
// rebound per dialect (see dialect).
//
// Every method that changes data does so in one write transaction, together with
// its audit entry. Provider credentials are sealed with a secrets.BoundSealer before
// they reach the database and opened when providers are read. Times are stored
// as Unix nanoseconds and returned in UTC.
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/secrets"
)

// Store is a switchboard.Store on an SQL database. It is safe for concurrent use.
type Store struct {
	d      *dialect
	dsn    string  // of PostgreSQL, for connections outside the pool (ListenEvents)
	w      *sql.DB // the one writer connection; every write transaction runs here
	r      *sql.DB // readers; the same as w for an in-memory database
	sealer secrets.BoundSealer
	clock  switchboard.Clock
	// abandonBatch, when set (tests), replaces abandonBatch; abandonHook,
	// when set (tests), runs between AbandonStale's read and its batches.
	abandonBatch int
	abandonHook  func()
	// registry counts the changes to providers and to their routing-relevant
	// health that this Store committed (see RegistryVersion).
	registry atomic.Uint64
	stmts    stmtCache
	// group writes concurrent stream starts and moves in shared
	// transactions (writegroup.go): on SQLite every start and move, on
	// PostgreSQL the starts without a capacity limit.
	group writeGroup
	// statuses is the trail statuses map whose set was last stored, with
	// its digest (trail.go).
	statuses   atomic.Pointer[storedStatuses]
	statusesMu sync.Mutex // held while a set is stored
	// ckpt runs SQLite's checkpoints beside the writer (a file database
	// only; checkpoint.go).
	ckpt *checkpointer
	// eventsChannel is the NOTIFY channel of the event log (PostgreSQL;
	// replica.go).
	eventsChannel string
	// rewrites counts the write transactions run again after a deadlock.
	rewrites atomic.Int64
}

var _ switchboard.Store = (*Store)(nil)

// Open opens the database named by dsn, applies the migrations it lacks and
// returns the store.
//
// DSN forms:
//
//	sqlite:path/to/file.db   a file, relative to the working directory (created if missing)
//	sqlite::memory:          a private in-memory database, for tests
//	postgres://user@host:5432/db?sslmode=disable   PostgreSQL (also postgresql://);
//	                         any libpq connection parameter, such as search_path,
//	                         may be given in the query string
//
// sealer seals and opens provider credentials, bound to their destination;
// credentials sealed by an earlier version, unbound, are sealed again bound
// when the store opens (see resealLegacy). A nil clock means
// switchboard.SystemClock.
//
// SQLite runs in WAL mode with foreign keys on, synchronous=NORMAL and a 5 s busy
// timeout. Writes go through a pool of exactly one connection whose
// transactions start with BEGIN IMMEDIATE: SQLite allows one writer at a time
// anyway, and queueing writers in Go (rather than in SQLite's busy handler)
// makes them fair and rules out the SQLITE_BUSY a deferred transaction gets
// when it tries to upgrade its read lock to a write lock. Reads go through a
// separate pool of query-only connections and, thanks to WAL, never wait for
// the writer. An in-memory database lives in one connection, so it uses one
// connection for both.
//
// PostgreSQL is reached through pgx's database/sql driver, so that the same
// query code serves both dialects, with one pool for reads and writes.
// Migrations run under an advisory lock, so replicas starting together apply
// each one once; rows read for a change are locked (FOR NO KEY UPDATE), so
// concurrent writers on several replicas keep counters exact. When the server
// cannot be reached, methods fail with switchboard.EUnavailable.
func Open(ctx context.Context, dsn string, sealer secrets.BoundSealer, clock switchboard.Clock) (*Store, error) {
	if sealer == nil {
		return nil, errors.New("sqlstore: open: a sealer is required")
	}
	if clock == nil {
		clock = switchboard.SystemClock{}
	}
	var (
		s   *Store
		err error
	)
	switch d, path := parseDSN(dsn); d {
	case sqliteDialect:
		s, err = openSQLite(ctx, path)
	case postgresDialect:
		s, err = openPostgres(ctx, dsn)
	default:
		// Do not quote the DSN: it may hold a password.
		return nil, errors.New(`sqlstore: open: the database URL must start with "sqlite:" or "postgres://"`)
	}
	if err != nil {
		return nil, err
	}
	s.sealer, s.clock = sealer, clock
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, wrap("open", err)
	}
	if err := s.resealLegacy(ctx); err != nil {
		s.Close()
		return nil, wrap("open", err)
	}
	if s.d.replicas {
		if err := s.resolveEventsChannel(ctx); err != nil {
			s.Close()
			return nil, wrap("open", err)
		}
	}
	s.prepareHot(ctx)
	return s, nil
}

// parseDSN returns the dialect of the database that dsn names, nil when it
// names none, and for SQLite the path it gives.
func parseDSN(dsn string) (d *dialect, sqlitePath string) {
	scheme, rest, _ := strings.Cut(dsn, ":")
	switch scheme {
	case "sqlite":
		return sqliteDialect, rest
	case "postgres", "postgresql":
		return postgresDialect, ""
	}
	return nil, ""
}

// SQLiteFile returns the path of the SQLite database file that dsn names; ok
// is false for an in-memory database and for any other database.
func SQLiteFile(dsn string) (path string, ok bool) {
	d, path := parseDSN(dsn)
	if d != sqliteDialect || path == ":memory:" {
		return "", false
	}
	return path, true
}

func openSQLite(ctx context.Context, path string) (*Store, error) {
	if path == "" {
		return nil, errors.New("sqlstore: open: empty SQLite path (use sqlite:path/to/file.db)")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("sqlstore: open: SQLite path %q must not contain ? or #", path)
	}
	memory := path == ":memory:"
	params := func(extra ...string) string {
		q := url.Values{}
		q.Add("_pragma", "busy_timeout(5000)")
		q.Add("_pragma", "foreign_keys(ON)")
		q.Add("_pragma", "synchronous(NORMAL)")
		if !memory {
			q.Add("_pragma", "journal_mode(WAL)")
		}
		for i := 0; i+1 < len(extra); i += 2 {
			q.Add(extra[i], extra[i+1])
		}
		return path + "?" + q.Encode()
	}

	// The writer keeps its temporary files in memory: a group of starts
	// (writegroup.go) runs each start under a savepoint, whose journal of the
	// pages it changed otherwise spills to a file past 64 KiB, and writing
	// it was a third of the time of a group. It holds the pages one
	// transaction changes, as the page cache does.
	//
	// It checkpoints the log itself only far past the default of 1,000
	// pages: the checkpointer does it beside it (checkpoint.go).
	writer := []string{"_txlock", "immediate", "_pragma", "temp_store(MEMORY)"}
	if !memory {
		writer = append(writer, "_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", writerCheckpointPages))
	}
	w, err := sql.Open("sqlite", params(writer...))
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0) // an in-memory database dies with its connection
	if err := pingSQLite(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlstore: open %s: %w", path, err)
	}
	s := &Store{d: sqliteDialect, w: w, r: w}
	if memory {
		return s, nil
	}

	r, err := sql.Open("sqlite", params("_pragma", "query_only(ON)"))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlstore: open %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	if err := pingSQLite(ctx, r); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlstore: open %s: %w", path, err)
	}
	s.r = r
	ckpt, err := sql.Open("sqlite", params())
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlstore: open %s: %w", path, err)
	}
	ckpt.SetMaxOpenConns(1)
	ckpt.SetMaxIdleConns(1)
	s.ckpt = startCheckpointer(ckpt, checkpointEvery)
	return s, nil
}

// pingSQLite opens a first connection, retrying while the database is busy.
// Switching a new database file to WAL needs an exclusive lock, and when
// several processes open the same new file at once SQLite may answer
// SQLITE_BUSY without waiting for the busy timeout.
func pingSQLite(ctx context.Context, db *sql.DB) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		err := db.PingContext(ctx)
		if err == nil || sqliteCode(err)&0xff != sqlite3.SQLITE_BUSY {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// RegistryVersion changes after every change this Store committed (or tried
// to) to a provider, or to a provider's health status or last success: the
// parts of the registry that assigning streams depends on. Caches of
// ListProviders reload when it moves.
func (s *Store) RegistryVersion() uint64 { return s.registry.Load() }

// registryChanged moves RegistryVersion; it runs after the transaction ended,
// so that a reader that sees the new version reads the change.
func (s *Store) registryChanged() { s.registry.Add(1) }

// Checkpoint folds SQLite's write-ahead log into the database file and
// empties the log, so that the file alone holds the data (to copy it, say).
// On PostgreSQL it does nothing: the server manages its own log.
func (s *Store) Checkpoint(ctx context.Context) error {
	if s.d.name != "sqlite" {
		return nil
	}
	if _, err := s.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// Dialect names the SQL dialect of the database: "sqlite" or "postgres".
func (s *Store) Dialect() string { return s.d.name }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return wrap("ping", err)
	}
	if s.r != s.w {
		if err := s.r.PingContext(ctx); err != nil {
			return wrap("ping", err)
		}
	}
	return nil
}

// Close closes the database. Calls in flight may fail.
func (s *Store) Close() error {
	var errC error
	if s.ckpt != nil {
		errC = s.ckpt.stop()
	}
	s.closeStmts()
	var errR error
	if s.r != s.w {
		errR = s.r.Close()
	}
	if err := errors.Join(s.w.Close(), errR, errC); err != nil {
		return fmt.Errorf("sqlstore: close: %w", err)
	}
	return nil
}

// maxWriteAttempts bounds how often write runs a transaction that failed for
// a reason that another attempt may not meet (a deadlock between writers).
const maxWriteAttempts = 5

// write runs fn in a write transaction and commits it when fn returns nil.
// fn must use only tx: the writer pool has a single connection, so a query on
// s.w inside fn would wait forever. On PostgreSQL a transaction that lost a
// deadlock is run again, so fn must set its results afresh on every call.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.writeOnce(ctx, fn)
		if err == nil || attempt == maxWriteAttempts || !s.d.retryable(err) || ctx.Err() != nil {
			return err
		}
		s.rewrites.Add(1)
	}
}

// WriteRetries returns how many write transactions were run again after
// losing a deadlock to another writer (PostgreSQL; always 0 on SQLite).
func (s *Store) WriteRetries() int64 { return s.rewrites.Load() }

func (s *Store) writeOnce(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return txErr(ctx, err)
	}
	return txErr(ctx, tx.Commit())
}

// txErr is err, or the context's error when ctx ending rolled the
// transaction back: database/sql then answers later statements with
// sql.ErrTxDone, which would otherwise read as an internal error rather than
// as a request its client cancelled.
func txErr(ctx context.Context, err error) error {
	if errors.Is(err, sql.ErrTxDone) && ctx.Err() != nil {
		return fmt.Errorf("%w (%w)", ctx.Err(), err)
	}
	return err
}

// read runs fn in a read transaction, for reads that need one snapshot.
func (s *Store) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, s.d.readTx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return txErr(ctx, err)
	}
	return txErr(ctx, tx.Commit())
}

// q rebinds a query for the store's dialect.
func (s *Store) q(query string) string { return s.d.rebind(query) }

// lockKey takes a lock on key until tx ends, for changes whose invariant spans
// several rows. It does nothing on SQLite, where tx already holds the one
// writer.
func (s *Store) lockKey(ctx context.Context, tx *sql.Tx, key string) error {
	if s.d.lockKeySQL == "" {
		return nil
	}
	if _, err := tx.ExecContext(ctx, s.q(s.d.lockKeySQL), key); err != nil {
		return fmt.Errorf("lock %s: %w", key, err)
	}
	return nil
}

// errUnavailable is what callers see when the database cannot be reached: a
// 503 with a message that names no host, user or password.
var errUnavailable = switchboard.Errorf(switchboard.EUnavailable, "the database is unavailable")

// wrap gives err the context of op, unless it is a domain *switchboard.Error,
// which is returned as is so that its code and message reach the caller. An
// error that says the database cannot be reached becomes EUnavailable, with
// the cause kept in the message for logs.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	var e *switchboard.Error
	if errors.As(err, &e) {
		return err
	}
	if isUnavailable(err) {
		return fmt.Errorf("sqlstore: %s: %w (%v)", op, errUnavailable, err)
	}
	if c := pgCode(err); c == pgCharacterNotInRepertoire || c == pgUntranslatableCharacter {
		return fmt.Errorf("sqlstore: %s: %w (%v)", op, errBadText, err)
	}
	return fmt.Errorf("sqlstore: %s: %w", op, err)
}

// errBadText is what callers see when PostgreSQL refuses a text value (a NUL,
// invalid UTF-8) that input validation let through: the caller's fault, not
// the server's.
var errBadText = switchboard.Errorf(switchboard.EInvalid, "text must be valid UTF-8 without NUL characters")

// The times that Unix nanoseconds in an int64 can hold: years 1677 to 2262.
var (
	minDBTime = time.Unix(0, math.MinInt64)
	maxDBTime = time.Unix(0, math.MaxInt64)
)

// dbTime is how a time is stored: Unix nanoseconds. Times beyond what that can
// hold are clamped, so that bounds such as the zero time or year 9999 in a
// query mean "from the beginning" and "until the end".
func dbTime(t time.Time) int64 {
	switch {
	case t.Before(minDBTime):
		return math.MinInt64
	case t.After(maxDBTime):
		return math.MaxInt64
	}
	return t.UnixNano()
}

// dbTimePtr stores an optional time; nil and the zero time are NULL.
func dbTimePtr(t *time.Time) any {
	if t == nil || t.IsZero() {
		return nil
	}
	return dbTime(*t)
}

// goTime reads a stored time, in UTC.
func goTime(n int64) time.Time { return time.Unix(0, n).UTC() }

// goTimePtr reads an optional stored time.
func goTimePtr(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := goTime(n.Int64)
	return &t
}

// nowOr returns t in UTC, or the clock's time when t is zero.
func (s *Store) nowOr(t time.Time) time.Time {
	if t.IsZero() {
		return s.clock.Now().UTC()
	}
	return t.UTC()
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}
