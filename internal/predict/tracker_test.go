package predict

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/events"
	"github.com/switchboardhq/switchboard/internal/health"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

type recordingBus struct {
	mu     sync.Mutex
	events []sb.Event
}

func (b *recordingBus) Publish(e sb.Event) {
	b.mu.Lock()
	b.events = append(b.events, e)
	b.mu.Unlock()
}

func (b *recordingBus) types() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, e := range b.events {
		out = append(out, e.Type+":"+e.Data.(sb.Degradation).Provider)
	}
	return out
}

func probe(name string, i int, ok bool) health.Result {
	return health.Result{Name: name, Probed: true, Probe: sb.ProbeResult{OK: ok, Latency: 80 * time.Millisecond, At: t0.Add(time.Duration(i) * step)}}
}

func TestTracker(t *testing.T) {
	bus := &recordingBus{}
	tr := NewTracker(TrackerConfig{Bus: bus})
	reg := prometheus.NewRegistry()
	reg.MustRegister(tr)
	// Failures scattered among successes: F S F S F raises errors before
	// the rules' three in a row.
	i := 0
	for ; i < 100; i++ {
		tr.ObserveProbe(probe("agora", i, true))
		tr.ObserveProbe(probe("zego", i, true))
	}
	for _, ok := range []bool{false, true, false, true, false} {
		tr.ObserveProbe(probe("agora", i, ok))
		tr.ObserveProbe(probe("zego", i, true))
		i++
	}
	if got := strings.Join(bus.types(), ","); got != "provider.degrading:agora" {
		t.Fatalf("events %s, want provider.degrading:agora", got)
	}
	v := tr.Get("agora")
	if !v.Degrading || v.Since == nil || len(v.Evidence) == 0 || v.Evidence[0].Signal != "errors" || !strings.HasPrefix(v.Evidence[0].Summary, "errors ") {
		t.Fatalf("agora = %+v, want degrading with errors evidence", v)
	}
	if d := tr.Degrading(); len(d) != 1 || !d["agora"].Degrading {
		t.Fatalf("Degrading() = %v", d)
	}
	if got := gauges(t, reg); got != "agora=1 zego=0" {
		t.Errorf("switchboard_provider_degrading: %s, want agora=1 zego=0", got)
	}
	// Healthy again: recovered after the hold and a run of successes.
	for n := 0; n < 100 && tr.Get("agora").Degrading; n++ {
		tr.ObserveProbe(probe("agora", i, true))
		i++
	}
	if got := strings.Join(bus.types(), ","); got != "provider.degrading:agora,provider.recovered:agora" {
		t.Fatalf("events %s, want degrading then recovered", got)
	}
	if d := tr.Degrading(); d != nil {
		t.Fatalf("Degrading() after recovery = %v, want none", d)
	}

	// Another replica's verdict, as its event arrives (JSON data).
	other := NewTracker(TrackerConfig{})
	raw, _ := json.Marshal(bus.events[0].Data)
	other.Apply(sb.Event{Type: sb.EventProviderDegrading, Data: json.RawMessage(raw)})
	if !other.Get("agora").Degrading || len(other.Get("agora").Evidence) == 0 {
		t.Fatalf("applied %+v, want degrading with evidence", other.Get("agora"))
	}
	if d := other.Degrading(); len(d) != 1 || !d["agora"].Degrading {
		t.Fatalf("Degrading() after an applied verdict = %v", d)
	}
	// A few local successes do not overrule the leader's verdict.
	other.ObserveProbe(probe("agora", i, true))
	if !other.Get("agora").Degrading {
		t.Fatal("a local success overruled the applied verdict")
	}
	other.Apply(sb.Event{Type: sb.EventProviderRecovered, Data: sb.Degradation{Provider: "agora"}})
	if other.Get("agora").Degrading {
		t.Fatal("recovered event not applied")
	}
	if d := other.Degrading(); d != nil {
		t.Fatalf("Degrading() after an applied recovery = %v, want none", d)
	}
	// Degrading again, then forgotten (disabled or deleted): none left.
	other.Apply(sb.Event{Type: sb.EventProviderDegrading, Data: json.RawMessage(raw)})
	other.Forget("agora")
	if d := other.Degrading(); d != nil {
		t.Fatalf("Degrading() after Forget = %v, want none", d)
	}

	// Disabling forgets, and says so if it was degrading.
	bus.events = nil
	for _, ok := range []bool{false, true, false, true, false} {
		tr.ObserveProbe(probe("zego", i, ok))
		i++
	}
	tr.ObserveProbe(health.Result{Name: "zego", Probed: false})
	if got := strings.Join(bus.types(), ","); got != "provider.degrading:zego,provider.recovered:zego" {
		t.Fatalf("events %s, want zego degrading then recovered on disable", got)
	}
}

// gauges reads switchboard_provider_degrading as "provider=value ...", sorted.
func gauges(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != "switchboard_provider_degrading" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out = append(out, fmt.Sprintf("%s=%g", m.GetLabel()[0].GetValue(), m.GetGauge().GetValue()))
		}
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// Run forgets a deleted provider, and returns when its context ends.
func TestTrackerForgetsDeleted(t *testing.T) {
	testutil.LeakCheck(t)
	hub := events.New(events.Options{})
	defer hub.Close()
	tr := NewTracker(TrackerConfig{})
	for i, ok := range []bool{true, false, true, false, true, false} {
		tr.ObserveProbe(probe("gone", i, ok))
	}
	if !tr.Get("gone").Degrading {
		t.Fatal("not degrading")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx, hub) }()
	testutil.Eventually(t, "the provider forgotten", func() bool {
		hub.Publish(sb.Event{Type: sb.EventProviderDeleted, Data: map[string]any{"name": "gone"}})
		return len(tr.Degrading()) == 0 && len(tr.snapshot()) == 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
