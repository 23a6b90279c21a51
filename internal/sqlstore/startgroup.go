package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/switchboardhq/switchboard"
)

// startGroup commits the stream starts that arrive while a transaction of
// starts is being written together, in the next transaction (group commit,
// SQLite only: its one writer takes one transaction at a time). One start
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
}

// startOp is one start in a group.
type startOp struct {
	st      switchboard.Stream
	first   switchboard.TrailEntry
	max     int
	got     switchboard.Stream
	created bool
	err     error
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
	n := min(len(g.queue), maxStartGroup)
	batch := g.queue[:n:n]
	g.queue = g.queue[n:]
	g.mu.Unlock()

	// The transaction is everyone's: it does not end with this caller's
	// context (the busy timeout bounds it).
	s.writeStarts(context.WithoutCancel(ctx), batch)
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

// writeStarts inserts the starts of batch in one write transaction. A start
// refused before it wrote anything (see startOne) leaves the others in; the
// transaction runs again with a savepoint around each start only when one
// failed after it wrote, which is rare (an I/O error): a savepoint copies
// every page its start changes, which made a fifth of a large group's CPU.
func (s *Store) writeStarts(ctx context.Context, batch []*startOp) {
	err := s.write(ctx, func(tx *sql.Tx) error { return s.startsInTx(ctx, tx, batch, false) })
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
		if len(batch) == 1 {
			op.got, op.created, op.err = s.startInTx(ctx, tx, op.st, op.first, op.max)
			return op.err
		}
		if !savepoints {
			var clean bool
			op.got, op.created, clean, op.err = s.startOne(ctx, tx, op.st, op.first, op.max)
			if op.err != nil && !clean {
				return errStartNotClean
			}
			continue
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
