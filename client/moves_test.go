package client

import (
	"context"
	"testing"
	"time"
)

func TestMoveGateWaitsForEveryMove(t *testing.T) {
	g := newMoveGate()
	if g.moving() {
		t.Fatal("a new gate counts a move")
	}
	a, b := g.enter(), g.enter()
	done := make(chan bool, 1)
	go func() { done <- g.waitCalm(t.Context(), time.Now().Add(time.Minute)) }()
	a()
	a() // a second call of the same settle changes nothing
	select {
	case <-done:
		t.Fatal("waitCalm returned while a move was still in progress")
	case <-time.After(50 * time.Millisecond):
	}
	if !g.moving() {
		t.Fatal("one move left, the gate counts none")
	}
	b()
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("waitCalm = false after the moves ended")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("waitCalm still waiting after every move ended")
	}
	// Calm again, then moving again: a new wait waits for the new move.
	c := g.enter()
	go func() { done <- g.waitCalm(t.Context(), time.Now().Add(time.Minute)) }()
	select {
	case <-done:
		t.Fatal("waitCalm returned during the second move")
	case <-time.After(50 * time.Millisecond):
	}
	c()
	if ok := <-done; !ok {
		t.Fatal("waitCalm = false")
	}
}

func TestMoveGateDeadlineAndCancel(t *testing.T) {
	g := newMoveGate()
	defer g.enter()() // a move that outlasts the test

	start := time.Now()
	if !g.waitCalm(t.Context(), start.Add(100*time.Millisecond)) {
		t.Fatal("waitCalm = false at its deadline")
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Fatalf("waitCalm returned after %v, before its deadline", waited)
	}
	// holdReport gives up holding once reportHoldMax has passed since the
	// move, moves or not.
	if !g.holdReport(t.Context(), time.Now().Add(-reportHoldMax)) {
		t.Fatal("holdReport = false past its hold")
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if g.waitCalm(ctx, time.Now().Add(time.Minute)) {
		t.Fatal("waitCalm = true with its context ended")
	}
	if g.holdReport(ctx, time.Now()) {
		t.Fatal("holdReport = true with its context ended")
	}
}
