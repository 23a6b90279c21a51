// Package testutil holds what the tests of several packages need alike: a
// goroutine-safe output buffer, a settable clock, a recording event bus, a
// condition wait and a check that a test left no goroutine running. It imports
// only the root package and the standard library, so that any package's tests
// may use it.
package testutil

import (
	"bytes"
	"runtime"
	"sync"
	"testing"
	"time"
)

// Buffer is a bytes.Buffer safe for concurrent writers and readers, for logs
// and command output that tests read while a server writes them.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Patience bounds every wait of Eventually and CheckGoroutines: tests never
// assert on speed, only that something happens, and a busy machine may be slow.
const Patience = 20 * time.Second

// pollStep is how often Eventually and CheckGoroutines look again.
const pollStep = 5 * time.Millisecond

// Eventually polls cond until it holds, failing t when it still does not after
// Patience. what names the condition in the failure.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", Patience, what)
		}
		time.Sleep(pollStep)
	}
}

// LeakCheck takes a goroutine count now and, when t ends, checks it with
// CheckGoroutines. Call it first in a test, so that its cleanup runs last.
func LeakCheck(t testing.TB) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() { CheckGoroutines(t, before) })
}

// CheckGoroutines fails t when, after a settle period of up to Patience, more
// goroutines run than before (a count taken with runtime.NumGoroutine when
// the test started), and prints their stacks.
func CheckGoroutines(t testing.TB, before int) {
	t.Helper()
	deadline := time.Now().Add(Patience)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines left running, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
			return
		}
		time.Sleep(pollStep)
	}
}
