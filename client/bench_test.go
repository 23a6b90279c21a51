package client_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/client"
)

// benchStreams is the number of streams of the failover benchmarks.
const benchStreams = 200

// startMany starts n streams on the primary and returns them.
func startMany(b *testing.B, c *client.Client, n int) []*client.Stream {
	b.Helper()
	ss := make([]*client.Stream, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for i := range n {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			s, err := c.Start(context.Background(), fmt.Sprintf("bench-%d", i))
			if err != nil {
				b.Error(err)
				return
			}
			ss[i] = s
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	return ss
}

// migrations waits for the first Migrated state of every stream.
func migrations(b *testing.B, ss []*client.Stream) []client.Migrated {
	b.Helper()
	out := make([]client.Migrated, len(ss))
	var wg sync.WaitGroup
	for i, s := range ss {
		wg.Go(func() {
			timeout := time.After(60 * time.Second)
			for {
				select {
				case st, ok := <-s.States():
					if !ok {
						b.Errorf("stream %s ended: %v", s.ID(), s.Err())
						return
					}
					if m, ok := st.(client.Migrated); ok {
						out[i] = m
						return
					}
				case <-timeout:
					b.Errorf("stream %s did not migrate", s.ID())
					return
				}
			}
		})
	}
	wg.Wait()
	return out
}

func p95(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[(len(ds)*95+99)/100-1]
}

// BenchmarkFailoverGap measures the failover gap (media error to Live on the
// backup) of benchStreams streams whose provider drops every connection at
// once, against an in-process control plane on SQLite.
func BenchmarkFailoverGap(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b, settings())
		c := e.newClient()
		ss := startMany(b, c, benchStreams)
		e.eng.Down(primary, true)
		b.StartTimer()
		e.eng.Fail(primary)
		ms := migrations(b, ss)
		b.StopTimer()
		gaps := make([]time.Duration, len(ms))
		for i, m := range ms {
			gaps[i] = m.Gap
		}
		b.ReportMetric(float64(p95(gaps).Microseconds())/1000, "p95-gap-ms")
		b.ReportMetric(float64(slices.Max(gaps).Microseconds())/1000, "max-gap-ms")
		_ = c.Close()
		b.StartTimer()
	}
}

// BenchmarkCriticalToAllMigrated measures the time from a provider turning
// CRITICAL on the server (the health check that records it) to every one of
// benchStreams subscribed streams live on another provider.
func BenchmarkCriticalToAllMigrated(b *testing.B) {
	for b.Loop() {
		b.StopTimer()
		e := newEnv(b, settings())
		c := e.newClient()
		ss := startMany(b, c, benchStreams)
		waitFor(b, "the event stream", c.EventsConnected)
		b.StartTimer()
		start := time.Now()
		e.critical(primary)
		migrations(b, ss)
		all := time.Since(start)
		b.StopTimer()
		b.ReportMetric(float64(all.Microseconds())/1000, "all-migrated-ms")
		_ = c.Close()
		b.StartTimer()
	}
}
