package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is what one closed-loop run measured of one server.
type loadResult struct {
	Requests  int64           `json:"requests"`
	Errors    int64           `json:"errors"`
	Elapsed   time.Duration   `json:"-"`
	CPU       time.Duration   `json:"-"` // the server process's user + system time
	ClientCPU time.Duration   `json:"-"` // the load generator's own
	RSS       int64           `json:"-"` // the server process's resident set at the end
	lat       []time.Duration // of the successful requests
	firstErr  string
	DBCPU     time.Duration `json:"-"` // the local PostgreSQL processes' (item 4 only)
}

// tally is what one worker of a run counted.
type tally struct {
	lat   []time.Duration // of the successful requests
	errs  int64
	first string
}

// send sends raw on rc and counts its answer, its latency from since; a status
// other than want is an error.
func (t *tally) send(rc *rawClient, addr string, raw []byte, want int, since time.Time) {
	status, err := rc.do(addr, raw)
	switch {
	case err != nil:
		t.errs++
		if t.first == "" {
			t.first = err.Error()
		}
	case status != want:
		t.errs++
		if t.first == "" {
			t.first = fmt.Sprintf("%s: status %d", requestLine(raw), status)
		}
	default:
		t.lat = append(t.lat, time.Since(since))
	}
}

// drive runs conc workers until each returns, each with a connection of its
// own and a tally, and reads the CPU time and memory of the server processes
// pids and of the load generator around them.
func drive(conc int, deadline time.Time, pids []int, work func(rc *rawClient, t *tally)) loadResult {
	var res loadResult
	var mu sync.Mutex
	cpu0, self0 := cpuOf(pids), cpuOf([]int{os.Getpid()})
	start := time.Now()
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			rc := newRawClient(deadline.Add(30 * time.Second))
			defer rc.close()
			t := &tally{lat: make([]time.Duration, 0, 4096)}
			work(rc, t)
			mu.Lock()
			res.lat = append(res.lat, t.lat...)
			res.Errors += t.errs
			if res.firstErr == "" {
				res.firstErr = t.first
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.CPU = cpuOf(pids) - cpu0
	res.ClientCPU = cpuOf([]int{os.Getpid()}) - self0
	res.RSS = rssOf(pids)
	res.Requests = int64(len(res.lat))
	return res
}

// closedLoop runs conc workers, each sending its next request as soon as the
// previous one is answered, for d; a request answered with another status
// than want counts as an error. pids are the server processes whose CPU time
// and memory are read before and after.
func closedLoop(ctx context.Context, conc int, d time.Duration, want int, next request, pids ...int) loadResult {
	var n atomic.Int64
	deadline := time.Now().Add(d)
	return drive(conc, deadline, pids, func(rc *rawClient, t *tally) {
		buf := make([]byte, 0, 1024)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			addr, raw := next(buf[:0], n.Add(1))
			buf = raw
			t.send(rc, addr, raw, want, time.Now())
		}
	})
}

// openLoop sends requests at a fixed rate for d, whatever the answers' pace:
// request i is due at start + i/rate, and its latency counts from when it was
// due, not from when it went out, so that a server falling behind shows in
// the latencies rather than in fewer requests (a closed loop waits for each
// answer and so measures a server at its limit). conc connections carry the
// requests; when all are busy the next due requests wait, and their wait
// counts. The other arguments are closedLoop's.
func openLoop(ctx context.Context, rate float64, conc int, d time.Duration, want int, next request, pids ...int) loadResult {
	var n atomic.Int64
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now()
	deadline := start.Add(d)
	return drive(conc, deadline, pids, func(rc *rawClient, t *tally) {
		buf := make([]byte, 0, 1024)
		timer := time.NewTimer(0)
		defer timer.Stop()
		<-timer.C
		for ctx.Err() == nil {
			i := n.Add(1) - 1
			due := start.Add(time.Duration(i) * interval)
			if !due.Before(deadline) {
				return
			}
			if wait := time.Until(due); wait > 0 {
				timer.Reset(wait)
				select {
				case <-ctx.Done():
				case <-timer.C:
				}
			}
			addr, raw := next(buf[:0], i+1)
			buf = raw
			t.send(rc, addr, raw, want, due)
		}
	})
}

// requestLine returns the first line of a raw request, for error messages
// (the method and path; never a header, which may hold a token).
func requestLine(raw []byte) string {
	line, _, _ := strings.Cut(string(raw), "\r\n")
	line, _ = strings.CutSuffix(line, " HTTP/1.1")
	return line
}

// stats sums the rounds of one side of a comparison.
type stats struct {
	Rounds        int       `json:"rounds"`
	Requests      int64     `json:"requests"`
	Errors        int64     `json:"errors"`
	FirstError    string    `json:"firstError,omitempty"`
	Throughput    float64   `json:"throughputPerSec"` // all requests over all rounds' time
	RoundRates    []float64 `json:"roundThroughputs"` // each round's
	P50Ms         float64   `json:"p50Ms"`
	P95Ms         float64   `json:"p95Ms"`
	P99Ms         float64   `json:"p99Ms"`
	CPUPerRequest float64   `json:"cpuMicrosPerRequest"`              // server CPU time per request, µs
	ClientCPU     float64   `json:"loadGeneratorCpuMicrosPerRequest"` // the load generator's, µs
	RSSMiB        float64   `json:"rssMiB"`                           // server resident memory at the end, MiB
	// DBCPUPerRequest is the CPU time per request of every process named
	// postgres on this machine (item 4, with PostgreSQL on the same host;
	// other sessions' work counts too), µs.
	DBCPUPerRequest float64 `json:"dbCpuMicrosPerRequest,omitempty"`
}

// summarise folds the rounds into one figure per measure.
func summarise(rounds []loadResult) stats {
	var s stats
	var lat []time.Duration
	var elapsed, cpu, client, dbCPU time.Duration
	for _, r := range rounds {
		s.Rounds++
		s.Requests += r.Requests
		s.Errors += r.Errors
		if s.FirstError == "" {
			s.FirstError = r.firstErr
		}
		elapsed += r.Elapsed
		cpu += r.CPU
		client += r.ClientCPU
		dbCPU += r.DBCPU
		lat = append(lat, r.lat...)
		s.RoundRates = append(s.RoundRates, round1(float64(r.Requests)/r.Elapsed.Seconds()))
		s.RSSMiB = round1(float64(r.RSS) / (1 << 20))
	}
	slices.Sort(lat)
	if elapsed > 0 {
		s.Throughput = round1(float64(s.Requests) / elapsed.Seconds())
	}
	s.P50Ms, s.P95Ms, s.P99Ms = pctMs(lat, 50), pctMs(lat, 95), pctMs(lat, 99)
	if s.Requests > 0 {
		s.CPUPerRequest = round1(float64(cpu.Microseconds()) / float64(s.Requests))
		s.ClientCPU = round1(float64(client.Microseconds()) / float64(s.Requests))
		s.DBCPUPerRequest = round1(float64(dbCPU.Microseconds()) / float64(s.Requests))
	}
	return s
}

// pctMs returns the p-th percentile of sorted, in milliseconds.
func pctMs(sorted []time.Duration, p int) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := (len(sorted)*p + 99) / 100
	i = min(max(i-1, 0), len(sorted)-1)
	return round3(float64(sorted[i].Nanoseconds()) / 1e6)
}

func round1(f float64) float64 { return float64(int64(f*10+0.5)) / 10 }
func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// ratio returns a / b rounded to three places, or 0 when b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return round3(a / b)
}

// clockTicks is the unit of the CPU times in /proc/PID/stat (USER_HZ), 100
// on every Linux architecture Go supports.
const clockTicks = 100

// cpuOf returns the user + system CPU time the processes used so far, read
// from /proc/PID/stat (0 where it cannot be read).
func cpuOf(pids []int) time.Duration {
	var total time.Duration
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		// The command name, in parentheses, may hold spaces: the fields
		// counted from 1 start after its closing parenthesis.
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			s = s[i+1:]
		}
		f := strings.Fields(s) // f[0] is field 3 (state)
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64) // field 14, utime
		st, _ := strconv.ParseInt(f[12], 10, 64) // field 15, stime
		total += time.Duration(ut+st) * time.Second / clockTicks
	}
	return total
}

// cpuNamed returns the user + system CPU time used so far by each process
// whose command name is comm.
func cpuNamed(comm string) map[int]time.Duration {
	ents, _ := os.ReadDir("/proc")
	cpu := map[int]time.Duration{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/comm"); err == nil && strings.TrimSpace(string(b)) == comm {
			cpu[pid] = cpuOf([]int{pid})
		}
	}
	return cpu
}

// cpuSince returns the CPU time that the processes of now used since then:
// all of it for those started since (those that ended meanwhile are missed).
func cpuSince(then, now map[int]time.Duration) time.Duration {
	var d time.Duration
	for pid, c := range now {
		d += c - then[pid]
	}
	return d
}

// rssOf returns the resident memory of the processes in bytes, from
// /proc/PID/status (VmRSS).
func rssOf(pids []int) int64 {
	var total int64
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			continue
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				f := strings.Fields(rest)
				if len(f) > 0 {
					kb, _ := strconv.ParseInt(f[0], 10, 64)
					total += kb << 10
				}
			}
		}
	}
	return total
}
