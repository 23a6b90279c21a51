package routing

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"

	sb "github.com/switchboardhq/switchboard"
)

// Quality is what the policy knows of a provider's quality in the stream's
// region over sb.QualityRoutingWindow: never another region's.
type Quality struct {
	Score   *float64 // 0–100; nil without samples
	Samples int64
	Streams int64
}

// Enough reports whether q holds enough data for optimized to use its score:
// at least sb.MinQualitySamples samples from sb.MinQualityStreams streams.
func (q Quality) Enough() bool {
	return q.Score != nil && q.Samples >= sb.MinQualitySamples && q.Streams >= sb.MinQualityStreams
}

// PolicyInput is what Decide knows beyond Select's candidates and request.
type PolicyInput struct {
	// Routing is the policy that applies to the stream's region.
	Routing sb.EffectiveRouting
	// Tier is the stream's quality tier, which cost and the cost part of
	// optimized price.
	Tier sb.Quality
	// Quality is each provider's quality in the stream's region.
	Quality map[string]Quality
	// Starts are the streams started per provider over sb.CommitWindow under
	// the policy's scope, for commit.
	Starts map[string]int64
	// Leader is optimized's current first choice in the policy's scope, ""
	// when none yet: a challenger must beat it by Routing.Margin.
	Leader string
}

// Score is a candidate's score under the policy, shown in the decision.
type Score struct {
	Provider string `json:"provider"`
	// Score is what the policy ranked by: the optimized score (0–100), the
	// balanced draw weight, the commit deficit (share − observed share) or
	// the cost per thousand minutes.
	Score float64 `json:"score"`
	// Parts are the parts of the optimized score, 0–100 each.
	Parts map[string]float64 `json:"parts,omitempty"`
	// Note says where the score came from, such as "quality by priority".
	Note string `json:"note,omitempty"`
}

// Decide runs Select, whose exclusions (disabled, CRITICAL, UNKNOWN,
// capacity, maintenance, region, degrading) it keeps as they are, then lets
// the policy choose among the providers Select found usable and not
// degrading: the chosen one goes first and the others keep Select's order,
// so that priority still orders the fallbacks (optimized and cost rank the
// usable ones instead). A decision Select reached by a fallback (LeastBad,
// Unverified, a storm or only degrading providers) is left to priority.
// Decide is pure: rnd is its only source of chance.
func Decide(cands []Candidate, req Request, in PolicyInput, rnd func() float64) Decision {
	d := Select(cands, req, rnd)
	pol := in.Routing.Policy
	if pol == "" || pol == sb.PolicyPriority || len(d.Order) == 0 || d.LeastBad || d.Unverified || d.Storm {
		d.Policy = sb.PolicyPriority
		return d
	}
	d.Policy = pol
	byName := make(map[string]Candidate, len(cands))
	for _, c := range cands {
		byName[c.Provider.Name] = c
	}
	// The group the policy chooses in: the head of the order that is usable
	// and not degrading (Select puts degrading providers behind).
	var group []Candidate
	for _, n := range d.Order {
		c := byName[n]
		if c.Degrading != "" || !statusIn(c, req.Region).Usable() {
			break
		}
		group = append(group, c)
	}
	if len(group) == 0 {
		d.Policy = sb.PolicyPriority
		return d
	}
	var ranked []string
	var why string
	switch pol {
	case sb.PolicyBalanced:
		ranked, why = balanced(group, &d, rnd)
	case sb.PolicyOptimized:
		ranked, why = optimized(group, req.Region, in, &d)
	case sb.PolicyCommit:
		ranked, why = commit(group, in, &d)
	case sb.PolicyCost:
		ranked, why = cheapest(group, in.Tier, &d)
	}
	if len(ranked) == 0 {
		d.Reason = fmt.Sprintf("%s: %s; by priority: %s", in.Routing, why, d.Reason) + scoresNote(d.Scores)
		return d
	}
	rest := slices.DeleteFunc(slices.Clone(d.Order), func(n string) bool { return slices.Contains(ranked, n) })
	d.Order = append(ranked, rest...)
	d.Reason = fmt.Sprintf("%s: %s", in.Routing, why) + scoresNote(d.Scores)
	return d
}

// scoresNote lists every candidate's score, for the decision's reason (and
// so the stream's trail).
func scoresNote(scores []Score) string {
	if len(scores) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("; scores:")
	for i, s := range scores {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " %s %g", s.Provider, s.Score)
		if len(s.Parts) > 0 {
			fmt.Fprintf(&b, " (quality %g, latency %g, health %g, cost %g)", s.Parts["quality"], s.Parts["latency"], s.Parts["health"], s.Parts["cost"])
		}
		if s.Note != "" {
			fmt.Fprintf(&b, " [%s]", s.Note)
		}
	}
	return b.String()
}

// balanced draws the first provider with a chance proportional to its
// weight times its spare capacity (1 − active/maxActiveStreams; 1 without a
// limit); the others keep priority order.
func balanced(group []Candidate, d *Decision, rnd func() float64) ([]string, string) {
	ws := make([]float64, len(group))
	total := 0.0
	for i, c := range group {
		spare := 1.0
		if m := c.Provider.MaxActiveStreams; m > 0 {
			spare = max(float64(int64(m)-c.Active), 0) / float64(m)
		}
		ws[i] = float64(max(c.Provider.Weight, 1)) * spare
		total += ws[i]
		d.Scores = append(d.Scores, Score{Provider: c.Provider.Name, Score: round2(ws[i]),
			Note: fmt.Sprintf("weight %d × spare capacity %.2f", max(c.Provider.Weight, 1), spare)})
	}
	if total <= 0 {
		return nil, "no spare capacity to balance by"
	}
	x, k := rnd()*total, len(group)-1
	for i, w := range ws {
		if x -= w; x < 0 {
			k = i
			break
		}
	}
	return []string{group[k].Provider.Name}, fmt.Sprintf("%s drawn with probability %.2f (weight × spare capacity %.2f of %.2f)",
		group[k].Provider.Name, ws[k]/total, ws[k], total)
}

// statusIn is the candidate's status in the stream's region: its regional
// status where the server's probes or probe agents report it there, else its
// own. Select has already excluded a provider that is not usable there.
func statusIn(c Candidate, region string) sb.Status {
	if st := c.Regional[region]; region != "" && st != "" {
		return st
	}
	return c.Health.Status
}

// healthScore is the health part of the optimized score.
var healthScore = map[sb.Status]float64{sb.StatusExcellent: 100, sb.StatusHealthy: 80, sb.StatusWarning: 40}

// latencyScale is the probe latency at which the latency part reaches 0.
const latencyScale = 1000.0 // ms

// optimized ranks the group by the weighted mean of four parts, each 0–100:
// quality (the measured score in the stream's region when every provider of
// the group has enough data there, else by priority: 100 for the first
// priority rank down to 100/n for the last), latency (100·(1 − probe
// latency/1 s), at least 0), health in the stream's region where it is
// known there, else overall (EXCELLENT 100, HEALTHY 80, WARNING 40)
// and cost (100 × the cheapest price for the tier / the provider's price).
// The current leader keeps the first place unless a challenger beats it by
// the margin.
func optimized(group []Candidate, region string, in PolicyInput, d *Decision) ([]string, string) {
	w := in.Routing.Weights
	wsum := w.Quality + w.Latency + w.Health + w.Cost
	if wsum <= 0 {
		return nil, "no weight is above 0"
	}
	measured := true
	for _, c := range group {
		if !in.Quality[c.Provider.Name].Enough() {
			measured = false
		}
	}
	prioRank := priorityRanks(group)
	cheapestPrice := math.Inf(1)
	for _, c := range group {
		if p, ok := price(c, in.Tier); ok {
			cheapestPrice = min(cheapestPrice, p)
		}
	}
	scores := make(map[string]float64, len(group))
	for _, c := range group {
		n := c.Provider.Name
		q := in.Quality[n]
		parts := map[string]float64{}
		note := "quality measured"
		if measured {
			parts["quality"] = *q.Score
		} else {
			parts["quality"] = 100 * float64(len(group)-prioRank[n]) / float64(len(group))
			note = fmt.Sprintf("quality by priority: too little data in the region (%d samples, %d streams; %d and %d needed)",
				q.Samples, q.Streams, sb.MinQualitySamples, sb.MinQualityStreams)
		}
		parts["latency"] = max(0, 100*(1-float64(c.Health.LatencyMs)/latencyScale))
		parts["health"] = healthScore[statusIn(c, region)]
		parts["cost"] = 100
		if p, ok := price(c, in.Tier); ok && p > 0 && !math.IsInf(cheapestPrice, 1) {
			parts["cost"] = 100 * cheapestPrice / p
		}
		for k, v := range parts {
			parts[k] = round2(v)
		}
		s := (w.Quality*parts["quality"] + w.Latency*parts["latency"] + w.Health*parts["health"] + w.Cost*parts["cost"]) / wsum
		scores[n] = round2(s)
		d.Scores = append(d.Scores, Score{Provider: n, Score: scores[n], Parts: parts, Note: note})
	}
	ranked := make([]string, len(group))
	for i, c := range group {
		ranked[i] = c.Provider.Name
	}
	slices.SortStableFunc(ranked, func(a, b string) int {
		if c := cmp.Compare(scores[b], scores[a]); c != 0 {
			return c
		}
		return cmp.Compare(prioRank[a], prioRank[b])
	})
	best := ranked[0]
	if l := in.Leader; l != "" && l != best && slices.Contains(ranked, l) && scores[best] < scores[l]+in.Routing.Margin {
		i := slices.Index(ranked, l)
		ranked = append([]string{l}, slices.Delete(ranked, i, i+1)...)
		return ranked, fmt.Sprintf("%s stays first (score %.2f): %s scores %.2f, less than the margin of %.2f above it",
			l, scores[l], best, scores[best], in.Routing.Margin)
	}
	why := fmt.Sprintf("%s has the best score (%.2f)", best, scores[best])
	if len(ranked) > 1 {
		why += fmt.Sprintf(", then %s (%.2f)", ranked[1], scores[ranked[1]])
	}
	if l := in.Leader; l != "" && l != best && slices.Contains(ranked, l) {
		why += fmt.Sprintf("; it beats %s, first until now, by more than the margin of %.2f", l, in.Routing.Margin)
	}
	return ranked, why
}

// commit picks the usable provider with a share that is furthest below it
// over the window: the largest share − started/total (total counts the
// starts on providers with a share). Providers without a share are only
// fallbacks; when no usable provider has one, priority decides.
func commit(group []Candidate, in PolicyInput, d *Decision) ([]string, string) {
	var total int64
	for n := range in.Routing.Shares {
		total += in.Starts[n]
	}
	best, bestDeficit := "", math.Inf(-1)
	for _, c := range group {
		n := c.Provider.Name
		share, ok := in.Routing.Shares[n]
		if !ok {
			continue
		}
		observed := 0.0
		if total > 0 {
			observed = float64(in.Starts[n]) / float64(total)
		}
		deficit := share - observed
		d.Scores = append(d.Scores, Score{Provider: n, Score: round4(deficit),
			Note: fmt.Sprintf("share %.4f, %d of %d starts (%.4f)", share, in.Starts[n], total, observed)})
		if deficit > bestDeficit {
			best, bestDeficit = n, deficit
		}
	}
	if best == "" {
		return nil, "no usable provider has a share"
	}
	return []string{best}, fmt.Sprintf("%s is furthest below its share (%.4f below) over the last %s", best, bestDeficit, sb.CommitWindow)
}

// cheapest ranks the group by the price of the stream's tier, cheapest
// first, then by priority; a provider without a price for the tier comes
// last. Prices are compared as numbers: providers are expected to be priced
// in one currency.
func cheapest(group []Candidate, tier sb.Quality, d *Decision) ([]string, string) {
	prioRank := priorityRanks(group)
	prices := map[string]float64{}
	for _, c := range group {
		p, ok := price(c, tier)
		if !ok {
			p = math.Inf(1)
		}
		prices[c.Provider.Name] = p
		s := Score{Provider: c.Provider.Name, Score: round4(p), Note: fmt.Sprintf("%s per thousand %s minutes", c.Provider.Pricing.Currency, tier)}
		if !ok {
			s.Score, s.Note = -1, "no price for the tier "+string(tier)
		}
		d.Scores = append(d.Scores, s)
	}
	ranked := make([]string, len(group))
	for i, c := range group {
		ranked[i] = c.Provider.Name
	}
	slices.SortStableFunc(ranked, func(a, b string) int {
		if c := cmp.Compare(prices[a], prices[b]); c != 0 {
			return c
		}
		return cmp.Compare(prioRank[a], prioRank[b])
	})
	if math.IsInf(prices[ranked[0]], 1) {
		return nil, "no usable provider has a price for the tier " + string(tier)
	}
	return ranked, fmt.Sprintf("%s is the cheapest for %s (%.2f per thousand minutes)", ranked[0], tier, prices[ranked[0]])
}

func price(c Candidate, tier sb.Quality) (float64, bool) {
	p, ok := c.Provider.Pricing.PerThousandMinutes[tier]
	return p, ok && !math.IsNaN(p) && p >= 0
}

// priorityRanks numbers the group by priority, then name: 0 is the first.
func priorityRanks(group []Candidate) map[string]int {
	s := slices.Clone(group)
	slices.SortStableFunc(s, func(a, b Candidate) int {
		if c := cmp.Compare(a.Provider.Priority, b.Provider.Priority); c != 0 {
			return c
		}
		return strings.Compare(a.Provider.Name, b.Provider.Name)
	})
	out := make(map[string]int, len(s))
	for i, c := range s {
		out[c.Provider.Name] = i
	}
	return out
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }
func round4(v float64) float64 { return math.Round(v*1e4) / 1e4 }
