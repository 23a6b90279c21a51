package streams

import (
	"context"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// ProviderStats is one provider's line of GET /api/streaming/stats.
type ProviderStats struct {
	Name              string    `json:"name"`
	Status            sb.Status `json:"status"`
	ActiveStreams     int64     `json:"activeStreams"`
	TotalStreams      int64     `json:"totalStreams"`
	MinutesThisMonth  float64   `json:"minutesThisMonth"`
	MonthlyCost       float64   `json:"monthlyCost"`
	Currency          string    `json:"currency"`
	MonthlyBudget     float64   `json:"monthlyBudget"`
	BudgetUsedPercent *float64  `json:"budgetUsedPercent"`
	FailoversIn       int64     `json:"failoversIn"`
	FailoversOut      int64     `json:"failoversOut"`
	ErrorRate         float64   `json:"errorRate"`
	// Minutes are the minutes per quality tier that MinutesThisMonth and
	// MonthlyCost are made of. They are not served.
	Minutes map[sb.Quality]float64 `json:"-"`
}

// UsageStore is what StatsAt reads: the registry and the streams' usage.
type UsageStore interface {
	ListProviders(ctx context.Context) ([]sb.ProviderRecord, error)
	Usage(ctx context.Context, from, to time.Time) ([]sb.ProviderUsage, error)
}

// Stats returns every provider's streams, usage and cost this month.
func (s *Service) Stats(ctx context.Context) ([]ProviderStats, error) {
	now := s.clock.Now()
	return StatsAt(ctx, s.store, sb.MonthStart(now), now)
}

// StatsAt computes the stats of every registered provider over [from, to),
// pricing its usage at its current pricing.
func StatsAt(ctx context.Context, st UsageStore, from, to time.Time) ([]ProviderStats, error) {
	recs, err := st.ListProviders(ctx)
	if err != nil {
		return nil, err
	}
	us, err := st.Usage(ctx, from, to)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]sb.ProviderUsage, len(us))
	for _, u := range us {
		byName[u.Provider] = u
	}
	out := make([]ProviderStats, 0, len(recs))
	for _, r := range recs {
		u := byName[r.Name]
		mins := u.Minutes()
		var total float64
		for _, m := range mins {
			total += m
		}
		ps := ProviderStats{
			Name: r.Name, Status: r.Health.Status, ActiveStreams: u.ActiveStreams, TotalStreams: u.TotalStreams,
			MinutesThisMonth: sb.Round2(total), MonthlyCost: r.Pricing.Cost(mins), Currency: r.Pricing.Currency,
			MonthlyBudget: r.MonthlyBudget, FailoversIn: u.FailoversIn, FailoversOut: u.FailoversOut,
			ErrorRate: sb.Round2(r.Health.RecentErrorRate()), Minutes: mins,
		}
		if r.MonthlyBudget > 0 {
			p := sb.Round2(ps.MonthlyCost / r.MonthlyBudget * 100)
			ps.BudgetUsedPercent = &p
		}
		out = append(out, ps)
	}
	return out, nil
}
