package reports

import (
	"cmp"
	"context"
	"slices"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// QualityReport is the quality of the streams that reported it over a
// period, grouped by provider or region.
type QualityReport struct {
	From    time.Time      `json:"from"`
	To      time.Time      `json:"to"`
	GroupBy string         `json:"groupBy"`
	Groups  []QualityGroup `json:"groups"`
	Total   QualityFigures `json:"total"`
}

// QualityGroup is one provider's or region's quality.
type QualityGroup struct {
	Key string `json:"key"`
	QualityFigures
}

// QualityFigures are the quality stats of a group (the score and its parts,
// as the quality telemetry computes them) and the satisfaction estimated
// from them: the E-model's R factor of the audio and its mean opinion score.
type QualityFigures struct {
	sb.QualityStats
	// RFactor and MOS are nil without samples.
	RFactor *float64 `json:"rFactor"`
	MOS     *float64 `json:"mos"`
}

// BuildQuality computes the quality report of [from, to) (whole hours: the
// hourly rollups) grouped by provider or region.
func BuildQuality(ctx context.Context, st Store, groupBy string, from, to time.Time) (QualityReport, error) {
	rep := QualityReport{From: from, To: to, GroupBy: groupBy, Groups: []QualityGroup{}}
	totals, err := st.QualityBetween(ctx, from, to)
	if err != nil {
		return rep, err
	}
	groups := map[string]*sb.QualityTotals{}
	all := &sb.QualityTotals{}
	for k, t := range totals {
		key := k.Provider
		if groupBy == ByRegion {
			key = k.Region
		}
		g := groups[key]
		if g == nil {
			g = &sb.QualityTotals{}
			groups[key] = g
		}
		merge(g, t)
		merge(all, t)
	}
	for k, t := range groups {
		rep.Groups = append(rep.Groups, QualityGroup{Key: k, QualityFigures: Figures(*t)})
	}
	slices.SortFunc(rep.Groups, func(a, b QualityGroup) int { return cmp.Compare(a.Key, b.Key) })
	rep.Total = Figures(*all)
	return rep, nil
}

// merge adds t to into.
func merge(into *sb.QualityTotals, t sb.QualityTotals) {
	into.Samples += t.Samples
	into.VideoSamples += t.VideoSamples
	into.Streams += t.Streams
	into.LossSum += t.LossSum
	into.FreezeCount += t.FreezeCount
	into.FreezeMs += t.FreezeMs
	into.BitrateSum += t.BitrateSum
	into.FPSSum += t.FPSSum
	for m, h := range t.Histograms {
		if into.Histograms == nil {
			into.Histograms = map[string]sb.QualityHistogram{}
		}
		dst := into.Histograms[m]
		if dst == nil {
			dst = sb.QualityHistogram{}
			into.Histograms[m] = dst
		}
		for b, n := range h {
			dst[b] += n
		}
	}
}

// Figures derives the stats, R factor and MOS of t.
func Figures(t sb.QualityTotals) QualityFigures {
	f := QualityFigures{QualityStats: t.Stats()}
	if t.Samples == 0 {
		return f
	}
	r := sb.EModelR(sb.QualityInputs{RTTMs: f.RTTMs.P50, JitterMs: f.JitterMs.P50, PacketLoss: t.LossSum / float64(t.Samples)})
	f.RFactor, f.MOS = ptr(sb.Round2(r)), ptr(sb.MOS(r))
	return f
}
