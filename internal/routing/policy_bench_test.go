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
