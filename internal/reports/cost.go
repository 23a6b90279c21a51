package reports

import (
	"cmp"
	"context"
	"slices"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// Cost is the cost report of a period, grouped by one dimension and
// compared with the period of equal length just before it.
type Cost struct {
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	GroupBy string    `json:"groupBy"`
	// Currency is the providers' currency; "mixed" when they are priced in
	// several, whose costs are then summed as they are.
	Currency string      `json:"currency"`
	Groups   []CostGroup `json:"groups"`
	Total    CostFigures `json:"total"`
	Previous Period      `json:"previous"`
}

// Period is the previous period's bounds and total.
type Period struct {
	From  time.Time   `json:"from"`
	To    time.Time   `json:"to"`
	Total CostFigures `json:"total"`
}

// CostGroup is one group's figures and the same group's in the previous
// period (for a day, the day one period earlier).
type CostGroup struct {
	// Key is the provider, the region ("" for streams without one), the
	// quality tier or the UTC day (YYYY-MM-DD).
	Key string `json:"key"`
	CostFigures
	Previous CostFigures `json:"previous"`
	// CostChangePercent is the change of cost from the previous period; nil
	// when the previous cost was 0.
	CostChangePercent *float64 `json:"costChangePercent"`
}

// CostFigures are the usage and cost of a group. A stream counts once in
// each group it had stream time in (a stream that moved counts for each
// provider, one that ran over midnight for each day), once in the total.
type CostFigures struct {
	Minutes float64 `json:"minutes"`
	Streams int64   `json:"streams"`
	Cost    float64 `json:"cost"`
	// CostPerStream and CostPerStreamHour are nil without streams or
	// stream time.
	CostPerStream     *float64 `json:"costPerStream"`
	CostPerStreamHour *float64 `json:"costPerStreamHour"`
}

// cellKey is the finest grain of the usage: provider, region, tier and day.
type cellKey struct {
	provider, region string
	quality          sb.Quality
	day              time.Time
}

// cell is the usage of one cellKey.
type cell struct {
	seconds float64
	streams int64               // streams that never moved, each in one cell
	pieces  map[string]struct{} // the others, by id
	cents   int64               // its cost, priced once
}

// tally is the figures of a group as they are summed.
type tally struct {
	seconds float64
	streams int64
	ids     map[string]struct{}
	cents   int64
}

func (t *tally) add(c *cell) {
	t.seconds += c.seconds
	t.streams += c.streams
	t.cents += c.cents
	for id := range c.pieces {
		if t.ids == nil {
			t.ids = map[string]struct{}{}
		}
		t.ids[id] = struct{}{}
	}
}

func (t *tally) figures() CostFigures {
	f := CostFigures{Minutes: sb.Round2(t.seconds / 60), Streams: t.streams + int64(len(t.ids)), Cost: float64(t.cents) / 100}
	if f.Streams > 0 {
		f.CostPerStream = ptr(round4(f.Cost / float64(f.Streams)))
	}
	if t.seconds > 0 {
		f.CostPerStreamHour = ptr(round4(f.Cost / (t.seconds / 3600)))
	}
	return f
}

// BuildCost computes the cost report of [from, to) grouped by groupBy,
// pricing the usage at the providers' current pricing (as the stats and
// the monthly rollup do). Each cell of provider, region, tier and day is
// priced once and rounded to the cent, so that the groups of any dimension
// add up to the total exactly. A deleted provider's usage costs nothing.
func BuildCost(ctx context.Context, st Store, groupBy string, from, to time.Time) (Cost, error) {
	rep := Cost{From: from, To: to, GroupBy: groupBy, Groups: []CostGroup{}}
	recs, err := st.ListProviders(ctx)
	if err != nil {
		return rep, err
	}
	pricing := map[string]sb.Pricing{}
	currencies := map[string]bool{}
	for _, r := range recs {
		pricing[r.Name] = r.Pricing
		currencies[r.Pricing.Currency] = true
	}
	switch len(currencies) {
	case 0:
		rep.Currency = "USD"
	case 1:
		for c := range currencies {
			rep.Currency = c
		}
	default:
		rep.Currency = "mixed"
	}
	prevFrom := from.Add(-to.Sub(from))
	cur, err := usageCells(ctx, st, pricing, from, to, groupBy == ByRegion)
	if err != nil {
		return rep, err
	}
	prev, err := usageCells(ctx, st, pricing, prevFrom, from, groupBy == ByRegion)
	if err != nil {
		return rep, err
	}
	curG, curT := group(cur, groupBy, 0)
	// A day is compared with the day one period earlier.
	prevG, prevT := group(prev, groupBy, to.Sub(from))
	keys := make([]string, 0, len(curG))
	for k := range curG {
		keys = append(keys, k)
	}
	for k := range prevG {
		if _, ok := curG[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		g := CostGroup{Key: k, Previous: (&tally{}).figures()}
		if t := curG[k]; t != nil {
			g.CostFigures = t.figures()
		} else {
			g.CostFigures = (&tally{}).figures()
		}
		if t := prevG[k]; t != nil {
			g.Previous = t.figures()
		}
		g.CostChangePercent = change(g.Cost, g.Previous.Cost)
		rep.Groups = append(rep.Groups, g)
	}
	if groupBy != ByDay { // the biggest spend first
		slices.SortStableFunc(rep.Groups, func(a, b CostGroup) int { return cmp.Compare(b.Cost, a.Cost) })
	}
	rep.Total = curT.figures()
	rep.Previous = Period{From: prevFrom, To: from, Total: prevT.figures()}
	return rep, nil
}

// change is the change from prev to cur in percent; nil when prev is 0.
func change(cur, prev float64) *float64 {
	if prev == 0 {
		return nil
	}
	return ptr(sb.Round2((cur - prev) / prev * 100))
}

// usageCells reads the usage of [from, to) into priced cells (by region
// too when byRegion).
func usageCells(ctx context.Context, st Store, pricing map[string]sb.Pricing, from, to time.Time, byRegion bool) (map[cellKey]*cell, error) {
	b, err := st.UsageBreakdown(ctx, from, to, byRegion)
	if err != nil {
		return nil, err
	}
	cells := map[cellKey]*cell{}
	of := func(k cellKey) *cell {
		c := cells[k]
		if c == nil {
			c = &cell{}
			cells[k] = c
		}
		return c
	}
	for _, u := range b.Cells {
		c := of(cellKey{u.Provider, u.Region, u.Quality, u.Day})
		c.seconds += u.Seconds
		c.streams += u.Streams
	}
	for _, p := range b.Pieces {
		c := of(cellKey{p.Provider, p.Region, p.Quality, p.Day})
		c.seconds += p.Seconds
		if c.pieces == nil {
			c.pieces = map[string]struct{}{}
		}
		c.pieces[p.StreamID] = struct{}{}
	}
	for k, c := range cells {
		c.cents = int64(pricing[k.provider].Cost(map[sb.Quality]float64{k.quality: c.seconds / 60})*100 + 0.5)
	}
	return cells, nil
}

// group sums cells by the dimension, and in all; days are keyed shift
// later.
func group(cells map[cellKey]*cell, by string, shift time.Duration) (map[string]*tally, *tally) {
	out := map[string]*tally{}
	total := &tally{}
	for k, c := range cells {
		var key string
		switch by {
		case ByProvider:
			key = k.provider
		case ByRegion:
			key = k.region
		case ByQuality:
			key = string(k.quality)
		default:
			key = k.day.Add(shift).UTC().Format(time.DateOnly)
		}
		t := out[key]
		if t == nil {
			t = &tally{}
			out[key] = t
		}
		t.add(c)
		total.add(c)
	}
	return out, total
}
