package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// Connection pool of a PostgreSQL store. Several replicas share one server
// (max_connections is 100 by default), so each keeps a modest pool; requests
// beyond it queue in database/sql.
const (
	pgMaxOpenConns    = 16
	pgMaxIdleConns    = pgMaxOpenConns
	pgConnMaxIdleTime = 5 * time.Minute
	pgConnMaxLifetime = 30 * time.Minute
)

// migrationLockKey is the PostgreSQL advisory lock that migrations run under,
// so that replicas starting together apply each migration once.
const migrationLockKey int64 = 0x5377_6974_6368_0001 // "Switch" 1

// openPostgres opens a pool on the PostgreSQL server of dsn and checks that
// it answers. It does not quote dsn in errors: it may hold a password.
func openPostgres(ctx context.Context, dsn string) (*Store, error) {
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		// pgx's parse errors redact the password.
		return nil, fmt.Errorf("sqlstore: open postgres: %w", err)
	}
	db.SetMaxOpenConns(pgMaxOpenConns)
	db.SetMaxIdleConns(pgMaxIdleConns)
	db.SetConnMaxIdleTime(pgConnMaxIdleTime)
	db.SetConnMaxLifetime(pgConnMaxLifetime)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, wrap("open postgres", err)
	}
	return &Store{d: postgresDialect, dsn: dsn, w: db, r: db}, nil
}

// migrationLock holds the PostgreSQL advisory lock of migrations on a
// connection of its own until the returned function is called. On SQLite,
// whose migrations run in write transactions that already exclude each other,
// it does nothing.
func (s *Store) migrationLock(ctx context.Context) (unlock func(), err error) {
	if s.d != postgresDialect {
		return func() {}, nil
	}
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
		conn.Close()
		return nil, fmt.Errorf("take the migration lock: %w", err)
	}
	return func() {
		// A fresh deadline: the lock must go even when ctx is done. Should the
		// unlock fail, closing the connection ends the session and its lock.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_unlock($1)`, migrationLockKey); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}, nil
}

// isUnavailable reports whether err says that the database cannot be reached
// (as opposed to refusing a query): the connection failed or broke, or the
// server is shutting down or out of connections.
func isUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, sql.ErrConnDone):
		return true
	}
	if c := pgCode(err); strings.HasPrefix(c, "08") || // connection exception
		c == "57P01" || c == "57P02" || c == "57P03" || // admin or crash shutdown, cannot connect now
		c == "53300" { // too many connections
		return true
	}
	// pgx reports a connection that closed under a query this way.
	return pgconn.SafeToRetry(err) || strings.Contains(err.Error(), "conn closed")
}
