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
// readers) every checkpointEvery. Should it fall behind or fail, the writer
// still checkpoints itself once the log passes writerCheckpointPages.
// Durability does not change: a commit is acknowledged once it is in the
// log, as before; a checkpoint only moves committed pages.
const (
	checkpointEvery       = 100 * time.Millisecond
	writerCheckpointPages = 20000 // 80 MB of 4 KiB pages
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
