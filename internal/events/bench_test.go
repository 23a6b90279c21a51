package events

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/switchboardhq/switchboard"
)

// BenchmarkPublish measures Publish with 1,000 in-process subscribers:
//   - idle: subscribed, but their filter declines every event (the cost of
//     visiting subscribers that receive nothing);
//   - receiving: every subscriber takes every event and a goroutine per
//     subscriber drains it. The benchmark waits for the drainers every
//     half queue, so no subscriber is dropped and the time per operation
//     includes delivering the event to all 1,000.
//
// The event is encoded once per Publish whatever the number of subscribers.
func BenchmarkPublish(b *testing.B) {
	const subscribers = 1000
	for _, bc := range []struct {
		name    string
		filter  func(switchboard.Event) bool
		receive bool
	}{
		{"idle", func(switchboard.Event) bool { return false }, false},
		{"receiving", nil, true},
	} {
		b.Run(bc.name+"/subscribers="+strconv.Itoa(subscribers), func(b *testing.B) {
			h := New(Options{})
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			var received atomic.Int64
			for range subscribers {
				ch := h.Subscribe(ctx, bc.filter)
				if bc.receive {
					wg.Go(func() {
						for range ch {
							received.Add(1)
						}
					})
				}
			}
			data := map[string]any{"provider": "agora-main", "from": "up", "to": "degraded", "reason": "p95 latency 900ms"}
			b.ReportAllocs()
			var published int64
			for b.Loop() {
				h.Publish(switchboard.Event{Type: switchboard.EventProviderStatus, Audience: switchboard.RoleClient, Data: data})
				published++
				if bc.receive && published%(DefaultSubscriberQueue/2) == 0 {
					for received.Load() < published*subscribers {
						runtime.Gosched()
					}
				}
			}
			if d := h.Stats().Dropped; d > 0 {
				b.Fatalf("%d subscribers dropped", d)
			}
			cancel()
			h.Close()
			wg.Wait()
		})
	}
}
