package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/streams"
)

// The rate limit of quality reports per stream: the SDKs send a batch every
// 30 s and one more before a migration or the end, well inside a report every
// 5 s with bursts of 12.
const (
	qualityEvery = 5 * time.Second
	qualityBurst = 12
)

// decodeQuality reads and checks a quality report received at now; see
// FuzzDecodeQuality.
func decodeQuality(data []byte, now time.Time) (streams.QualityReport, error) {
	var rep streams.QualityReport
	if err := decodeJSON(data, &rep); err != nil {
		return rep, err
	}
	return rep, sb.ValidateQualitySamples(rep.Samples, now)
}

// reportQuality is POST /api/streams/{id}/quality: samples of the caller's
// own stream, 202 once they are in the rollups.
func (s *Server) reportQuality(w http.ResponseWriter, r *http.Request) {
	id, ok := s.streamID(w, r)
	if !ok {
		return
	}
	var raw json.RawMessage
	if err := decode(r, &raw); err != nil {
		s.writeError(w, r, err)
		return
	}
	rep, err := decodeQuality(raw, s.clock.Now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	owner, admin := caller(r)
	provider, region, err := s.streams.QualityTarget(r.Context(), id, owner, admin, rep.Provider)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// Limited after the ownership check, so that nobody can use up the
	// budget of a stream that is not theirs.
	if wait, ok := s.qualityLimits().allow(id); !ok {
		s.writeRateLimited(w, r, wait, "too many quality reports for this stream: retry later")
		return
	}
	if err := s.streams.RecordQuality(r.Context(), id, provider, region, rep.Samples); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// qualityLimits returns the per-stream limiter of quality reports, made on
// first use.
func (s *Server) qualityLimits() *limiterSet {
	s.qualityOnce.Do(func() { s.qualityLim = newLimiterSet(qualityEvery, qualityBurst) })
	return s.qualityLim
}

// qualityView is the quality of one provider in one region: the stats of each
// window and the score of the last hour.
type qualityView struct {
	M5    sb.QualityStats `json:"5m"`
	H1    sb.QualityStats `json:"1h"`
	H24   sb.QualityStats `json:"24h"`
	Score *float64        `json:"score"`
}

// qualityByProvider returns the quality views by provider, then region ("" for
// streams without one).
func qualityByProvider(ctx context.Context, store sb.QualityStore, now time.Time) (map[string]map[string]qualityView, error) {
	out := map[string]map[string]qualityView{}
	for _, w := range sb.QualityWindows {
		totals, err := store.QualityTotals(ctx, now, w.Span)
		if err != nil {
			return nil, err
		}
		for k, t := range totals {
			byRegion := out[k.Provider]
			if byRegion == nil {
				byRegion = map[string]qualityView{}
				out[k.Provider] = byRegion
			}
			v := byRegion[k.Region]
			st := t.Stats()
			switch w.Name {
			case "5m":
				v.M5 = st
			case "1h":
				v.H1 = st
				v.Score = st.Score
			default:
				v.H24 = st
			}
			byRegion[k.Region] = v
		}
	}
	return out, nil
}

// withQuality fills the quality of views.
func (s *Server) withQuality(ctx context.Context, views []providerView) error {
	q, err := qualityByProvider(ctx, s.store, s.clock.Now())
	if err != nil {
		return err
	}
	for i := range views {
		views[i].Quality = q[views[i].Name]
		if views[i].Quality == nil {
			views[i].Quality = map[string]qualityView{}
		}
	}
	return nil
}

// providersQuality is GET /api/streaming/quality: the quality of every
// provider that has samples in the last 24 hours, by region.
func (s *Server) providersQuality(w http.ResponseWriter, r *http.Request) {
	q, err := qualityByProvider(r.Context(), s.store, s.clock.Now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"providers": q, "at": s.clock.Now().UTC()})
}

// qualityCollector reports the quality score of each provider and region
// (of the last hour) at scrape time.
type qualityCollector struct {
	store sb.Store
	now   atomic.Value // func() time.Time; the system clock until a Server sets its own
}

var qualityScoreDesc = prometheus.NewDesc("switchboard_provider_quality_score",
	"Quality score (0-100) of the media clients measured on the provider in the region over the last hour; region is empty for streams without one.",
	[]string{"provider", "region"}, nil)

func (c *qualityCollector) Describe(ch chan<- *prometheus.Desc) { ch <- qualityScoreDesc }

// clock returns the time of the Server's clock, or the system's until a
// Server sets its own.
func (c *qualityCollector) clock() time.Time {
	if f, ok := c.now.Load().(func() time.Time); ok {
		return f()
	}
	return time.Now()
}

func (c *qualityCollector) Collect(ch chan<- prometheus.Metric) {
	if c.store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	now := c.clock()
	totals, err := c.store.QualityTotals(ctx, now, time.Hour)
	if err != nil {
		return
	}
	for k, t := range totals {
		if st := t.Stats(); st.Score != nil {
			ch <- prometheus.MustNewConstMetric(qualityScoreDesc, prometheus.GaugeValue, *st.Score, k.Provider, k.Region)
		}
	}
}
