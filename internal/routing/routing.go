// Package routing is the selection policy: which provider a new stream goes
// to, and which ones it falls back to, in order. It is a pure function of the
// registry, the health and the load it is given; it does no I/O.
package routing

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// Candidate is a provider with what the policy needs to know of it now.
type Candidate struct {
	// Provider and Health point at the registry's snapshot, which many
	// decisions share: neither is ever written through a candidate. (A
	// candidate that held them by value weighed 648 bytes, and copying 100
	// of them for every start cost more than the decision.)
	Provider *sb.Provider
	Health   *sb.Health
	// Active is the number of active streams on the provider.
	Active int64
	// Maintenance is the maintenance window the provider is in, nil when
	// none: it takes no new streams.
	Maintenance *Maintenance
	// Degrading is the evidence of the degradation detector when it flags
	// the provider and the operator acts on predictions (the setting
	// preemptive is not off); empty otherwise.
	Degrading string
	// Regional is the provider's status in each region where the server's
	// own probes or probe agents probe it (internal/health.RegionalStatus:
	// a stale region is UNKNOWN); nil or without the stream's region when
	// there is no regional data for it.
	Regional map[string]sb.Status
}

// Maintenance is what the policy knows of a provider's maintenance window.
type Maintenance struct {
	Until  time.Time
	Reason string
}

// Skipped says why a provider in maintenance is left out.
func (m Maintenance) Skipped() string {
	return fmt.Sprintf("maintenance until %s: %s", m.Until.UTC().Format(time.RFC3339), m.Reason)
}

// Request is what the new stream asks for.
type Request struct {
	Region  string
	Exclude []string
	// OrderOnly asks for the order alone (Order, LeastBad, Unverified and
	// Storm), as for a standby or a list of fallbacks: Statuses, Skipped and
	// Reason are left empty, which spares making them on every heartbeat.
	// The order, and the random draws that make it, are the same.
	OrderOnly bool
	// Statuses, when set, are the statuses of the candidates by name
	// (Candidate.Health.Status), made once by the caller for the many
	// decisions on one snapshot of the registry: the decision's Statuses are
	// then this map, which neither the policy nor the caller may write.
	Statuses map[string]sb.Status
}

// Decision is the outcome of Select.
type Decision struct {
	// Order lists the providers to use: the first is the choice, the rest are
	// the fallbacks in order. Empty when no provider can take the stream.
	Order []string
	// LeastBad is set when every usable provider was CRITICAL and the policy
	// chose the one that succeeded most recently rather than refuse.
	LeastBad bool
	// Unverified is set when no provider was usable and none CRITICAL, but
	// some had never passed a check (UNKNOWN, as on a fresh install before
	// the first checks end): the policy fell back to those, by priority,
	// rather than refuse. Reason then starts with "unverified:".
	Unverified bool
	// Statuses are the statuses of every provider the policy looked at.
	Statuses map[string]sb.Status
	// Skipped says why each provider that is not in Order was left out.
	Skipped map[string]string
	// Reason explains the choice in one line.
	Reason string
	// Storm is set when predictions were ignored because more than half of
	// the usable providers were degrading at once (see Storm).
	Storm bool
	// Policy is the routing policy that chose the first provider (Decide);
	// empty from Select alone, which is priority.
	Policy sb.RoutingPolicy
	// Scores are the candidates' scores under the policy (Decide), in the
	// order they were looked at; empty under priority.
	Scores []Score
}

// Storm reports whether more than half of the usable providers among cands
// (enabled, usable by their status, not in maintenance) are flagged as
// degrading: then the trouble is more likely on our side (our network, our
// probes) than at every provider at once, and predictions are ignored.
func Storm(cands []Candidate) bool {
	usable, degrading := 0, 0
	for _, c := range cands {
		if !c.Provider.Enabled || !c.Health.Status.Usable() || c.Maintenance != nil {
			continue
		}
		usable++
		if c.Degrading != "" {
			degrading++
		}
	}
	return 2*degrading > usable
}

// Select chooses providers for a stream. Candidates are enabled, usable
// (switchboard.Status.Usable: EXCELLENT, HEALTHY or WARNING), not in a
// maintenance window (never, not even as a fallback), under their
// maxActiveStreams, serving the requested region and not excluded; they are
// ordered by priority, and among equal priorities by a random draw weighted by
// weight (rnd returns a number in [0, 1)). A provider that never passed a
// check (UNKNOWN) is never chosen while a usable one remains. A usable
// provider flagged as degrading (Candidate.Degrading) takes no new stream
// while a usable one that is not degrading can: it goes behind them, as a
// fallback; unless more than half of the usable providers are degrading
// (Storm), when the flags are ignored.
//
// When no candidate remains, two fallbacks keep streams flowing rather than
// refuse them all:
//   - some providers are eligible except for being UNKNOWN (a fresh install,
//     or every provider just created): they are used by priority and the
//     decision is marked Unverified;
//   - otherwise, some are eligible except for being CRITICAL: the one with the
//     most recent success is chosen (LeastBad), so that an outage of every
//     health signal never refuses every stream.
//
// An UNKNOWN provider is preferred over a CRITICAL one: it may simply not have
// been checked yet, while a CRITICAL one failed its checks repeatedly.
//
// Where there is regional data for the stream's region (Candidate.Regional),
// a provider whose status there is not usable (CRITICAL, DISABLED, UNKNOWN,
// or stale, which is UNKNOWN) takes no new stream of the region while another
// can: it joins the CRITICAL ones, for the least-bad fallback only. Without
// regional data for the region the provider's own status alone decides.
func Select(cands []Candidate, req Request, rnd func() float64) Decision {
	var d Decision
	full := !req.OrderOnly              // Statuses, Skipped and Reason are wanted
	fill := full && req.Statuses == nil // Statuses to make here
	if full {
		d.Statuses, d.Skipped = req.Statuses, map[string]string{}
		if fill {
			d.Statuses = make(map[string]sb.Status, len(cands))
		}
	}
	// The groups hold pointers into cands: a candidate carries the whole
	// provider, and copying them made a decision among 100 providers cost
	// more than the rest of a start.
	var ok, unverified, critical []*Candidate
	var inMaintenance []string
	if len(cands) > 0 {
		ok = make([]*Candidate, 0, len(cands))
	}
	for i := range cands {
		c := &cands[i]
		p := c.Provider
		if fill {
			d.Statuses[p.Name] = c.Health.Status
		}
		switch {
		case slices.Contains(req.Exclude, p.Name):
			if full {
				d.Skipped[p.Name] = "excluded by the client"
			}
		case !p.Enabled || c.Health.Status == sb.StatusDisabled:
			if full {
				d.Skipped[p.Name] = "disabled"
			}
		case c.Maintenance != nil:
			if full {
				d.Skipped[p.Name] = c.Maintenance.Skipped()
				inMaintenance = append(inMaintenance, p.Name)
			}
		case req.Region != "" && len(p.Regions) > 0 && !slices.Contains(p.Regions, req.Region):
			if full {
				d.Skipped[p.Name] = "does not serve region " + req.Region
			}
		case p.MaxActiveStreams > 0 && c.Active >= int64(p.MaxActiveStreams):
			if full {
				d.Skipped[p.Name] = fmt.Sprintf("at capacity (%d active streams)", c.Active)
			}
		case c.Health.Status == sb.StatusCritical:
			if full {
				d.Skipped[p.Name] = "CRITICAL"
			}
			critical = append(critical, c)
		case req.Region != "" && c.Regional[req.Region] != "" && !c.Regional[req.Region].Usable():
			if full {
				d.Skipped[p.Name] = fmt.Sprintf("%s in region %s", c.Regional[req.Region], req.Region)
			}
			critical = append(critical, c)
		case !c.Health.Status.Usable():
			if full {
				d.Skipped[p.Name] = "UNKNOWN: not verified by a successful check yet"
			}
			unverified = append(unverified, c)
		default:
			ok = append(ok, c)
		}
	}
	if len(ok) > 0 {
		var fine, degrading []*Candidate
		for _, c := range ok {
			if c.Degrading != "" {
				degrading = append(degrading, c)
			}
		}
		if len(degrading) > 0 { // else fine would be ok
			for _, c := range ok {
				if c.Degrading == "" {
					fine = append(fine, c)
				}
			}
		}
		storm := len(degrading) > 0 && Storm(cands)
		if storm || len(fine) == 0 || len(degrading) == 0 {
			d.Order = order(ok, rnd)
			d.Storm = storm
			if !full {
				return d
			}
			d.Reason = fmt.Sprintf("%s is the highest-priority usable provider (%s, priority %d)", d.Order[0], d.Statuses[d.Order[0]], priorityOf(ok, d.Order[0])) +
				degradingNote(degrading, storm, len(fine) == 0) + maintenanceNote(d, inMaintenance)
			return d
		}
		d.Order = append(order(fine, rnd), order(degrading, rnd)...)
		if !full {
			return d
		}
		d.Reason = fmt.Sprintf("%s is the highest-priority usable provider that is not degrading (%s, priority %d)", d.Order[0], d.Statuses[d.Order[0]], priorityOf(ok, d.Order[0])) +
			degradingNote(degrading, false, false) + maintenanceNote(d, inMaintenance)
		return d
	}
	if len(unverified) > 0 {
		d.Order = order(unverified, rnd)
		for _, n := range d.Order {
			delete(d.Skipped, n)
		}
		d.Unverified = true
		if !full {
			return d
		}
		d.Reason = fmt.Sprintf("unverified: no provider has passed a check yet; chose %s by priority (%d)", d.Order[0], priorityOf(unverified, d.Order[0])) +
			maintenanceNote(d, inMaintenance)
		return d
	}
	if len(critical) > 0 {
		slices.SortStableFunc(critical, func(a, b *Candidate) int {
			if c := cmp.Compare(unix(b.Health.LastSuccess), unix(a.Health.LastSuccess)); c != 0 {
				return c // most recent success first
			}
			if c := cmp.Compare(a.Provider.Priority, b.Provider.Priority); c != 0 {
				return c
			}
			return strings.Compare(a.Provider.Name, b.Provider.Name)
		})
		for _, c := range critical {
			d.Order = append(d.Order, c.Provider.Name)
			delete(d.Skipped, c.Provider.Name)
		}
		d.LeastBad = true
		if !full {
			return d
		}
		d.Reason = fmt.Sprintf("every usable provider is CRITICAL: chose %s, the least bad (most recent success)", d.Order[0]) +
			maintenanceNote(d, inMaintenance)
		return d
	}
	if full {
		d.Reason = "no provider can take the stream"
	}
	return d
}

// degradingNote names the providers flagged as degrading, with what was made
// of the flag.
func degradingNote(degrading []*Candidate, storm, none bool) string {
	var b strings.Builder
	for _, c := range degrading {
		switch {
		case storm:
			fmt.Fprintf(&b, "; %s is degrading (%s) but ignored: more than half of the usable providers are (storm control)", c.Provider.Name, c.Degrading)
		case none:
			fmt.Fprintf(&b, "; %s is degrading (%s) and no usable provider is not", c.Provider.Name, c.Degrading)
		default:
			fmt.Fprintf(&b, "; %s is degrading (%s): only a fallback", c.Provider.Name, c.Degrading)
		}
	}
	return b.String()
}

// maintenanceNote names the providers left out for maintenance, so that the
// reason of a choice says why they were not chosen.
func maintenanceNote(d Decision, names []string) string {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "; %s is in %s", n, d.Skipped[n])
	}
	return b.String()
}

func unix(t *time.Time) int64 {
	if t == nil {
		return 0
	}
	return t.UnixNano()
}

func priorityOf(cs []*Candidate, name string) int {
	for _, c := range cs {
		if c.Provider.Name == name {
			return c.Provider.Priority
		}
	}
	return 0
}

// weightOf is a candidate's weight in a draw: at least 1.
func weightOf(c *Candidate) int { return max(c.Provider.Weight, 1) }

// byPriority orders candidates by priority, then by name: the registry's
// order.
func byPriority(a, b *Candidate) int {
	if c := cmp.Compare(a.Provider.Priority, b.Provider.Priority); c != 0 {
		return c
	}
	return strings.Compare(a.Provider.Name, b.Provider.Name)
}

// order sorts candidates by priority and, within a priority, by a weighted
// random draw without replacement. It leaves cs as it was.
func order(cs []*Candidate, rnd func() float64) []string {
	// The registry lists providers in this order already: checking it is
	// one comparison per provider, where sorting 100 of them was a quarter
	// of a decision among them. Otherwise the pointers are sorted, never
	// the candidates, which carry the whole provider.
	if !slices.IsSortedFunc(cs, byPriority) {
		cs = slices.Clone(cs)
		slices.SortStableFunc(cs, byPriority)
	}
	out := make([]string, 0, len(cs))
	for i := 0; i < len(cs); {
		j := i
		for j < len(cs) && cs[j].Provider.Priority == cs[i].Provider.Priority {
			j++
		}
		if group := cs[i:j]; len(group) <= treeAbove {
			// The walk reorders its group: a copy of the pointers, which
			// are few.
			var buf [treeAbove]*Candidate
			out = weightedWalk(append(buf[:0], group...), rnd, out)
		} else {
			out = drawMany(group, rnd, out)
		}
		i = j
	}
	return out
}

// treeAbove is the size of a group from which weighted draws with a
// Fenwick tree rather than by walking the group: a walk and a removal per
// draw are quadratic, and with 100 providers of one priority the draw was
// the costliest part of a start's decision.
const treeAbove = 16

// weightedWalk appends the names of group to out in a weighted random draw
// without replacement, walking the names left at each draw; it reorders
// group. Each draw takes, among the names not drawn yet and in their order,
// the first whose running sum of weights exceeds rnd() times the weights
// left.
func weightedWalk(group []*Candidate, rnd func() float64, out []string) []string {
	rest := group
	total := 0
	for _, r := range rest {
		total += weightOf(r)
	}
	for len(rest) > 0 {
		x := rnd() * float64(total)
		k := len(rest) - 1
		for i, r := range rest {
			x -= float64(weightOf(r))
			if x < 0 {
				k = i
				break
			}
		}
		out = append(out, rest[k].Provider.Name)
		total -= weightOf(rest[k])
		// Keep the others in their order, as the draw walks them in order.
		copy(rest[k:], rest[k+1:])
		rest = rest[:len(rest)-1]
	}
	return out
}

// drawMany draws a group larger than treeAbove as weightedWalk would, from
// the same draws, leaving group as it was: by index when every weight is the
// same (the usual case: weights left at their default), else with the tree.
func drawMany(group []*Candidate, rnd func() float64, out []string) []string {
	if len(group) <= equalAtMost {
		w := weightOf(group[0])
		same := true
		for _, e := range group[1:] {
			if weightOf(e) != w {
				same = false
				break
			}
		}
		if same {
			return weightedEqual(group, w, rnd, out)
		}
	}
	return weightedTree(group, rnd, out)
}

// equalAtMost is the largest group weightedEqual draws (its indexes are
// bytes, on the stack).
const equalAtMost = 256

// weightedEqual draws a group whose weights are all w, as weightedWalk
// does from the same draws: the walk takes the first name whose running sum
// exceeds the draw x = rnd() × total, which is name ⌊⌊x⌋ / w⌋ of those
// left (x is compared with whole multiples of w), or the last one when x
// rounded up to the total. It removes the drawn index from a list of bytes,
// where the tree's descent of 100 providers, one unpredictable branch per
// level and draw, was 6 % of a start.
func weightedEqual(group []*Candidate, w int, rnd func() float64, out []string) []string {
	var buf [equalAtMost]uint8
	left := buf[:len(group)]
	for i := range left {
		left[i] = uint8(i)
	}
	for m := len(left); m > 0; m-- {
		k := min(int(rnd()*float64(m*w))/w, m-1)
		out = append(out, group[left[k]].Provider.Name)
		copy(left[k:m], left[k+1:m])
	}
	return out
}

// treeOnStack is the largest group whose tree weightedTree keeps on the
// stack.
const treeOnStack = 128

// weightedTree draws as weightedWalk does, and makes the same order from the
// same draws, in O(n log n), leaving group as it was: a Fenwick tree over the
// group's positions holds the weights not drawn yet (a drawn one weighs 0),
// and each draw descends it to the first position whose prefix sum exceeds
// the draw. The sums are integers, and the draw minus a partial sum is exact
// while it is not negative, so the comparisons are those of the walk.
func weightedTree(group []*Candidate, rnd func() float64, out []string) []string {
	n := len(group)
	var treeBuf [treeOnStack + 1]int
	var drawnBuf [treeOnStack]bool
	var (
		tree  []int
		drawn []bool
	)
	if n <= treeOnStack {
		tree, drawn = treeBuf[:n+1], drawnBuf[:n]
	} else {
		tree, drawn = make([]int, n+1), make([]bool, n)
	}
	total := 0
	for i, e := range group {
		w := weightOf(e)
		total += w
		k := i + 1
		tree[k] += w
		if up := k + k&-k; up <= n {
			tree[up] += tree[k]
		}
	}
	top := 1
	for top*2 <= n {
		top *= 2
	}
	for range n {
		x := rnd() * float64(total)
		pos := 0
		for step := top; step > 0; step /= 2 {
			if next := pos + step; next <= n && float64(tree[next]) <= x {
				pos = next
				x -= float64(tree[next])
			}
		}
		// pos is the last position whose prefix sum is at most the draw; the
		// next one is drawn. Past the end (the draw rounded up to the
		// total), the walk takes the last one left.
		k := pos
		if k >= n || drawn[k] {
			for k = n - 1; drawn[k]; k-- {
			}
		}
		drawn[k] = true
		out = append(out, group[k].Provider.Name)
		w := weightOf(group[k])
		total -= w
		for i := k + 1; i <= n; i += i & -i {
			tree[i] -= w
		}
	}
	return out
}
