package predict

import (
	"context"
	"encoding/json"
	"log/slog"
	"maps"
	"math"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/health"
)

// TrackerConfig wires a Tracker. Every field is optional.
type TrackerConfig struct {
	// Detector configures each provider's Detector (zero: DefaultConfig).
	Detector Config
	// Bus receives provider.degrading and provider.recovered. Nil drops them.
	Bus sb.Bus
	// Logger receives the changes at Info. Nil discards.
	Logger *slog.Logger
}

// Tracker runs one Detector per provider over the health checker's probe
// results, publishes provider.degrading and provider.recovered when a
// provider's detector changes its mind, and answers which providers are
// degrading now. It is safe for concurrent use.
//
// With several replicas the leader probes on schedule and so runs the
// detectors that matter; the other replicas learn its verdicts from its
// events (Apply).
type Tracker struct {
	cfg Config
	bus sb.Bus
	log *slog.Logger

	mu        sync.Mutex
	detectors map[string]*Detector      // guarded by mu
	known     map[string]sb.Degradation // guarded by mu: the last verdict per provider
	// degrading counts the verdicts of known that are degrading (guarded by
	// mu): Degrading, asked by every start and heartbeat, answers at once
	// while it is 0 rather than looking at every provider.
	degrading int
}

// setKnown records v as the verdict on name; t.mu must be held.
func (t *Tracker) setKnown(name string, v sb.Degradation) {
	t.forgetKnown(name)
	t.known[name] = v
	if v.Degrading {
		t.degrading++
	}
}

// forgetKnown drops the verdict on name; t.mu must be held.
func (t *Tracker) forgetKnown(name string) {
	if was, ok := t.known[name]; ok && was.Degrading {
		t.degrading--
	}
	delete(t.known, name)
}

// NewTracker returns a Tracker wired by c.
func NewTracker(c TrackerConfig) *Tracker {
	t := &Tracker{cfg: c.Detector.withDefaults(), bus: c.Bus, log: c.Logger,
		detectors: map[string]*Detector{}, known: map[string]sb.Degradation{}}
	if t.bus == nil {
		t.bus = sb.NopBus{}
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	return t
}

// ObserveProbe folds one recorded probe into its provider's detector; wire
// it as (part of) health.Config.OnProbe. A provider that was not probed (it
// is disabled) is forgotten: it takes no streams anyway, and its detector
// starts afresh when it is enabled again.
func (t *Tracker) ObserveProbe(r health.Result) {
	if !r.Probed {
		t.Forget(r.Name)
		return
	}
	t.mu.Lock()
	d := t.detectors[r.Name]
	if d == nil {
		d = New(t.cfg)
		t.detectors[r.Name] = d
	}
	changed := d.Observe(Sample{At: r.Probe.At, OK: r.Probe.OK, LatencyMs: float64(r.Probe.Latency.Microseconds()) / 1000})
	st := d.State()
	v := verdict(r.Name, st, r.Probe.At)
	prev, seen := t.known[r.Name]
	switch {
	case changed:
		t.setKnown(r.Name, v)
	case st.Degrading: // fresher evidence; the verdict dates from the raise
		v.At = prev.At
		t.setKnown(r.Name, v)
	case !seen:
		t.setKnown(r.Name, v)
	}
	// Otherwise the last verdict stands: it may be the leader's, from its
	// event, while this replica's detector saw only a few manual checks.
	t.mu.Unlock()
	if changed {
		t.publish(v)
	}
}

// verdict is st, as of at, as the domain's Degradation of provider name.
func verdict(name string, st State, at time.Time) sb.Degradation {
	v := sb.Degradation{Provider: name, Degrading: st.Degrading, At: at}
	if st.Degrading {
		since := st.Since
		v.Since = &since
		for _, e := range st.Evidence {
			v.Evidence = append(v.Evidence, sb.DegradationEvidence{Signal: string(e.Signal), Baseline: round3(e.Baseline),
				Current: round3(e.Current), Distance: round3(e.Distance), Since: e.Since, Summary: e.String()})
		}
	}
	return v
}

func (t *Tracker) publish(v sb.Degradation) {
	typ := sb.EventProviderRecovered
	if v.Degrading {
		typ = sb.EventProviderDegrading
		t.log.Info("provider degrading", "provider", v.Provider, "evidence", Summary(v))
	} else {
		t.log.Info("provider recovered", "provider", v.Provider)
	}
	t.bus.Publish(sb.Event{Type: typ, At: v.At, Audience: sb.RoleClient, Data: v})
}

// Forget drops what the Tracker knows of a provider (disabled or deleted),
// publishing provider.recovered if it was degrading.
func (t *Tracker) Forget(name string) {
	t.mu.Lock()
	was := t.known[name]
	delete(t.detectors, name)
	t.forgetKnown(name)
	t.mu.Unlock()
	if was.Degrading {
		t.publish(sb.Degradation{Provider: name, At: was.At})
	}
}

// Subscriber delivers the events of the server (internal/events.Hub), its
// own and, with replicas, the others'.
type Subscriber interface {
	Subscribe(ctx context.Context, filter func(sb.Event) bool) <-chan sb.Event
}

// Run forgets deleted providers (provider.deleted), so that their verdict
// and gauge do not outlive them, until ctx ends. A subscription the hub
// drops for falling behind is taken again.
func (t *Tracker) Run(ctx context.Context, events Subscriber) error {
	deleted := func(e sb.Event) bool { return e.Type == sb.EventProviderDeleted }
	for ctx.Err() == nil {
		for e := range events.Subscribe(ctx, deleted) {
			var d struct {
				Name string `json:"name"`
			}
			if b, err := json.Marshal(e.Data); err == nil && json.Unmarshal(b, &d) == nil && d.Name != "" {
				t.mu.Lock()
				delete(t.detectors, d.Name)
				t.forgetKnown(d.Name)
				t.mu.Unlock()
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second): // dropped: listen again
		}
	}
	return nil
}

// Apply takes the verdict of another replica's event (provider.degrading or
// provider.recovered) as its own view; other events are ignored. The local
// detector, if any, keeps its own statistics.
func (t *Tracker) Apply(e sb.Event) {
	if e.Type != sb.EventProviderDegrading && e.Type != sb.EventProviderRecovered {
		return
	}
	var v sb.Degradation
	switch d := e.Data.(type) {
	case sb.Degradation:
		v = d
	default:
		b, err := json.Marshal(d)
		if err != nil || json.Unmarshal(b, &v) != nil || v.Provider == "" {
			return
		}
	}
	v.Degrading = e.Type == sb.EventProviderDegrading
	t.mu.Lock()
	t.setKnown(v.Provider, v)
	t.mu.Unlock()
}

// Get returns the verdict on provider name (not degrading when unknown).
func (t *Tracker) Get(name string) sb.Degradation {
	t.mu.Lock()
	defer t.mu.Unlock()
	if v, ok := t.known[name]; ok {
		return v
	}
	return sb.Degradation{Provider: name}
}

// Degrading returns the providers flagged as degrading now, by name.
func (t *Tracker) Degrading() map[string]sb.Degradation {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.degrading == 0 {
		return nil // asked on every start and heartbeat
	}
	var out map[string]sb.Degradation
	for n, v := range t.known {
		if v.Degrading {
			if out == nil {
				out = map[string]sb.Degradation{}
			}
			out[n] = v
		}
	}
	return out
}

// snapshot returns every verdict.
func (t *Tracker) snapshot() map[string]sb.Degradation {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.known)
}

// Summary is the evidence of v in one line, "" when it is not degrading.
func Summary(v sb.Degradation) string {
	if !v.Degrading {
		return ""
	}
	s := ""
	for i, e := range v.Evidence {
		if i > 0 {
			s += "; "
		}
		s += e.Summary
	}
	if s == "" {
		s = "degrading"
	}
	return s
}

var degradingDesc = prometheus.NewDesc("switchboard_provider_degrading",
	"1 while the degradation detector flags the provider as degrading, else 0; for the providers probed or reported since the start.",
	[]string{"provider"}, nil)

// Describe implements prometheus.Collector.
func (t *Tracker) Describe(ch chan<- *prometheus.Desc) { ch <- degradingDesc }

// Collect implements prometheus.Collector: switchboard_provider_degrading.
func (t *Tracker) Collect(ch chan<- prometheus.Metric) {
	for n, v := range t.snapshot() {
		x := 0.0
		if v.Degrading {
			x = 1
		}
		ch <- prometheus.MustNewConstMetric(degradingDesc, prometheus.GaugeValue, x, n)
	}
}

func round3(x float64) float64 { return math.Round(x*1000) / 1000 }
