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

// startGroup commits the stream starts that arrive while a transaction of
// starts is being written together, in the next transaction (group commit:
// on SQLite, whose one writer takes one transaction at a time, and on
// PostgreSQL for the starts without a capacity limit, in one statement; see
// writeStartsPG). One start
// refused (a full provider, a duplicate id) leaves the others in (see
// writeStarts); every caller returns once the transaction holding its start
// is committed, so an acknowledged start is as durable as before. The first caller to find no transaction running writes
// one with everything queued; when it is done it hands the writing to the
// first caller that queued meanwhile, so that no caller writes for others
// longer than one transaction.
type startGroup struct {
	mu      sync.Mutex
	queue   []*startOp   // guarded by mu
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
func (g *startGroup) fill() {
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

// startOp is one start in a group.
type startOp struct {
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

// start runs op in a group transaction and returns once it is committed or
// failed.
func (g *startGroup) start(ctx context.Context, s *Store, op *startOp) {
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
func (g *startGroup) more(n int) []*startOp {
	g.mu.Lock()
	defer g.mu.Unlock()
	n = min(n, len(g.queue))
	taken := g.queue[:n:n]
	g.queue = g.queue[n:]
	return taken
}

// writeStarts inserts the starts of batch in one write transaction, and those
// that more gives meanwhile, up to maxStartGroup in all: the starts queued
// while the transaction's inserts ran join it before it commits, so that a
// commit, whose writes to the log cost as much whether it holds one start or
// fifty, holds as many as came. It returns the starts it wrote. A start
// refused before it wrote anything (see startOne) leaves the others in; the
// transaction runs again with a savepoint around each start only when one
// failed after it wrote, which is rare (an I/O error): a savepoint copies
// every page its start changes, which made a fifth of a large group's CPU.
func (s *Store) writeStarts(ctx context.Context, batch []*startOp, more func(n int) []*startOp) []*startOp {
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

// errStartNotClean ends a transaction of starts without savepoints in which
// one start failed after it wrote.
var errStartNotClean = errors.New("a start of the group failed after it wrote")

// startsInTx runs the starts of batch in tx, each under a savepoint of its own
// when savepoints is true.
func (s *Store) startsInTx(ctx context.Context, tx *sql.Tx, batch []*startOp, savepoints bool) error {
	for _, op := range batch {
		op.got, op.created, op.err = switchboard.Stream{}, false, nil // write may run fn again
	}
	for _, op := range batch {
		if !savepoints {
			var clean bool
			op.got, op.created, clean, op.err = s.startOne(ctx, tx, op.st, op.first, op.max)
			if op.err != nil && !clean {
				return errStartNotClean
			}
			continue
		}
		if len(batch) == 1 {
			op.got, op.created, op.err = s.startInTx(ctx, tx, op.st, op.first, op.max)
			return op.err
		}
		if _, err := s.txExec(ctx, tx, qSavepoint); err != nil {
			return err
		}
		op.got, op.created, op.err = s.startInTx(ctx, tx, op.st, op.first, op.max)
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
