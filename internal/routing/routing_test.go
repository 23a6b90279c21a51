package routing

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

func cand(name string, prio int, st sb.Status, mods ...func(*Candidate)) Candidate {
	c := Candidate{Provider: &sb.Provider{Name: name, Priority: prio, Enabled: true, Weight: 1}, Health: &sb.Health{Status: st}}
	for _, m := range mods {
		m(&c)
	}
	return c
}

func zero() float64 { return 0 }

func TestSelect(t *testing.T) {
	ago := func(d time.Duration) *time.Time { t := time.Unix(1_000_000, 0).Add(-d); return &t }
	tests := []struct {
		name     string
		cands    []Candidate
		req      Request
		want     []string
		leastBad bool
	}{
		{"priority order", []Candidate{cand("b", 2, sb.StatusHealthy), cand("a", 1, sb.StatusExcellent), cand("c", 3, sb.StatusWarning)}, Request{}, []string{"a", "b", "c"}, false},
		{"unknown is usable", []Candidate{cand("a", 1, sb.StatusUnknown)}, Request{}, []string{"a"}, false},
		{"disabled skipped", []Candidate{cand("a", 1, sb.StatusHealthy, func(c *Candidate) { c.Provider.Enabled = false }), cand("b", 2, sb.StatusHealthy)}, Request{}, []string{"b"}, false},
		{"critical skipped", []Candidate{cand("a", 1, sb.StatusCritical), cand("b", 2, sb.StatusWarning)}, Request{}, []string{"b"}, false},
		{"capacity", []Candidate{cand("a", 1, sb.StatusHealthy, func(c *Candidate) { c.Provider.MaxActiveStreams = 2; c.Active = 2 }), cand("b", 2, sb.StatusHealthy)}, Request{}, []string{"b"}, false},
		{"under capacity", []Candidate{cand("a", 1, sb.StatusHealthy, func(c *Candidate) { c.Provider.MaxActiveStreams = 2; c.Active = 1 })}, Request{}, []string{"a"}, false},
		{"region", []Candidate{cand("a", 1, sb.StatusHealthy, func(c *Candidate) { c.Provider.Regions = []string{"eu"} }), cand("b", 2, sb.StatusHealthy)}, Request{Region: "us"}, []string{"b"}, false},
		{"region match and everywhere", []Candidate{cand("a", 1, sb.StatusHealthy, func(c *Candidate) { c.Provider.Regions = []string{"us"} }), cand("b", 2, sb.StatusHealthy)}, Request{Region: "us"}, []string{"a", "b"}, false},
		{"exclude", []Candidate{cand("a", 1, sb.StatusHealthy), cand("b", 2, sb.StatusHealthy)}, Request{Exclude: []string{"a"}}, []string{"b"}, false},
		{"ties by name", []Candidate{cand("z", 1, sb.StatusHealthy), cand("m", 1, sb.StatusHealthy)}, Request{}, []string{"m", "z"}, false},
		{"all critical: least bad", []Candidate{
			cand("a", 1, sb.StatusCritical, func(c *Candidate) { c.Health.LastSuccess = ago(time.Hour) }),
			cand("b", 2, sb.StatusCritical, func(c *Candidate) { c.Health.LastSuccess = ago(time.Minute) }),
			cand("c", 3, sb.StatusCritical),
		}, Request{}, []string{"b", "a", "c"}, true},
		{"least bad respects exclusions", []Candidate{cand("a", 1, sb.StatusCritical), cand("b", 2, sb.StatusDisabled)}, Request{Exclude: []string{"a"}}, nil, false},
		{"nothing", nil, Request{}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Select(tt.cands, tt.req, zero)
			if !slices.Equal(d.Order, tt.want) || d.LeastBad != tt.leastBad {
				t.Fatalf("got %v leastBad=%v, want %v leastBad=%v (%s, skipped %v)", d.Order, d.LeastBad, tt.want, tt.leastBad, d.Reason, d.Skipped)
			}
			if len(d.Statuses) != len(tt.cands) || d.Reason == "" {
				t.Fatalf("statuses %v reason %q", d.Statuses, d.Reason)
			}
		})
	}
}

// TestWeights checks that among equal priorities the share follows weight.
func TestWeights(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	cands := []Candidate{
		cand("heavy", 1, sb.StatusHealthy, func(c *Candidate) { c.Provider.Weight = 3 }),
		cand("light", 1, sb.StatusHealthy, func(c *Candidate) { c.Provider.Weight = 1 }),
		cand("backup", 2, sb.StatusHealthy, func(c *Candidate) { c.Provider.Weight = 100 }),
	}
	first := map[string]int{}
	const n = 20000
	for range n {
		d := Select(slices.Clone(cands), Request{}, r.Float64)
		first[d.Order[0]]++
		if d.Order[2] != "backup" {
			t.Fatalf("a lower priority came before a higher one: %v", d.Order)
		}
	}
	share := float64(first["heavy"]) / n
	if share < 0.72 || share > 0.78 {
		t.Fatalf("heavy first in %.3f of draws, want about 0.75", share)
	}
}

// TestUnverified: a provider that never passed a check (UNKNOWN) never takes a
// stream while a usable one remains, whatever its priority; when every
// eligible provider is UNKNOWN the policy falls back to them by priority and
// marks the decision.
func TestUnverified(t *testing.T) {
	d := Select([]Candidate{cand("fresh", 1, sb.StatusUnknown), cand("proven", 2, sb.StatusExcellent)}, Request{}, zero)
	if !slices.Equal(d.Order, []string{"proven"}) || d.Unverified || d.LeastBad {
		t.Fatalf("UNKNOWN prio 1 vs EXCELLENT prio 2: %v unverified=%v (%s)", d.Order, d.Unverified, d.Reason)
	}
	if d.Skipped["fresh"] == "" {
		t.Fatalf("the UNKNOWN provider has no skip reason: %v", d.Skipped)
	}
	// A WARNING provider is usable and still beats an UNKNOWN one.
	d = Select([]Candidate{cand("fresh", 1, sb.StatusUnknown), cand("shaky", 3, sb.StatusWarning)}, Request{}, zero)
	if !slices.Equal(d.Order, []string{"shaky"}) {
		t.Fatalf("UNKNOWN vs WARNING: %v", d.Order)
	}

	d = Select([]Candidate{cand("b", 2, sb.StatusUnknown), cand("a", 1, sb.StatusUnknown), cand("off", 0, sb.StatusDisabled)}, Request{}, zero)
	if !slices.Equal(d.Order, []string{"a", "b"}) || !d.Unverified || d.LeastBad {
		t.Fatalf("all UNKNOWN: %v unverified=%v leastBad=%v", d.Order, d.Unverified, d.LeastBad)
	}
	if !strings.HasPrefix(d.Reason, "unverified:") || d.Skipped["a"] != "" || d.Skipped["off"] != "disabled" {
		t.Fatalf("all UNKNOWN: reason %q skipped %v", d.Reason, d.Skipped)
	}

	// UNKNOWN beats CRITICAL: it may just not be checked yet.
	d = Select([]Candidate{cand("down", 1, sb.StatusCritical), cand("fresh", 2, sb.StatusUnknown)}, Request{}, zero)
	if !slices.Equal(d.Order, []string{"fresh"}) || !d.Unverified || d.LeastBad {
		t.Fatalf("CRITICAL vs UNKNOWN: %v unverified=%v leastBad=%v", d.Order, d.Unverified, d.LeastBad)
	}
	// Exclusions and capacity apply to unverified providers too.
	d = Select([]Candidate{cand("a", 1, sb.StatusUnknown)}, Request{Exclude: []string{"a"}}, zero)
	if len(d.Order) != 0 || d.Unverified {
		t.Fatalf("excluded UNKNOWN chosen: %v", d.Order)
	}
}

func TestSelectMaintenance(t *testing.T) {
	until := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	inMaint := func(c *Candidate) { c.Maintenance = &Maintenance{Until: until, Reason: "vendor upgrade"} }
	d := Select([]Candidate{cand("a", 1, sb.StatusExcellent, inMaint), cand("b", 2, sb.StatusHealthy)}, Request{}, zero)
	if !slices.Equal(d.Order, []string{"b"}) {
		t.Fatalf("order %v, want [b]: a provider in maintenance takes no stream", d.Order)
	}
	if want := "maintenance until 2026-05-01T12:00:00Z: vendor upgrade"; d.Skipped["a"] != want {
		t.Errorf("skipped a: %q, want %q", d.Skipped["a"], want)
	}
	if want := "b is the highest-priority usable provider (HEALTHY, priority 2); a is in maintenance until 2026-05-01T12:00:00Z: vendor upgrade"; d.Reason != want {
		t.Errorf("reason %q, want %q", d.Reason, want)
	}

	// Even when every other provider is CRITICAL, the one in maintenance is
	// not the least bad: it is not usable at all.
	d = Select([]Candidate{cand("a", 1, sb.StatusExcellent, inMaint), cand("b", 2, sb.StatusCritical)}, Request{}, zero)
	if !slices.Equal(d.Order, []string{"b"}) || !d.LeastBad || !strings.Contains(d.Reason, "a is in maintenance") {
		t.Errorf("order %v leastBad %v reason %q, want [b], least bad, naming a's maintenance", d.Order, d.LeastBad, d.Reason)
	}
	d = Select([]Candidate{cand("a", 1, sb.StatusExcellent, inMaint)}, Request{}, zero)
	if len(d.Order) != 0 {
		t.Errorf("order %v, want none: the only provider is in maintenance", d.Order)
	}
}

func TestSelectDegrading(t *testing.T) {
	deg := func(c *Candidate) { c.Degrading = "latency 412ms vs 80ms (6.2σ)" }
	tests := []struct {
		name   string
		cands  []Candidate
		req    Request
		want   []string
		storm  bool
		reason string
	}{
		{"degrading goes behind", []Candidate{cand("a", 1, sb.StatusExcellent, deg), cand("b", 2, sb.StatusHealthy), cand("c", 3, sb.StatusHealthy)},
			Request{}, []string{"b", "c", "a"}, false, "a is degrading (latency 412ms vs 80ms (6.2σ)): only a fallback"},
		{"the only usable one is degrading: a storm of one", []Candidate{cand("a", 1, sb.StatusExcellent, deg), cand("b", 2, sb.StatusCritical), cand("c", 3, sb.StatusHealthy, func(c *Candidate) { c.Provider.Enabled = false })},
			Request{}, []string{"a"}, true, "storm control"},
		{"the other is excluded", []Candidate{cand("a", 1, sb.StatusExcellent, deg), cand("b", 2, sb.StatusHealthy)},
			Request{Exclude: []string{"b"}}, []string{"a"}, false, "no usable provider is not"},
		{"the others do not serve the region", []Candidate{cand("a", 1, sb.StatusExcellent, deg), cand("b", 2, sb.StatusHealthy, func(c *Candidate) { c.Provider.Regions = []string{"eu"} }), cand("c", 3, sb.StatusHealthy)},
			Request{Region: "us"}, []string{"c", "a"}, false, "only a fallback"},
		{"storm: two of three degrading", []Candidate{cand("a", 1, sb.StatusExcellent, deg), cand("b", 2, sb.StatusHealthy, deg), cand("c", 3, sb.StatusHealthy)},
			Request{}, []string{"a", "b", "c"}, true, "storm control"},
		{"half is no storm", []Candidate{cand("a", 1, sb.StatusExcellent, deg), cand("b", 2, sb.StatusHealthy, deg), cand("c", 3, sb.StatusHealthy), cand("d", 4, sb.StatusWarning)},
			Request{}, []string{"c", "d", "a", "b"}, false, "only a fallback"},
		{"storm counts usable providers only", []Candidate{cand("a", 1, sb.StatusExcellent, deg), cand("b", 2, sb.StatusHealthy), cand("c", 3, sb.StatusCritical), cand("d", 4, sb.StatusUnknown)},
			Request{}, []string{"b", "a"}, false, "only a fallback"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Select(tt.cands, tt.req, zero)
			if !slices.Equal(d.Order, tt.want) || d.Storm != tt.storm || !strings.Contains(d.Reason, tt.reason) {
				t.Fatalf("got %v storm=%v (%s), want %v storm=%v (…%s…)", d.Order, d.Storm, d.Reason, tt.want, tt.storm, tt.reason)
			}
		})
	}
}

func TestSelectRegional(t *testing.T) {
	in := func(statuses map[string]sb.Status) func(*Candidate) {
		return func(c *Candidate) { c.Regional = statuses }
	}
	tests := []struct {
		name       string
		cands      []Candidate
		req        Request
		want       []string
		leastBad   bool
		skippedWhy string // the reason of the first candidate's skip, if any
	}{
		{"critical in the stream's region: the next one",
			[]Candidate{cand("a", 1, sb.StatusHealthy, in(map[string]sb.Status{"ap-east": sb.StatusCritical, "eu-west": sb.StatusHealthy})), cand("b", 2, sb.StatusHealthy)},
			Request{Region: "ap-east"}, []string{"b"}, false, "CRITICAL in region ap-east"},
		{"fine in the stream's region",
			[]Candidate{cand("a", 1, sb.StatusHealthy, in(map[string]sb.Status{"ap-east": sb.StatusCritical, "eu-west": sb.StatusWarning})), cand("b", 2, sb.StatusHealthy)},
			Request{Region: "eu-west"}, []string{"a", "b"}, false, ""},
		{"stale (UNKNOWN) in the region",
			[]Candidate{cand("a", 1, sb.StatusExcellent, in(map[string]sb.Status{"eu-west": sb.StatusUnknown})), cand("b", 2, sb.StatusWarning)},
			Request{Region: "eu-west"}, []string{"b"}, false, "UNKNOWN in region eu-west"},
		{"disabled in the region",
			[]Candidate{cand("a", 1, sb.StatusHealthy, in(map[string]sb.Status{"eu-west": sb.StatusDisabled})), cand("b", 2, sb.StatusHealthy)},
			Request{Region: "eu-west"}, []string{"b"}, false, "DISABLED in region eu-west"},
		{"no regional data for the region: the provider's own status decides",
			[]Candidate{cand("a", 1, sb.StatusHealthy, in(map[string]sb.Status{"ap-east": sb.StatusCritical})), cand("b", 2, sb.StatusHealthy)},
			Request{Region: "us-east"}, []string{"a", "b"}, false, ""},
		{"stream without a region",
			[]Candidate{cand("a", 1, sb.StatusHealthy, in(map[string]sb.Status{"ap-east": sb.StatusCritical})), cand("b", 2, sb.StatusHealthy)},
			Request{}, []string{"a", "b"}, false, ""},
		{"every provider failing in the region: least bad",
			[]Candidate{
				cand("a", 1, sb.StatusHealthy, in(map[string]sb.Status{"ap-east": sb.StatusCritical})),
				cand("b", 2, sb.StatusHealthy, in(map[string]sb.Status{"ap-east": sb.StatusUnknown})),
			},
			Request{Region: "ap-east"}, []string{"a", "b"}, true, ""},
		{"globally critical stays critical",
			[]Candidate{cand("a", 1, sb.StatusCritical, in(map[string]sb.Status{"eu-west": sb.StatusExcellent})), cand("b", 2, sb.StatusHealthy)},
			Request{Region: "eu-west"}, []string{"b"}, false, "CRITICAL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Select(tt.cands, tt.req, zero)
			if !slices.Equal(d.Order, tt.want) || d.LeastBad != tt.leastBad {
				t.Fatalf("got %v leastBad=%v, want %v leastBad=%v (%s, skipped %v)", d.Order, d.LeastBad, tt.want, tt.leastBad, d.Reason, d.Skipped)
			}
			if got := d.Skipped[tt.cands[0].Provider.Name]; got != tt.skippedWhy {
				t.Errorf("skipped %s: %q, want %q", tt.cands[0].Provider.Name, got, tt.skippedWhy)
			}
		})
	}
}

// TestSelectOrderOnly checks that OrderOnly changes nothing of the order:
// on random candidates (every status, maintenance, capacity, regions,
// regional statuses, degrading flags, weights and ties) and requests, the
// decision with OrderOnly has the same Order, LeastBad, Unverified and Storm,
// from the same random draws, and no statuses, skips or reason.
func TestSelectOrderOnly(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	statuses := []sb.Status{sb.StatusExcellent, sb.StatusHealthy, sb.StatusWarning, sb.StatusCritical, sb.StatusDisabled, sb.StatusUnknown}
	names := []string{"a", "b", "c", "d", "e", "f"}
	regions := []string{"", "eu", "us"}
	ordered := 0
	for range 20000 {
		var cands []Candidate
		for _, n := range names[:rnd.IntN(len(names)+1)] {
			c := cand(n, rnd.IntN(3), statuses[rnd.IntN(len(statuses))])
			c.Provider.Enabled = rnd.IntN(8) > 0
			c.Provider.Weight = rnd.IntN(4)
			if rnd.IntN(6) == 0 {
				c.Maintenance = &Maintenance{Until: time.Unix(2_000_000, 0), Reason: "upgrade"}
			}
			if rnd.IntN(4) == 0 {
				c.Provider.MaxActiveStreams, c.Active = 10, int64(rnd.IntN(20))
			}
			if rnd.IntN(3) == 0 {
				c.Provider.Regions = []string{regions[1+rnd.IntN(2)]}
			}
			if rnd.IntN(3) == 0 {
				c.Regional = map[string]sb.Status{regions[1+rnd.IntN(2)]: statuses[rnd.IntN(len(statuses))]}
			}
			if rnd.IntN(4) == 0 {
				c.Degrading = "latency rising"
			}
			if rnd.IntN(2) == 0 {
				ts := time.Unix(int64(rnd.IntN(1000)), 0)
				c.Health.LastSuccess = &ts
			}
			cands = append(cands, c)
		}
		req := Request{Region: regions[rnd.IntN(len(regions))]}
		for _, n := range names {
			if rnd.IntN(5) == 0 {
				req.Exclude = append(req.Exclude, n)
			}
		}
		seed := rnd.Uint64()
		draws := func() func() float64 { r := rand.New(rand.NewPCG(seed, 0)); return r.Float64 }
		want := Select(cands, req, draws())
		brief := req
		brief.OrderOnly = true
		got := Select(cands, brief, draws())
		if !slices.Equal(got.Order, want.Order) || got.LeastBad != want.LeastBad || got.Unverified != want.Unverified || got.Storm != want.Storm {
			t.Fatalf("OrderOnly: %v leastBad %v unverified %v storm %v; in full: %v leastBad %v unverified %v storm %v\ncandidates %+v\nrequest %+v",
				got.Order, got.LeastBad, got.Unverified, got.Storm, want.Order, want.LeastBad, want.Unverified, want.Storm, cands, req)
		}
		if got.Statuses != nil || got.Skipped != nil || got.Reason != "" {
			t.Fatalf("OrderOnly made statuses %v, skips %v, reason %q", got.Statuses, got.Skipped, got.Reason)
		}
		if want.Reason == "" || want.Statuses == nil {
			t.Fatalf("in full: no reason or statuses: %+v", want)
		}
		if len(want.Order) > 1 {
			ordered++
		}
	}
	if ordered < 1000 {
		t.Fatalf("only %d of the random cases ordered more than one provider: the test draws too few usable ones", ordered)
	}
}

// TestWeightedTreeDrawsAsTheWalk holds the tree, and the draw by index of
// equal weights, to the walk: the same order from the same draws, for groups
// of every size up to 300, weights from 1 to 1,000 and draws that include 0
// and the largest below 1.
func TestWeightedTreeDrawsAsTheWalk(t *testing.T) {
	src := rand.New(rand.NewPCG(1, 2))
	for n := 1; n <= 300; n += 1 + n/10 {
		for trial := range 20 {
			group := make([]*Candidate, n)
			for i := range group {
				w := 1 + src.IntN(1000)
				if trial%3 == 0 {
					w = 1 + src.IntN(3)
				}
				group[i] = &Candidate{Provider: &sb.Provider{Name: fmt.Sprintf("p%03d", i), Weight: w}}
			}
			draws := make([]float64, n)
			for i := range draws {
				switch src.IntN(8) {
				case 0:
					draws[i] = 0
				case 1:
					draws[i] = math.Nextafter(1, 0)
				default:
					draws[i] = src.Float64()
				}
			}
			feed := func() func() float64 {
				i := 0
				return func() float64 { i++; return draws[i-1] }
			}
			want := weightedWalk(slices.Clone(group), feed(), nil)
			got := weightedTree(slices.Clone(group), feed(), nil)
			if !slices.Equal(got, want) {
				t.Fatalf("n=%d trial %d: tree drew %v, the walk %v", n, trial, got, want)
			}
			if n > equalAtMost {
				continue
			}
			// Every weight the same: the draw by index.
			w := group[0].Provider.Weight
			for i := range group {
				group[i].Provider.Weight = w
			}
			want = weightedWalk(slices.Clone(group), feed(), nil)
			before := slices.Clone(group)
			got = weightedEqual(group, w, feed(), nil)
			if !slices.Equal(got, want) {
				t.Fatalf("n=%d trial %d, weights %d: the draw by index drew %v, the walk %v", n, trial, w, got, want)
			}
			if !slices.Equal(group, before) {
				t.Fatalf("n=%d trial %d: the draw by index reordered its group", n, trial)
			}
		}
	}
}

// TestOrderInPlaceAsSorted holds the draw on candidates already in registry
// order (read in place) to the draw after sorting a copy: the same order from
// the same draws, with groups below and above the tree's threshold, and cs
// left as it was.
func TestOrderInPlaceAsSorted(t *testing.T) {
	src := rand.New(rand.NewPCG(3, 4))
	for trial := range 300 {
		n := 1 + src.IntN(120)
		provs := make([]sb.Provider, n)
		for i := range provs {
			provs[i] = sb.Provider{Name: fmt.Sprintf("p%03d", i), Priority: src.IntN(1 + trial%4), Weight: src.IntN(5)}
		}
		sorted := make([]*Candidate, n)
		for i := range provs {
			sorted[i] = &Candidate{Provider: &provs[i]}
		}
		slices.SortStableFunc(sorted, func(a, b *Candidate) int {
			return byPriority(a, b)
		})
		shuffled := slices.Clone(sorted)
		src.Shuffle(n, func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if slices.Equal(shuffled, sorted) && n > 1 {
			shuffled[0], shuffled[n-1] = shuffled[n-1], shuffled[0]
		}
		draws := make([]float64, n)
		for i := range draws {
			draws[i] = src.Float64()
		}
		feed := func() func() float64 {
			i := 0
			return func() float64 { i++; return draws[i-1] }
		}
		before := slices.Clone(sorted)
		got := order(sorted, feed())
		want := order(shuffled, feed())
		if !slices.Equal(got, want) {
			t.Fatalf("trial %d (n=%d): in place %v, sorted %v", trial, n, got, want)
		}
		if !slices.Equal(sorted, before) {
			t.Fatalf("trial %d: order reordered its candidates", trial)
		}
	}
}

// TestSharedStatuses: statuses the caller made once are the decision's, and
// the decision is the same as with statuses made by Select.
func TestSharedStatuses(t *testing.T) {
	cands := []Candidate{cand("a", 1, sb.StatusCritical), cand("b", 2, sb.StatusHealthy), cand("c", 2, sb.StatusWarning)}
	shared := map[string]sb.Status{"a": sb.StatusCritical, "b": sb.StatusHealthy, "c": sb.StatusWarning}
	zero := func() float64 { return 0 }
	own := Select(cands, Request{}, zero)
	d := Select(cands, Request{Statuses: shared}, zero)
	if reflect.ValueOf(d.Statuses).UnsafePointer() != reflect.ValueOf(shared).UnsafePointer() {
		t.Fatal("the decision made its own statuses")
	}
	if !reflect.DeepEqual(d.Statuses, own.Statuses) || !slices.Equal(d.Order, own.Order) || d.Reason != own.Reason || !reflect.DeepEqual(d.Skipped, own.Skipped) {
		t.Fatalf("with shared statuses %+v, without %+v", d, own)
	}
	if !maps.Equal(shared, map[string]sb.Status{"a": sb.StatusCritical, "b": sb.StatusHealthy, "c": sb.StatusWarning}) {
		t.Fatalf("the shared statuses were written: %v", shared)
	}
}
