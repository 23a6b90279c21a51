package sqlstore

import (
	"context"
	"database/sql"
	"os"
	"testing"
	"time"
)

// TestCheckpointerFoldsTheLog: the writer leaves checkpoints to the
// checkpointer until the log is far larger than SQLite's default, and the
// checkpointer folds committed pages into the database file on its own.
func TestCheckpointerFoldsTheLog(t *testing.T) {
	dsn, path := tempDSN(t)
	s := mustOpen(t, dsn, newSealer(t))
	ctx := context.Background()
	var pages int
	if err := s.w.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	if pages != writerCheckpointPages {
		t.Fatalf("writer's wal_autocheckpoint %d, want %d", pages, writerCheckpointPages)
	}
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	before := size()
	// About 2 MB in the log: far below the writer's own threshold.
	if err := s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO status_sets (digest, statuses)
			SELECT randomblob(16), hex(randomblob(500000)) FROM (SELECT 1 UNION ALL SELECT 2)`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); size() < before+1_500_000; {
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes, %d before the writes: the log was not checkpointed", size(), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCheckpointerStops: Close ends the checkpointer's goroutine.
func TestCheckpointerStops(t *testing.T) {
	dsn, _ := tempDSN(t)
	s, err := Open(context.Background(), dsn, newSealer(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := s.ckpt
	if c == nil {
		t.Fatal("no checkpointer on a file database")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("checkpointer still running after Close")
	}
}
