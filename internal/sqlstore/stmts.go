package sqlstore

import (
	"context"
	"database/sql"
	"sync"
)

// stmtCache holds the prepared statements of the hot paths (stream starts,
// heartbeats, moves, failure reports, ends, quality samples, token and
// provider lookups), so that SQLite parses each once per connection instead
// of once per call: parsing was a tenth to a sixth of the CPU of those
// requests. PostgreSQL's driver caches
// the statements it prepares by itself, so the cache is not used there.
type stmtCache struct {
	mu    sync.Mutex
	stmts map[stmtKey]*sql.Stmt
}

type stmtKey struct {
	db    *sql.DB
	query string
}

// The queries prepared when an SQLite store opens: on the readers, and on the
// writer for use in write transactions. They are prepared up front because a
// write transaction holds the writer's one connection, so a statement could
// not be prepared on the pool from inside one.
var (
	hotReads  = []string{qStreamByID, qStreamWasOn, qTokenByHash, qProviderByName}
	hotWrites = []string{qStreamByID, selectByKey, qInsertStream, qInsertSegment, qInsertTrail, qCapacity, qAddCounts,
		qHeartbeat, qHeartbeatBatch, closeSegmentSQL, qCloseSegmentReturning, qMoveStream, qEndStream, qHealthOf, qWriteHealth, qPolicyOf, qLastDaily, qWindow,
		qQualityRollup, qQualityBin, qQualityStream, qSavepoint, qRollbackTo, qRelease}
)

// prepareHot prepares hotReads and hotWrites (SQLite only). A query that
// cannot be prepared is left out: its calls run it as it is.
func (s *Store) prepareHot(ctx context.Context) {
	if s.d != sqliteDialect {
		return
	}
	c := &s.stmts
	c.mu.Lock()
	defer c.mu.Unlock()
	c.stmts = map[stmtKey]*sql.Stmt{}
	for _, p := range []struct {
		db      *sql.DB
		queries []string
	}{{s.r, hotReads}, {s.w, hotWrites}} {
		for _, q := range p.queries {
			if st, err := p.db.PrepareContext(ctx, q); err == nil {
				c.stmts[stmtKey{p.db, q}] = st
			}
		}
	}
}

// prepared returns query as prepared on db by prepareHot, or nil.
func (s *Store) prepared(db *sql.DB, query string) *sql.Stmt {
	c := &s.stmts
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stmts[stmtKey{db, query}]
}

// closeStmts closes the cached statements.
func (s *Store) closeStmts() {
	c := &s.stmts
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, st := range c.stmts {
		st.Close()
		delete(c.stmts, k)
	}
}

// readRow runs a query of one row on the readers, prepared.
func (s *Store) readRow(ctx context.Context, query string, args ...any) *sql.Row {
	if st := s.prepared(s.r, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return s.r.QueryRowContext(ctx, s.q(query), args...)
}

// txRow runs a query of one row in the write transaction tx, prepared.
func (s *Store) txRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	if st := s.prepared(s.w, query); st != nil {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, s.q(query), args...)
}

// txExec runs a statement in the write transaction tx, prepared.
func (s *Store) txExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if st := s.prepared(s.w, query); st != nil {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, s.q(query), args...)
}
