package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// scalingCase is stream starts on a Switchboard holding Active live streams
// spread over Providers providers.
type scalingCase struct {
	Active    int   `json:"active"`
	Providers int   `json:"providers"`
	Starts    stats `json:"starts"`
	// AtRate is one round of starts at a fixed rate (open loop,
	// scalingReport.OpenRatePerSec), each latency counted from when the
	// start was due: the latency of a server that is not at its limit.
	AtRate stats `json:"atRate"`
}

// scalingReport tells whether the start latency stays flat as the live
// streams and the providers grow (item 2).
type scalingReport struct {
	Cases []scalingCase `json:"cases"`
	// P99ActiveRatio is the p99 with the most live streams over the p99
	// with the fewest; P99ProvidersRatio the same for providers.
	P99ActiveRatio    float64 `json:"p99ActiveRatio"`
	P99ProvidersRatio float64 `json:"p99ProvidersRatio"`
	// The same ratios at a fixed rate, half the first case's closed-loop
	// throughput: for information (the verdict is the closed loop's, at 64
	// clients, as the target is stated).
	OpenRatePerSec          float64 `json:"atRatePerSec"`
	P99ActiveRatioAtRate    float64 `json:"p99ActiveRatioAtRate"`
	P99ProvidersRatioAtRate float64 `json:"p99ProvidersRatioAtRate"`
	Target                  string  `json:"target"`
	Met                     bool    `json:"met"`
}

// flatWithin is how far the p99 may move across the scaling cases and still
// count as flat: run-to-run noise on a shared machine is of that order.
const flatWithin = 1.25

// scaling measures starts on fresh SQLite servers seeded (switchboard seed)
// with 1,000 and with maxActive live streams on 2 providers, and with 1,000
// on 100 providers.
func (b *bench) scaling(ctx context.Context, maxActive int) (*scalingReport, error) {
	r := &scalingReport{Target: "p99 flat (ratio <= 1.25) from 1,000 to " + strconv.Itoa(maxActive) + " live streams and from 2 to 100 providers"}
	for i, c := range []struct{ active, providers int }{{1000, 2}, {maxActive, 2}, {1000, 100}} {
		sc, err := b.scalingCase(ctx, i, c.active, c.providers)
		if err != nil {
			return nil, fmt.Errorf("starts with %d live streams on %d providers: %w", c.active, c.providers, err)
		}
		r.Cases = append(r.Cases, sc)
		b.logf("starts with %d live streams on %d providers: %.0f/s, p99 %.1f ms; at %.0f/s, p99 %.1f ms", c.active, c.providers,
			sc.Starts.Throughput, sc.Starts.P99Ms, b.openRate, sc.AtRate.P99Ms)
	}
	r.P99ActiveRatio = ratio(r.Cases[1].Starts.P99Ms, r.Cases[0].Starts.P99Ms)
	r.P99ProvidersRatio = ratio(r.Cases[2].Starts.P99Ms, r.Cases[0].Starts.P99Ms)
	r.OpenRatePerSec = round1(b.openRate)
	r.P99ActiveRatioAtRate = ratio(r.Cases[1].AtRate.P99Ms, r.Cases[0].AtRate.P99Ms)
	r.P99ProvidersRatioAtRate = ratio(r.Cases[2].AtRate.P99Ms, r.Cases[0].AtRate.P99Ms)
	r.Met = r.P99ActiveRatio <= flatWithin && r.P99ProvidersRatio <= flatWithin
	for _, c := range r.Cases {
		r.Met = r.Met && c.Starts.Errors == 0 && c.Starts.Requests > 0
	}
	return r, nil
}

func (b *bench) scalingCase(ctx context.Context, i, active, providers int) (scalingCase, error) {
	sc := scalingCase{Active: active, Providers: providers}
	dir := filepath.Join(b.dir, fmt.Sprintf("scale-%d", i))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return sc, err
	}
	db := "sqlite:" + filepath.Join(dir, "sb.db")
	s, err := startServer(ctx, b.o.switchboard, b.sbArgs(db, i+1 == b.o.pprofCase), b.sbEnvVars(), dir)
	if err != nil {
		return sc, err
	}
	defer s.stop()
	tokens, err := b.setup(ctx, s.url) // the provider agora
	if err != nil {
		return sc, err
	}
	names := []string{"agora"}
	for i := 2; i <= providers; i++ {
		name := fmt.Sprintf("agora-%d", i)
		prov := fmt.Sprintf(`{"name":%q,"kind":"agora","config":{"appId":%q,"baseUrl":%q},"credentials":{"customerId":%q,"customerSecret":%q,"appCertificate":%q}}`,
			name, benchAppID, b.fake.URL(), benchCustID, benchSecret, benchCert)
		if _, err := b.body(ctx, "POST", s.url+"/api/streaming/providers", b.boot, prov, 201); err != nil {
			return sc, err
		}
		names = append(names, name)
	}
	// The live streams belong to the database's client token, as an app's
	// would; the server counts them within its reconciliation period.
	seed := exec.CommandContext(ctx, b.o.switchboard, "seed", "--db", db, "--ended", "0", "--active", strconv.Itoa(active),
		"--providers", strings.Join(names, ","))
	seed.Dir = dir
	if out, err := seed.CombinedOutput(); err != nil {
		return sc, fmt.Errorf("seed: %v: %s", err, out)
	}
	time.Sleep(3 * time.Second)
	prefix := randomHex(4)
	host, token := hostOf(s.url), tokens.client
	next := func(dst []byte, i int64) (string, []byte) {
		body := fmt.Appendf(nil, `{"room":"scale-%s-%d","userId":"u","role":"publisher"}`, prefix, i)
		return host, appendRequest(dst, "POST", host, "/api/streams", token, body)
	}
	closedLoop(ctx, b.o.conc, b.o.warm, 201, next, s.pid()) // the warm-up, as for the paths of items 1 to 3
	var rounds []loadResult
	for range b.o.rounds {
		rounds = append(rounds, closedLoop(ctx, b.o.conc, b.o.dur, 201, next, s.pid()))
	}
	sc.Starts = summarise(rounds)
	if b.openRate == 0 {
		b.openRate = max(sc.Starts.Throughput/2, 1)
	}
	// Rooms of their own, after the closed loop's.
	atRate := func(dst []byte, i int64) (string, []byte) { return next(dst, i+1_000_000_000) }
	sc.AtRate = summarise([]loadResult{openLoop(ctx, b.openRate, b.o.conc, b.o.dur, 201, atRate, s.pid())})
	return sc, nil
}
