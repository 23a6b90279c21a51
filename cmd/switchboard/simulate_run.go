package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/pprof"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/switchboardhq/switchboard/client"
	"github.com/switchboardhq/switchboard/client/clienttest"
)

// startProfile starts a CPU profile written to path, and returns what ends
// it, which may be called more than once and from any goroutine.
func startProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("simulate: cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("simulate: cpu profile: %w", err)
	}
	return sync.OnceFunc(func() {
		pprof.StopCPUProfile()
		f.Close()
	}), nil
}

// simProgressEvery is the interval of the start phase's progress lines.
const simProgressEvery = 5 * time.Second

// simSpec is what one process of a simulation runs: its share of the
// streams, through one SDK client. Worker processes read it as JSON.
type simSpec struct {
	Server           string        `json:"server"`
	Token            string        `json:"token"`
	Streams          int           `json:"streams"`
	FirstIndex       int           `json:"firstIndex"` // the streams are numbered from it, across processes
	FailProvider     string        `json:"failProvider"`
	FailMode         string        `json:"failMode"`
	FailShare        float64       `json:"failShare"`
	SlowDelay        time.Duration `json:"slowDelay"`
	Watchdog         time.Duration `json:"watchdog"`
	Heartbeat        time.Duration `json:"heartbeat"`
	ConnectDelay     time.Duration `json:"connectDelay"`
	StartConcurrency int           `json:"startConcurrency"`
	LogLevel         string        `json:"logLevel"`
	Worker           int           `json:"worker"` // the worker process's number, for its progress lines
	// StrandedAfter is how long in FailingOver/Reconnecting makes a stream
	// stranded: the report gives such a stream's last states.
	StrandedAfter time.Duration `json:"strandedAfter"`
	// CPUProfile, when set, is the file this process writes a CPU profile
	// of the failure's first simProfileWindow to.
	CPUProfile string `json:"cpuProfile,omitempty"`
}

// simProfileWindow is how much of the failure --cpuprofile profiles.
const simProfileWindow = 3 * time.Second

// simLive is how a process's start phase went.
type simLive struct {
	Live          int      `json:"live"`
	StartFailures int      `json:"startFailures"`
	StartErrors   []string `json:"startErrors,omitempty"` // the first few
}

// simPlan is when the failure happens and the run ends, the same absolute
// instants (Unix nanoseconds) in every process. FailAt is 0 without failure.
// A worker that already has its plan takes one with EndNow as the order to
// end the run at once.
type simPlan struct {
	FailAt int64 `json:"failAt,omitempty"`
	EndAt  int64 `json:"endAt,omitempty"`
	EndNow bool  `json:"endNow,omitempty"`
}

// waitUntil waits until t, until end is closed or until ctx ends, and
// reports whether t came.
func waitUntil(ctx context.Context, t time.Time, end <-chan struct{}) bool {
	timer := time.NewTimer(max(time.Until(t), 0))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-end:
		return false
	case <-timer.C:
		return true
	}
}

// simReport is a process's raw result: one entry per live stream.
type simReport struct {
	Dropped int         `json:"dropped"`
	Streams []simStream `json:"streams"`
}

// simStream is what happened to one stream after it went live. Times are
// Unix nanoseconds, taken when the state reached the simulated app.
type simStream struct {
	Room       string    `json:"room"`
	LiveAt     int64     `json:"liveAt"`
	Hit        bool      `json:"hit,omitempty"` // the injected failure hit its connection
	Moves      []simMove `json:"moves,omitempty"`
	FailedAt   int64     `json:"failedAt,omitempty"`
	LimboMaxNs int64     `json:"limboMaxNs,omitempty"` // longest stretch in FailingOver/Reconnecting
	LimboAtEnd bool      `json:"limboAtEnd,omitempty"` // in FailingOver/Reconnecting when the run ended
	// Trail is a stranded stream's last states (at most simTrailLen), to
	// tell where it waited; empty for the others.
	Trail []simState `json:"trail,omitempty"`
}

// simState is one state a stream reached, as the SDK describes it.
type simState struct {
	At    int64  `json:"at"`
	State string `json:"state"`
}

// simTrailLen is how many of its last states a stream keeps.
const simTrailLen = 12

// simMove is one Migrated state.
type simMove struct {
	At    int64  `json:"at"`
	GapNs int64  `json:"gapNs"`
	From  string `json:"from"`
	To    string `json:"to"`
}

// simRunner runs a process's streams through one SDK client.
type simRunner struct {
	spec     simSpec
	log      *slog.Logger
	progress io.Writer // start progress lines
	eng      *clienttest.Engine
	tr       *http.Transport
	c        *client.Client

	collectors sync.WaitGroup
	closeOnce  sync.Once

	mu sync.Mutex
	// The fields below are guarded by mu.
	tracks map[string]*simTrack // live streams by room
}

// simTrack follows the states of one live stream.
type simTrack struct {
	room string

	mu sync.Mutex
	// The fields below are guarded by mu.
	liveAt     time.Time
	hit        bool
	moves      []simMove
	failedAt   time.Time
	limboSince time.Time // zero when not in FailingOver/Reconnecting
	limboMax   time.Duration
	limboAtEnd bool
	trail      []simState // the last simTrailLen states since live
	ended      bool       // the run ended: later states are not counted
}

func newSimRunner(spec simSpec, log *slog.Logger, progress io.Writer) (*simRunner, error) {
	eng := clienttest.New(spec.ConnectDelay)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64 // many streams talk to one server
	// A mass failover of thousands of streams queues here rather than
	// opening a connection per stream to the one server.
	tr.MaxConnsPerHost = 256
	opts := []client.Option{client.WithLogger(log), client.WithHTTPClient(&http.Client{Transport: tr})}
	if spec.Heartbeat > 0 {
		opts = append(opts, client.WithHeartbeat(spec.Heartbeat))
	}
	if spec.Watchdog > 0 {
		opts = append(opts, client.WithWatchdog(spec.Watchdog))
	}
	for _, k := range simKinds {
		opts = append(opts, client.WithEngine(client.Kind(k), eng))
	}
	c, err := client.New(spec.Server, spec.Token, opts...)
	if err != nil {
		return nil, usageError{msg: err.Error()}
	}
	return &simRunner{spec: spec, log: log, progress: progress, eng: eng, tr: tr, c: c, tracks: map[string]*simTrack{}}, nil
}

// start starts the streams, spec.StartConcurrency at a time, and returns once
// each is live or has failed to start.
func (r *simRunner) start(ctx context.Context) simLive {
	var (
		mu  sync.Mutex
		out simLive
	)
	// A long start phase (thousands of streams) tells how far it got.
	stop := make(chan struct{})
	var ticker sync.WaitGroup
	defer ticker.Wait()
	defer close(stop)
	ticker.Go(func() {
		t := time.NewTicker(simProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				mu.Lock()
				l := out
				mu.Unlock()
				who := ""
				if r.spec.Worker > 0 {
					who = fmt.Sprintf("worker %d: ", r.spec.Worker)
				}
				fmt.Fprintf(r.progress, "simulate: %s%d of %d streams live, %d failed to start\n", who, l.Live, r.spec.Streams, l.StartFailures)
			}
		}
	})
	var g errgroup.Group
	g.SetLimit(max(r.spec.StartConcurrency, 1))
	for i := range r.spec.Streams {
		idx := r.spec.FirstIndex + i
		g.Go(func() error {
			room := fmt.Sprintf("sim-room-%d", idx)
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			s, err := r.c.Start(sctx, room, client.WithUserID(fmt.Sprintf("sim-user-%d", idx)))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				out.StartFailures++
				if len(out.StartErrors) < 3 {
					out.StartErrors = append(out.StartErrors, err.Error())
				}
				return nil
			}
			out.Live++
			t := &simTrack{room: room}
			r.mu.Lock()
			r.tracks[room] = t
			r.mu.Unlock()
			r.collectors.Go(func() { t.collect(s) })
			return nil
		})
	}
	_ = g.Wait()
	return out
}

// collect records the states of s until they end.
func (t *simTrack) collect(s *client.Stream) {
	for st := range s.States() {
		now := time.Now()
		t.mu.Lock()
		if !t.ended {
			t.record(st, now)
		}
		t.mu.Unlock()
	}
}

// record notes st, which reached the app at now. t.mu must be held.
func (t *simTrack) record(st client.State, now time.Time) {
	if _, live := st.(client.Live); live || !t.liveAt.IsZero() {
		if len(t.trail) == simTrailLen {
			t.trail = append(t.trail[:0], t.trail[1:]...)
		}
		t.trail = append(t.trail, simState{At: now.UnixNano(), State: st.String()})
	}
	switch st := st.(type) {
	case client.Live:
		if t.liveAt.IsZero() {
			t.liveAt = now
		}
		t.endLimbo(now)
	case client.Migrated:
		t.moves = append(t.moves, simMove{At: now.UnixNano(), GapNs: int64(st.Gap), From: st.From, To: st.To})
		t.endLimbo(now)
	case client.FailingOver, client.Reconnecting:
		// Before Live these are the start's attempts, not a failover.
		if !t.liveAt.IsZero() && t.limboSince.IsZero() {
			t.limboSince = now
		}
	case client.Failed:
		t.failedAt = now
		t.endLimbo(now)
	}
}

func (t *simTrack) endLimbo(now time.Time) {
	if !t.limboSince.IsZero() {
		t.limboMax = max(t.limboMax, now.Sub(t.limboSince))
		t.limboSince = time.Time{}
	}
}

// run fails the provider at plan.FailAt (when set), ends the run at
// plan.EndAt, or earlier when end is closed, closes the SDK client and
// reports. It returns an error only when ctx ends.
func (r *simRunner) run(ctx context.Context, plan simPlan, end <-chan struct{}) (simReport, error) {
	var rep simReport
	failed := false
	if r.spec.FailProvider != "" && plan.FailAt != 0 {
		if waitUntil(ctx, time.Unix(0, plan.FailAt), end) {
			if r.spec.CPUProfile != "" {
				stop, err := startProfile(r.spec.CPUProfile)
				if err != nil {
					return rep, err
				}
				defer stop()
				defer time.AfterFunc(simProfileWindow, stop).Stop()
			}
			hit := r.inject()
			rep.Dropped = len(hit)
			r.mu.Lock()
			for _, c := range hit {
				if t := r.tracks[c.Room()]; t != nil {
					t.mu.Lock()
					t.hit = true
					t.mu.Unlock()
				}
			}
			r.mu.Unlock()
			failed = true
		}
	}
	if failed || r.spec.FailProvider == "" || plan.FailAt == 0 {
		waitUntil(ctx, time.Unix(0, plan.EndAt), end)
	}
	if ctx.Err() != nil {
		return rep, ctx.Err()
	}
	// The run ends now: what the streams do while they close is not counted.
	now := time.Now()
	r.mu.Lock()
	tracks := make([]*simTrack, 0, len(r.tracks))
	for _, t := range r.tracks {
		tracks = append(tracks, t)
	}
	r.mu.Unlock()
	for _, t := range tracks {
		t.mu.Lock()
		if !t.limboSince.IsZero() {
			t.limboAtEnd = true
			t.endLimbo(now)
		}
		t.ended = true
		t.mu.Unlock()
	}
	r.close()
	rep.Streams = make([]simStream, 0, len(tracks))
	for _, t := range tracks {
		t.mu.Lock()
		s := simStream{Room: t.room, LiveAt: unixNano(t.liveAt), Hit: t.hit, Moves: t.moves, FailedAt: unixNano(t.failedAt),
			LimboMaxNs: int64(t.limboMax), LimboAtEnd: t.limboAtEnd}
		if t.limboAtEnd || t.limboMax > r.spec.StrandedAfter {
			s.Trail = t.trail
		}
		t.mu.Unlock()
		rep.Streams = append(rep.Streams, s)
	}
	return rep, nil
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// inject makes the provider fail as spec.FailMode says, and returns the
// connections the failure hit.
func (r *simRunner) inject() []*clienttest.Conn {
	p := r.spec.FailProvider
	switch r.spec.FailMode {
	case "hang":
		return r.eng.Hang(p)
	case "slow":
		return r.eng.Slow(p, r.spec.SlowDelay)
	case "auth":
		r.eng.RejectTokens(p, true)
		return r.eng.Cut(p, client.TokenRejected, 1)
	case "partial":
		return r.eng.Cut(p, client.ConnectionLost, r.spec.FailShare)
	default: // kill
		r.eng.Down(p, true)
		return r.eng.Cut(p, client.ConnectionLost, 1)
	}
}

// close ends the streams (their state channels close), waits for the
// collectors and releases the connections. It is idempotent.
func (r *simRunner) close() {
	r.closeOnce.Do(func() {
		_ = r.c.Close()
		r.collectors.Wait()
		r.tr.CloseIdleConnections()
	})
}

// simFleet runs a simulation's processes: start returns once every stream of
// every process is live or failed to start; run follows the plan (ending
// the run early when end is closed) and returns the processes' reports.
type simFleet interface {
	start(ctx context.Context) ([]simLive, error)
	run(ctx context.Context, plan simPlan, end <-chan struct{}) ([]simReport, error)
	close()
}

// localFleet runs the streams in this process.
type localFleet struct{ r *simRunner }

func (f *localFleet) start(ctx context.Context) ([]simLive, error) {
	l := f.r.start(ctx)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return []simLive{l}, nil
}

func (f *localFleet) run(ctx context.Context, plan simPlan, end <-chan struct{}) ([]simReport, error) {
	rep, err := f.r.run(ctx, plan, end)
	if err != nil {
		return nil, err
	}
	return []simReport{rep}, nil
}

func (f *localFleet) close() { f.r.close() }
