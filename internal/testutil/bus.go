package testutil

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/switchboardhq/switchboard"
)

// Bus is a switchboard.Bus that records every event published on it, safe for
// concurrent use. Tests read what was published with Events or Take, and wait
// for an event with Next. The zero value is ready to use.
type Bus struct {
	mu        sync.Mutex
	events    []switchboard.Event // guarded by mu
	taken     int                 // guarded by mu; events[:taken] were returned by Take
	next      map[string]int      // guarded by mu; events of each type returned by Next
	published chan struct{}       // guarded by mu; closed by the next Publish
}

// Publish records e and wakes the callers of Next.
func (b *Bus) Publish(e switchboard.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.events = append(b.events, e)
	if b.published != nil {
		close(b.published)
		b.published = nil
	}
}

// Events returns every event published so far, in order.
func (b *Bus) Events() []switchboard.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.events)
}

// Take returns the events published since the last Take.
func (b *Bus) Take() []switchboard.Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := slices.Clone(b.events[b.taken:])
	b.taken = len(b.events)
	return out
}

// Next waits for the next event of type typ: its nth call for a type returns
// the nth event of that type published, at once if it already was. It returns
// an error when ctx ends first.
func (b *Bus) Next(ctx context.Context, typ string) (switchboard.Event, error) {
	for {
		b.mu.Lock()
		seen := 0
		for _, e := range b.events {
			if e.Type != typ {
				continue
			}
			if seen == b.next[typ] {
				if b.next == nil {
					b.next = make(map[string]int)
				}
				b.next[typ]++
				b.mu.Unlock()
				return e, nil
			}
			seen++
		}
		if b.published == nil {
			b.published = make(chan struct{})
		}
		published := b.published
		b.mu.Unlock()
		select {
		case <-published:
		case <-ctx.Done():
			return switchboard.Event{}, fmt.Errorf("wait for event %s: %w", typ, context.Cause(ctx))
		}
	}
}
