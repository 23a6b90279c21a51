package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboardhq/switchboard"
)

// writeGroup commits the writes that arrive while a transaction is being
// written together, in the next transaction (group commit). On SQLite, whose
// one writer takes one transaction at a time, these are stream starts and
// the other writes of a stream's life that come in storms, such as a move to
// a standby (see Store.grouped): a commit writes every page it changed to the
// log, about as many for one start or move as for fifty. On PostgreSQL they
// are the starts without a capacity limit, in one statement (see
// writeStartsPG). One write refused (a full provider, a duplicate id, a
// stream that has ended) leaves the others in (see writeStarts); every caller
// returns once the transaction holding its write is committed, so an
// acknowledged write is as durable as one that ran alone. The first caller
// to find no transaction running writes one with everything queued; when it
// is done it hands the writing to the first caller that queued meanwhile, so
// that no caller writes for others longer than one transaction.
type writeGroup struct {
	mu      sync.Mutex
	queue   []*groupOp   // guarded by mu
	running bool         // guarded by mu; a caller is writing a transaction
	groups  atomic.Int64 // transactions written, for the benchmarks' mean group size
	last    int          // guarded by mu; the starts of the last group taken
	// sleep is time.Sleep, or a test's stand-in when set.
	sleep func(time.Duration)
}

// On PostgreSQL a group of starts is one statement, and PostgreSQL's CPU
// per statement is mostly the same whatever its size (the plan's executor
// start-up, the commit): with three replicas sharing 64 clients the groups
// held 10 starts against 35 with one replica, and PostgreSQL spent 109 µs
// per start against 58. So while starts keep arriving, the writer waits a
// little for them before it takes the queue (as commit_delay does in
// PostgreSQL): pgFillStep at a time, until two steps in a row brought none,
// at most pgFillSteps, and only up to pgFillTarget queued. A start on a
// quiet server (the last group held one start) does not wait.
const (
	pgFillTarget = 16
	pgFillStep   = 100 * time.Microsecond
	pgFillSteps  = 8
)

// fill waits for more starts to queue, as above; g.mu is held.
func (g *writeGroup) fill() {
	if g.last <= 1 {
		return
	}
	idle := 0
	for range pgFillSteps {
		n := len(g.queue)
		if n >= pgFillTarget {
			return
		}
		g.mu.Unlock()
		if g.sleep != nil {
			g.sleep(pgFillStep)
		} else {
			time.Sleep(pgFillStep)
		}
		g.mu.Lock()
		if len(g.queue) > n {
			idle = 0
		} else if idle++; idle == 2 {
			return // none came twice: no other start is on its way
		}
	}
}

// groupOp is one write in a group: a start (st, first, max), or fn.
type groupOp struct {
	// fn, when set, is the write (SQLite only): it runs in the group's
	// transaction with the group's context and reports clean when it failed
	// before it wrote anything, so that the others can go on without a
	// savepoint. It may run again (a transaction that failed and runs
	// again), and must set its results afresh each time.
	fn      func(ctx context.Context, tx *sql.Tx) (clean bool, err error)
	st      switchboard.Stream
	first   switchboard.TrailEntry
	max     int
	got     switchboard.Stream
	created bool
	err     error
	retry   bool          // the group failed: run the start on its own (PostgreSQL)
	done    chan struct{} // closed once its transaction ended
	lead    chan struct{} // closed when this caller is to write the next one
}

// The savepoint of each start in a group written again with savepoints (see
// writeStarts), prepared with the hot writes (stmts.go).
const (
	qSavepoint  = "SAVEPOINT start_stream"
	qRollbackTo = "ROLLBACK TO start_stream"
	qRelease    = "RELEASE start_stream"
)

// maxStartGroup bounds the starts in one transaction.
const maxStartGroup = 256

// maxYields bounds how often the writer of a group lets other goroutines run
// before it takes the queue.
const maxYields = 4

// run runs op in a group transaction and returns once it is committed or
// failed.
func (g *writeGroup) run(ctx context.Context, s *Store, op *groupOp) {
	op.done, op.lead = make(chan struct{}), make(chan struct{})
	g.mu.Lock()
	g.queue = append(g.queue, op)
	if g.running {
		g.mu.Unlock()
		select {
		case <-op.done:
			return
		case <-op.lead:
		}
		g.mu.Lock()
	}
	g.running = true
	// Let the goroutines that are ready to run (requests about to start a
	// stream) queue first, while the queue grows: on a busy server the
	// groups held about 6 starts, and a commit writes about 14 pages to the
	// log whether it holds one start or fifty (a quarter of a millisecond of
	// CPU here). With nothing else ready to run, this returns at once.
	for range maxYields {
		n := len(g.queue)
		g.mu.Unlock()
		runtime.Gosched()
		g.mu.Lock()
		if len(g.queue) == n {
			break
		}
	}
	if s.d == postgresDialect {
		g.fill()
	}
	n := min(len(g.queue), maxStartGroup)
	batch := g.queue[:n:n]
	g.last = n
	g.queue = g.queue[n:]
	g.mu.Unlock()

	// The transaction is everyone's: it does not end with this caller's
	// context (the busy timeout bounds it; on PostgreSQL, pgStartTimeout).
	if s.d == postgresDialect {
		batch = s.writeStartsPG(context.WithoutCancel(ctx), batch)
	} else {
		batch = s.writeStarts(context.WithoutCancel(ctx), batch, g.more)
	}
	g.groups.Add(1)
	for _, b := range batch {
		close(b.done)
	}
	g.mu.Lock()
	if len(g.queue) > 0 {
		close(g.queue[0].lead) // still queued: it takes the queue with it
	} else {
		g.running = false
	}
	g.mu.Unlock()
}

// more takes up to n of the starts queued since the running transaction
// began, for it to write them too.
func (g *writeGroup) more(n int) []*groupOp {
	g.mu.Lock()
	defer g.mu.Unlock()
	n = min(n, len(g.queue))
	taken := g.queue[:n:n]
	g.queue = g.queue[n:]
	return taken
}

// writeStarts runs the writes of batch in one write transaction, and those
// that more gives meanwhile, up to maxStartGroup in all: the writes queued
// while the transaction's ran join it before it commits, so that a commit,
// whose writes to the log cost as much whether it holds one start or fifty,
// holds as many as came. It returns the writes it ran. A write refused
// before it wrote anything (see startOne) leaves the others in; the
// transaction runs again with a savepoint around each write only when one
// failed after it wrote, which is rare (an I/O error): a savepoint copies
// every page its write changes, which made a fifth of a large group's CPU.
func (s *Store) writeStarts(ctx context.Context, batch []*groupOp, more func(n int) []*groupOp) []*groupOp {
	err := s.write(ctx, func(tx *sql.Tx) error {
		if err := s.startsInTx(ctx, tx, batch, false); err != nil {
			return err
		}
		for len(batch) < maxStartGroup {
			late := more(maxStartGroup - len(batch))
			if len(late) == 0 {
				return nil
			}
			batch = append(batch, late...)
			if err := s.startsInTx(ctx, tx, late, false); err != nil {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, errStartNotClean) {
		err = s.write(ctx, func(tx *sql.Tx) error { return s.startsInTx(ctx, tx, batch, true) })
	}
	if err != nil {
		// Nothing of the transaction is committed.
		for _, op := range batch {
			if op.err == nil {
				op.got, op.created, op.err = switchboard.Stream{}, false, err
			}
		}
	}
	return batch
}

// errStartNotClean ends a group's transaction without savepoints in which
// one write failed after it wrote.
var errStartNotClean = errors.New("a start of the group failed after it wrote")

// startsInTx runs the writes of batch in tx, each under a savepoint of its
// own when savepoints is true.
func (s *Store) startsInTx(ctx context.Context, tx *sql.Tx, batch []*groupOp, savepoints bool) error {
	for _, op := range batch {
		op.got, op.created, op.err = switchboard.Stream{}, false, nil // write may run fn again
	}
	for _, op := range batch {
		if !savepoints {
			var clean bool
			clean, op.err = s.runOp(ctx, tx, op)
			if op.err != nil && !clean {
				return errStartNotClean
			}
			continue
		}
		if len(batch) == 1 {
			_, op.err = s.runOp(ctx, tx, op)
			return op.err
		}
		if _, err := s.txExec(ctx, tx, qSavepoint); err != nil {
			return err
		}
		_, op.err = s.runOp(ctx, tx, op)
		if op.err != nil {
			if _, err := s.txExec(ctx, tx, qRollbackTo); err != nil {
				return err
			}
		}
		if _, err := s.txExec(ctx, tx, qRelease); err != nil {
			return err
		}
	}
	return nil
}

// runOp runs op in tx and says whether a failure left tx as it was.
func (s *Store) runOp(ctx context.Context, tx *sql.Tx, op *groupOp) (clean bool, err error) {
	if op.fn != nil {
		return op.fn(ctx, tx)
	}
	op.got, op.created, clean, err = s.startOne(ctx, tx, op.st, op.first, op.max)
	return clean, err
}

// grouped runs fn in a write transaction: on SQLite in the group's, with the
// starts and other writes queued meanwhile (see writeGroup), where fn must
// say whether a failure left the transaction as it was (see groupOp.fn);
// on PostgreSQL, where transactions run side by side, in one of its own.
func (s *Store) grouped(ctx context.Context, fn func(ctx context.Context, tx *sql.Tx) (clean bool, err error)) error {
	if s.d != sqliteDialect {
		return s.write(ctx, func(tx *sql.Tx) error {
			_, err := fn(ctx, tx)
			return err
		})
	}
	op := &groupOp{fn: fn}
	s.group.run(ctx, s, op)
	return op.err
}
