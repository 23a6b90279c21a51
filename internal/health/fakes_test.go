package health

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

// fakeStore is an in-memory Registry and HealthRecorder.
type fakeStore struct {
	mu          sync.Mutex
	providers   map[string]switchboard.Provider
	health      map[string]switchboard.Health
	records     int // RecordCheck calls that stored something
	transitions []switchboard.Transition
	updates     int    // UpdateHealth calls, RecordCheck's included
	holdUpdate  func() // when set, called by UpdateHealth before it writes
}

func newFakeStore(ps ...switchboard.Provider) *fakeStore {
	s := &fakeStore{providers: make(map[string]switchboard.Provider), health: make(map[string]switchboard.Health)}
	for _, p := range ps {
		s.put(p)
	}
	return s
}

func (s *fakeStore) put(p switchboard.Provider) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.providers[p.Name] = p
}

func (s *fakeStore) update(name string, fn func(*switchboard.Provider)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.providers[name]
	fn(&p)
	s.providers[name] = p
}

func (s *fakeStore) ListProviders(ctx context.Context) ([]switchboard.ProviderRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := make([]switchboard.Provider, 0, len(s.providers))
	for _, p := range s.providers {
		ps = append(ps, p)
	}
	switchboard.SortProviders(ps)
	recs := make([]switchboard.ProviderRecord, len(ps))
	for i, p := range ps {
		recs[i] = switchboard.ProviderRecord{Provider: p, Health: s.health[p.Name]}
	}
	return recs, nil
}

func (s *fakeStore) GetProvider(ctx context.Context, name string) (switchboard.ProviderRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.providers[name]
	if !ok {
		return switchboard.ProviderRecord{}, switchboard.Errorf(switchboard.ENotFound, "provider %s not found", name)
	}
	return switchboard.ProviderRecord{Provider: p, Health: s.health[name]}, nil
}

func (s *fakeStore) RecordCheck(ctx context.Context, name string, r switchboard.ProbeResult, fold func(switchboard.Health) switchboard.Health) (before, after switchboard.Health, err error) {
	before, after, err = s.UpdateHealth(ctx, name, r.At, fold)
	if err == nil {
		s.mu.Lock()
		s.records++
		s.mu.Unlock()
	}
	return before, after, err
}

func (s *fakeStore) UpdateHealth(ctx context.Context, name string, at time.Time, fold func(switchboard.Health) switchboard.Health) (before, after switchboard.Health, err error) {
	if err := ctx.Err(); err != nil {
		return before, after, err
	}
	s.mu.Lock()
	hold := s.holdUpdate
	s.updates++
	s.mu.Unlock()
	if hold != nil {
		hold()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.providers[name]; !ok {
		return before, after, switchboard.Errorf(switchboard.ENotFound, "provider %s not found", name)
	}
	before = s.health[name]
	after = fold(before)
	s.health[name] = after
	if orUnknown(before.Status) != orUnknown(after.Status) { // a new provider is UNKNOWN, as in the real store
		s.transitions = append(s.transitions, switchboard.Transition{Provider: name, From: before.Status, To: after.Status, Reason: after.StatusReason, At: at})
	}
	return before, after, nil
}

func (s *fakeStore) recordCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records
}

// fakeProber records every probe and answers with result, after waiting for
// hold (if set) or delay. A probe whose context ends first answers like the
// real adapters do: a failure at stage timeout.
type fakeProber struct {
	delay  time.Duration
	hold   func(ctx context.Context, name string) // blocks until the probe may answer
	result func(name string, n int) switchboard.ProbeResult

	mu          sync.Mutex
	starts      map[string][]time.Time
	inFlight    int
	maxInFlight int
	cancelled   int // probes that saw their context end
	started     chan string
}

func newFakeProber() *fakeProber {
	return &fakeProber{starts: make(map[string][]time.Time), started: make(chan string, 1024)}
}

func (f *fakeProber) Probe(ctx context.Context, p switchboard.Provider) switchboard.ProbeResult {
	begin := time.Now()
	f.mu.Lock()
	f.starts[p.Name] = append(f.starts[p.Name], begin)
	n := len(f.starts[p.Name])
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	select {
	case f.started <- p.Name:
	default:
	}

	if f.hold != nil {
		f.hold(ctx, p.Name)
	}
	if f.delay > 0 {
		t := time.NewTimer(f.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	if ctx.Err() != nil {
		f.mu.Lock()
		f.cancelled++
		f.mu.Unlock()
		return switchboard.ProbeResult{Stage: switchboard.StageTimeout, Message: "no answer before the deadline", Latency: time.Since(begin), At: begin}
	}
	if f.result != nil {
		r := f.result(p.Name, n)
		if r.At.IsZero() {
			r.At = begin
		}
		return r
	}
	return switchboard.ProbeResult{OK: true, Latency: time.Since(begin), At: begin}
}

func (f *fakeProber) count(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.starts[name])
}

func (f *fakeProber) total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, s := range f.starts {
		n += len(s)
	}
	return n
}

// changes returns the status changes published on b.
func changes(b *testutil.Bus) []StatusChange {
	var out []StatusChange
	for _, e := range b.Events() {
		out = append(out, e.Data.(StatusChange))
	}
	return out
}

// holdUntil returns a fakeProber.hold that lets a probe answer once release
// is closed, or its context ends.
func holdUntil(release <-chan struct{}) func(ctx context.Context, name string) {
	return func(ctx context.Context, _ string) {
		select {
		case <-release:
		case <-ctx.Done():
		}
	}
}

func testProvider(name string) switchboard.Provider {
	p := switchboard.Provider{Name: name, Kind: switchboard.KindHTTP, Enabled: true,
		Config: switchboard.ProviderConfig{URL: "http://127.0.0.1:1/health"}}
	p.Normalize()
	return p
}

func newTestChecker(t *testing.T, store *fakeStore, prober *fakeProber, bus *testutil.Bus, mutate ...func(*Config)) *Checker {
	t.Helper()
	cfg := Config{
		Registry: store,
		Health:   store,
		Probers:  map[switchboard.Kind]switchboard.Prober{switchboard.KindHTTP: prober},
		Clock:    testutil.NewClock(t0),
	}
	if bus != nil {
		cfg.Bus = bus
	}
	for _, m := range mutate {
		m(&cfg)
	}
	c, err := NewChecker(cfg)
	if err != nil {
		t.Fatalf("NewChecker: %v", err)
	}
	return c
}

// waiters reports how many callers wait for the probe of name in progress.
func (c *Checker) waiters(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.flights[name]; f != nil {
		return f.waiters
	}
	return 0
}

func names(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("p%03d", i)
	}
	return out
}

func summarize(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	q := func(p float64) time.Duration { return s[int(p*float64(len(s)-1))] }
	return strings.Join([]string{
		fmt.Sprintf("n=%d", len(s)), fmt.Sprintf("min=%v", s[0].Round(time.Millisecond)),
		fmt.Sprintf("p50=%v", q(0.5).Round(time.Millisecond)), fmt.Sprintf("p99=%v", q(0.99).Round(time.Millisecond)),
		fmt.Sprintf("max=%v", s[len(s)-1].Round(time.Millisecond)),
		fmt.Sprintf("mean=%v", (sum / time.Duration(len(s))).Round(time.Millisecond)),
	}, " ")
}
