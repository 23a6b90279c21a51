// Command gentraces writes the probe traces that `switchboard predict-eval`
// replays: synthetic but shaped after what providers do when they fail.
//
//	go run ./internal/predict/gentraces -out internal/predict/testdata/traces -seed 1
//
// Each trace is NAME.csv, with the header t,ok,latency_ms (seconds from the
// start, 1 or 0, milliseconds) and, for the traces with field quality,
// loss,rtt_ms; one row per probe; and NAME.json, {"interval":"10s"}. The
// output is a function of the seed alone. Its kinds, by name prefix:
//
//   - outage: a healthy provider that fails at once, for 5 to 40 minutes.
//   - ramp-latency: latency climbs over 5 to 60 minutes (linearly or
//     exponentially) until probes time out (3 s); as it nears the timeout,
//     some probes fail.
//   - ramp-errors: the failure rate climbs from 0 to 60–100 % over 5 to 60
//     minutes, with latency up a little.
//   - ramp-field: as ramp-errors or ramp-latency, with field quality
//     samples (loss, rtt) that sag first.
//   - flapping: short outages of 3 to 8 probes, again and again, between
//     minutes of health.
//   - healthy: a whole day with a daily latency cycle, isolated failures, and
//     now and then a pair.
//   - spike: hours of health with latency spikes (×3 to ×10, for 1 to 8
//     minutes) that recover with no failure.
//
// The noise is deliberately not what the detector assumes: latency noise is
// autocorrelated (AR(1)) with heavy tails, probes are jittered by ±10 %, and
// the base latency varies by provider.
package main

import (
	"flag"
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

const (
	interval  = 10.0   // seconds between probes
	timeoutMs = 3000.0 // a probe slower than this fails
	minute    = 60.0
	hour      = 3600.0
)

func main() {
	out := flag.String("out", "internal/predict/testdata/traces", "directory to write the traces into")
	seed := flag.Uint64("seed", 1, "seed of the generator")
	flag.Parse()
	if err := generate(*out, *seed); err != nil {
		log.Fatal(err)
	}
}

func generate(dir string, seed uint64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	kinds := []struct {
		name string
		n    int
		gen  func(r *rand.Rand) *trace
	}{
		{"outage", 6, outage},
		{"ramp-latency", 6, rampLatency},
		{"ramp-errors", 6, rampErrors},
		{"ramp-field", 4, rampField},
		{"flapping", 4, flapping},
		{"healthy", 6, healthy},
		{"spike", 4, spikes},
	}
	for ki, k := range kinds {
		for i := range k.n {
			r := rand.New(rand.NewPCG(seed, uint64(ki*100+i)))
			name := fmt.Sprintf("%s-%02d", k.name, i+1)
			if err := k.gen(r).write(dir, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// row is one probe.
type row struct {
	t       float64
	ok      bool
	latency float64
	loss    float64
	rtt     float64
}

// trace builds the rows of one trace from a provider model.
type trace struct {
	r       *rand.Rand
	base    float64 // base latency, ms
	noise   float64 // AR(1) state of ln-latency noise
	sigma   float64 // its innovation
	rho     float64
	diurnal float64 // amplitude of the daily cycle in ln-latency
	phase   float64
	pFail   float64 // isolated failure rate of a healthy probe
	field   bool    // writes loss and rtt
	t       float64
	rows    []row
}

func newTrace(r *rand.Rand) *trace {
	return &trace{
		r:       r,
		base:    40 + 110*r.Float64(),
		sigma:   0.05 + 0.05*r.Float64(),
		rho:     0.3 + 0.4*r.Float64(),
		diurnal: 0.1 + 0.2*r.Float64(),
		phase:   2 * math.Pi * r.Float64(),
		pFail:   0.0005 + 0.0015*r.Float64(),
	}
}

// degradation is what is wrong with the provider at a probe.
type degradation struct {
	latencyFactor float64 // multiplies latency (1: none)
	pFail         float64 // extra failure probability
	down          bool    // every probe fails
	loss          float64 // extra field loss
	rttFactor     float64 // multiplies field rtt (0 or 1: none)
}

// probe appends one probe at the trace's clock and advances it.
func (tr *trace) probe(d degradation) {
	r := tr.r
	tr.noise = tr.rho*tr.noise + tr.sigma*r.NormFloat64()
	tail := 0.0
	if r.Float64() < 0.01 { // heavy tail: one probe in a hundred is slow
		tail = math.Log(1 + 2*r.ExpFloat64())
	}
	cycle := tr.diurnal * math.Sin(2*math.Pi*tr.t/(24*hour)+tr.phase)
	lat := tr.base * math.Exp(tr.noise+cycle+tail)
	if d.latencyFactor > 0 {
		lat *= d.latencyFactor
	}
	ok := true
	switch {
	case d.down:
		ok = false
	case lat >= timeoutMs:
		ok, lat = false, timeoutMs
	case r.Float64() < tr.pFail+d.pFail:
		ok = false
	case lat > timeoutMs/2 && r.Float64() < (lat-timeoutMs/2)/timeoutMs:
		ok = false // slow backends time out now and then before the mean does
	}
	if !ok && !d.down && lat < timeoutMs && r.Float64() < 0.5 {
		lat = timeoutMs // half the failures are timeouts
	}
	if d.down {
		if r.Float64() < 0.5 {
			lat = timeoutMs
		} else {
			lat = 5 + 20*r.Float64() // refused at once
		}
	}
	rw := row{t: tr.t, ok: ok, latency: lat}
	if tr.field {
		rw.loss = math.Max(0, 0.008+0.004*r.NormFloat64()+d.loss)
		rw.rtt = 2.2 * tr.base * math.Exp(0.08*r.NormFloat64()+cycle)
		if d.rttFactor > 1 {
			rw.rtt *= d.rttFactor
		}
	}
	tr.rows = append(tr.rows, rw)
	tr.t += interval * (0.9 + 0.2*r.Float64())
}

// healthyFor probes a healthy provider for secs seconds.
func (tr *trace) healthyFor(secs float64) {
	end := tr.t + secs
	for tr.t < end {
		tr.probe(degradation{})
	}
}

// downFor probes a provider that is down for secs seconds.
func (tr *trace) downFor(secs float64) {
	end := tr.t + secs
	for tr.t < end {
		tr.probe(degradation{down: true})
	}
}

// ramp probes for secs seconds, with f giving the degradation at progress 0–1.
func (tr *trace) ramp(secs float64, f func(x float64) degradation) {
	start := tr.t
	for tr.t < start+secs {
		tr.probe(f((tr.t - start) / secs))
	}
}

func between(r *rand.Rand, lo, hi float64) float64 { return lo + (hi-lo)*r.Float64() }

func outage(r *rand.Rand) *trace {
	tr := newTrace(r)
	tr.healthyFor(between(r, 2, 4) * hour)
	tr.downFor(between(r, 5, 40) * minute)
	tr.healthyFor(hour)
	return tr
}

// latencyRamp is the degradation of a latency ramp at progress x: the factor
// reaches timeout/base at x = 1, linearly or exponentially.
func latencyRamp(r *rand.Rand, base float64) func(x float64) degradation {
	top := 1.2 * timeoutMs / base
	exp := r.Float64() < 0.5
	return func(x float64) degradation {
		if exp {
			return degradation{latencyFactor: math.Pow(top, x)}
		}
		return degradation{latencyFactor: 1 + (top-1)*x}
	}
}

func rampLatency(r *rand.Rand) *trace {
	tr := newTrace(r)
	tr.healthyFor(between(r, 2, 3) * hour)
	tr.ramp(between(r, 5, 60)*minute, latencyRamp(r, tr.base))
	tr.downFor(between(r, 10, 30) * minute)
	tr.healthyFor(hour)
	return tr
}

func errorRamp(r *rand.Rand) func(x float64) degradation {
	top := between(r, 0.6, 1)
	lat := between(r, 1, 1.5)
	return func(x float64) degradation {
		return degradation{pFail: top * x, latencyFactor: 1 + (lat-1)*x}
	}
}

func rampErrors(r *rand.Rand) *trace {
	tr := newTrace(r)
	tr.healthyFor(between(r, 2, 3) * hour)
	tr.ramp(between(r, 5, 60)*minute, errorRamp(r))
	tr.downFor(between(r, 10, 30) * minute)
	tr.healthyFor(hour)
	return tr
}

func rampField(r *rand.Rand) *trace {
	tr := newTrace(r)
	tr.field = true
	tr.healthyFor(between(r, 2, 3) * hour)
	d := between(r, 5, 60) * minute
	inner := errorRamp(r)
	if r.Float64() < 0.5 {
		inner = latencyRamp(r, tr.base)
	}
	lead := between(r, 0.1, 0.3) // the field sags this share of the ramp earlier
	tr.ramp(d, func(x float64) degradation {
		y := math.Max(0, (x-lead)/(1-lead))
		g := inner(y)
		if y == 0 {
			g = degradation{}
		}
		g.loss = 0.15 * x
		g.rttFactor = 1 + 2*x
		return g
	})
	tr.downFor(between(r, 10, 30) * minute)
	tr.healthyFor(hour)
	return tr
}

func flapping(r *rand.Rand) *trace {
	tr := newTrace(r)
	tr.healthyFor(between(r, 1, 2) * hour)
	for range 4 + r.IntN(6) {
		tr.downFor(between(r, 3, 8) * interval)
		tr.healthyFor(between(r, 1, 10) * minute)
	}
	tr.healthyFor(hour)
	return tr
}

func healthy(r *rand.Rand) *trace {
	tr := newTrace(r)
	tr.field = r.Float64() < 0.33
	end := 24 * hour
	for tr.t < end {
		if r.Float64() < 1.0/8640 { // about once a day, two failures in a row
			tr.probe(degradation{pFail: 1})
			tr.probe(degradation{pFail: 1})
			continue
		}
		tr.probe(degradation{})
	}
	return tr
}

func spikes(r *rand.Rand) *trace {
	tr := newTrace(r)
	tr.healthyFor(between(r, 1, 2) * hour)
	for range 3 + r.IntN(4) {
		f := between(r, 3, 10)
		tr.ramp(between(r, 1, 8)*minute, func(float64) degradation { return degradation{latencyFactor: f} })
		tr.healthyFor(between(r, 20, 60) * minute)
	}
	return tr
}

// write writes NAME.csv and NAME.json into dir.
func (tr *trace) write(dir, name string) error {
	var b strings.Builder
	b.WriteString("t,ok,latency_ms")
	if tr.field {
		b.WriteString(",loss,rtt_ms")
	}
	b.WriteString("\n")
	for _, rw := range tr.rows {
		ok := 0
		if rw.ok {
			ok = 1
		}
		fmt.Fprintf(&b, "%.1f,%d,%.0f", rw.t, ok, rw.latency)
		if tr.field {
			fmt.Fprintf(&b, ",%.4f,%.0f", rw.loss, rw.rtt)
		}
		b.WriteString("\n")
	}
	if err := os.WriteFile(filepath.Join(dir, name+".csv"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".json"), []byte("{\"interval\": \"10s\"}\n"), 0o644)
}
