package sqlstore

import (
	"context"
	"database/sql"
	"sync"
	"time"
)

// SQLite's write-ahead log is folded back into the database file by
// checkpoints. By default the connection that commits runs one whenever the
// log passes 1,000 pages, inside its commit: with starts committed in groups
// at thousands a second, that was every few hundred starts, and each time a
// whole group of callers waited for the pages to be copied and the file to
// be synced (a start's p99 is the wait of its group). The writer now leaves
// them to a checkpointer of its own, on a connection of its own, which runs a
// passive checkpoint (it never waits for, nor blocks, the writer or the
// readers) every checkpointEvery. The writer still checkpoints itself once
// the log passes writerCheckpointPages: under a steady load the passive
// checkpoints overlap commits, so the log is never found wholly copied and
// never starts over from its beginning; the writer's checkpoint, with
// nearly every page copied already, is short, and lets the next transaction
// start the log over (it stayed below 18 MB under 64 writers at 20,000
// starts a second, where it grew past 80 MB with a bound of 20,000 pages).
// It also bounds the log should the checkpointer fall behind or fail.
// Durability does not change: a commit is acknowledged once it is in the
// log, as before; a checkpoint only moves committed pages.
const (
	checkpointEvery       = 100 * time.Millisecond
	writerCheckpointPages = 4000 // 16 MB of 4 KiB pages
)

// checkpointer runs passive checkpoints on db until stop is called.
type checkpointer struct {
	db     *sql.DB
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func startCheckpointer(db *sql.DB, every time.Duration) *checkpointer {
	ctx, cancel := context.WithCancel(context.Background())
	c := &checkpointer{db: db, cancel: cancel}
	c.wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			// An error (the database closing, a disk error the writer
			// meets as well) is left to the next tick and to the writer's
			// own checkpoints.
			_, _ = c.db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
		}
	})
	return c
}

// stop ends the checkpoints and closes their connection.
func (c *checkpointer) stop() error {
	c.cancel()
	c.wg.Wait()
	return c.db.Close()
}
