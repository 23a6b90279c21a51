package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/switchboardhq/switchboard/client"
	"github.com/switchboardhq/switchboard/client/clienttest"
)

func init() {
	commands["simulate"] = simulate
}

// simKinds are the provider kinds the simulated engine stands in for.
var simKinds = []string{"agora", "zegocloud", "livekit", "http"}

// simConfig is one simulation run.
type simConfig struct {
	server, token string
	streams       int
	duration      time.Duration
	failProvider  string
	failAt        time.Duration
	connectDelay  time.Duration
	log           *slog.Logger
}

// simResult is the summary of a run; its JSON form is the --json line.
type simResult struct {
	Streams       int      `json:"streams"`       // streams that went live
	StartFailures int      `json:"startFailures"` // streams that never went live
	Failovers     int      `json:"failovers"`     // Migrated states seen
	Lost          int      `json:"lost"`          // live streams that ended Failed
	Dropped       int      `json:"dropped"`       // connections the injected failure dropped
	GapMs         gapStats `json:"gapMs"`
}

// gapStats are failover gaps in milliseconds (nearest-rank percentiles).
type gapStats struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	Max float64 `json:"max"`
}

func percentiles(gaps []time.Duration) gapStats {
	if len(gaps) == 0 {
		return gapStats{}
	}
	slices.Sort(gaps)
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }
	rank := func(p float64) time.Duration { return gaps[max(int(math.Ceil(p*float64(len(gaps))))-1, 0)] }
	return gapStats{P50: ms(rank(0.50)), P95: ms(rank(0.95)), Max: ms(gaps[len(gaps)-1])}
}

const simulateUsage = `Usage: switchboard simulate [flags]

Runs N simulated apps' streams through the client SDK against a server, with a
simulated media engine: one SDK client (one event subscription, one retry
budget) holding N streams. With --fail-provider, every simulated connection on
that provider drops at --fail-at (and new connects to it fail), and the
summary gives the failover gaps: the time from the media error to Live on the
new provider.

Flags:
`

func simulate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, simulateUsage); fs.PrintDefaults() }
	var cfg simConfig
	var asJSON bool
	var logLevel string
	fs.StringVar(&cfg.server, "server", "", "server URL (env SWITCHBOARD_URL, default "+defaultServerURL+")")
	fs.StringVar(&cfg.token, "token", "", "client-role bearer token (env SWITCHBOARD_TOKEN)")
	fs.IntVar(&cfg.streams, "streams", 10, "number of simulated streams")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long the streams run")
	fs.StringVar(&cfg.failProvider, "fail-provider", "", "provider whose simulated connections drop")
	fs.DurationVar(&cfg.failAt, "fail-at", 3*time.Second, "when, after the start, the provider fails")
	fs.DurationVar(&cfg.connectDelay, "connect-delay", 20*time.Millisecond, "time a simulated connect takes")
	fs.BoolVar(&asJSON, "json", false, "print the summary as one JSON object on the last line")
	fs.StringVar(&logLevel, "log-level", "warn", "SDK log level: debug, info, warn, error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return usageError{}
	}
	if fs.NArg() > 0 {
		return usageError{msg: "simulate takes no arguments"}
	}
	if cfg.streams < 1 || cfg.streams > 100_000 {
		return usageError{msg: "--streams must be from 1 to 100000"}
	}
	if cfg.duration <= 0 || cfg.failAt < 0 || cfg.connectDelay < 0 {
		return usageError{msg: "--duration must be positive; --fail-at and --connect-delay not negative"}
	}
	if cfg.failProvider != "" && cfg.failAt >= cfg.duration {
		// The streams would end as the provider fails: no failover to measure.
		return usageError{msg: "--fail-at must be before the end of --duration"}
	}
	if cfg.server == "" {
		cfg.server = getenv("SWITCHBOARD_URL")
	}
	if cfg.server == "" {
		cfg.server = defaultServerURL
	}
	if cfg.token == "" {
		cfg.token = getenv("SWITCHBOARD_TOKEN")
	}
	cfg.log = newLogger(stderr, "text", logLevel)
	eng := clienttest.New(cfg.connectDelay)
	res, err := runSimulation(ctx, cfg, eng)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "streams started   %d\n", res.Streams)
	if res.StartFailures > 0 {
		fmt.Fprintf(stdout, "start failures    %d\n", res.StartFailures)
	}
	if cfg.failProvider != "" {
		fmt.Fprintf(stdout, "connections cut   %d on %s\n", res.Dropped, cfg.failProvider)
	}
	fmt.Fprintf(stdout, "failovers         %d\n", res.Failovers)
	fmt.Fprintf(stdout, "streams lost      %d\n", res.Lost)
	fmt.Fprintf(stdout, "failover gap      p50 %.1f ms  p95 %.1f ms  max %.1f ms\n", res.GapMs.P50, res.GapMs.P95, res.GapMs.Max)
	if asJSON {
		b, _ := json.Marshal(res)
		fmt.Fprintln(stdout, string(b))
	}
	return nil
}

// runSimulation starts cfg.streams streams through one SDK client, fails
// cfg.failProvider at cfg.failAt, runs for cfg.duration and summarises.
func runSimulation(ctx context.Context, cfg simConfig, eng *clienttest.Engine) (simResult, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64 // many streams talk to one server
	opts := []client.Option{client.WithLogger(cfg.log), client.WithHTTPClient(&http.Client{Transport: tr})}
	for _, k := range simKinds {
		opts = append(opts, client.WithEngine(k, eng))
	}
	c, err := client.New(cfg.server, cfg.token, opts...)
	if err != nil {
		return simResult{}, usageError{msg: err.Error()}
	}
	defer func() {
		_ = c.Close()
		tr.CloseIdleConnections()
	}()
	begin := time.Now()

	var (
		mu   sync.Mutex
		res  simResult
		gaps []time.Duration
		errs []error
	)
	var collectors sync.WaitGroup
	collect := func(s *client.Stream) {
		for st := range s.States() {
			switch st := st.(type) {
			case client.Migrated:
				mu.Lock()
				res.Failovers++
				gaps = append(gaps, st.Gap)
				mu.Unlock()
			case client.Failed:
				mu.Lock()
				res.Lost++
				mu.Unlock()
			}
		}
	}

	var g errgroup.Group
	g.SetLimit(32)
	for i := range cfg.streams {
		g.Go(func() error {
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			s, err := c.Start(sctx, fmt.Sprintf("sim-room-%d", i), client.UserID(fmt.Sprintf("sim-user-%d", i)))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.StartFailures++
				if len(errs) < 3 {
					errs = append(errs, err)
				}
				return nil
			}
			res.Streams++
			collectors.Go(func() { collect(s) })
			return nil
		})
	}
	_ = g.Wait()
	for _, err := range errs {
		cfg.log.Warn("start failed", "err", err.Error())
	}
	if res.Streams == 0 {
		collectors.Wait()
		return res, fmt.Errorf("simulate: no stream started: %w", errors.Join(errs...))
	}

	if cfg.failProvider != "" {
		if !sleepUntil(ctx, begin.Add(cfg.failAt)) {
			return res, ctx.Err()
		}
		eng.Down(cfg.failProvider, true)
		n := eng.Fail(cfg.failProvider)
		mu.Lock()
		res.Dropped = n
		mu.Unlock()
	}
	sleepUntil(ctx, begin.Add(cfg.duration))
	_ = c.Close() // ends the streams: their state channels close
	collectors.Wait()
	mu.Lock()
	defer mu.Unlock()
	res.GapMs = percentiles(gaps)
	return res, nil
}

// sleepUntil waits until t or until ctx ends, and reports whether t came.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
