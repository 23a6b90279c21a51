package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/auth"
	"github.com/switchboardhq/switchboard/internal/secrets"
	"github.com/switchboardhq/switchboard/internal/seed"
	"github.com/switchboardhq/switchboard/internal/sqlstore"
	"github.com/switchboardhq/switchboard/internal/streams"
)

// The benchmarks of the stream hot paths (start, heartbeat, failure report,
// migration, end) run on an empty database, or, with SWITCHBOARD_BENCH_ENDED=N,
// on one that holds N ended streams of the client that calls: a year of
// history, seeded once into a template file (kept in the temporary directory
// for later runs) and copied for each run. For example:
//
//	SWITCHBOARD_BENCH_ENDED=1000000 go test -run x -bench 'StartStream|Heartbeat|ReportFailure|MigrateStream|EndStream' -benchtime 3s ./internal/httpapi

// benchClientToken is the client token of the seeded history's owner.
const (
	benchClientToken = "sbt_bench-client-0123456789abcdefghijklmnop"
	benchClientID    = "bench-client"
	benchActive      = 2000 // live streams the per-stream benchmarks work on
)

var benchTemplates sync.Map // ended count -> *benchTemplate

type benchTemplate struct {
	once sync.Once
	path string
	err  error
}

// benchEnv is a test environment with the providers agora and zegocloud, the
// client token benchClientToken, the seeded history (if asked for), and
// benchActive live streams of that client, whose ids it returns.
func benchEnv(b *testing.B) (*testEnv, []string) {
	b.Helper()
	ended := 0
	if v := os.Getenv("SWITCHBOARD_BENCH_ENDED"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			b.Fatalf("SWITCHBOARD_BENCH_ENDED=%q: want a number of streams", v)
		}
		ended = n
	}
	v, _ := benchTemplates.LoadOrStore(ended, &benchTemplate{})
	tpl := v.(*benchTemplate)
	tpl.once.Do(func() { tpl.path, tpl.err = benchTemplateFile(ended) })
	if tpl.err != nil {
		b.Fatal(tpl.err)
	}
	dir := b.TempDir()
	db := filepath.Join(dir, "bench.db")
	if err := copyFile(tpl.path, db); err != nil {
		b.Fatal(err)
	}
	e := newTestEnvOn(b, "sqlite:"+db)
	e.createProvider(e.agoraProvider("agora", 1))
	e.createProvider(e.zegoProvider("zegocloud", 2))
	ctx := context.Background()
	if _, err := seed.Run(ctx, e.store, seed.Options{Active: benchActive, Providers: []string{"agora", "zegocloud"},
		Owners: []string{"token:" + benchClientID}, Seed: 2}); err != nil {
		b.Fatal(err)
	}
	ids := liveIDs(b, e)
	return e, ids
}

// liveIDs returns the ids of the live streams.
func liveIDs(b *testing.B, e *testEnv) []string {
	b.Helper()
	var ids []string
	f := sb.StreamFilter{Status: sb.StreamActive, Limit: 500}
	for {
		live, err := e.store.ListStreams(context.Background(), f)
		if err != nil {
			b.Fatal(err)
		}
		if len(live) == 0 {
			return ids
		}
		for _, st := range live {
			ids = append(ids, st.ID)
		}
		last := live[len(live)-1]
		f.Before = &sb.StreamCursor{StartedAt: last.StartedAt, ID: last.ID}
	}
}

// benchTemplateFile returns a database file with the benchmark client's token
// and ended streams of it, creating it on first use.
func benchTemplateFile(ended int) (string, error) {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("switchboard-bench-v1-%d.db", ended))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	tmp := path + ".new"
	os.Remove(tmp)
	sealer, err := secrets.NewAESGCM(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		return "", err
	}
	ctx := context.Background()
	st, err := sqlstore.Open(ctx, "sqlite:"+tmp, sealer, nil)
	if err != nil {
		return "", err
	}
	defer st.Close()
	if err := st.CreateAPIToken(ctx, sb.APIToken{ID: benchClientID, Name: "bench client", Role: sb.RoleClient,
		Hash: auth.HashToken(benchClientToken)}, sb.AuditEntry{}); err != nil {
		return "", err
	}
	if ended > 0 {
		if _, err := seed.Run(ctx, st, seed.Options{Ended: ended, Providers: []string{"agora", "zegocloud"},
			Owners: []string{"token:" + benchClientID}, Seed: 1}); err != nil {
			return "", err
		}
	}
	// One file, without its write-ahead log, so that it can be copied.
	if err := st.Checkpoint(ctx); err != nil {
		return "", err
	}
	if err := st.Close(); err != nil {
		return "", err
	}
	os.Remove(tmp + "-wal")
	os.Remove(tmp + "-shm")
	return path, os.Rename(tmp, path)
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// benchRequests sends the request req(i) for i = 0, 1, ... from parallel
// clients until b.N are done, checks the status and reports requests per
// second, the p99 latency and the CPU time per request.
func benchRequests(b *testing.B, e *testEnv, want int, req func(i int) (method, path string, body any)) {
	b.Helper()
	benchRequestsFrom(b, e, want, 1, req)
}

// benchRequestsFrom is benchRequests from par clients a core.
func benchRequestsFrom(b *testing.B, e *testEnv, want, par int, req func(i int) (method, path string, body any)) {
	b.Helper()
	client := e.srv.Client()
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	var n atomic.Int64
	lat := make(chan []time.Duration, 64)
	b.ResetTimer()
	start, cpu := time.Now(), cpuTime()
	b.SetParallelism(par)
	b.RunParallel(func(pb *testing.PB) {
		var mine []time.Duration
		for pb.Next() {
			i := int(n.Add(1) - 1)
			method, path, body := req(i)
			t0 := time.Now()
			st, out := e.doQuiet(method, path, benchClientToken, body)
			mine = append(mine, time.Since(t0))
			if st != want {
				b.Errorf("%s %s: status %d %s", method, path, st, out)
				break
			}
		}
		lat <- mine
	})
	elapsed, cpu := time.Since(start), cpuTime()-cpu
	b.StopTimer()
	if n := reportLatencies(b, lat, elapsed, "req/s"); n > 0 {
		// The CPU the process (client and server) spent per request: unlike
		// the rates, it hardly moves with the load of other processes.
		b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/op")
	}
}

// BenchmarkStartStreamHistory is POST /api/streams as the SDK sends it (with
// an idempotency key) by the client that owns the history.
func BenchmarkStartStreamHistory(b *testing.B) {
	e, _ := benchEnv(b)
	benchRequests(b, e, 201, func(i int) (string, string, any) {
		return "POST", "/api/streams", map[string]any{"room": fmt.Sprintf("bench-%d", i), "userId": "u", "role": "publisher",
			"idempotencyKey": fmt.Sprintf("bench-key-%d-%d", time.Now().UnixNano(), i)}
	})
}

// BenchmarkHeartbeat is POST /api/streams/{id}/heartbeat on the live streams.
func BenchmarkHeartbeat(b *testing.B) {
	e, ids := benchEnv(b)
	benchRequests(b, e, 200, func(i int) (string, string, any) {
		return "POST", "/api/streams/" + ids[i%len(ids)] + "/heartbeat", nil
	})
}

// BenchmarkReportFailure is POST /api/streams/{id}/failures on the provider
// each live stream is on.
func BenchmarkReportFailure(b *testing.B) { benchFailures(b, 1) }

func benchFailures(b *testing.B, par int) {
	e, ids := benchEnv(b)
	on := make(map[string]string, len(ids))
	for _, id := range ids {
		st, err := e.store.GetStream(context.Background(), id)
		if err != nil {
			b.Fatal(err)
		}
		on[id] = st.Provider
	}
	benchRequestsFrom(b, e, 202, par, func(i int) (string, string, any) {
		id := ids[i%len(ids)]
		return "POST", "/api/streams/" + id + "/failures", map[string]any{"provider": on[id], "stage": "media",
			"code": "connection_lost", "message": "media connection lost"}
	})
}

// BenchmarkReportFailureAfterMove is POST /api/streams/{id}/failures as the
// SDK sends it after failing over to its standby: on the provider the stream
// has just left.
func BenchmarkReportFailureAfterMove(b *testing.B) {
	e, ids := benchEnv(b)
	left := make(map[string]string, len(ids))
	other := map[string]string{"agora": "zegocloud", "zegocloud": "agora"}
	for _, id := range ids {
		st, err := e.store.GetStream(context.Background(), id)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := e.store.MigrateStream(context.Background(), id, sb.TrailEntry{Provider: other[st.Provider], Reason: "bench"}, 0); err != nil {
			b.Fatal(err)
		}
		left[id] = st.Provider
	}
	benchRequests(b, e, 202, func(i int) (string, string, any) {
		id := ids[i%len(ids)]
		return "POST", "/api/streams/" + id + "/failures", map[string]any{"provider": left[id], "stage": "media",
			"code": "connection_lost", "message": "media connection lost"}
	})
}

// BenchmarkMigrateStream is POST /api/streams/{id}/migrate, each request
// moving a live stream to the best other provider.
func BenchmarkMigrateStream(b *testing.B) {
	e, ids := benchEnv(b)
	benchRequests(b, e, 200, func(i int) (string, string, any) {
		return "POST", "/api/streams/" + ids[i%len(ids)] + "/migrate", map[string]any{"reason": "bench"}
	})
}

// BenchmarkEndStream is POST /api/streams/{id}/end on live streams, each
// ended once (more live streams are seeded when b.N needs them).
func BenchmarkEndStream(b *testing.B) { benchEnds(b, 1) }

// BenchmarkEndStreamStorm is BenchmarkEndStream from 16 clients a core, as
// when an event's audience leaves together.
func BenchmarkEndStreamStorm(b *testing.B) { benchEnds(b, 16) }

func benchEnds(b *testing.B, par int) {
	e, ids := benchEnv(b)
	if b.N > len(ids) {
		if _, err := seed.Run(context.Background(), e.store, seed.Options{Active: b.N - len(ids),
			Providers: []string{"agora", "zegocloud"}, Owners: []string{"token:" + benchClientID}, Seed: 3}); err != nil {
			b.Fatal(err)
		}
		ids = liveIDs(b, e)
	}
	benchRequestsFrom(b, e, 200, par, func(i int) (string, string, any) {
		return "POST", "/api/streams/" + ids[i] + "/end", nil
	})
}

// BenchmarkMigrateMovedAt is POST /api/streams/{id}/migrate as the SDK sends
// it after failing over to its standby: the move has happened (movedAt), to
// the other provider.
func BenchmarkMigrateMovedAt(b *testing.B) { benchMovedAt(b, 1) }

// BenchmarkMigrateMovedAtStorm is BenchmarkMigrateMovedAt from 16 clients a
// core, as when a provider's streams fail over together and report their
// moves at once.
func BenchmarkMigrateMovedAtStorm(b *testing.B) { benchMovedAt(b, 16) }

// BenchmarkReportFailureStorm is BenchmarkReportFailure from 16 clients a
// core.
func BenchmarkReportFailureStorm(b *testing.B) { benchFailures(b, 16) }

func benchMovedAt(b *testing.B, par int) {
	e, ids := benchEnv(b)
	on := make([]atomic.Value, len(ids))
	for k, id := range ids {
		st, err := e.store.GetStream(context.Background(), id)
		if err != nil {
			b.Fatal(err)
		}
		on[k].Store(st.Provider)
	}
	other := map[string]string{"agora": "zegocloud", "zegocloud": "agora"}
	benchRequestsFrom(b, e, 200, par, func(i int) (string, string, any) {
		k := i % len(ids)
		to := other[on[k].Load().(string)]
		on[k].Store(to)
		return "POST", "/api/streams/" + ids[k] + "/migrate", map[string]any{"to": to, "reason": "standby: media error",
			"movedAt": time.Now().UTC().Format(time.RFC3339Nano)}
	})
}

// discardWriter is a ResponseWriter that keeps the status and drops the
// body, so that a benchmark of a handler counts the server's work only.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}
func (w *discardWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(b)
	return len(b), nil
}

// BenchmarkHeartbeatServed is POST /api/streams/{id}/heartbeat as the server
// runs it (heartbeats answered from memory and written every second), called
// in the process without a connection: its allocations are the server's
// alone. On "one provider" the stream has no standby, as in scripts/bench;
// on "two providers" each answer carries one, with a token minted for it.
func BenchmarkHeartbeatServed(b *testing.B) {
	for _, c := range []struct {
		name string
		zego bool
	}{{"one provider", false}, {"two providers", true}} {
		b.Run(c.name, func(b *testing.B) {
			e := newTestEnvWith(b, "", func(c *streams.Config) { c.HeartbeatFlush = time.Second })
			e.createProvider(e.agoraProvider("agora", 1))
			if c.zego {
				e.createProvider(e.zegoProvider("zegocloud", 2))
			}
			for _, name := range []string{"agora", "zegocloud"} {
				if c.zego || name == "agora" {
					e.mustDo("POST", "/api/streaming/providers/"+name+"/health-check", e.tokens[sb.RoleSuperadmin], nil, 200, nil)
				}
			}
			token := e.tokens[sb.RoleClient]
			var ids []string
			for i := range 64 {
				a := e.start(token, map[string]any{"room": fmt.Sprintf("bench-%d", i), "userId": "u", "role": "publisher"})
				if a.Provider.Name != "agora" {
					b.Fatalf("stream on %s, want agora", a.Provider.Name)
				}
				ids = append(ids, a.ID)
			}
			reqs := make([]*http.Request, len(ids))
			for i, id := range ids {
				r, err := http.NewRequest("POST", "/api/streams/"+id+"/heartbeat", nil)
				if err != nil {
					b.Fatal(err)
				}
				r.Header.Set("Authorization", "Bearer "+token)
				r.RemoteAddr = "127.0.0.1:40000"
				reqs[i] = r
			}
			w := &discardWriter{h: http.Header{}}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				clear(w.h)
				w.status, w.n = 0, 0
				e.api.ServeHTTP(w, reqs[i%len(reqs)])
				if w.status != http.StatusOK {
					b.Fatalf("status %d", w.status)
				}
			}
		})
	}
}
