package reports

import (
	"context"
	"math"
	"slices"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// SLA is the report of one month: per provider, the time it was CRITICAL,
// its incidents and what they cost in streams, and how early the
// degradation detector saw them coming.
type SLA struct {
	Month string    `json:"month"`
	From  time.Time `json:"from"`
	// To is the end of the month, or now for the current month.
	To        time.Time     `json:"to"`
	Providers []ProviderSLA `json:"providers"`
}

// ProviderSLA is one provider's line of the SLA report.
type ProviderSLA struct {
	Provider string `json:"provider"`
	// UptimePercent is the share of the period the provider was not
	// CRITICAL: 100 × (1 − criticalMinutes / periodMinutes).
	UptimePercent   float64 `json:"uptimePercent"`
	PeriodMinutes   float64 `json:"periodMinutes"`
	CriticalMinutes float64 `json:"criticalMinutes"`
	// Incidents are the CRITICAL periods that overlap the month, oldest
	// first.
	Incidents []Incident `json:"incidents"`
	// MTTRMinutes is the mean length of the incidents that ended within the
	// month (their whole length); nil without any.
	MTTRMinutes *float64 `json:"mttrMinutes"`
	// FailoversOut counts the streams moved away from the provider in the
	// month, for any reason.
	FailoversOut int64 `json:"failoversOut"`
	// StreamsAffected is the sum of the incidents' streams affected.
	StreamsAffected int64 `json:"streamsAffected"`
	// Degradations are the periods the detector flagged the provider as
	// degrading, with the CRITICAL that followed, if any.
	Degradations []Prediction `json:"degradations"`
	// DegradationsPredicted counts them; PredictedIncidents counts the
	// incidents that one of them preceded within PredictionHorizon.
	DegradationsPredicted int `json:"degradationsPredicted"`
	PredictedIncidents    int `json:"predictedIncidents"`
	// MedianLeadSeconds is the median lead of the predicted incidents; nil
	// without any.
	MedianLeadSeconds *float64 `json:"medianLeadSeconds"`
}

// Incident is one CRITICAL period of a provider.
type Incident struct {
	Start time.Time `json:"start"`
	// End is when the provider left CRITICAL; nil while it is still
	// CRITICAL.
	End *time.Time `json:"end"`
	// Minutes is the part of the incident within the report's period.
	Minutes float64 `json:"minutes"`
	// Cause is the reason of the transition into CRITICAL.
	Cause string `json:"cause"`
	// StreamsAffected counts the streams that were on the provider during
	// the incident.
	StreamsAffected int64 `json:"streamsAffected"`
	// LeadSeconds is how long before its start the detector raised
	// degrading (the earliest such degradation within PredictionHorizon);
	// nil when nothing predicted it.
	LeadSeconds *float64 `json:"leadSeconds"`
}

// Prediction is one stored degradation and the CRITICAL it preceded.
type Prediction struct {
	Start    time.Time                `json:"start"`
	End      *time.Time               `json:"end"`
	Evidence []sb.DegradationEvidence `json:"evidence"`
	// CriticalAt is the start of the first incident within
	// PredictionHorizon of Start; nil when none followed (a false alarm, or
	// one that steering traffic away made moot).
	CriticalAt  *time.Time `json:"criticalAt"`
	LeadSeconds *float64   `json:"leadSeconds"`
}

// BuildSLA computes the SLA report of month [from, to).
func BuildSLA(ctx context.Context, st Store, month string, from, to time.Time) (SLA, error) {
	rep := SLA{Month: month, From: from, To: to, Providers: []ProviderSLA{}}
	recs, err := st.ListProviders(ctx)
	if err != nil {
		return rep, err
	}
	history, err := st.StatusHistory(ctx, from, to)
	if err != nil {
		return rep, err
	}
	degs, err := st.Degradations(ctx, from, to)
	if err != nil {
		return rep, err
	}
	outs, err := st.FailoversOut(ctx, from, to)
	if err != nil {
		return rep, err
	}
	names := map[string]bool{}
	for _, r := range recs {
		names[r.Name] = true
	}
	for _, t := range history {
		names[t.Provider] = true
	}
	for _, d := range degs {
		names[d.Provider] = true
	}
	for n := range outs {
		names[n] = true
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	slices.Sort(sorted)
	for _, name := range sorted {
		var trs []sb.Transition
		for _, t := range history {
			if t.Provider == name {
				trs = append(trs, t)
			}
		}
		var ds []sb.DegradationRecord
		for _, d := range degs {
			if d.Provider == name {
				ds = append(ds, d)
			}
		}
		p := ProviderSLA{Provider: name, FailoversOut: outs[name]}
		p.Incidents = Incidents(trs, from, to)
		periods := make([]sb.TimeRange, len(p.Incidents))
		for i, in := range p.Incidents {
			end := to
			if in.End != nil {
				end = *in.End
			}
			periods[i] = sb.TimeRange{From: in.Start, To: maxTime(end, in.Start.Add(time.Nanosecond))}
		}
		counts, err := st.StreamsDuring(ctx, name, periods)
		if err != nil {
			return rep, err
		}
		for i := range p.Incidents {
			p.Incidents[i].StreamsAffected = counts[i]
			p.StreamsAffected += counts[i]
		}
		p.Degradations = Predictions(ds, p.Incidents)
		summarize(&p, from, to)
		rep.Providers = append(rep.Providers, p)
	}
	return rep, nil
}

// Incidents returns the CRITICAL periods of one provider's status history
// (oldest first, starting with its last transition before from) that
// overlap [from, to), with their minutes within it. StreamsAffected and
// LeadSeconds are left for the caller.
func Incidents(trs []sb.Transition, from, to time.Time) []Incident {
	out := []Incident{}
	var cur *Incident
	for _, t := range trs {
		switch {
		case t.To == sb.StatusCritical && cur == nil:
			cur = &Incident{Start: t.At, Cause: t.Reason}
		case t.To != sb.StatusCritical && cur != nil:
			end := t.At
			cur.End = &end
			if end.After(from) {
				out = append(out, *cur)
			}
			cur = nil
		}
	}
	if cur != nil {
		out = append(out, *cur)
	}
	for i := range out {
		end := to
		if out[i].End != nil {
			end = minTime(*out[i].End, to)
		}
		if m := end.Sub(maxTime(out[i].Start, from)); m > 0 {
			out[i].Minutes = m.Minutes()
		}
	}
	return out
}

// Predictions pairs each degradation with the first incident that started
// at or after it, within PredictionHorizon, and gives each incident so
// predicted its longest lead.
func Predictions(ds []sb.DegradationRecord, incidents []Incident) []Prediction {
	out := make([]Prediction, 0, len(ds))
	for _, d := range ds {
		p := Prediction{Start: d.StartedAt, End: d.EndedAt, Evidence: d.Evidence}
		if p.Evidence == nil {
			p.Evidence = []sb.DegradationEvidence{}
		}
		for i := range incidents {
			in := &incidents[i]
			lead := in.Start.Sub(d.StartedAt)
			if lead < 0 || lead > PredictionHorizon {
				continue
			}
			s := lead.Seconds()
			p.CriticalAt, p.LeadSeconds = ptr(in.Start), ptr(s)
			if in.LeadSeconds == nil || *in.LeadSeconds < s {
				in.LeadSeconds = ptr(s)
			}
			break
		}
		out = append(out, p)
	}
	return out
}

// summarize fills p's totals from its incidents and predictions.
func summarize(p *ProviderSLA, from, to time.Time) {
	p.PeriodMinutes = sb.Round2(to.Sub(from).Minutes())
	var critical, repaired float64
	var ended int
	var leads []float64
	for i := range p.Incidents {
		in := &p.Incidents[i]
		critical += in.Minutes
		if in.End != nil && !in.End.After(to) {
			repaired += in.End.Sub(in.Start).Minutes()
			ended++
		}
		if in.LeadSeconds != nil {
			p.PredictedIncidents++
			leads = append(leads, *in.LeadSeconds)
		}
		in.Minutes = sb.Round2(in.Minutes)
	}
	p.CriticalMinutes = sb.Round2(critical)
	p.UptimePercent = 100
	if total := to.Sub(from).Minutes(); total > 0 {
		p.UptimePercent = round4(100 * (1 - critical/total))
	}
	if ended > 0 {
		p.MTTRMinutes = ptr(sb.Round2(repaired / float64(ended)))
	}
	p.DegradationsPredicted = len(p.Degradations)
	if len(leads) > 0 {
		slices.Sort(leads)
		m := leads[len(leads)/2]
		if len(leads)%2 == 0 {
			m = (leads[len(leads)/2-1] + leads[len(leads)/2]) / 2
		}
		p.MedianLeadSeconds = ptr(m)
	}
}

func round4(x float64) float64 { return math.Round(x*1e4) / 1e4 }
