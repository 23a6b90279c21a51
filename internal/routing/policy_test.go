package routing

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	sb "github.com/switchboardhq/switchboard"
)

func q(score float64, samples, streams int64) Quality {
	return Quality{Score: &score, Samples: samples, Streams: streams}
}

func priced(tier sb.Quality, p float64) func(*Candidate) {
	return func(c *Candidate) {
		c.Provider.Pricing = sb.Pricing{Currency: "USD", PerThousandMinutes: map[sb.Quality]float64{tier: p}}
	}
}

func latency(ms int64) func(*Candidate) { return func(c *Candidate) { c.Health.LatencyMs = ms } }

func policy(p sb.RoutingPolicy, mods ...func(*sb.EffectiveRouting)) sb.EffectiveRouting {
	e := sb.EffectiveRouting{Policy: p, Weights: sb.DefaultRoutingWeights(), Margin: sb.DefaultRoutingMargin}
	for _, m := range mods {
		m(&e)
	}
	return e
}

func shares(s map[string]float64) func(*sb.EffectiveRouting) {
	return func(e *sb.EffectiveRouting) { e.Shares = s }
}

func TestDecide(t *testing.T) {
	three := func(mods ...func(*Candidate)) []Candidate {
		return []Candidate{
			cand("a", 1, sb.StatusHealthy, mods...),
			cand("b", 2, sb.StatusHealthy, mods...),
			cand("c", 3, sb.StatusHealthy, mods...),
		}
	}
	good := map[string]Quality{"a": q(60, 100, 10), "b": q(90, 100, 10), "c": q(70, 100, 10)}
	tests := []struct {
		name   string
		cands  []Candidate
		req    Request
		in     PolicyInput
		rnd    float64
		want   []string
		policy sb.RoutingPolicy
		reason string // a part of the reason
	}{
		{"priority is the default", three(), Request{}, PolicyInput{}, 0, []string{"a", "b", "c"}, sb.PolicyPriority, "highest-priority"},
		{"priority explicit", three(), Request{}, PolicyInput{Routing: policy(sb.PolicyPriority)}, 0, []string{"a", "b", "c"}, sb.PolicyPriority, ""},

		{"balanced draws by weight: low draw", three(), Request{}, PolicyInput{Routing: policy(sb.PolicyBalanced)}, 0.1, []string{"a", "b", "c"}, sb.PolicyBalanced, "drawn"},
		{"balanced draws by weight: middle draw", three(), Request{}, PolicyInput{Routing: policy(sb.PolicyBalanced)}, 0.5, []string{"b", "a", "c"}, sb.PolicyBalanced, "drawn"},
		{"balanced draws by weight: high draw", three(), Request{}, PolicyInput{Routing: policy(sb.PolicyBalanced)}, 0.9, []string{"c", "a", "b"}, sb.PolicyBalanced, "drawn"},
		{"balanced counts spare capacity", []Candidate{
			cand("a", 1, sb.StatusHealthy, func(c *Candidate) { c.Provider.MaxActiveStreams = 10; c.Active = 9 }),
			cand("b", 2, sb.StatusHealthy, func(c *Candidate) { c.Provider.MaxActiveStreams = 10; c.Active = 0 }),
		}, Request{}, PolicyInput{Routing: policy(sb.PolicyBalanced)}, 0.5, []string{"b", "a"}, sb.PolicyBalanced, ""},
		{"balanced skips a full provider", []Candidate{
			cand("a", 1, sb.StatusHealthy, func(c *Candidate) { c.Provider.MaxActiveStreams = 10; c.Active = 10 }),
			cand("b", 2, sb.StatusHealthy),
		}, Request{}, PolicyInput{Routing: policy(sb.PolicyBalanced)}, 0, []string{"b"}, sb.PolicyBalanced, ""},

		{"optimized takes the best quality", three(), Request{}, PolicyInput{Routing: policy(sb.PolicyOptimized), Quality: good}, 0, []string{"b", "c", "a"}, sb.PolicyOptimized, "best score"},
		{"optimized: too few samples ranks by priority", three(), Request{}, PolicyInput{Routing: policy(sb.PolicyOptimized),
			Quality: map[string]Quality{"a": q(60, 29, 10), "b": q(90, 100, 10), "c": q(70, 100, 10)}}, 0, []string{"a", "b", "c"}, sb.PolicyOptimized, ""},
		{"optimized: too few streams ranks by priority", three(), Request{}, PolicyInput{Routing: policy(sb.PolicyOptimized),
			Quality: map[string]Quality{"a": q(60, 100, 2), "b": q(90, 100, 10), "c": q(70, 100, 10)}}, 0, []string{"a", "b", "c"}, sb.PolicyOptimized, ""},
		{"optimized: no data ranks by priority", three(), Request{}, PolicyInput{Routing: policy(sb.PolicyOptimized)}, 0, []string{"a", "b", "c"}, sb.PolicyOptimized, ""},
		{"optimized: the leader stays within the margin", three(), Request{}, PolicyInput{Routing: policy(sb.PolicyOptimized),
			Quality: map[string]Quality{"a": q(86, 100, 10), "b": q(90, 100, 10), "c": q(70, 100, 10)}, Leader: "a"}, 0, []string{"a", "b", "c"}, sb.PolicyOptimized, "stays first"},
		{"optimized: a challenger beyond the margin wins", three(), Request{}, PolicyInput{Routing: policy(sb.PolicyOptimized),
			Quality: map[string]Quality{"a": q(70, 100, 10), "b": q(90, 100, 10), "c": q(60, 100, 10)}, Leader: "a"}, 0, []string{"b", "a", "c"}, sb.PolicyOptimized, "beats a"},
		{"optimized: a leader that is not usable loses", []Candidate{
			cand("a", 1, sb.StatusCritical), cand("b", 2, sb.StatusHealthy), cand("c", 3, sb.StatusHealthy),
		}, Request{}, PolicyInput{Routing: policy(sb.PolicyOptimized), Quality: good, Leader: "a"}, 0, []string{"b", "c"}, sb.PolicyOptimized, ""},
		{"optimized: latency and health count", []Candidate{
			cand("a", 1, sb.StatusWarning, latency(900)), cand("b", 2, sb.StatusExcellent, latency(20)),
		}, Request{}, PolicyInput{Routing: policy(sb.PolicyOptimized), Quality: map[string]Quality{"a": q(80, 100, 10), "b": q(80, 100, 10)}}, 0, []string{"b", "a"}, sb.PolicyOptimized, ""},
		{"optimized: cost counts", []Candidate{
			cand("a", 1, sb.StatusHealthy, priced(sb.QualityHD, 8)), cand("b", 2, sb.StatusHealthy, priced(sb.QualityHD, 2)),
		}, Request{}, PolicyInput{Routing: policy(sb.PolicyOptimized), Tier: sb.QualityHD, Quality: map[string]Quality{"a": q(80, 100, 10), "b": q(80, 100, 10)}}, 0, []string{"b", "a"}, sb.PolicyOptimized, ""},

		{"commit: none started yet takes the largest share", []Candidate{cand("a", 1, sb.StatusHealthy), cand("b", 2, sb.StatusHealthy)}, Request{},
			PolicyInput{Routing: policy(sb.PolicyCommit, shares(map[string]float64{"a": 0.35, "b": 0.65}))}, 0, []string{"b", "a"}, sb.PolicyCommit, "furthest below"},
		{"commit: furthest below its share", []Candidate{cand("a", 1, sb.StatusHealthy), cand("b", 2, sb.StatusHealthy)}, Request{},
			PolicyInput{Routing: policy(sb.PolicyCommit, shares(map[string]float64{"a": 0.35, "b": 0.65})), Starts: map[string]int64{"a": 30, "b": 70}}, 0, []string{"a", "b"}, sb.PolicyCommit, ""},
		{"commit: an unusable provider's share goes to the others", []Candidate{cand("a", 1, sb.StatusCritical), cand("b", 2, sb.StatusHealthy), cand("c", 3, sb.StatusHealthy)}, Request{},
			PolicyInput{Routing: policy(sb.PolicyCommit, shares(map[string]float64{"a": 0.5, "b": 0.25, "c": 0.25})), Starts: map[string]int64{"a": 0, "b": 10, "c": 5}}, 0, []string{"c", "b"}, sb.PolicyCommit, ""},
		{"commit: no usable provider with a share falls back to priority", []Candidate{cand("a", 1, sb.StatusCritical), cand("b", 2, sb.StatusHealthy)}, Request{},
			PolicyInput{Routing: policy(sb.PolicyCommit, shares(map[string]float64{"a": 1}))}, 0, []string{"b"}, sb.PolicyCommit, "no usable provider has a share"},

		{"cost: cheapest for the tier", []Candidate{
			cand("a", 1, sb.StatusHealthy, priced(sb.QualitySD, 3.99)), cand("b", 2, sb.StatusHealthy, priced(sb.QualitySD, 1.2)), cand("c", 3, sb.StatusHealthy, priced(sb.QualitySD, 2)),
		}, Request{}, PolicyInput{Routing: policy(sb.PolicyCost), Tier: sb.QualitySD}, 0, []string{"b", "c", "a"}, sb.PolicyCost, "cheapest"},
		{"cost: ties by priority, unpriced last", []Candidate{
			cand("a", 1, sb.StatusHealthy), cand("b", 2, sb.StatusHealthy, priced(sb.QualityHD, 2)), cand("c", 3, sb.StatusHealthy, priced(sb.QualityHD, 2)),
		}, Request{}, PolicyInput{Routing: policy(sb.PolicyCost), Tier: sb.QualityHD}, 0, []string{"b", "c", "a"}, sb.PolicyCost, ""},
		{"cost: the cheapest in maintenance is never chosen", []Candidate{
			cand("a", 1, sb.StatusHealthy, priced(sb.QualityHD, 5)), cand("b", 2, sb.StatusHealthy, priced(sb.QualityHD, 1), func(c *Candidate) { c.Maintenance = &Maintenance{Reason: "upgrade"} }),
		}, Request{}, PolicyInput{Routing: policy(sb.PolicyCost), Tier: sb.QualityHD}, 0, []string{"a"}, sb.PolicyCost, ""},

		// Select's exclusions and fallbacks hold under every policy.
		{"disabled, CRITICAL, UNKNOWN and region exclude", []Candidate{
			cand("off", 1, sb.StatusHealthy, priced(sb.QualityHD, 0.1), func(c *Candidate) { c.Provider.Enabled = false }),
			cand("down", 1, sb.StatusCritical, priced(sb.QualityHD, 0.1)),
			cand("new", 1, sb.StatusUnknown, priced(sb.QualityHD, 0.1)),
			cand("far", 1, sb.StatusHealthy, priced(sb.QualityHD, 0.1), func(c *Candidate) { c.Provider.Regions = []string{"ap-south"} }),
			cand("ok", 5, sb.StatusHealthy, priced(sb.QualityHD, 9)),
		}, Request{Region: "eu-west"}, PolicyInput{Routing: policy(sb.PolicyCost), Tier: sb.QualityHD}, 0, []string{"ok"}, sb.PolicyCost, ""},
		{"a degrading provider stays a fallback", []Candidate{
			cand("a", 1, sb.StatusHealthy, priced(sb.QualityHD, 0.1), func(c *Candidate) { c.Degrading = "loss rising" }),
			cand("b", 2, sb.StatusHealthy, priced(sb.QualityHD, 5)), cand("c", 3, sb.StatusHealthy, priced(sb.QualityHD, 4)),
		}, Request{}, PolicyInput{Routing: policy(sb.PolicyCost), Tier: sb.QualityHD}, 0, []string{"c", "b", "a"}, sb.PolicyCost, ""},
		{"every provider CRITICAL: least bad, not the policy", []Candidate{cand("a", 1, sb.StatusCritical), cand("b", 2, sb.StatusCritical, priced(sb.QualityHD, 0.1))},
			Request{}, PolicyInput{Routing: policy(sb.PolicyCost), Tier: sb.QualityHD}, 0, []string{"a", "b"}, sb.PolicyPriority, "least bad"},
		{"nothing usable", nil, Request{}, PolicyInput{Routing: policy(sb.PolicyOptimized)}, 0, nil, sb.PolicyPriority, "no provider"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.cands, tt.req, tt.in, func() float64 { return tt.rnd })
			if !slices.Equal(d.Order, tt.want) || d.Policy != tt.policy {
				t.Fatalf("got %v by %s, want %v by %s (%s; scores %+v)", d.Order, d.Policy, tt.want, tt.policy, d.Reason, d.Scores)
			}
			if !strings.Contains(d.Reason, tt.reason) {
				t.Fatalf("reason %q does not say %q", d.Reason, tt.reason)
			}
			if d.Policy != sb.PolicyPriority && !strings.Contains(d.Reason, "by priority:") && len(d.Scores) == 0 {
				t.Fatalf("no scores in the trail: %+v", d)
			}
		})
	}
}

// TestDecideOptimizedParts checks every candidate's parts are in the
// decision, and the quality part comes from the region's data only.
func TestDecideOptimizedParts(t *testing.T) {
	d := Decide([]Candidate{cand("a", 1, sb.StatusExcellent, latency(100)), cand("b", 2, sb.StatusWarning, latency(500))}, Request{Region: "eu-west"},
		PolicyInput{Routing: policy(sb.PolicyOptimized), Quality: map[string]Quality{"a": q(50, 40, 3), "b": q(95, 40, 3)}}, zero)
	if len(d.Scores) != 2 {
		t.Fatalf("scores %+v", d.Scores)
	}
	for _, s := range d.Scores {
		if len(s.Parts) != 4 {
			t.Fatalf("parts of %s: %v", s.Provider, s.Parts)
		}
	}
	a := d.Scores[0]
	// 0.5·50 + 0.2·90 + 0.2·100 + 0.1·100 = 73.
	if a.Provider != "a" || a.Score != 73 || a.Parts["latency"] != 90 {
		t.Fatalf("a: %+v", a)
	}
	// b: 0.5·95 + 0.2·50 + 0.2·40 + 0.1·100 = 75.5: better, but within the
	// margin of the leader a.
	d = Decide([]Candidate{cand("a", 1, sb.StatusExcellent, latency(100)), cand("b", 2, sb.StatusWarning, latency(500))}, Request{Region: "eu-west"},
		PolicyInput{Routing: policy(sb.PolicyOptimized), Quality: map[string]Quality{"a": q(50, 40, 3), "b": q(95, 40, 3)}, Leader: "a"}, zero)
	if d.Order[0] != "a" {
		t.Fatalf("hysteresis: %v (%s)", d.Order, d.Reason)
	}
}

// TestDecideOptimizedRegionalHealth checks that the health part is the
// provider's health in the stream's region where it is known there: a
// provider EXCELLENT overall but only WARNING in eu-west loses eu-west to
// one that is EXCELLENT there, and keeps us-east, where nothing regional is
// known.
func TestDecideOptimizedRegionalHealth(t *testing.T) {
	cands := func() []Candidate {
		a := cand("a", 1, sb.StatusExcellent, latency(100))
		a.Regional = map[string]sb.Status{"eu-west": sb.StatusWarning}
		b := cand("b", 2, sb.StatusHealthy, latency(100))
		b.Regional = map[string]sb.Status{"eu-west": sb.StatusExcellent}
		return []Candidate{a, b}
	}
	qual := map[string]Quality{"a": q(80, 40, 3), "b": q(80, 40, 3)}
	in := PolicyInput{Routing: policy(sb.PolicyOptimized), Quality: qual}
	// The weights put health at 0.2 and the margin at 5: in eu-west a has
	// 40 and b 100 (12 points apart); in us-east a has 100 and b 80.
	eu := Decide(cands(), Request{Region: "eu-west"}, in, zero)
	if eu.Order[0] != "b" {
		t.Fatalf("eu-west: %v (%s)", eu.Order, eu.Reason)
	}
	for _, s := range eu.Scores {
		want := map[string]float64{"a": 40, "b": 100}[s.Provider]
		if s.Parts["health"] != want {
			t.Errorf("eu-west health part of %s = %g, want %g", s.Provider, s.Parts["health"], want)
		}
	}
	us := Decide(cands(), Request{Region: "us-east"}, in, zero)
	if us.Order[0] != "a" {
		t.Fatalf("us-east: %v (%s)", us.Order, us.Reason)
	}
}

// TestDecideCommitHolds checks that commit, fed its own starts, holds the
// shares within the tolerance from the first hundred starts on.
func TestDecideCommitHolds(t *testing.T) {
	cands := []Candidate{cand("agora-main", 1, sb.StatusHealthy), cand("zego-main", 2, sb.StatusHealthy), cand("lk", 3, sb.StatusHealthy)}
	sh := map[string]float64{"agora-main": 0.35, "zego-main": 0.5, "lk": 0.15}
	starts := map[string]int64{}
	r := rand.New(rand.NewPCG(3, 4))
	for i := 1; i <= 5000; i++ {
		d := Decide(slices.Clone(cands), Request{}, PolicyInput{Routing: policy(sb.PolicyCommit, shares(sh)), Starts: starts}, r.Float64)
		starts[d.Order[0]]++
		if i >= 100 {
			for n, s := range sh {
				if got := float64(starts[n]) / float64(i); got < s-sb.CommitTolerance || got > s+sb.CommitTolerance {
					t.Fatalf("after %d starts %s has %.4f, share %.2f", i, n, got, s)
				}
			}
		}
	}
}

// TestDecideReasonScores checks that the reason, which goes to the stream's
// trail, names every candidate's score and why the first won.
func TestDecideReasonScores(t *testing.T) {
	d := Decide([]Candidate{cand("a", 1, sb.StatusHealthy), cand("b", 2, sb.StatusHealthy)}, Request{},
		PolicyInput{Routing: policy(sb.PolicyOptimized), Quality: map[string]Quality{"a": q(40, 100, 10), "b": q(95, 100, 10)}}, zero)
	for _, want := range []string{"policy optimized", "b has the best score", "scores: a ", ", b ", "quality 95"} {
		if !strings.Contains(d.Reason, want) {
			t.Fatalf("reason %q lacks %q", d.Reason, want)
		}
	}
}
