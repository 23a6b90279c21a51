package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver

	"github.com/switchboardhq/switchboard/internal/benchbase"
	"github.com/switchboardhq/switchboard/internal/providers/agora/agorafake"
)

// options are the flags of `switchboard-bench run`.
type options struct {
	switchboard, baseline string
	mode                  string
	rounds, conc, subs    int
	events, coldRounds    int
	dur                   time.Duration
	warm                  time.Duration // the uncounted load on each side before a path's rounds
	postgres              string
	scaleActive           int // the most live streams of the scaling cases; 0: skipped
	pprof                 string
	sseOnly               bool         // measure the event fan-out (item 5) alone
	items                 map[int]bool // the items to measure (1 to 6); nil: all
	// pprofCase is the start-scaling case (1 to 3), or the PostgreSQL
	// replica (4: the one of one, 5: the first of three), the profiler is on
	// instead of the main server; 0: the main server.
	pprofCase int
}

// want reports whether item n of the list is to be measured.
func (o options) want(n int) bool {
	return o.items == nil || o.items[n]
}

// parseItems reads --items: item numbers from 1 to 6, separated by commas.
func parseItems(v string) (map[int]bool, error) {
	if v == "" {
		return nil, nil
	}
	items := map[int]bool{}
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 6 {
			return nil, fmt.Errorf("--items: %q is not an item number from 1 to 6", f)
		}
		items[n] = true
	}
	return items, nil
}

// modes are the sizes of a run: full (what the README quotes), quick (a
// minute or so) and tiny (the test that keeps the tool working).
var modes = map[string]options{
	"full":  {rounds: 3, conc: 64, dur: 3 * time.Second, warm: time.Second, subs: 10000, events: 3, coldRounds: 3, scaleActive: 100000},
	"quick": {rounds: 3, conc: 64, dur: time.Second, warm: 500 * time.Millisecond, subs: 2000, events: 2, coldRounds: 3},
	"tiny":  {rounds: 1, conc: 8, dur: 200 * time.Millisecond, subs: 20, events: 1, coldRounds: 1},
}

// The agora project the benchmark's loopback fake serves.
const (
	benchAppID  = "970CA35de60c44645bbae8a215061b33"
	benchCustID = "bench-customer-id"
	benchSecret = "bench-customer-secret"
	benchCert   = "c0ffee00c0ffee00c0ffee00c0ffee00"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var quick, tiny bool
	fs.StringVar(&o.switchboard, "switchboard", "", "the switchboard binary to measure (required)")
	fs.StringVar(&o.baseline, "baseline", "", "the binary serving the baseline with its `baseline` command (default: this one)")
	fs.BoolVar(&quick, "quick", false, "shorter rounds and 2,000 event subscribers")
	fs.BoolVar(&tiny, "tiny", false, "the smallest run, to check that the tool works")
	fs.StringVar(&o.postgres, "postgres", os.Getenv("SWITCHBOARD_TEST_POSTGRES"), "PostgreSQL server URL for the replica figures (default env SWITCHBOARD_TEST_POSTGRES; empty: skipped)")
	fs.StringVar(&o.pprof, "pprof-addr", "", "serve Switchboard's profiler on this loopback address during the run")
	rounds := fs.Int("rounds", 0, "rounds per side (default by mode; at least 3 outside --tiny)")
	conc := fs.Int("concurrency", 0, "concurrent clients (default 64)")
	dur := fs.Duration("duration", 0, "length of each round of each side (default by mode)")
	subs := fs.Int("subscribers", 0, "event subscribers (default by mode, 10,000 in full)")
	fs.BoolVar(&o.sseOnly, "sse-only", false, "measure the event fan-out (item 5) alone, skipping the other items")
	fs.IntVar(&o.pprofCase, "pprof-case", 0, "put the profiler on start-scaling case 1, 2 or 3 (1,000 live streams on 2 providers, the most on 2, 1,000 on 100), or on PostgreSQL's single replica (4) or the first of its three (5), instead of the main server")
	scale := fs.Int("scale-active", -1, "live streams of the largest start-scaling case (default 100,000 in full; 0: skipped; off in --quick)")
	coldRounds := fs.Int("cold-rounds", 0, "cold starts per side (default by mode)")
	items := fs.String("items", "", "comma-separated items to measure, as 2,3,4 (default all): 1 health and config, 2 starts and their scaling, 3 heartbeats, 4 PostgreSQL, 5 events, 6 cold start")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if o.items, err = parseItems(*items); err != nil {
		return err
	}
	if o.switchboard == "" {
		return fmt.Errorf("--switchboard: the binary to measure is required")
	}
	mode := "full"
	if quick {
		mode = "quick"
	}
	if tiny {
		mode = "tiny"
	}
	m := modes[mode]
	m.switchboard, m.baseline, m.postgres, m.pprof, m.mode, m.items = o.switchboard, o.baseline, o.postgres, o.pprof, mode, o.items
	m.sseOnly = o.sseOnly
	if o.pprofCase < 0 || o.pprofCase > 5 {
		return fmt.Errorf("--pprof-case: %d is not a case (1, 2 or 3 of the scaling, 4 or 5 of PostgreSQL)", o.pprofCase)
	}
	m.pprofCase = o.pprofCase
	if *rounds > 0 {
		m.rounds = *rounds
	}
	if *coldRounds > 0 {
		m.coldRounds = *coldRounds
	}
	if *conc > 0 {
		m.conc = *conc
	}
	if *dur > 0 {
		m.dur = *dur
	}
	if *scale >= 0 {
		m.scaleActive = *scale
	}
	if *subs > 0 {
		m.subs = min(*subs, 10000) // the most --sse-per-token allows
	}
	if m.baseline == "" {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		m.baseline = self
	}
	// The servers run in directories of their own: find the binaries first.
	for _, p := range []*string{&m.switchboard, &m.baseline} {
		abs, err := exec.LookPath(*p)
		if err == nil {
			abs, err = filepath.Abs(abs)
		}
		if err != nil {
			return fmt.Errorf("binary %s: %w", *p, err)
		}
		*p = abs
	}
	b := &bench{o: m, log: stderr}
	out, err := b.run(ctx)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// bench is one run of the benchmark.
type bench struct {
	o     options
	log   io.Writer
	dir   string
	fake  *agorafake.Fake
	boot  string // Switchboard's bootstrap token
	docs  map[string]json.RawMessage
	sb    *server
	base  *server
	sbEnv *sbTokens
	// openRate is the fixed rate of the start-scaling cases' open-loop
	// round: half the closed-loop throughput of the first case.
	openRate float64
}

// sbTokens are the tokens the load uses on one Switchboard (or one set of
// replicas).
type sbTokens struct {
	client, admin string
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

// comparison is one hot path, measured on both sides.
type comparison struct {
	Path            string  `json:"path"`
	Switchboard     stats   `json:"switchboard"`
	Baseline        stats   `json:"baseline"`
	ThroughputRatio float64 `json:"throughputRatio"` // Switchboard's req/s over the baseline's
	CPURatio        float64 `json:"cpuPerRequestRatio"`
	P99Ratio        float64 `json:"p99Ratio"`
	Target          string  `json:"target"`
	Met             bool    `json:"met"`
}

func compare(path string, sb, base []loadResult) comparison {
	c := comparison{Path: path, Switchboard: summarise(sb), Baseline: summarise(base)}
	c.ThroughputRatio = ratio(c.Switchboard.Throughput, c.Baseline.Throughput)
	c.CPURatio = ratio(c.Switchboard.CPUPerRequest, c.Baseline.CPUPerRequest)
	c.P99Ratio = ratio(c.Switchboard.P99Ms, c.Baseline.P99Ms)
	return c
}

// report is the JSON object the benchmark prints.
type report struct {
	Mode          string         `json:"mode"`
	CPUs          int            `json:"cpus"`
	GoVersion     string         `json:"goVersion"`
	Concurrency   int            `json:"concurrency"`
	Rounds        int            `json:"rounds"`
	RoundSeconds  float64        `json:"roundSeconds"`
	PublicHealth  comparison     `json:"publicHealth"`
	Config        comparison     `json:"streamingConfig"`
	Starts        comparison     `json:"starts"`
	StartsScaling *scalingReport `json:"startsScaling,omitempty"`
	Heartbeats    comparison     `json:"heartbeats"`
	Postgres      *pgReport      `json:"postgres"`
	SSE           sseReport      `json:"sse"`
	ColdStart     coldReport     `json:"coldStart"`
	Ratios        map[string]any `json:"ratios"`
	// Met says, for each target measured in this run, whether it was met;
	// a target not measured (skipped, or not in --items) is absent.
	Met            map[string]bool `json:"met"`
	ElapsedSeconds float64         `json:"elapsedSeconds"`
}

func (b *bench) run(ctx context.Context) (*report, error) {
	t0 := time.Now()
	dir, err := os.MkdirTemp("", "switchboard-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	b.dir = dir
	b.fake, err = agorafake.New(agorafake.Config{AppID: benchAppID, CustomerID: benchCustID, CustomerSecret: benchSecret, AppCertificate: benchCert})
	if err != nil {
		return nil, err
	}
	defer b.fake.Close()
	b.boot = "sbt_bench-" + randomHex(16)

	r := &report{Mode: b.o.mode, CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Concurrency: b.o.conc,
		Rounds: b.o.rounds, RoundSeconds: b.o.dur.Seconds()}

	if b.o.sseOnly {
		b.logf("starting switchboard and the baseline")
		if err := b.startServers(ctx); err != nil {
			return nil, err
		}
		defer b.base.stop()
		defer b.sb.stop()
		if r.SSE, err = b.sse(ctx); err != nil {
			return nil, err
		}
		r.Ratios = map[string]any{"5_sseMemoryPerSubscriber": r.SSE.MemoryRatio, "5_sseDeliveryP99": r.SSE.P99Ratio}
		r.Met = map[string]bool{"5_sse": r.SSE.Met}
		r.ElapsedSeconds = round1(time.Since(t0).Seconds())
		return r, nil
	}

	// Cold starts first, on a quiet machine: exec to /healthz on an empty
	// directory, the two sides in turn.
	if b.o.want(6) {
		if r.ColdStart, err = b.coldStarts(ctx); err != nil {
			return nil, err
		}
	}
	if !b.o.want(1) && !b.o.want(2) && !b.o.want(3) && !b.o.want(4) && !b.o.want(5) {
		r.Postgres = &pgReport{Skipped: "not in --items"}
		r.Ratios = map[string]any{"6_coldStartVsBare": r.ColdStart.Ratio}
		r.Met = map[string]bool{"6_coldStart": r.ColdStart.Met}
		r.ElapsedSeconds = round1(time.Since(t0).Seconds())
		return r, nil
	}

	b.logf("starting switchboard and the baseline")
	if err := b.startServers(ctx); err != nil {
		return nil, err
	}
	defer b.base.stop()
	defer b.sb.stop()

	get := func(base, path, token string) request {
		host := hostOf(base)
		return func(dst []byte, _ int64) (string, []byte) {
			return host, appendRequest(dst, "GET", host, path, token, nil)
		}
	}
	prefix := randomHex(4)
	start := func(base, token string) request {
		host := hostOf(base)
		return func(dst []byte, i int64) (string, []byte) {
			body := fmt.Appendf(nil, `{"room":"bench-%s-%d","userId":"u%d","role":"publisher"}`, prefix, i, i)
			return host, appendRequest(dst, "POST", host, "/api/streams", token, body)
		}
	}
	var ids []string
	if b.o.want(3) {
		if ids, err = b.startSome(ctx, b.sb.url, b.sbEnv.client, 256); err != nil {
			return nil, err
		}
	}
	heartbeat := func(base, token string) request {
		host := hostOf(base)
		return func(dst []byte, i int64) (string, []byte) {
			return host, appendRequest(dst, "POST", host, "/api/streams/"+ids[int(i)%len(ids)]+"/heartbeat", token, nil)
		}
	}
	type path struct {
		name     string
		want     int
		sb, base request
		into     *comparison
		pattern  string
		item     int
	}
	paths := []path{
		{"public health", 200, get(b.sb.url, "/api/streaming/providers/agora/health", ""), get(b.base.url, "/api/streaming/providers/agora/health", ""), &r.PublicHealth, "GET /api/streaming/providers/{name}/health", 1},
		{"streaming config", 200, get(b.sb.url, "/api/streaming/config", b.sbEnv.client), get(b.base.url, "/api/streaming/config", b.sbEnv.client), &r.Config, "GET /api/streaming/config", 1},
		{"starts", 201, start(b.sb.url, b.sbEnv.client), start(b.base.url, b.sbEnv.client), &r.Starts, "POST /api/streams", 2},
		{"heartbeats", 200, heartbeat(b.sb.url, b.sbEnv.client), heartbeat(b.base.url, b.sbEnv.client), &r.Heartbeats, "POST /api/streams/{id}/heartbeat", 3},
	}
	for _, p := range paths {
		if !b.o.want(p.item) {
			continue
		}
		// A warm-up of each side first, not counted: a server's first
		// second of load on a path grows its goroutine stacks, its heap
		// (with a collection every few megabytes until it has grown) and
		// its caches, and that first round measured a tenth slower than
		// the next ones for Switchboard.
		closedLoop(ctx, b.o.conc, b.o.warm, p.want, p.sb, b.sb.pid())
		closedLoop(ctx, b.o.conc, b.o.warm, p.want, p.base, b.base.pid())
		var sbR, baseR []loadResult
		for round := range b.o.rounds {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			sbR = append(sbR, closedLoop(ctx, b.o.conc, b.o.dur, p.want, p.sb, b.sb.pid()))
			baseR = append(baseR, closedLoop(ctx, b.o.conc, b.o.dur, p.want, p.base, b.base.pid()))
			b.logf("%s round %d: switchboard %.0f/s, baseline %.0f/s", p.name, round+1,
				float64(sbR[round].Requests)/sbR[round].Elapsed.Seconds(), float64(baseR[round].Requests)/baseR[round].Elapsed.Seconds())
		}
		*p.into = compare(p.pattern, sbR, baseR)
	}
	r.PublicHealth.Target = "throughputRatio >= 0.8 and cpuPerRequestRatio <= 1.5"
	r.PublicHealth.Met = r.PublicHealth.ThroughputRatio >= 0.8 && r.PublicHealth.CPURatio <= 1.5 && r.PublicHealth.Switchboard.Errors == 0
	r.Config.Target = r.PublicHealth.Target
	r.Config.Met = r.Config.ThroughputRatio >= 0.8 && r.Config.CPURatio <= 1.5 && r.Config.Switchboard.Errors == 0
	r.Starts.Target = "switchboard >= 5000/s with p99 < 20 ms (SQLite)"
	r.Starts.Met = r.Starts.Switchboard.Throughput >= 5000 && r.Starts.Switchboard.P99Ms < 20 && r.Starts.Switchboard.Errors == 0
	r.Heartbeats.Target = "switchboard >= 20000/s with p99 < 10 ms"
	r.Heartbeats.Met = r.Heartbeats.Switchboard.Throughput >= 20000 && r.Heartbeats.Switchboard.P99Ms < 10 && r.Heartbeats.Switchboard.Errors == 0

	if b.o.scaleActive > 0 && b.o.want(2) {
		if r.StartsScaling, err = b.scaling(ctx, b.o.scaleActive); err != nil {
			return nil, err
		}
	}
	if b.o.want(5) {
		if r.SSE, err = b.sse(ctx); err != nil {
			return nil, err
		}
	}
	// --tiny measures it only when --items names it: the test of the tool
	// on PostgreSQL.
	if b.o.postgres != "" && b.o.want(4) && (b.o.mode != "tiny" || b.o.items[4]) {
		if r.Postgres, err = b.postgresStarts(ctx); err != nil {
			return nil, err
		}
	} else {
		r.Postgres = &pgReport{Skipped: "no PostgreSQL: set SWITCHBOARD_TEST_POSTGRES or --postgres"}
		switch {
		case !b.o.want(4):
			r.Postgres.Skipped = "not in --items"
		case b.o.postgres != "":
			r.Postgres.Skipped = "not in --tiny, unless --items names it"
		}
	}
	r.Ratios = map[string]any{
		"1_publicHealthThroughput":     r.PublicHealth.ThroughputRatio,
		"1_publicHealthCPU":            r.PublicHealth.CPURatio,
		"1_configThroughput":           r.Config.ThroughputRatio,
		"1_configCPU":                  r.Config.CPURatio,
		"2_startsThroughputVsBare":     r.Starts.ThroughputRatio,
		"3_heartbeatsThroughputVsBare": r.Heartbeats.ThroughputRatio,
		"4_postgresThreeOverOne":       r.Postgres.ThreeOverOne,
		"5_sseMemoryPerSubscriber":     r.SSE.MemoryRatio,
		"5_sseDeliveryP99":             r.SSE.P99Ratio,
		"6_coldStartVsBare":            r.ColdStart.Ratio,
		"2_startsP99ActiveScaling":     scalingRatio(r.StartsScaling, true),
		"2_startsP99ProvidersScaling":  scalingRatio(r.StartsScaling, false),
	}
	r.Met = b.met(r)
	r.ElapsedSeconds = round1(time.Since(t0).Seconds())
	return r, nil
}

// met gathers the verdicts of the targets this run measured.
func (b *bench) met(r *report) map[string]bool {
	m := map[string]bool{}
	if b.o.want(1) {
		m["1_publicHealth"], m["1_streamingConfig"] = r.PublicHealth.Met, r.Config.Met
	}
	if b.o.want(2) {
		m["2_starts"] = r.Starts.Met
		if r.StartsScaling != nil {
			m["2_startsFlat"] = r.StartsScaling.Met
		}
	}
	if b.o.want(3) {
		m["3_heartbeats"] = r.Heartbeats.Met
	}
	if r.Postgres != nil && r.Postgres.Skipped == "" {
		m["4_postgres"] = r.Postgres.Met
	}
	if b.o.want(5) {
		m["5_sse"] = r.SSE.Met
	}
	if b.o.want(6) {
		m["6_coldStart"] = r.ColdStart.Met
	}
	return m
}

// scalingRatio returns a ratio of the scaling report, 0 when it was skipped.
func scalingRatio(r *scalingReport, active bool) float64 {
	switch {
	case r == nil:
		return 0
	case active:
		return r.P99ActiveRatio
	}
	return r.P99ProvidersRatio
}

// sbArgs are the flags Switchboard is measured with: the public rate limit
// off (it would measure the limiter), enough event streams per token for the
// fan-out, and warnings only in the log. The profiler, when asked for, is on
// the main SQLite server only (profiled is true), whose address it takes,
// unless --pprof-case puts it on a scaling case.
func (b *bench) sbArgs(db string, profiled bool) []string {
	// The benchmark's streams never send a heartbeat: with the default
	// abandon-after, the leader ended the starts' 200,000 streams two minutes
	// later, in the middle of later items, and announced each to the event
	// subscribers of item 5 (a round of them missed its events behind that).
	args := []string{"serve", "--addr", "127.0.0.1:0", "--db", db, "--public-rate-limit", "0", "--sse-per-token", "10000",
		"--log-level", "warn", "--abandon-after", "1h"}
	if b.o.pprof != "" && profiled {
		args = append(args, "--pprof-addr", b.o.pprof)
	}
	return args
}

func (b *bench) sbEnvVars() []string {
	return []string{"SWITCHBOARD_BOOTSTRAP_TOKEN=" + b.boot, "SWITCHBOARD_ADMIN_PASSWORD=bench-" + randomHex(12)}
}

// startServers starts Switchboard on a SQLite file with the agora provider
// (checked once, so that it is usable) and the tokens, reads its answers to
// the measured requests, and starts the baseline answering the same bodies.
func (b *bench) startServers(ctx context.Context) error {
	var err error
	b.sb, err = startServer(ctx, b.o.switchboard, b.sbArgs("sqlite:"+filepath.Join(b.dir, "sb.db"), b.o.pprofCase == 0), b.sbEnvVars(), b.dir)
	if err != nil {
		return err
	}
	if b.sbEnv, err = b.setup(ctx, b.sb.url); err != nil {
		return err
	}
	docs := map[string]json.RawMessage{}
	if docs["health"], err = b.body(ctx, "GET", b.sb.url+"/api/streaming/providers/agora/health", "", "", 200); err != nil {
		return err
	}
	if docs["config"], err = b.body(ctx, "GET", b.sb.url+"/api/streaming/config", b.sbEnv.client, "", 200); err != nil {
		return err
	}
	start, err := b.body(ctx, "POST", b.sb.url+"/api/streams", b.sbEnv.client, `{"room":"bench-docs","userId":"u","role":"publisher"}`, 201)
	if err != nil {
		return err
	}
	docs["start"] = start
	var a struct{ ID string }
	_ = json.Unmarshal(start, &a)
	if docs["heartbeat"], err = b.body(ctx, "POST", b.sb.url+"/api/streams/"+a.ID+"/heartbeat", b.sbEnv.client, "", 200); err != nil {
		return err
	}
	docsFile := filepath.Join(b.dir, "docs.json")
	if err := writeJSONFile(docsFile, docs); err != nil {
		return err
	}
	b.docs = docs
	b.base, err = startServer(ctx, b.o.baseline, []string{"baseline", "--addr", "127.0.0.1:0", "--docs", docsFile}, nil, b.dir)
	return err
}

// setup creates the agora provider on the Switchboard at base, checks it,
// and creates a client token and an admin token.
func (b *bench) setup(ctx context.Context, base string) (*sbTokens, error) {
	prov := fmt.Sprintf(`{"name":"agora","kind":"agora","config":{"appId":%q,"baseUrl":%q},"credentials":{"customerId":%q,"customerSecret":%q,"appCertificate":%q}}`,
		benchAppID, b.fake.URL(), benchCustID, benchSecret, benchCert)
	if _, err := b.body(ctx, "POST", base+"/api/streaming/providers", b.boot, prov, 201); err != nil {
		return nil, err
	}
	if _, err := b.body(ctx, "POST", base+"/api/streaming/providers/agora/health-check", b.boot, "", 200); err != nil {
		return nil, err
	}
	t := &sbTokens{}
	for _, x := range []struct {
		role string
		into *string
	}{{"client", &t.client}, {"admin", &t.admin}} {
		body, err := b.body(ctx, "POST", base+"/api/auth/tokens", b.boot, fmt.Sprintf(`{"name":"bench-%s","role":%q}`, x.role, x.role), 201)
		if err != nil {
			return nil, err
		}
		var tok struct{ Token string }
		if err := json.Unmarshal(body, &tok); err != nil || tok.Token == "" {
			return nil, fmt.Errorf("create %s token: no token in the answer", x.role)
		}
		*x.into = tok.Token
	}
	return t, nil
}

// startSome starts n streams and returns their ids.
func (b *bench) startSome(ctx context.Context, base, token string, n int) ([]string, error) {
	var ids []string
	for i := range n {
		body, err := b.body(ctx, "POST", base+"/api/streams", token, fmt.Sprintf(`{"room":"bench-live-%d","userId":"u","role":"publisher"}`, i), 201)
		if err != nil {
			return nil, err
		}
		var a struct{ ID string }
		if err := json.Unmarshal(body, &a); err != nil || a.ID == "" {
			return nil, fmt.Errorf("start: no stream id in %.200s", body)
		}
		ids = append(ids, a.ID)
	}
	return ids, nil
}

// body sends one request and returns its answer's body, failing on another
// status than want.
func (b *bench) body(ctx context.Context, method, u, token, body string, want int) ([]byte, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != want {
		uu, _ := url.Parse(u)
		return nil, fmt.Errorf("%s %s: status %d, want %d: %.300s", method, uu.Path, resp.StatusCode, want, out)
	}
	return bytes.TrimSpace(out), nil
}

// coldReport is the time from exec to the first 200 of /healthz, on an
// empty directory.
type coldReport struct {
	SwitchboardMs       []float64 `json:"switchboardMs"`
	BaselineMs          []float64 `json:"baselineMs"`
	SwitchboardMedianMs float64   `json:"switchboardMedianMs"`
	BaselineMedianMs    float64   `json:"baselineMedianMs"`
	Ratio               float64   `json:"ratio"`
	Target              string    `json:"target"`
	Met                 bool      `json:"met"`
}

func (b *bench) coldStarts(ctx context.Context) (coldReport, error) {
	var c coldReport
	for i := range b.o.coldRounds {
		dir := filepath.Join(b.dir, "cold-"+strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return c, err
		}
		s, err := startServer(ctx, b.o.switchboard, b.sbArgs("sqlite:"+filepath.Join(dir, "sb.db"), false), b.sbEnvVars(), dir)
		if err != nil {
			return c, err
		}
		s.stop()
		c.SwitchboardMs = append(c.SwitchboardMs, round1(float64(s.ready.Microseconds())/1000))
		bs, err := startServer(ctx, b.o.baseline, []string{"baseline", "--addr", "127.0.0.1:0"}, nil, dir)
		if err != nil {
			return c, err
		}
		bs.stop()
		c.BaselineMs = append(c.BaselineMs, round1(float64(bs.ready.Microseconds())/1000))
	}
	c.SwitchboardMedianMs, c.BaselineMedianMs = median(c.SwitchboardMs), median(c.BaselineMs)
	c.Ratio = ratio(c.SwitchboardMedianMs, c.BaselineMedianMs)
	c.Target = "switchboardMedianMs < 200"
	c.Met = c.SwitchboardMedianMs < 200
	b.logf("cold start: switchboard %v ms, baseline %v ms", c.SwitchboardMs, c.BaselineMs)
	return c, nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

func writeJSONFile(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o600)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// pgReport is stream starts on PostgreSQL with one replica and with three,
// and the same for the bare baseline (each start a committed row, and
// nothing else), so that what three processes cost on this machine whatever
// they serve can be told from what they cost Switchboard.
type pgReport struct {
	Skipped       string  `json:"skipped,omitempty"`
	OneReplica    *stats  `json:"oneReplica,omitempty"`
	ThreeReplicas *stats  `json:"threeReplicas,omitempty"`
	ThreeOverOne  float64 `json:"threeOverOne"`
	// BareOneReplica and BareThreeReplicas are the baseline's, as one
	// process and as three.
	BareOneReplica    *stats  `json:"bareOneReplica,omitempty"`
	BareThreeReplicas *stats  `json:"bareThreeReplicas,omitempty"`
	BareThreeOverOne  float64 `json:"bareThreeOverOne"`
	Target            string  `json:"target,omitempty"`
	Met               bool    `json:"met"`
}

// postgresStarts measures starts on fresh schemas of the PostgreSQL server:
// Switchboard served by one replica and by three (the clients spread over
// them), and the baseline run as one process and as three, all in turns.
func (b *bench) postgresStarts(ctx context.Context) (*pgReport, error) {
	db, err := sql.Open("pgx", b.o.postgres)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	defer db.Close()
	key := randomHex(32)
	type set struct {
		name    string
		servers []*server
		token   string
	}
	var sets []*set
	for _, bare := range []bool{false, true} {
		for _, n := range []int{1, 3} {
			schema := "sbbench_" + randomHex(6)
			if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
				return nil, fmt.Errorf("postgres: create schema: %w", err)
			}
			defer db.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			u, err := url.Parse(b.o.postgres)
			if err != nil {
				return nil, fmt.Errorf("postgres: not a URL")
			}
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			st := &set{name: fmt.Sprintf("%d replica(s)", n), token: b.sbEnv.client} // the baseline takes any token
			if bare {
				st.name = fmt.Sprintf("%d baseline(s)", n)
				if _, err := db.ExecContext(ctx, strings.Replace(benchbase.StartsTable, "bench_starts", schema+".bench_starts", 1)); err != nil {
					return nil, fmt.Errorf("postgres: create the baseline's table: %w", err)
				}
			}
			for j := range n {
				var s *server
				if bare {
					s, err = startServer(ctx, b.o.baseline, []string{"baseline", "--addr", "127.0.0.1:0",
						"--docs", filepath.Join(b.dir, "docs.json"), "--postgres", u.String()}, nil, b.dir)
				} else {
					profiled := (n == 1 && b.o.pprofCase == 4) || (n == 3 && j == 0 && b.o.pprofCase == 5)
					s, err = startServer(ctx, b.o.switchboard, b.sbArgs(u.String(), profiled), append(b.sbEnvVars(), "SWITCHBOARD_SECRET_KEY="+key), b.dir)
				}
				if err != nil {
					return nil, err
				}
				defer s.stop()
				st.servers = append(st.servers, s)
			}
			if !bare {
				tokens, err := b.setup(ctx, st.servers[0].url)
				if err != nil {
					return nil, err
				}
				st.token = tokens.client
			}
			sets = append(sets, st)
		}
	}
	prefix := randomHex(4)
	results := make([][]loadResult, len(sets))
	for round := range b.o.rounds {
		for i, st := range sets {
			var pids []int
			for _, s := range st.servers {
				pids = append(pids, s.pid())
			}
			hosts := make([]string, len(st.servers))
			for i, s := range st.servers {
				hosts[i] = hostOf(s.url)
			}
			token := st.token
			next := func(dst []byte, n int64) (string, []byte) {
				host := hosts[int(n)%len(hosts)]
				body := fmt.Appendf(nil, `{"room":"pg-%s-%d","userId":"u","role":"publisher"}`, prefix, n)
				return host, appendRequest(dst, "POST", host, "/api/streams", token, body)
			}
			db0 := cpuNamed("postgres")
			res := closedLoop(ctx, b.o.conc, b.o.dur, 201, next, pids...)
			res.DBCPU = cpuSince(db0, cpuNamed("postgres"))
			results[i] = append(results[i], res)
			b.logf("postgres starts round %d, %s: %.0f/s", round+1, st.name, float64(res.Requests)/res.Elapsed.Seconds())
		}
	}
	one, three := summarise(results[0]), summarise(results[1])
	bareOne, bareThree := summarise(results[2]), summarise(results[3])
	r := &pgReport{OneReplica: &one, ThreeReplicas: &three, ThreeOverOne: ratio(three.Throughput, one.Throughput),
		BareOneReplica: &bareOne, BareThreeReplicas: &bareThree, BareThreeOverOne: ratio(bareThree.Throughput, bareOne.Throughput),
		Target: "threeOverOne >= 1 (cpuMicrosPerRequest is the replicas', dbCpuMicrosPerRequest every local postgres process's; bare: the baseline, a committed row a start)"}
	r.Met = r.ThreeOverOne >= 1 && one.Errors == 0 && three.Errors == 0
	return r, nil
}
