package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/streams"
)

// BenchmarkPublicHealth measures GET /api/streaming/providers/{name}/health
// over loopback HTTP on a SQLite file, with the rate limit off (as the
// README's figure is taken), from parallel clients.
func BenchmarkPublicHealth(b *testing.B) {
	e := newTestEnv(b)
	e.createProvider(e.agoraProvider("agora", 1))
	e.mustDo("POST", "/api/streaming/providers/agora/health-check", e.tokens[sb.RoleAdmin], nil, 200, nil)
	e.api.public = nil
	url := e.srv.URL + "/api/streaming/providers/agora/health"
	client := e.srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				b.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkStartStream measures POST /api/streams over loopback HTTP on a
// SQLite file (WAL, one writer) from parallel clients, and reports streams
// started per second and the p99 latency.
func BenchmarkStartStream(b *testing.B) {
	e := newTestEnv(b)
	e.createProvider(e.agoraProvider("agora", 1))
	e.createProvider(e.zegoProvider("zegocloud", 2))
	token := e.tokens[sb.RoleClient]
	client := e.srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	var n atomic.Int64
	lat := make(chan []time.Duration, 64)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			i := n.Add(1)
			t0 := time.Now()
			st, body := e.doQuiet("POST", "/api/streams", token, map[string]any{"room": fmt.Sprintf("bench-%d", i), "userId": "u", "role": "publisher"})
			mine = append(mine, time.Since(t0))
			if st != 201 {
				b.Errorf("status %d %s", st, body)
				return
			}
		}
		lat <- mine
	})
	elapsed := time.Since(start)
	b.StopTimer()
	reportLatencies(b, lat, elapsed, "streams/s")
}

// reportLatencies closes lat, the latencies each parallel worker measured, and
// reports the rate (in unit) and the 99th percentile; it returns the count.
func reportLatencies(b *testing.B, lat chan []time.Duration, elapsed time.Duration, unit string) int {
	close(lat)
	var all []time.Duration
	for l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(len(all))/elapsed.Seconds(), unit)
		b.ReportMetric(float64(all[(len(all)*99)/100].Microseconds())/1000, "p99-ms")
	}
	return len(all)
}

// BenchmarkStartStreamProviders measures POST /api/streams as
// BenchmarkStartStream does, from 32 clients per core, with 2 and with 100
// Agora providers of equal priority: the start's cost should barely grow
// with the providers (compare the CPU profiles of the two with -cpuprofile).
// cpu-µs/op is the process's CPU time (the server's and the clients') per
// start: on a shared machine it moves less than ns/op, which counts the
// time other tenants took.
func BenchmarkStartStreamProviders(b *testing.B) {
	for _, n := range []int{2, 100} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			// As serve runs it: heartbeats and routing counts written in
			// batches every second, not one write per start.
			e := newTestEnvWith(b, "", func(c *streams.Config) { c.HeartbeatFlush = time.Second })
			for i := range n {
				e.createProvider(e.agoraProvider(fmt.Sprintf("agora-%d", i), 1))
			}
			token := e.tokens[sb.RoleClient]
			client := e.srv.Client()
			client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
			var next atomic.Int64
			b.SetParallelism(32)
			cpu0 := cpuTime()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := next.Add(1)
					st, body := e.doQuiet("POST", "/api/streams", token, map[string]any{"room": fmt.Sprintf("bench-%d", i), "userId": "u", "role": "publisher"})
					if st != 201 {
						b.Errorf("status %d %s", st, body)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}
