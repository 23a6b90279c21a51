package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/health"
)

// edgeRegion returns the region of the client's country as the trusted edge
// names it in the configured geo header, mapped through the geo map; "" when
// no header is configured (a header the client set itself is then never
// believed), the request has none or its country maps to no region.
func (s *Server) edgeRegion(r *http.Request) string {
	if s.geoHeader == "" {
		return ""
	}
	region, _ := s.geoMap.Region(r.Header.Get(s.geoHeader))
	return region
}

// regionalCollector reports, at scrape time, whether each provider is usable
// in each region with regional health, and whether that region's reports
// went stale (its agent stopped), so that alerts can watch both.
type regionalCollector struct {
	store sb.Store
	now   func() time.Time
}

var (
	regionalUsableDesc = prometheus.NewDesc("switchboard_provider_regional_usable",
		"1 when the provider may take new streams of the region by its health there (from the server's own probes or a probe agent's), 0 otherwise.",
		[]string{"provider", "region"}, nil)
	regionalStaleDesc = prometheus.NewDesc("switchboard_provider_regional_stale",
		"1 when no probe result came from the region for 3 of the provider's intervals (at least a minute): its agent stopped reporting.",
		[]string{"provider", "region"}, nil)
)

func (c *regionalCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- regionalUsableDesc
	ch <- regionalStaleDesc
}

func (c *regionalCollector) Collect(ch chan<- prometheus.Metric) {
	if c.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	rows, err := c.store.ListRegionalHealth(ctx)
	if err != nil || len(rows) == 0 {
		return
	}
	recs, err := c.store.ListProviders(ctx)
	if err != nil {
		return
	}
	byName := make(map[string]sb.ProviderRecord, len(recs))
	for _, rec := range recs {
		byName[rec.Name] = rec
	}
	now := c.now()
	for _, row := range rows {
		rec, ok := byName[row.Provider]
		if !ok {
			continue
		}
		st, _, stale := health.RegionalStatus(row.Health, rec.HealthCheck, rec.Enabled, now)
		ch <- prometheus.MustNewConstMetric(regionalUsableDesc, prometheus.GaugeValue, boolGauge(st.Usable()), row.Provider, row.Region)
		ch <- prometheus.MustNewConstMetric(regionalStaleDesc, prometheus.GaugeValue, boolGauge(stale), row.Provider, row.Region)
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
