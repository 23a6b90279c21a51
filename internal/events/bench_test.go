package events

import (
	"context"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
)

// BenchmarkPublish measures Publish with 1,000 in-process subscribers:
//   - idle: subscribed, but their filter declines every event (the cost of
//     visiting subscribers that receive nothing);
//   - receiving: every subscriber takes every event and a goroutine per
//     subscriber drains it.
//
// Publish only numbers and buffers the event; the hub's delivery goroutine
// hands it to the subscribers. The benchmark waits for the delivery every half
// queue (receiving: for the drainers too), so no subscriber is dropped and the
// time per operation includes delivering the event to all 1,000. The metric
// publish-ns/op is the time spent in Publish itself, which is what its callers
// wait for.
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
			var inPublish time.Duration
			for b.Loop() {
				start := time.Now()
				h.Publish(switchboard.Event{Type: switchboard.EventProviderStatus, Audience: switchboard.RoleClient, Data: data})
				inPublish += time.Since(start)
				published++
				if published%(DefaultSubscriberQueue/2) == 0 {
					for !h.caughtUp() || bc.receive && received.Load() < published*subscribers {
						runtime.Gosched()
					}
				}
			}
			b.ReportMetric(float64(inPublish.Nanoseconds())/float64(published), "publish-ns/op")
			if d := h.Stats().Dropped; d > 0 {
				b.Fatalf("%d subscribers dropped", d)
			}
			cancel()
			h.Close()
			wg.Wait()
		})
	}
}
