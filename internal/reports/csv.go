package reports

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"
	"time"
)

// WriteCSV writes rows (a header first) as CSV.
func WriteCSV(w io.Writer, rows [][]string) error {
	cw := csv.NewWriter(w)
	if err := cw.WriteAll(rows); err != nil {
		return err
	}
	cw.Flush()
	return cw.Error()
}

// text keeps a spreadsheet from reading a name (a region comes from
// clients) as a formula: one that starts with =, +, -, @, tab or carriage
// return is given a leading apostrophe.
func text(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func optNum(v *float64) string {
	if v == nil {
		return ""
	}
	return num(*v)
}

func count[T ~int | ~int64](v T) string { return strconv.FormatInt(int64(v), 10) }

func optTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Format(time.RFC3339)
}

// Rows returns the SLA report as CSV rows: one per incident (kind
// incident), then one per provider (kind provider), so that one file holds
// both the summary and what it is made of.
func (r SLA) Rows() [][]string {
	rows := [][]string{{"kind", "provider", "start", "end", "cause", "minutes", "streams_affected", "lead_seconds",
		"uptime_percent", "critical_minutes", "incidents", "mttr_minutes", "failovers_out",
		"degradations_predicted", "predicted_incidents", "median_lead_seconds"}}
	for _, p := range r.Providers {
		for _, in := range p.Incidents {
			rows = append(rows, []string{"incident", text(p.Provider), in.Start.Format(time.RFC3339), optTime(in.End), text(in.Cause),
				num(in.Minutes), count(in.StreamsAffected), optNum(in.LeadSeconds), "", "", "", "", "", "", "", ""})
		}
	}
	for _, p := range r.Providers {
		rows = append(rows, []string{"provider", text(p.Provider), r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), "",
			"", count(p.StreamsAffected), "", num(p.UptimePercent), num(p.CriticalMinutes), count(len(p.Incidents)),
			optNum(p.MTTRMinutes), count(p.FailoversOut), count(p.DegradationsPredicted), count(p.PredictedIncidents),
			optNum(p.MedianLeadSeconds)})
	}
	return rows
}

// Rows returns the cost report as CSV rows: one per group, then the total.
func (r Cost) Rows() [][]string {
	rows := [][]string{{r.GroupBy, "minutes", "streams", "cost", "currency", "cost_per_stream", "cost_per_stream_hour",
		"previous_minutes", "previous_streams", "previous_cost", "cost_change_percent"}}
	line := func(key string, f, p CostFigures, chg *float64) []string {
		return []string{text(key), num(f.Minutes), count(f.Streams), num(f.Cost), r.Currency, optNum(f.CostPerStream),
			optNum(f.CostPerStreamHour), num(p.Minutes), count(p.Streams), num(p.Cost), optNum(chg)}
	}
	for _, g := range r.Groups {
		rows = append(rows, line(g.Key, g.CostFigures, g.Previous, g.CostChangePercent))
	}
	return append(rows, line("total", r.Total, r.Previous.Total, change(r.Total.Cost, r.Previous.Total.Cost)))
}

// Rows returns the quality report as CSV rows: one per group, then the
// total.
func (r QualityReport) Rows() [][]string {
	rows := [][]string{{r.GroupBy, "samples", "streams", "score", "mos", "r_factor", "rtt_ms_p50", "rtt_ms_p95",
		"packet_loss_p50", "packet_loss_p95", "jitter_ms_p50", "jitter_ms_p95", "freeze_ratio", "freeze_count",
		"bitrate_kbps", "fps"}}
	line := func(key string, f QualityFigures) []string {
		return []string{text(key), count(f.Samples), count(f.Streams), optNum(f.Score), optNum(f.MOS), optNum(f.RFactor),
			num(f.RTTMs.P50), num(f.RTTMs.P95), num(f.PacketLoss.P50), num(f.PacketLoss.P95), num(f.JitterMs.P50),
			num(f.JitterMs.P95), num(f.FreezeRatio), count(f.FreezeCount), num(f.BitrateKbps), num(f.FPS)}
	}
	for _, g := range r.Groups {
		rows = append(rows, line(g.Key, g.QualityFigures))
	}
	return append(rows, line("total", r.Total))
}
