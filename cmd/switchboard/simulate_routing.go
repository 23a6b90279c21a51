package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/client"
	"github.com/switchboardhq/switchboard/client/admin"
	"github.com/switchboardhq/switchboard/client/clienttest"
)

// degradedQuality is the synthetic quality of a provider degraded in a region
// (--degrade): 8 % loss, 400 ms RTT, 40 ms jitter and 3 s frozen in 10 s,
// against clienttest.DefaultQuality elsewhere.
var degradedQuality = client.QualitySample{RTTMs: 400, PacketLoss: 0.08, JitterMs: 40, BitrateKbps: 400, FPS: 12, FreezeCount: 3, FreezeMs: 3000}

// simDegrade is one provider degraded in one region.
type simDegrade struct{ provider, region string }

// parseDegrade reads PROVIDER@REGION[,PROVIDER@REGION...].
func parseDegrade(s string) ([]simDegrade, error) {
	if s == "" {
		return nil, nil
	}
	var out []simDegrade
	for _, p := range strings.Split(s, ",") {
		prov, region, ok := strings.Cut(p, "@")
		if !ok || !switchboard.ValidSlug(prov) || !switchboard.ValidSlug(region) {
			return nil, fmt.Errorf("--degrade %q: want PROVIDER@REGION", p)
		}
		out = append(out, simDegrade{prov, region})
	}
	return out, nil
}

// simRouting is a routing simulation: streams started in waves in each
// region, each region's apps with their own SDK client and media engine, so
// that a provider's quality can degrade in one region only.
type simRouting struct {
	regions       []string
	degrade       []simDegrade
	waves         int
	waveEvery     time.Duration
	perWave       int // streams a wave starts in each region
	degradeWave   int // the first wave after the degradation began (1-based; 0: none)
	qualityEvery  time.Duration
	adminToken    string
	policy        string // set after the warm-up; "" leaves the server's
	shares        string
	warmupWaves   int // waves under balanced before policy (0: none)
	weightQuality bool
}

// simWave is what one wave of new streams did: the provider each region's
// streams went to.
type simWave struct {
	Wave     int                       `json:"wave"`
	Policy   string                    `json:"policy,omitempty"` // the policy the simulation set, "" when it set none
	Degraded bool                      `json:"degraded"`         // whether the degradation was on when the wave started
	Regions  map[string]map[string]int `json:"regions"`          // region → provider → new streams
	Failures int                       `json:"failures"`
}

// simRoutingResult is the summary of a routing simulation.
type simRoutingResult struct {
	Waves []simWave `json:"waves"`
	// Shares are, per region, the share of each provider among the new
	// streams of the waves under the final policy, before and after the
	// degradation.
	Before map[string]map[string]float64 `json:"before"`
	After  map[string]map[string]float64 `json:"after"`
	// Overall is the share of each provider among every stream started
	// under the final policy, all regions.
	Overall map[string]float64 `json:"overall"`
}

// runRoutingSimulation runs s against the server of cfg.
func runRoutingSimulation(ctx context.Context, cfg simConfig, s simRouting, stderr io.Writer) (simRoutingResult, error) {
	var res simRoutingResult
	stderr = &syncWriter{w: stderr}
	log := newLogger(stderr, "text", cfg.logLevel)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	var ac *admin.Client
	if s.adminToken != "" {
		var err error
		if ac, err = admin.New(cfg.server, s.adminToken, &http.Client{Transport: tr, Timeout: 10 * time.Second}); err != nil {
			return res, usageError{msg: err.Error()}
		}
	}
	engines := map[string]*clienttest.Engine{}
	clients := map[string]*client.Client{}
	defer func() {
		for _, c := range clients {
			_ = c.Close()
		}
	}()
	for _, region := range s.regions {
		eng := clienttest.New(cfg.connectDelay)
		opts := []client.Option{client.WithLogger(log), client.WithHTTPClient(hc), client.WithQualityInterval(s.qualityEvery)}
		for _, k := range simKinds {
			opts = append(opts, client.WithEngine(client.Kind(k), eng))
		}
		c, err := client.New(cfg.server, cfg.token, opts...)
		if err != nil {
			return res, usageError{msg: err.Error()}
		}
		engines[region], clients[region] = eng, c
	}
	setPolicy := func(policy string) error {
		if ac == nil || policy == "" {
			return nil
		}
		p := switchboard.RoutingPolicy(policy)
		in := switchboard.RoutingInput{Policy: &p}
		if policy == string(switchboard.PolicyCommit) && s.shares != "" {
			sh, err := parsePairs(s.shares)
			if err != nil {
				return usageError{msg: "--shares: " + err.Error()}
			}
			in.Shares = &sh
		}
		if s.weightQuality {
			in.Weights = &switchboard.RoutingWeights{Quality: 1}
		}
		if _, err := ac.UpdateRouting(ctx, in); err != nil {
			return fmt.Errorf("simulate: set the policy %s: %w", policy, err)
		}
		fmt.Fprintf(stderr, "simulate: routing policy %s\n", policy)
		return nil
	}
	current := ""
	if s.warmupWaves > 0 {
		current = string(switchboard.PolicyBalanced)
	} else {
		current = s.policy
	}
	if err := setPolicy(current); err != nil {
		return res, err
	}
	var streamsMu sync.Mutex
	var live []*client.Stream
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		for _, st := range live {
			_ = st.Close(cctx)
		}
	}()
	next := time.Now()
	for w := 1; w <= s.waves; w++ {
		if w == s.warmupWaves+1 && s.warmupWaves > 0 {
			current = s.policy
			if err := setPolicy(current); err != nil {
				return res, err
			}
		}
		degraded := s.degradeWave > 0 && w >= s.degradeWave
		if degraded && w == s.degradeWave {
			for _, d := range s.degrade {
				if eng := engines[d.region]; eng != nil {
					eng.SetQuality(d.provider, degradedQuality)
					fmt.Fprintf(stderr, "simulate: %s degrades in %s from wave %d\n", d.provider, d.region, w)
				}
			}
		}
		wave := simWave{Wave: w, Degraded: degraded, Regions: map[string]map[string]int{}}
		if ac != nil {
			wave.Policy = current
		}
		var mu sync.Mutex
		var g errgroup.Group
		g.SetLimit(max(cfg.startConcurrency, 1))
		for _, region := range s.regions {
			wave.Regions[region] = map[string]int{}
			for i := range s.perWave {
				g.Go(func() error {
					sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
					defer cancel()
					st, err := clients[region].Start(sctx, fmt.Sprintf("sim-%s-%d-%d", region, w, i),
						client.WithUserID(fmt.Sprintf("sim-user-%s-%d-%d", region, w, i)), client.WithRegion(region))
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						wave.Failures++
						return nil
					}
					wave.Regions[region][st.Provider()]++
					streamsMu.Lock()
					live = append(live, st)
					streamsMu.Unlock()
					return nil
				})
			}
		}
		_ = g.Wait()
		if ctx.Err() != nil {
			return res, ctx.Err()
		}
		res.Waves = append(res.Waves, wave)
		fmt.Fprintf(stderr, "simulate: wave %d: %s\n", w, formatWave(wave))
		next = next.Add(s.waveEvery)
		if w < s.waves && !sleepUntil(ctx, next) {
			return res, ctx.Err()
		}
	}
	res.Before, res.After, res.Overall = routingShares(res.Waves, s)
	return res, nil
}

// routingShares are the shares of each provider among the new streams under
// the final policy (the waves after the warm-up), per region before and after
// the degradation, and overall. The wave in which the degradation begins
// counts as neither: its streams start as the quality changes.
func routingShares(waves []simWave, s simRouting) (before, after map[string]map[string]float64, overall map[string]float64) {
	before, after = map[string]map[string]float64{}, map[string]map[string]float64{}
	all := map[string]int{}
	add := func(into map[string]map[string]int, w simWave) {
		for region, byProv := range w.Regions {
			if into[region] == nil {
				into[region] = map[string]int{}
			}
			for p, n := range byProv {
				into[region][p] += n
			}
		}
	}
	b, a := map[string]map[string]int{}, map[string]map[string]int{}
	for _, w := range waves {
		if w.Wave <= s.warmupWaves {
			continue
		}
		for _, byProv := range w.Regions {
			for p, n := range byProv {
				all[p] += n
			}
		}
		switch {
		case s.degradeWave == 0 || w.Wave < s.degradeWave:
			add(b, w)
		case w.Wave > s.degradeWave:
			add(a, w)
		}
	}
	share := func(m map[string]int) map[string]float64 {
		total := 0
		for _, n := range m {
			total += n
		}
		out := map[string]float64{}
		for p, n := range m {
			out[p] = float64(n) / float64(max(total, 1))
		}
		return out
	}
	for r, m := range b {
		before[r] = share(m)
	}
	for r, m := range a {
		after[r] = share(m)
	}
	return before, after, share(all)
}

// formatWave is one wave in a line: region provider:streams ...
func formatWave(w simWave) string {
	var parts []string
	for _, region := range slices.Sorted(maps.Keys(w.Regions)) {
		var ps []string
		for _, p := range slices.Sorted(maps.Keys(w.Regions[region])) {
			ps = append(ps, p+":"+strconv.Itoa(w.Regions[region][p]))
		}
		parts = append(parts, region+" "+strings.Join(ps, ","))
	}
	s := strings.Join(parts, "; ")
	if w.Policy != "" {
		s = "[" + w.Policy + "] " + s
	}
	if w.Degraded {
		s += " (degraded)"
	}
	if w.Failures > 0 {
		s += fmt.Sprintf(" (%d failed to start)", w.Failures)
	}
	return s
}

func printRoutingSummary(w io.Writer, res simRoutingResult) {
	for _, wv := range res.Waves {
		fmt.Fprintf(w, "wave %-3d %s\n", wv.Wave, formatWave(wv))
	}
	pr := func(name string, m map[string]map[string]float64) {
		for _, region := range slices.Sorted(maps.Keys(m)) {
			var ps []string
			for _, p := range slices.Sorted(maps.Keys(m[region])) {
				ps = append(ps, fmt.Sprintf("%s %.1f %%", p, 100*m[region][p]))
			}
			fmt.Fprintf(w, "%-8s %-10s %s\n", name, region, strings.Join(ps, ", "))
		}
	}
	pr("before", res.Before)
	pr("after", res.After)
	var ps []string
	for _, p := range slices.Sorted(maps.Keys(res.Overall)) {
		ps = append(ps, fmt.Sprintf("%s %.1f %%", p, 100*res.Overall[p]))
	}
	fmt.Fprintf(w, "overall  %s\n", strings.Join(ps, ", "))
}
