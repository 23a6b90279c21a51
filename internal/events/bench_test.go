package events

import (
	"context"
	"strconv"
	"sync"
	"testing"

	"github.com/switchboardhq/switchboard"
)

// BenchmarkPublish measures Publish with 1,000 in-process subscribers:
//   - idle: subscribed, but their filter declines every event (the cost of
//     visiting subscribers that receive nothing);
//   - receiving: every subscriber takes every event, drained by its own
//     goroutine (the cost of queueing to each).
//
// The event is encoded once per Publish whatever the number of subscribers.
func BenchmarkPublish(b *testing.B) {
	const subscribers = 1000
	for _, bc := range []struct {
		name   string
		filter func(switchboard.Event) bool
		drain  bool
	}{
		{"idle", func(switchboard.Event) bool { return false }, false},
		{"receiving", nil, true},
	} {
		b.Run(bc.name+"/subscribers="+strconv.Itoa(subscribers), func(b *testing.B) {
			h := New(Options{})
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for range subscribers {
				ch := h.Subscribe(ctx, bc.filter)
				if bc.drain {
					wg.Go(func() {
						for range ch {
						}
					})
				}
			}
			data := map[string]any{"provider": "agora-main", "from": "up", "to": "degraded", "reason": "p95 latency 900ms"}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				h.Publish(switchboard.Event{Type: switchboard.EventProviderStatus, Audience: switchboard.RoleClient, Data: data})
			}
			b.StopTimer()
			if d := h.Stats().Dropped; d > 0 {
				b.Logf("%d subscribers dropped (drainers did not keep up)", d)
			}
			cancel()
			h.Close()
			wg.Wait()
		})
	}
}
