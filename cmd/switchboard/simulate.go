package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/switchboardhq/switchboard"
)

// simKinds are the provider kinds the simulated engine stands in for.
var simKinds = []string{"agora", "zegocloud", "livekit", "http"}

// simFailModes are the ways --fail-provider can fail.
var simFailModes = []string{"kill", "hang", "slow", "auth", "partial"}

// simConfig is one simulation run.
type simConfig struct {
	server, token    string
	streams          int
	procs            int
	duration         time.Duration
	failProvider     string
	failAt           time.Duration
	failMode         string
	failShare        float64
	slowDelay        time.Duration
	watchdog         time.Duration
	heartbeat        time.Duration
	strandedAfter    time.Duration
	connectDelay     time.Duration
	startConcurrency int
	logLevel         string
	cpuProfile       string
}

// spec is the part of the run that n streams, from the stream numbered
// first, run in one process.
func (c simConfig) spec(n, first int) simSpec {
	return simSpec{
		Server: c.server, Token: c.token, Streams: n, FirstIndex: first,
		FailProvider: c.failProvider, FailMode: c.failMode, FailShare: c.failShare, SlowDelay: c.slowDelay,
		Watchdog: c.watchdog, Heartbeat: c.heartbeat, ConnectDelay: c.connectDelay, LogLevel: c.logLevel,
		// The starts in flight are shared out, so that more processes do
		// not mean more load on the server (whose admission control would
		// shed the excess).
		StartConcurrency: max(c.startConcurrency/c.procs, 1),
		StrandedAfter:    c.strandedAfter,
		CPUProfile:       c.cpuProfile,
	}
}

// simResult is the summary of a run; its JSON form is the --json line.
type simResult struct {
	Streams        int      `json:"streams"`        // streams that went live
	StartFailures  int      `json:"startFailures"`  // streams that never went live
	StartSeconds   float64  `json:"startSeconds"`   // from the first start to the last stream live
	Procs          int      `json:"procs"`          // SDK processes the streams ran in
	FailProvider   string   `json:"failProvider"`   // the provider that failed, "" for none
	FailMode       string   `json:"failMode"`       // how it failed
	Dropped        int      `json:"dropped"`        // connections the injected failure hit (cut, hung or slowed)
	Failovers      int      `json:"failovers"`      // Migrated states seen
	Moved          int      `json:"moved"`          // streams that reached Live on another provider after the failure
	DroppedMoved   int      `json:"droppedMoved"`   // streams whose connection the failure hit that moved
	Lost           int      `json:"lost"`           // live streams that ended Failed
	Stranded       int      `json:"stranded"`       // live streams in FailingOver/Reconnecting past --stranded-after, or at the end
	StrandedMaxMs  float64  `json:"strandedMaxMs"`  // the longest stretch a stream spent in FailingOver/Reconnecting
	GapMs          gapStats `json:"gapMs"`          // Migrated.Gap of the moves after the failure
	RecoveryMs     gapStats `json:"recoveryMs"`     // from the failure to Live elsewhere, of the streams it hit
	MovesPerSecond float64  `json:"movesPerSecond"` // streams moved / time from the failure to the last of them reaching Live elsewhere
	// StrandedTrails are the last states of the first few stranded streams,
	// their times in seconds from the failure (from the stream going live
	// in a run without one).
	StrandedTrails []strandedTrail `json:"strandedTrails,omitempty"`
}

// strandedTrail is the last states of one stranded stream.
type strandedTrail struct {
	Room   string   `json:"room"`
	States []string `json:"states"` // "+3.012 s live on agora-main", oldest first
}

// maxStrandedTrails is how many stranded streams the summary describes.
const maxStrandedTrails = 5

// gapStats are durations in milliseconds (nearest-rank percentiles).
type gapStats struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// msRound is d in milliseconds, to a tenth.
func msRound(d time.Duration) float64 {
	return math.Round(float64(d)/float64(time.Millisecond)*10) / 10
}

func percentiles(gaps []time.Duration) gapStats {
	if len(gaps) == 0 {
		return gapStats{}
	}
	slices.Sort(gaps)
	rank := func(p float64) time.Duration { return gaps[max(int(math.Ceil(p*float64(len(gaps))))-1, 0)] }
	return gapStats{P50: msRound(rank(0.50)), P95: msRound(rank(0.95)), P99: msRound(rank(0.99)), Max: msRound(gaps[len(gaps)-1])}
}

const simulateUsage = `Usage: switchboard simulate [flags]

Runs N simulated apps' streams through the client SDK against a server, with a
simulated media engine, in --procs SDK processes (each one SDK client: one
event subscription, one retry budget, its share of the streams; with more
than one, simulate runs copies of itself). Once every stream of every process
is live, --fail-provider fails at --fail-at, at the same instant in every
process, and the streams run until --duration (both measured from that
moment; the instant is printed on stderr). An interrupt (Ctrl-C, SIGTERM)
while they run ends the run there, with its summary. The failure,
--fail-mode:

  kill     every connection on the provider gets a media error (connection
           lost) and new connects to it fail
  hang     its connections stop carrying media without any error (the SDK's
           media watchdog must notice) and connects to it never answer
  slow     its media arrives --slow-delay late (longer than the watchdog
           allows) and connects to it take --slow-delay longer
  auth     its connections end with a token-rejected error and new connects
           are rejected
  partial  only a --fail-share of its connections get the media error; the
           others keep working and new connects succeed

The summary gives the streams moved, lost and stranded (left in FailingOver or
Reconnecting longer than --stranded-after, or still there at the end), the
failover gaps (from the event that made a stream move to Live on the new
provider) and the recovery times (from the failure to Live elsewhere).

With --regions, simulate runs a routing simulation instead: --streams new
streams in --waves waves, --wave-every apart, spread evenly over the regions,
each region's apps with their own SDK client and simulated media engine that
report quality every --quality-interval. From --degrade-wave on, each
PROVIDER@REGION of --degrade reports degraded quality (8 % loss, 400 ms RTT,
30 % of the time frozen) in that region only. With --admin-token (a
superadmin token), simulate sets the routing --policy (and its --shares), after
--warmup-waves waves under balanced that gather quality data on every
provider. The summary gives the providers each wave's streams went to, and
their shares per region before and after the degradation.
`

// simWorkerEnv set to 1 makes simulate a worker process of a --procs run.
const simWorkerEnv = "SWITCHBOARD_SIMULATE_WORKER"

func simulate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if getenv(simWorkerEnv) == "1" {
		return simulateWorker(ctx, stdout, stderr)
	}
	fs := newFlagSet("simulate", simulateUsage, stderr)
	var cfg simConfig
	var asJSON bool
	fs.StringVar(&cfg.server, "server", "", "server URL (env SWITCHBOARD_URL, default "+defaultServerURL+")")
	fs.StringVar(&cfg.token, "token", "", "client-role bearer token (env SWITCHBOARD_TOKEN)")
	fs.IntVar(&cfg.streams, "streams", 10, "number of simulated streams")
	fs.IntVar(&cfg.procs, "procs", 1, "SDK processes the streams are spread over")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long the streams run once all are live")
	fs.StringVar(&cfg.failProvider, "fail-provider", "", "provider that fails")
	fs.DurationVar(&cfg.failAt, "fail-at", 3*time.Second, "when, after all streams are live, the provider fails")
	fs.StringVar(&cfg.failMode, "fail-mode", "kill", "how the provider fails: "+strings.Join(simFailModes, ", "))
	fs.Float64Var(&cfg.failShare, "fail-share", 0.5, "share of the connections cut with --fail-mode partial")
	fs.DurationVar(&cfg.slowDelay, "slow-delay", 3*time.Second, "media lag and extra connect time with --fail-mode slow")
	fs.DurationVar(&cfg.watchdog, "watchdog", 300*time.Millisecond, "SDK media watchdog (0 switches it off; hang and slow need it)")
	fs.DurationVar(&cfg.heartbeat, "heartbeat", 30*time.Second, "interval of each stream's heartbeats (the SDK's default)")
	fs.DurationVar(&cfg.strandedAfter, "stranded-after", 10*time.Second, "a stream longer than this in FailingOver/Reconnecting counts as stranded")
	fs.DurationVar(&cfg.connectDelay, "connect-delay", 20*time.Millisecond, "time a simulated connect takes")
	fs.IntVar(&cfg.startConcurrency, "start-concurrency", 64, "stream starts in flight at once, shared out among the processes (at least 1 each)")
	fs.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of the SDK side over the failure's first 3 s to this file (with --procs above 1, one per worker: FILE.1, FILE.2, ...)")
	fs.BoolVar(&asJSON, "json", false, "print the summary as one JSON object on the last line")
	fs.StringVar(&cfg.logLevel, "log-level", "warn", "SDK log level: debug, info, warn, error")
	var rs simRouting
	var regions, degrade string
	fs.StringVar(&regions, "regions", "", "routing simulation: regions the streams start in, comma-separated (one SDK client and media engine each)")
	fs.StringVar(&degrade, "degrade", "", "routing simulation: PROVIDER@REGION,... whose quality degrades from --degrade-wave on")
	fs.IntVar(&rs.waves, "waves", 8, "routing simulation: waves of new streams")
	fs.DurationVar(&rs.waveEvery, "wave-every", 4*time.Second, "routing simulation: time between waves")
	fs.IntVar(&rs.degradeWave, "degrade-wave", 5, "routing simulation: the wave the degradation begins with")
	fs.DurationVar(&rs.qualityEvery, "quality-interval", time.Second, "routing simulation: the SDK's quality sampling interval")
	fs.StringVar(&rs.adminToken, "admin-token", "", "routing simulation: superadmin token to set the routing policy with (env SWITCHBOARD_ADMIN_TOKEN)")
	fs.StringVar(&rs.policy, "policy", "", "routing simulation: the policy to set (needs --admin-token)")
	fs.StringVar(&rs.shares, "shares", "", "routing simulation: NAME:SHARE,... for --policy commit")
	fs.IntVar(&rs.warmupWaves, "warmup-waves", 0, "routing simulation: waves under balanced before --policy, to gather quality data on every provider")
	fs.BoolVar(&rs.weightQuality, "quality-only", false, "routing simulation: set the optimized weights to quality only")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	serverFromEnv(&cfg.server, &cfg.token, getenv)
	if err := cfg.validate(); err != nil {
		return err
	}
	if regions != "" {
		if rs.adminToken == "" {
			rs.adminToken = getenv("SWITCHBOARD_ADMIN_TOKEN")
		}
		if err := rs.parse(cfg, regions, degrade); err != nil {
			return err
		}
		rs.perWave = max(cfg.streams/(rs.waves*len(rs.regions)), 1)
		res, err := runRoutingSimulation(ctx, cfg, rs, stderr)
		if err != nil {
			return err
		}
		printRoutingSummary(stdout, res)
		if asJSON {
			b, _ := json.Marshal(res)
			fmt.Fprintln(stdout, string(b))
		}
		return nil
	}
	res, err := runSimulation(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	printSummary(stdout, cfg, res)
	if asJSON {
		b, _ := json.Marshal(res)
		fmt.Fprintln(stdout, string(b))
	}
	return nil
}

// parse checks the flags of a routing simulation.
func (rs *simRouting) parse(cfg simConfig, regions, degrade string) error {
	for _, r := range strings.Split(regions, ",") {
		if !switchboard.ValidSlug(r) || slices.Contains(rs.regions, r) {
			return usageError{msg: fmt.Sprintf("--regions: %q is not a region slug, or is given twice", r)}
		}
		rs.regions = append(rs.regions, r)
	}
	d, err := parseDegrade(degrade)
	if err != nil {
		return usageError{msg: err.Error()}
	}
	rs.degrade = d
	if len(d) == 0 {
		rs.degradeWave = 0
	}
	switch {
	case cfg.failProvider != "" || cfg.procs != 1:
		return usageError{msg: "--regions runs a routing simulation: without --fail-provider, in one process"}
	case rs.waves < 1 || rs.waveEvery <= 0 || rs.qualityEvery <= 0:
		return usageError{msg: "--waves must be at least 1; --wave-every and --quality-interval positive"}
	case len(d) > 0 && (rs.degradeWave < 1 || rs.degradeWave > rs.waves):
		return usageError{msg: "--degrade-wave must be one of the waves"}
	case rs.warmupWaves < 0 || rs.warmupWaves >= rs.waves:
		return usageError{msg: "--warmup-waves must be from 0 to --waves - 1"}
	case (rs.policy != "" || rs.warmupWaves > 0) && rs.adminToken == "":
		return usageError{msg: "--policy and --warmup-waves set the routing policy: they need --admin-token"}
	case rs.warmupWaves > 0 && rs.policy == "":
		return usageError{msg: "--warmup-waves needs the --policy to switch to"}
	case rs.policy != "" && !switchboard.RoutingPolicy(rs.policy).Valid():
		return usageError{msg: "--policy must be priority, balanced, optimized, commit or cost"}
	}
	return nil
}

// validate checks the flags.
func (c simConfig) validate() error {
	switch {
	case c.streams < 1 || c.streams > 100_000:
		return usageError{msg: "--streams must be from 1 to 100000"}
	case c.procs < 1 || c.procs > 64 || c.procs > c.streams:
		return usageError{msg: "--procs must be from 1 to 64, and at most --streams"}
	case c.duration <= 0 || c.failAt < 0 || c.connectDelay < 0 || c.watchdog < 0:
		return usageError{msg: "--duration must be positive; --fail-at, --connect-delay and --watchdog not negative"}
	case c.failProvider != "" && c.failAt >= c.duration:
		// The streams would end as the provider fails: no failover to measure.
		return usageError{msg: "--fail-at must be before the end of --duration"}
	case !slices.Contains(simFailModes, c.failMode):
		return usageError{msg: "--fail-mode must be one of " + strings.Join(simFailModes, ", ")}
	case c.failShare <= 0 || c.failShare > 1:
		return usageError{msg: "--fail-share must be above 0 and at most 1"}
	case c.slowDelay <= 0 || c.strandedAfter <= 0 || c.heartbeat <= 0:
		return usageError{msg: "--slow-delay, --stranded-after and --heartbeat must be positive"}
	case c.startConcurrency < 1:
		return usageError{msg: "--start-concurrency must be at least 1"}
	case c.failProvider != "" && (c.failMode == "hang" || c.failMode == "slow") && c.watchdog == 0:
		return usageError{msg: "--fail-mode " + c.failMode + " needs the media watchdog (--watchdog above 0): nothing else notices it"}
	}
	if u, err := url.Parse(c.server); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return usageError{msg: "--server must be an absolute http or https URL without user info"}
	}
	if strings.ContainsAny(c.token, "\r\n") {
		return usageError{msg: "--token must be on one line"}
	}
	return nil
}

func printSummary(w io.Writer, cfg simConfig, res simResult) {
	procs := "1 process"
	if res.Procs > 1 {
		procs = fmt.Sprintf("%d processes", res.Procs)
	}
	fmt.Fprintf(w, "streams started   %d in %.1f s over %s\n", res.Streams, res.StartSeconds, procs)
	if res.StartFailures > 0 {
		fmt.Fprintf(w, "start failures    %d\n", res.StartFailures)
	}
	if cfg.failProvider != "" {
		fmt.Fprintf(w, "connections hit   %d on %s (%s)\n", res.Dropped, cfg.failProvider, cfg.failMode)
	}
	fmt.Fprintf(w, "failovers         %d\n", res.Failovers)
	if cfg.failProvider != "" {
		fmt.Fprintf(w, "streams moved     %d (%d of the %d hit)\n", res.Moved, res.DroppedMoved, res.Dropped)
	}
	fmt.Fprintf(w, "streams lost      %d\n", res.Lost)
	fmt.Fprintf(w, "streams stranded  %d (longest in FailingOver/Reconnecting: %.1f ms)\n", res.Stranded, res.StrandedMaxMs)
	for _, t := range res.StrandedTrails {
		fmt.Fprintf(w, "  stranded %s, its last states:\n", t.Room)
		for _, st := range t.States {
			fmt.Fprintf(w, "    %s\n", st)
		}
	}
	fmt.Fprintf(w, "failover gap      p50 %.1f ms  p95 %.1f ms  p99 %.1f ms  max %.1f ms\n", res.GapMs.P50, res.GapMs.P95, res.GapMs.P99, res.GapMs.Max)
	if cfg.failProvider != "" {
		fmt.Fprintf(w, "recovery          p50 %.1f ms  p95 %.1f ms  p99 %.1f ms  max %.1f ms (failure to Live elsewhere)\n",
			res.RecoveryMs.P50, res.RecoveryMs.P95, res.RecoveryMs.P99, res.RecoveryMs.Max)
		fmt.Fprintf(w, "moves per second  %.0f\n", res.MovesPerSecond)
	}
}

// runSimulation starts cfg.streams streams in cfg.procs processes (this one
// when there is one), fails cfg.failProvider cfg.failAt after the last went
// live, runs until cfg.duration after that and summarises.
func runSimulation(ctx context.Context, cfg simConfig, stderr io.Writer) (simResult, error) {
	stderr = &syncWriter{w: stderr} // the workers' logs come from goroutines
	var f simFleet
	if cfg.procs == 1 {
		r, err := newSimRunner(cfg.spec(cfg.streams, 0), newLogger(stderr, "text", cfg.logLevel), stderr)
		if err != nil {
			return simResult{}, err
		}
		f = &localFleet{r: r}
	} else {
		f = &procFleet{cfg: cfg, stderr: stderr}
	}
	defer f.close()

	fmt.Fprintf(stderr, "simulate: starting %d streams over %d process(es)\n", cfg.streams, cfg.procs)
	begin := time.Now()
	lives, err := f.start(ctx)
	if err != nil {
		return simResult{}, err
	}
	allLive := time.Now()
	var live, failures int
	var errs []string
	for _, l := range lives {
		live += l.Live
		failures += l.StartFailures
		errs = append(errs, l.StartErrors...)
	}
	for _, e := range errs {
		fmt.Fprintf(stderr, "simulate: start failed: %s\n", e)
	}
	if live == 0 {
		return simResult{StartFailures: failures}, fmt.Errorf("simulate: no stream started: %s", strings.Join(errs, "; "))
	}

	plan := simPlan{EndAt: allLive.Add(cfg.duration).UnixNano()}
	if cfg.failProvider != "" {
		plan.FailAt = allLive.Add(cfg.failAt).UnixNano()
		fmt.Fprintf(stderr, "simulate: %d streams live in %.1f s; %s fails (%s) at %s\n", live, allLive.Sub(begin).Seconds(),
			cfg.failProvider, cfg.failMode, time.Unix(0, plan.FailAt).UTC().Format(time.RFC3339Nano))
	} else {
		fmt.Fprintf(stderr, "simulate: %d streams live in %.1f s; running until %s\n", live, allLive.Sub(begin).Seconds(),
			time.Unix(0, plan.EndAt).UTC().Format(time.RFC3339Nano))
	}
	// From here, an interrupt (ctx ending: Ctrl-C, SIGTERM) ends the run
	// early, with its report.
	stop := context.AfterFunc(ctx, func() { fmt.Fprintln(stderr, "simulate: interrupted: ending the run now") })
	reports, err := f.run(context.WithoutCancel(ctx), plan, ctx.Done())
	stop()
	if err != nil {
		return simResult{}, err
	}
	res := summarize(cfg, plan, reports)
	res.StartFailures = failures
	res.StartSeconds = math.Round(allLive.Sub(begin).Seconds()*10) / 10
	return res, nil
}

// summarize aggregates the raw per-stream results of every process.
func summarize(cfg simConfig, plan simPlan, reports []simReport) simResult {
	res := simResult{Procs: cfg.procs, FailProvider: cfg.failProvider, FailMode: cfg.failMode}
	var gaps, recoveries []time.Duration
	var lastMove int64 // the last stream's first move after the failure
	for _, rep := range reports {
		res.Dropped += rep.Dropped
		for _, s := range rep.Streams {
			res.Streams++
			res.Failovers += len(s.Moves)
			moved := false
			for _, m := range s.Moves {
				if m.At < plan.FailAt {
					continue // before the failure: not one of its moves
				}
				gaps = append(gaps, time.Duration(m.GapNs))
				if !moved && m.To != cfg.failProvider {
					moved = true
					lastMove = max(lastMove, m.At)
					if s.Hit && plan.FailAt > 0 {
						recoveries = append(recoveries, time.Duration(m.At-plan.FailAt))
					}
				}
			}
			if moved {
				res.Moved++
				if s.Hit {
					res.DroppedMoved++
				}
			}
			if s.FailedAt != 0 {
				res.Lost++
			}
			if s.LimboAtEnd || time.Duration(s.LimboMaxNs) > cfg.strandedAfter {
				res.Stranded++
				if len(res.StrandedTrails) < maxStrandedTrails && len(s.Trail) > 0 {
					res.StrandedTrails = append(res.StrandedTrails, trailOf(s, plan))
				}
			}
			res.StrandedMaxMs = max(res.StrandedMaxMs, msRound(time.Duration(s.LimboMaxNs)))
		}
	}
	res.GapMs = percentiles(gaps)
	res.RecoveryMs = percentiles(recoveries)
	if plan.FailAt > 0 && lastMove > plan.FailAt {
		res.MovesPerSecond = math.Round(float64(res.Moved)/time.Duration(lastMove-plan.FailAt).Seconds()*10) / 10
	}
	return res
}

// trailOf is s's trail, its times in seconds from the failure (from the
// stream going live in a run without one).
func trailOf(s simStream, plan simPlan) strandedTrail {
	zero := plan.FailAt
	if zero == 0 {
		zero = s.LiveAt
	}
	t := strandedTrail{Room: s.Room}
	for _, st := range s.Trail {
		t.States = append(t.States, fmt.Sprintf("%+.3f s %s", time.Duration(st.At-zero).Seconds(), st.State))
	}
	return t
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
