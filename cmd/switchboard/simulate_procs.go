package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// A run with --procs N runs N copies of this binary as worker processes,
// each with simWorkerEnv=1 and its own SDK client. They talk JSON, one value
// at a time:
//
//	parent → worker stdin:  simSpec, then, once every worker is live, simPlan
//	worker → parent stdout: {"live": simLive}, then {"report": simReport}
//
// The token travels on stdin, never on a command line other users can read.
// A worker whose stdin closes (its parent is gone) stops.

// simMsg is a message of a worker to its parent.
type simMsg struct {
	Live   *simLive   `json:"live,omitempty"`
	Report *simReport `json:"report,omitempty"`
}

// simulateWorker is the worker side. An interrupt of the worker itself
// (ctx ending) aborts its start phase and, once it runs, ends the run early
// with its report, as an endNow from its parent does; its stdin closing
// means the parent is gone, and it stops.
func simulateWorker(ctx context.Context, stdout, stderr io.Writer) error {
	alive, parentGone := context.WithCancel(context.WithoutCancel(ctx))
	defer parentGone()
	dec := json.NewDecoder(os.Stdin)
	var spec simSpec
	if err := dec.Decode(&spec); err != nil {
		return fmt.Errorf("simulate worker: read its spec: %w", err)
	}
	r, err := newSimRunner(spec, newLogger(stderr, "text", spec.LogLevel), stderr)
	if err != nil {
		return err
	}
	defer r.close()
	plans := make(chan simPlan, 1)
	end := make(chan struct{})
	var endOnce sync.Once
	endNow := func() { endOnce.Do(func() { close(end) }) }
	go func() {
		defer parentGone() // stdin closed
		for got := false; ; {
			var p simPlan
			if dec.Decode(&p) != nil {
				return
			}
			switch {
			case p.EndNow:
				endNow()
			case !got:
				got = true
				plans <- p
			}
		}
	}()

	startCtx, stopStart := context.WithCancel(alive)
	defer stopStart()
	stopAfter := context.AfterFunc(ctx, stopStart)
	live := r.start(startCtx)
	stopAfter()
	if err := startCtx.Err(); err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	if err := enc.Encode(simMsg{Live: &live}); err != nil {
		return err
	}
	var plan simPlan
	select {
	case plan = <-plans:
	case <-alive.Done():
		return alive.Err()
	case <-ctx.Done():
		return ctx.Err()
	}
	defer context.AfterFunc(ctx, endNow)()
	rep, err := r.run(alive, plan, end)
	if err != nil {
		return err
	}
	return enc.Encode(simMsg{Report: &rep})
}

// procFleet runs the streams in worker processes.
type procFleet struct {
	cfg     simConfig
	stderr  io.Writer
	workers []*simWorkerProc
}

// simWorkerProc is one worker process.
type simWorkerProc struct {
	n    int
	cmd  *exec.Cmd
	in   io.WriteCloser
	dec  *json.Decoder
	tail *tailWriter // the end of its stderr, for errors
}

func (f *procFleet) start(ctx context.Context) ([]simLive, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("simulate: find this binary to run its worker processes: %w", err)
	}
	first := 0
	for i := range f.cfg.procs {
		n := simShare(f.cfg.streams, f.cfg.procs, i)
		spec := f.cfg.spec(n, first)
		spec.Worker = i + 1
		if spec.CPUProfile != "" && f.cfg.procs > 1 {
			spec.CPUProfile = fmt.Sprintf("%s.%d", spec.CPUProfile, i+1)
		}
		w, err := f.spawn(exe, i+1, spec)
		if err != nil {
			return nil, err
		}
		f.workers = append(f.workers, w)
		first += n
	}
	return readEach(ctx, f.workers, "start result", func(m simMsg) *simLive { return m.Live })
}

// readEach reads the next message of every worker and returns the part of
// it that part picks, which each must have sent (what names it in errors).
func readEach[T any](ctx context.Context, workers []*simWorkerProc, what string, part func(simMsg) *T) ([]T, error) {
	out := make([]T, len(workers))
	for i, w := range workers {
		msg, err := w.read(ctx)
		if err != nil {
			return nil, err
		}
		p := part(msg)
		if p == nil {
			return nil, fmt.Errorf("simulate: worker %d sent no %s", w.n, what)
		}
		out[i] = *p
	}
	return out, nil
}

// simShare is the number of streams, of total, that process i of procs runs.
func simShare(total, procs, i int) int {
	n := total / procs
	if i < total%procs {
		n++
	}
	return n
}

func (f *procFleet) spawn(exe string, i int, spec simSpec) (*simWorkerProc, error) {
	cmd := exec.Command(exe, "simulate")
	cmd.Env = append(os.Environ(), simWorkerEnv+"=1")
	tail := &tailWriter{max: 4 << 10}
	cmd.Stderr = io.MultiWriter(f.stderr, tail)
	cmd.SysProcAttr = workerSysProcAttr()
	cmd.WaitDelay = 5 * time.Second
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("simulate: start worker %d: %w", i, err)
	}
	w := &simWorkerProc{n: i, cmd: cmd, in: in, dec: json.NewDecoder(out), tail: tail}
	if err := json.NewEncoder(in).Encode(spec); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("simulate: start worker %d: %w", i, err)
	}
	return w, nil
}

// read reads the worker's next message, or fails when ctx ends or the
// worker exits first.
func (w *simWorkerProc) read(ctx context.Context) (simMsg, error) {
	type result struct {
		msg simMsg
		err error
	}
	ch := make(chan result, 1)
	go func() {
		var m simMsg
		err := w.dec.Decode(&m)
		ch <- result{m, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			_ = w.cmd.Process.Kill()
			werr := w.cmd.Wait()
			return simMsg{}, fmt.Errorf("simulate: worker %d stopped (%v, %v): %s", w.n, r.err, werr, strings.TrimSpace(w.tail.String()))
		}
		return r.msg, nil
	case <-ctx.Done():
		_ = w.cmd.Process.Kill() // the pending read ends with the process's stdout
		<-ch
		return simMsg{}, ctx.Err()
	}
}

func (f *procFleet) run(ctx context.Context, plan simPlan, end <-chan struct{}) ([]simReport, error) {
	for _, w := range f.workers {
		if err := json.NewEncoder(w.in).Encode(plan); err != nil {
			return nil, fmt.Errorf("simulate: send the plan to worker %d: %w", w.n, err)
		}
	}
	// Ending early is every worker's to do.
	finished := make(chan struct{})
	var relay sync.WaitGroup
	relay.Go(func() {
		select {
		case <-end:
			for _, w := range f.workers {
				_ = json.NewEncoder(w.in).Encode(simPlan{EndNow: true})
			}
		case <-finished:
		}
	})
	stopRelay := sync.OnceFunc(func() { close(finished); relay.Wait() })
	defer stopRelay()
	reports, err := readEach(ctx, f.workers, "report", func(m simMsg) *simReport { return m.Report })
	if err != nil {
		return nil, err
	}
	stopRelay()
	var errs []error
	for _, w := range f.workers {
		_ = w.in.Close()
		if err := w.cmd.Wait(); err != nil {
			errs = append(errs, fmt.Errorf("simulate: worker %d: %w", w.n, err))
		}
	}
	f.workers = nil
	return reports, errors.Join(errs...)
}

// close stops the workers still running.
func (f *procFleet) close() {
	for _, w := range f.workers {
		if w.cmd.ProcessState == nil {
			_ = w.cmd.Process.Kill()
			_ = w.cmd.Wait()
		}
	}
	f.workers = nil
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
