package routing

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	sb "github.com/switchboardhq/switchboard"
)

// BenchmarkDecide measures one decision among 10 usable providers under each
// policy, as a stream start makes it.
func BenchmarkDecide(b *testing.B) {
	var cands []Candidate
	quality := map[string]Quality{}
	starts := map[string]int64{}
	sh := map[string]float64{}
	for i := range 10 {
		n := fmt.Sprintf("p%d", i)
		cands = append(cands, cand(n, i%3, sb.StatusHealthy, priced(sb.QualityHD, float64(1+i)), latency(int64(10*i))))
		quality[n] = q(float64(60+i), 100, 10)
		starts[n] = int64(100 * i)
		sh[n] = 0.1
	}
	r := rand.New(rand.NewPCG(1, 2))
	for _, p := range sb.RoutingPolicies {
		in := PolicyInput{Routing: policy(p, shares(sh)), Tier: sb.QualityHD, Quality: quality, Starts: starts, Leader: "p3"}
		b.Run(string(p), func(b *testing.B) {
			for b.Loop() {
				Decide(slices.Clone(cands), Request{}, in, r.Float64)
			}
		})
	}
}

// BenchmarkDecideProviders measures one decision under the priority policy
// (the default) among 2 and among 100 usable providers of equal priority, as
// a stream start makes it: its cost should barely grow with the providers.
func BenchmarkDecideProviders(b *testing.B) {
	for _, n := range []int{2, 100} {
		var cands []Candidate
		for i := range n {
			cands = append(cands, cand(fmt.Sprintf("p%03d", i), 1, sb.StatusHealthy)) // in the registry's order
		}
		r := rand.New(rand.NewPCG(1, 2))
		in := PolicyInput{Routing: policy(sb.PolicyPriority)}
		// As the streams service decides: on the registry snapshot's
		// candidates and statuses, shared by every decision.
		statuses := map[string]sb.Status{}
		for _, c := range cands {
			statuses[c.Provider.Name] = c.Health.Status
		}
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			for b.Loop() {
				Decide(cands, Request{Statuses: statuses}, in, r.Float64)
			}
		})
	}
}
