package sqlstore

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/storetest"
)

// BenchmarkStartStreamGroup measures StartStream on an SQLite file from 64
// goroutines at once, as the 64 clients of the benchmark's starts send them
// (their starts share transactions), each with the trail entry of a start
// among two providers. It reports the process's CPU time per start, which
// hardly moves with the load of other processes, and the p99 latency.
//
// "writer-checkpoints" runs it as it ran before the checkpointer
// (checkpoint.go): the writer checkpointing the log itself every 1,000 pages.
// "providers-100" spreads the starts over 100 providers, in turn: a start
// should cost what it costs with 2.
func BenchmarkStartStreamGroup(b *testing.B) {
	b.Run("checkpointer", func(b *testing.B) { benchmarkStartStreamGroup(b, false, 2) })
	b.Run("writer-checkpoints", func(b *testing.B) { benchmarkStartStreamGroup(b, true, 2) })
	b.Run("providers-100", func(b *testing.B) { benchmarkStartStreamGroup(b, false, 100) })
}

func benchmarkStartStreamGroup(b *testing.B, writerCheckpoints bool, providers int) {
	dsn, _ := tempDSN(b)
	s := mustOpen(b, dsn, newSealer(b))
	ctx := context.Background()
	if writerCheckpoints {
		if err := s.ckpt.stop(); err != nil {
			b.Fatal(err)
		}
		s.ckpt = nil
		if _, err := s.w.ExecContext(ctx, `PRAGMA wal_autocheckpoint(1000)`); err != nil {
			b.Fatal(err)
		}
	}
	names := make([]string, providers)
	statuses := map[string]switchboard.Status{}
	for i := range names {
		names[i] = fmt.Sprintf("agora-%d", i)
		if err := s.CreateProvider(ctx, storetest.AgoraProvider(b, names[i]), switchboard.AuditEntry{}); err != nil {
			b.Fatal(err)
		}
		statuses[names[i]] = switchboard.StatusHealthy
	}
	const workers = 64
	var (
		next atomic.Int64
		mu   sync.Mutex
		lats []time.Duration
		wg   sync.WaitGroup
	)
	b.ResetTimer()
	start, cpu, groups := time.Now(), processCPU(), s.group.groups.Load()
	for range workers {
		wg.Go(func() {
			var mine []time.Duration
			for {
				n := next.Add(1)
				if n > int64(b.N) {
					break
				}
				now, provider := time.Now(), names[n%int64(len(names))]
				st := switchboard.Stream{ID: switchboard.NewStreamID(), Room: "bench-room", UserID: "u1", Role: switchboard.RolePublisher,
					Quality: switchboard.QualityHD, Provider: provider, Status: switchboard.StreamActive, Owner: "token:bench", StartedAt: now, LastHeartbeat: now}
				e := switchboard.TrailEntry{StreamID: st.ID, At: now, Kind: switchboard.TrailAssign, Provider: provider,
					Reason: provider + ": healthy, priority 1", Statuses: statuses}
				if _, _, err := s.StartStream(ctx, st, e, 0); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(now))
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	elapsed, used, groups := time.Since(start), processCPU()-cpu, s.group.groups.Load()-groups
	b.StopTimer()
	if len(lats) == 0 {
		return
	}
	slices.Sort(lats)
	b.ReportMetric(float64(used.Microseconds())/float64(len(lats)), "cpu-µs/op")
	b.ReportMetric(float64(len(lats))/elapsed.Seconds(), "starts/s")
	b.ReportMetric(float64(lats[len(lats)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(len(lats))/float64(max(groups, 1)), "starts/group")
}

// processCPU is the CPU time (user and system) the process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
