package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/switchboardhq/switchboard"
)

// routingFlags: routing has no flags of its own.
type routingFlags struct{}

// routingCommand reads and changes the routing policy.
var routingCommand = verbCommand[routingFlags]{
	name: "routing",
	notes: `get shows the routing policy, its shares, weights and margin, and the
per-region overrides. set changes what it names and keeps the rest, e.g.
  switchboard routing set policy=commit shares=agora-main:0.35,zego-main:0.65
  switchboard routing set region.eu-west=optimized region.eu-west.margin=8
  switchboard routing set weights=quality:0.6,latency:0.2,health:0.2,cost:0
  switchboard routing set region.eu-west=-        (removes the override)
Policies: priority (default), balanced, optimized, commit, cost. Keys: policy,
shares, weights, margin, region.R, region.R.shares, region.R.weights,
region.R.margin. Reading needs an admin token, changing a superadmin token.
`,
	flags: func(*routingFlags, *flag.FlagSet) {},
	verbs: []verb[routingFlags]{
		{name: "get", check: checkNoArgs[routingFlags], run: routingGet},
		{name: "set", synopsis: "KEY=VALUE ...", check: checkRoutingSet, run: routingSet},
	},
}

func routingGet(ctx context.Context, v verbCall[routingFlags]) error {
	r, err := v.c.GetRouting(ctx)
	if err != nil {
		return err
	}
	if v.json {
		return printJSON(v.stdout, r.JSON)
	}
	if err := printRouting(v.stdout, r.RoutingConfig); err != nil {
		return err
	}
	return printStarts(v.stdout, r.Starts)
}

// printStarts lists the starts of the last day per scope and provider, with
// each provider's share of its scope.
func printStarts(w io.Writer, starts switchboard.RoutingStarts) error {
	if len(starts) == 0 {
		return nil
	}
	fmt.Fprintln(w)
	tw := newTable(w)
	row(tw, "SCOPE", "PROVIDER", "STARTS (24H)", "SHARE")
	for _, scope := range slices.Sorted(maps.Keys(starts)) {
		var total int64
		for _, n := range starts[scope] {
			total += n
		}
		name := "global"
		if scope != "" {
			name = "region " + scope
		}
		for _, p := range slices.Sorted(maps.Keys(starts[scope])) {
			n := starts[scope][p]
			row(tw, name, p, strconv.FormatInt(n, 10), fmt.Sprintf("%.1f %%", 100*float64(n)/float64(max(total, 1))))
		}
	}
	return tw.Flush()
}

func checkRoutingSet(v verbCall[routingFlags]) error {
	if len(v.args) == 0 {
		return usageError{msg: "usage: switchboard " + v.cmd + " " + v.synopsis}
	}
	if err := v.checkFlags(); err != nil {
		return err
	}
	_, err := parseRouting(v.args)
	return err
}

func routingSet(ctx context.Context, v verbCall[routingFlags]) error {
	in, err := parseRouting(v.args)
	if err != nil {
		return err
	}
	r, err := v.c.UpdateRouting(ctx, in)
	if err != nil {
		return err
	}
	if v.json {
		return printJSON(v.stdout, r.JSON)
	}
	return printRouting(v.stdout, r.RoutingConfig)
}

// parseRouting reads KEY=VALUE arguments into a partial update. The server
// checks the values; this checks only their form.
func parseRouting(args []string) (switchboard.RoutingInput, error) {
	var in switchboard.RoutingInput
	seen := map[string]bool{}
	bad := func(format string, a ...any) (switchboard.RoutingInput, error) {
		return in, usageError{msg: "routing set: " + fmt.Sprintf(format, a...)}
	}
	region := func(name string) *switchboard.RegionRouting {
		if in.Regions == nil {
			in.Regions = map[string]*switchboard.RegionRouting{}
		}
		if in.Regions[name] == nil {
			in.Regions[name] = &switchboard.RegionRouting{}
		}
		return in.Regions[name]
	}
	var removed []string
	for _, a := range args {
		key, val, ok := strings.Cut(a, "=")
		if !ok || key == "" {
			return bad("%q: want KEY=VALUE", a)
		}
		if seen[key] {
			return bad("%s given twice", key)
		}
		seen[key] = true
		switch {
		case key == "policy":
			p := switchboard.RoutingPolicy(val)
			in.Policy = &p
		case key == "shares":
			s, err := parsePairs(val)
			if err != nil {
				return bad("shares=%s: %v", val, err)
			}
			in.Shares = &s
		case key == "weights":
			w, err := parseWeights(val)
			if err != nil {
				return bad("weights=%s: %v", val, err)
			}
			in.Weights = &w
		case key == "margin":
			m, err := strconv.ParseFloat(val, 64)
			if err != nil {
				return bad("margin=%s: must be a number", val)
			}
			in.Margin = &m
		case strings.HasPrefix(key, "region."):
			name, field, _ := strings.Cut(strings.TrimPrefix(key, "region."), ".")
			if name == "" {
				return bad("%s: want region.NAME", key)
			}
			switch field {
			case "":
				if val == "-" {
					removed = append(removed, name)
					continue
				}
				region(name).Policy = switchboard.RoutingPolicy(val)
			case "shares":
				s, err := parsePairs(val)
				if err != nil {
					return bad("%s=%s: %v", key, val, err)
				}
				region(name).Shares = s
			case "weights":
				w, err := parseWeights(val)
				if err != nil {
					return bad("%s=%s: %v", key, val, err)
				}
				region(name).Weights = &w
			case "margin":
				m, err := strconv.ParseFloat(val, 64)
				if err != nil {
					return bad("%s=%s: must be a number", key, val)
				}
				region(name).Margin = &m
			default:
				return bad("unknown key %s (want region.NAME, region.NAME.shares, region.NAME.weights or region.NAME.margin)", key)
			}
		default:
			return bad("unknown key %s (want policy, shares, weights, margin or region.NAME)", key)
		}
	}
	for _, name := range removed {
		if r := in.Regions[name]; r != nil {
			return bad("region.%s is removed and set at once", name)
		}
		if in.Regions == nil {
			in.Regions = map[string]*switchboard.RegionRouting{}
		}
		in.Regions[name] = nil
	}
	for name, r := range in.Regions {
		if r != nil && r.Policy == "" {
			return bad("region.%s needs its policy: region.%s=POLICY", name, name)
		}
	}
	return in, nil
}

// parsePairs reads NAME:NUMBER,NAME:NUMBER; an empty value is no pairs.
func parsePairs(s string) (map[string]float64, error) {
	out := map[string]float64{}
	if s == "" {
		return out, nil
	}
	for _, p := range strings.Split(s, ",") {
		name, num, ok := strings.Cut(p, ":")
		v, err := strconv.ParseFloat(num, 64)
		if !ok || name == "" || err != nil {
			return nil, fmt.Errorf("%q: want NAME:NUMBER", p)
		}
		out[name] = v
	}
	return out, nil
}

// parseWeights reads quality:W,latency:W,health:W,cost:W; the parts left out
// are 0.
func parseWeights(s string) (switchboard.RoutingWeights, error) {
	var w switchboard.RoutingWeights
	pairs, err := parsePairs(s)
	if err != nil {
		return w, err
	}
	for k, v := range pairs {
		switch k {
		case "quality":
			w.Quality = v
		case "latency":
			w.Latency = v
		case "health":
			w.Health = v
		case "cost":
			w.Cost = v
		default:
			return w, fmt.Errorf("unknown weight %s (want quality, latency, health or cost)", k)
		}
	}
	return w, nil
}

func printRouting(w io.Writer, c switchboard.RoutingConfig) error {
	tw := newTable(w)
	row(tw, "SCOPE", "POLICY", "SHARES", "WEIGHTS", "MARGIN")
	row(tw, "global", string(c.Policy), formatShares(c.Shares), formatWeights(c.Weights), strconv.FormatFloat(c.Margin, 'g', -1, 64))
	for _, name := range slices.Sorted(maps.Keys(c.Regions)) {
		r := c.Regions[name]
		shares, weights, margin := "(global)", "(global)", "(global)"
		if len(r.Shares) > 0 {
			shares = formatShares(r.Shares)
		}
		if r.Weights != nil {
			weights = formatWeights(*r.Weights)
		}
		if r.Margin != nil {
			margin = strconv.FormatFloat(*r.Margin, 'g', -1, 64)
		}
		row(tw, "region "+name, string(r.Policy), shares, weights, margin)
	}
	return tw.Flush()
}

func formatShares(s map[string]float64) string {
	if len(s) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(s))
	for _, n := range slices.Sorted(maps.Keys(s)) {
		parts = append(parts, n+":"+strconv.FormatFloat(s[n], 'g', -1, 64))
	}
	return strings.Join(parts, ",")
}

func formatWeights(w switchboard.RoutingWeights) string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	return "quality:" + f(w.Quality) + ",latency:" + f(w.Latency) + ",health:" + f(w.Health) + ",cost:" + f(w.Cost)
}
