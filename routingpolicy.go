package switchboard

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"time"
)

// RoutingPolicy is how new streams are spread over the usable providers.
type RoutingPolicy string

// Routing policies (README, "Routing policies").
const (
	// PolicyPriority takes the highest-priority usable provider, with a
	// weighted draw among equal priorities: the behaviour before policies,
	// and the default.
	PolicyPriority RoutingPolicy = "priority"
	// PolicyBalanced spreads new streams over the usable providers by their
	// weight times their spare capacity.
	PolicyBalanced RoutingPolicy = "balanced"
	// PolicyOptimized ranks the usable providers by a weighted score of the
	// quality measured in the stream's region, the probe latency, the health
	// and the cost, with hysteresis.
	PolicyOptimized RoutingPolicy = "optimized"
	// PolicyCommit holds traffic shares per provider: each new stream goes to
	// the usable provider furthest below its share over the last day.
	PolicyCommit RoutingPolicy = "commit"
	// PolicyCost takes the cheapest usable provider for the stream's tier.
	PolicyCost RoutingPolicy = "cost"
)

// RoutingPolicies lists every policy.
var RoutingPolicies = []RoutingPolicy{PolicyPriority, PolicyBalanced, PolicyOptimized, PolicyCommit, PolicyCost}

// Valid reports whether p is a known policy.
func (p RoutingPolicy) Valid() bool { return slices.Contains(RoutingPolicies, p) }

// Limits and defaults of the routing configuration.
const (
	// CommitWindow is the period over which commit holds its shares.
	CommitWindow = 24 * time.Hour
	// CommitTolerance is how far from its share a provider may drift.
	CommitTolerance = 0.02
	// DefaultRoutingMargin is the score points a challenger must beat the
	// current first choice by, under optimized, before the ranking changes.
	DefaultRoutingMargin = 5.0
	// MaxRoutingMargin bounds the margin.
	MaxRoutingMargin = 50.0
	// MinQualitySamples and MinQualityStreams are the quality data a
	// provider needs in a region over QualityRoutingWindow before optimized
	// uses its measured score there; with less, the region ranks by priority
	// for the quality part.
	MinQualitySamples = 30
	MinQualityStreams = 3
	// QualityRoutingWindow is the window of quality data optimized reads.
	QualityRoutingWindow = time.Hour
	// MaxRoutingRegions bounds the per-region overrides.
	MaxRoutingRegions = 64
	// sharesSlack is how far from 1 the shares may sum (rounding).
	sharesSlack = 0.001
)

// RoutingWeights are the weights of the parts of the optimized score; each
// part is 0–100 and the score is their weighted mean.
type RoutingWeights struct {
	Quality float64 `json:"quality"`
	Latency float64 `json:"latency"`
	Health  float64 `json:"health"`
	Cost    float64 `json:"cost"`
}

// DefaultRoutingWeights are quality 0.5, latency 0.2, health 0.2 and cost
// 0.1: what viewers live through first.
func DefaultRoutingWeights() RoutingWeights {
	return RoutingWeights{Quality: 0.5, Latency: 0.2, Health: 0.2, Cost: 0.1}
}

// RegionRouting overrides the policy for the streams of one region. Shares,
// weights and margin left out are the global ones.
type RegionRouting struct {
	Policy  RoutingPolicy      `json:"policy"`
	Shares  map[string]float64 `json:"shares,omitempty"`
	Weights *RoutingWeights    `json:"weights,omitempty"`
	Margin  *float64           `json:"margin,omitempty"`
}

// RoutingConfig is how new streams are routed: a policy, the shares commit
// holds, the weights and margin of optimized, and per-region overrides.
type RoutingConfig struct {
	Policy  RoutingPolicy            `json:"policy"`
	Shares  map[string]float64       `json:"shares"`
	Weights RoutingWeights           `json:"weights"`
	Margin  float64                  `json:"margin"`
	Regions map[string]RegionRouting `json:"regions"`
}

// DefaultRoutingConfig is priority, no shares, the default weights and
// margin, and no region overrides.
func DefaultRoutingConfig() RoutingConfig {
	return RoutingConfig{Policy: PolicyPriority, Shares: map[string]float64{}, Weights: DefaultRoutingWeights(),
		Margin: DefaultRoutingMargin, Regions: map[string]RegionRouting{}}
}

// EffectiveRouting is the policy that applies to one region.
type EffectiveRouting struct {
	// Scope is the region whose override applies, "" for the global policy.
	Scope   string
	Policy  RoutingPolicy
	Shares  map[string]float64
	Weights RoutingWeights
	Margin  float64
}

// For returns the policy that applies to streams of region: its override
// when there is one, with the global shares, weights and margin where the
// override leaves them out; else the global policy.
func (c RoutingConfig) For(region string) EffectiveRouting {
	e := EffectiveRouting{Policy: c.Policy, Shares: c.Shares, Weights: c.Weights, Margin: c.Margin}
	r, ok := c.Regions[region]
	if region == "" || !ok {
		return e
	}
	e.Scope, e.Policy = region, r.Policy
	if len(r.Shares) > 0 {
		e.Shares = r.Shares
	}
	if r.Weights != nil {
		e.Weights = *r.Weights
	}
	if r.Margin != nil {
		e.Margin = *r.Margin
	}
	return e
}

// Validate checks c; the error names the first field that is wrong, such as
// shares.agora-main or regions.eu-west.policy.
func (c RoutingConfig) Validate() error {
	if !c.Policy.Valid() {
		return Invalid("policy", "must be priority, balanced, optimized, commit or cost")
	}
	if err := validShares("shares", c.Shares, c.Policy == PolicyCommit); err != nil {
		return err
	}
	if err := validWeights("weights", c.Weights); err != nil {
		return err
	}
	if err := validMargin("margin", c.Margin); err != nil {
		return err
	}
	if len(c.Regions) > MaxRoutingRegions {
		return Invalid("regions", "at most %d regions", MaxRoutingRegions)
	}
	for _, name := range slices.Sorted(maps.Keys(c.Regions)) {
		r, f := c.Regions[name], "regions."+name
		if err := ValidateRegion(f, name); err != nil {
			return err
		}
		if !r.Policy.Valid() {
			return Invalid(f+".policy", "must be priority, balanced, optimized, commit or cost")
		}
		if err := validShares(f+".shares", r.Shares, r.Policy == PolicyCommit && len(c.Shares) == 0); err != nil {
			return err
		}
		if r.Weights != nil {
			if err := validWeights(f+".weights", *r.Weights); err != nil {
				return err
			}
		}
		if r.Margin != nil {
			if err := validMargin(f+".margin", *r.Margin); err != nil {
				return err
			}
		}
	}
	return nil
}

func validShares(field string, shares map[string]float64, required bool) error {
	if len(shares) == 0 {
		if required {
			return Invalid(field, "is required by the policy commit")
		}
		return nil
	}
	sum := 0.0
	for _, name := range slices.Sorted(maps.Keys(shares)) {
		v := shares[name]
		if !ValidSlug(name) {
			return Invalid(field, "%q is not a provider name", name)
		}
		if math.IsNaN(v) || v <= 0 || v > 1 {
			return Invalid(field+"."+name, "must be a number above 0 and at most 1")
		}
		sum += v
	}
	if math.Abs(sum-1) > sharesSlack {
		return Invalid(field, "must sum to 1 (they sum to %g)", sum)
	}
	return nil
}

func validWeights(field string, w RoutingWeights) error {
	for _, p := range []struct {
		name string
		v    float64
	}{{"quality", w.Quality}, {"latency", w.Latency}, {"health", w.Health}, {"cost", w.Cost}} {
		if math.IsNaN(p.v) || p.v < 0 || p.v > 1 {
			return Invalid(field+"."+p.name, "must be a number from 0 to 1")
		}
	}
	if w.Quality+w.Latency+w.Health+w.Cost <= 0 {
		return Invalid(field, "at least one weight must be above 0")
	}
	return nil
}

func validMargin(field string, m float64) error {
	if math.IsNaN(m) || m < 0 || m > MaxRoutingMargin {
		return Invalid(field, "must be a number from 0 to %g score points", MaxRoutingMargin)
	}
	return nil
}

// RoutingInput is a partial update of the routing configuration: the fields
// present are set, the others kept. A region given replaces that region's
// override; a region given as null removes it.
type RoutingInput struct {
	Policy  *RoutingPolicy            `json:"policy,omitempty"`
	Shares  *map[string]float64       `json:"shares,omitempty"`
	Weights *RoutingWeights           `json:"weights,omitempty"`
	Margin  *float64                  `json:"margin,omitempty"`
	Regions map[string]*RegionRouting `json:"regions,omitempty"`
}

// Empty reports whether in sets nothing.
func (in RoutingInput) Empty() bool {
	return in.Policy == nil && in.Shares == nil && in.Weights == nil && in.Margin == nil && len(in.Regions) == 0
}

// ApplyTo returns c with the fields present in in set, validated as a whole;
// the error names the first field that is wrong.
func (in RoutingInput) ApplyTo(c RoutingConfig) (RoutingConfig, error) {
	c = c.Clone()
	if in.Policy != nil {
		c.Policy = *in.Policy
	}
	if in.Shares != nil {
		c.Shares = maps.Clone(*in.Shares)
		if c.Shares == nil {
			c.Shares = map[string]float64{}
		}
	}
	if in.Weights != nil {
		c.Weights = *in.Weights
	}
	if in.Margin != nil {
		c.Margin = *in.Margin
	}
	for name, r := range in.Regions {
		if r == nil {
			delete(c.Regions, name)
			continue
		}
		c.Regions[name] = r.clone()
	}
	if err := c.Validate(); err != nil {
		return RoutingConfig{}, err
	}
	return c, nil
}

// Clone returns a deep copy of c, with nil maps made empty.
func (c RoutingConfig) Clone() RoutingConfig {
	out := c
	out.Shares = maps.Clone(c.Shares)
	if out.Shares == nil {
		out.Shares = map[string]float64{}
	}
	out.Regions = make(map[string]RegionRouting, len(c.Regions))
	for k, r := range c.Regions {
		out.Regions[k] = r.clone()
	}
	return out
}

func (r RegionRouting) clone() RegionRouting {
	out := r
	out.Shares = maps.Clone(r.Shares)
	if r.Weights != nil {
		w := *r.Weights
		out.Weights = &w
	}
	if r.Margin != nil {
		m := *r.Margin
		out.Margin = &m
	}
	return out
}

// Equal reports whether c and o route the same way.
func (c RoutingConfig) Equal(o RoutingConfig) bool {
	if c.Policy != o.Policy || c.Weights != o.Weights || c.Margin != o.Margin ||
		!maps.Equal(c.Shares, o.Shares) || len(c.Regions) != len(o.Regions) {
		return false
	}
	for k, r := range c.Regions {
		q, ok := o.Regions[k]
		if !ok || r.Policy != q.Policy || !maps.Equal(r.Shares, q.Shares) ||
			!ptrEqual(r.Weights, q.Weights) || !ptrEqual(r.Margin, q.Margin) {
			return false
		}
	}
	return true
}

func ptrEqual[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// RoutingStarts counts the streams started per provider over a window, for
// commit: by scope ("" for the global policy, else the region), by provider.
type RoutingStarts map[string]map[string]int64

// RoutingStore persists the routing configuration and counts the starts
// commit holds its shares by.
type RoutingStore interface {
	// GetRouting returns the routing configuration: the default when none
	// was set.
	GetRouting(ctx context.Context) (RoutingConfig, error)
	// UpdateRouting reads the configuration, calls fn on it and, in one
	// transaction, writes what fn returns (validated: EInvalid naming the
	// field) with audit (action routing.update, target "routing") holding
	// the configuration before and after. When fn changes nothing, nothing
	// is written. fn's error is returned as it is.
	UpdateRouting(ctx context.Context, fn func(RoutingConfig) (RoutingConfig, error), audit AuditEntry) (before, after RoutingConfig, err error)
	// CountRoutingStart counts one stream started on provider under the
	// policy of scope ("" global, else a region) at at, in hourly buckets.
	CountRoutingStart(ctx context.Context, scope, provider string, at time.Time) error
	// RoutingStarts returns the starts counted from since on, by scope and
	// provider, and deletes the buckets older than CommitWindow before since
	// (a day of hours is a few rows per provider).
	RoutingStarts(ctx context.Context, since time.Time) (RoutingStarts, error)
}

// String describes e for a decision's reason.
func (e EffectiveRouting) String() string {
	if e.Scope == "" {
		return fmt.Sprintf("policy %s", e.Policy)
	}
	return fmt.Sprintf("policy %s (region %s)", e.Policy, e.Scope)
}
