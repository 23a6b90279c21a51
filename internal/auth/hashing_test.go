package auth

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestHashingBoundsWork: the slots are taken at once, then requests wait in
// a line of four per slot, those beyond are refused at once, a slot given
// back goes to a waiter, and a wait ends with ErrBusy or with its context.
func TestHashingBoundsWork(t *testing.T) {
	h := NewHashing(2, time.Hour)
	ctx := context.Background()
	var held []func()
	for range 2 {
		release, err := h.Acquire(ctx)
		if err != nil {
			t.Fatalf("free slot: %v", err)
		}
		held = append(held, release)
	}
	// Eight wait (four per slot).
	type result struct {
		release func()
		err     error
	}
	results := make(chan result, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			release, err := h.Acquire(ctx)
			results <- result{release, err}
		})
	}
	waitFor(t, func() bool { _, w := h.InUse(); return w == 8 })
	// The ninth is refused at once, though its wait would be an hour.
	start := time.Now()
	if _, err := h.Acquire(ctx); !errors.Is(err, ErrBusy) {
		t.Fatalf("ninth waiter: %v, want ErrBusy", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("the refusal took %v", d)
	}
	if hashing, waiting := h.InUse(); hashing != 2 || waiting != 8 {
		t.Fatalf("in use %d, waiting %d; want 2 and 8", hashing, waiting)
	}
	// Each slot given back lets one waiter in.
	held[0]()
	r := <-results
	if r.err != nil {
		t.Fatalf("waiter after a release: %v", r.err)
	}
	select {
	case r := <-results:
		t.Fatalf("a second waiter got in with one slot given back: %v", r.err)
	case <-time.After(50 * time.Millisecond):
	}
	r.release()
	held[1]()
	for range 7 {
		r := <-results
		if r.err != nil {
			t.Fatalf("waiter: %v", r.err)
		}
		r.release()
	}
	wg.Wait()
	if hashing, waiting := h.InUse(); hashing != 0 || waiting != 0 {
		t.Fatalf("after all: in use %d, waiting %d", hashing, waiting)
	}
}

func TestHashingWaitEnds(t *testing.T) {
	h := NewHashing(1, 20*time.Millisecond)
	release, err := h.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := h.Acquire(context.Background()); !errors.Is(err, ErrBusy) {
		t.Fatalf("no slot within the wait: %v, want ErrBusy", err)
	}
	long := NewHashing(1, time.Hour)
	hold, err := long.Acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer hold()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := long.Acquire(ctx); done <- err }()
	waitFor(t, func() bool { _, w := long.InUse(); return w == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("context ended while waiting: %v, want context.Canceled", err)
	}
	if _, w := long.InUse(); w != 0 {
		t.Fatalf("%d still counted as waiting", w)
	}
}

func TestDefaultHashSlots(t *testing.T) {
	if n := DefaultHashSlots(); n < 1 || n > 4 {
		t.Fatalf("DefaultHashSlots %d, want 1 to 4", n)
	}
	h := NewHashing(0, 0)
	if cap(h.slots) != DefaultHashSlots() || h.wait != DefaultHashWait || h.maxQueue != int64(4*DefaultHashSlots()) {
		t.Fatalf("defaults: %d slots, wait %v, line %d", cap(h.slots), h.wait, h.maxQueue)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(time.Millisecond)
	}
}
