package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/switchboardhq/switchboard/internal/reports"
)

// reportsFlags are the flags of the reports verbs.
type reportsFlags struct {
	month, from, to, groupBy string
	csv                      bool
}

// reportsCommand reads the SLA, cost and quality reports.
var reportsCommand = verbCommand[reportsFlags]{
	name: "reports",
	notes: `sla reports a month (default the current one, up to now) per provider: uptime,
incidents and their time CRITICAL, mean time to repair, failovers out, streams
affected and the degradations predicted with their lead. cost reports minutes,
streams and cost over a period (default this month) grouped by provider,
region, quality or day, against the period of equal length before it.
quality reports the quality score and the estimated mean opinion score by
provider or region. --from and --to are RFC 3339 times or dates
(YYYY-MM-DD, midnight UTC). --csv prints the report as CSV (as the API's
format=csv). Needs an admin token.
`,
	flags: (*reportsFlags).register,
	verbs: []verb[reportsFlags]{
		{name: "sla", synopsis: "[--month YYYY-MM] [--csv]", check: checkReport("month", "csv"), run: reportSLA},
		{name: "cost", synopsis: "[--from T] [--to T] [--group-by provider|region|quality|day] [--csv]",
			check: checkReport("from", "to", "group-by", "csv"), run: reportCost},
		{name: "quality", synopsis: "[--from T] [--to T] [--group-by provider|region] [--csv]",
			check: checkReport("from", "to", "group-by", "csv"), run: reportQuality},
	},
}

func (f *reportsFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.month, "month", "", "the month of the SLA report, YYYY-MM (default the current one)")
	fs.StringVar(&f.from, "from", "", "start of the period, RFC 3339 or YYYY-MM-DD (default the start of this month)")
	fs.StringVar(&f.to, "to", "", "end of the period, excluded (default now)")
	fs.StringVar(&f.groupBy, "group-by", "", "cost: provider, region, quality or day; quality: provider or region (default provider)")
	fs.BoolVar(&f.csv, "csv", false, "print CSV")
}

// checkReport checks that a report verb has no arguments and only the flags
// allowed, and that --csv and -o json are not both asked for.
func checkReport(allowed ...string) func(v verbCall[reportsFlags]) error {
	return func(v verbCall[reportsFlags]) error {
		if err := v.wantArgs(0); err != nil {
			return err
		}
		if err := v.checkFlags(allowed...); err != nil {
			return err
		}
		if v.flags.csv && v.json {
			return usageError{msg: "--csv and -o json do not go together"}
		}
		return nil
	}
}

// getReport reads a report into out, keeping its JSON as received.
func getReport(ctx context.Context, v verbCall[reportsFlags], kind string, q url.Values, out any) (json.RawMessage, error) {
	path := "/api/reports/" + kind
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var raw json.RawMessage
	if err := v.c.Do(ctx, http.MethodGet, path, nil, &raw); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return nil, fmt.Errorf("GET %s: decode answer: %w", path, err)
	}
	return raw, nil
}

// periodQuery is the query of a cost or quality report.
func periodQuery(f *reportsFlags) url.Values {
	q := url.Values{}
	for k, val := range map[string]string{"from": f.from, "to": f.to, "groupBy": f.groupBy} {
		if val != "" {
			q.Set(k, val)
		}
	}
	return q
}

func reportSLA(ctx context.Context, v verbCall[reportsFlags]) error {
	q := url.Values{}
	if v.flags.month != "" {
		q.Set("month", v.flags.month)
	}
	var rep reports.SLA
	raw, err := getReport(ctx, v, "sla", q, &rep)
	switch {
	case err != nil:
		return err
	case v.json:
		return printJSON(v.stdout, raw)
	case v.flags.csv:
		return reports.WriteCSV(v.stdout, rep.Rows())
	}
	tw := newTable(v.stdout)
	row(tw, "PROVIDER", "UPTIME", "INCIDENTS", "CRITICAL", "MTTR", "FAILOVERS OUT", "STREAMS AFFECTED", "PREDICTED", "MEDIAN LEAD")
	for _, p := range rep.Providers {
		row(tw, p.Provider, fmt.Sprintf("%.3f%%", p.UptimePercent), strconv.Itoa(len(p.Incidents)), minutes(p.CriticalMinutes),
			optMinutes(p.MTTRMinutes), strconv.FormatInt(p.FailoversOut, 10), strconv.FormatInt(p.StreamsAffected, 10),
			fmt.Sprintf("%d/%d", p.PredictedIncidents, len(p.Incidents)), optSeconds(p.MedianLeadSeconds))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(v.stderr, "Month %s, %s to %s. PREDICTED: incidents a degradation preceded.\n", rep.Month,
		rep.From.Format("2006-01-02 15:04"), rep.To.Format("2006-01-02 15:04 MST"))
	return nil
}

func reportCost(ctx context.Context, v verbCall[reportsFlags]) error {
	var rep reports.Cost
	raw, err := getReport(ctx, v, "cost", periodQuery(v.flags), &rep)
	switch {
	case err != nil:
		return err
	case v.json:
		return printJSON(v.stdout, raw)
	case v.flags.csv:
		return reports.WriteCSV(v.stdout, rep.Rows())
	}
	tw := newTable(v.stdout)
	row(tw, upper(rep.GroupBy), "MINUTES", "STREAMS", "COST", "PER STREAM", "PER STREAM-HOUR", "PREVIOUS", "CHANGE")
	line := func(key string, f reports.CostFigures, prev reports.CostFigures, chg *float64) {
		row(tw, key, fmt.Sprintf("%.0f", f.Minutes), strconv.FormatInt(f.Streams, 10), money(f.Cost, rep.Currency),
			optMoney(f.CostPerStream, 4), optMoney(f.CostPerStreamHour, 4), money(prev.Cost, rep.Currency), optPercent(chg))
	}
	for _, g := range rep.Groups {
		key := g.Key
		if key == "" {
			key = "(none)"
		}
		line(key, g.CostFigures, g.Previous, g.CostChangePercent)
	}
	var chg *float64
	if p := rep.Previous.Total.Cost; p != 0 {
		c := (rep.Total.Cost - p) / p * 100
		chg = &c
	}
	line("TOTAL", rep.Total, rep.Previous.Total, chg)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(v.stderr, "%s to %s, against %s to %s.\n", rep.From.Format("2006-01-02 15:04"), rep.To.Format("2006-01-02 15:04"),
		rep.Previous.From.Format("2006-01-02 15:04"), rep.Previous.To.Format("2006-01-02 15:04 MST"))
	return nil
}

func reportQuality(ctx context.Context, v verbCall[reportsFlags]) error {
	var rep reports.QualityReport
	raw, err := getReport(ctx, v, "quality", periodQuery(v.flags), &rep)
	switch {
	case err != nil:
		return err
	case v.json:
		return printJSON(v.stdout, raw)
	case v.flags.csv:
		return reports.WriteCSV(v.stdout, rep.Rows())
	}
	tw := newTable(v.stdout)
	row(tw, upper(rep.GroupBy), "SAMPLES", "STREAMS", "SCORE", "MOS", "RTT P50", "LOSS P50", "JITTER P50", "FREEZE")
	line := func(key string, f reports.QualityFigures) {
		row(tw, key, strconv.FormatInt(f.Samples, 10), strconv.FormatInt(f.Streams, 10), optNum(f.Score, 1), optNum(f.MOS, 2),
			fmt.Sprintf("%.0f ms", f.RTTMs.P50), fmt.Sprintf("%.2f%%", f.PacketLoss.P50*100), fmt.Sprintf("%.0f ms", f.JitterMs.P50),
			fmt.Sprintf("%.2f%%", f.FreezeRatio*100))
	}
	for _, g := range rep.Groups {
		key := g.Key
		if key == "" {
			key = "(none)"
		}
		line(key, g.QualityFigures)
	}
	line("TOTAL", rep.Total)
	return tw.Flush()
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

func minutes(m float64) string { return fmt.Sprintf("%.1f min", m) }

func optMinutes(m *float64) string {
	if m == nil {
		return "-"
	}
	return minutes(*m)
}

func optSeconds(s *float64) string {
	if s == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f s", *s)
}

func money(v float64, currency string) string { return fmt.Sprintf("%.2f %s", v, currency) }

func optMoney(v *float64, places int) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', places, 64)
}

func optNum(v *float64, places int) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', places, 64)
}

func optPercent(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%+.1f%%", *v)
}
