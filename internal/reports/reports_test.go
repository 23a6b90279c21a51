package reports

import (
	"bytes"
	"context"
	"encoding/csv"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

var t0 = time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)

func at(min float64) time.Time { return t0.Add(time.Duration(min * float64(time.Minute))) }

// memStore is a Store over fixed data.
type memStore struct {
	sb.ReportStore
	providers []sb.ProviderRecord
	history   []sb.Transition
	degs      []sb.DegradationRecord
	outs      map[string]int64
	usage     func(from, to time.Time) sb.UsageBreakdown
	quality   map[sb.QualityKey]sb.QualityTotals
	streamsOn int64
}

func (m *memStore) ListProviders(context.Context) ([]sb.ProviderRecord, error) {
	return m.providers, nil
}
func (m *memStore) StatusHistory(context.Context, time.Time, time.Time) ([]sb.Transition, error) {
	return m.history, nil
}
func (m *memStore) Degradations(context.Context, time.Time, time.Time) ([]sb.DegradationRecord, error) {
	return m.degs, nil
}
func (m *memStore) FailoversOut(context.Context, time.Time, time.Time) (map[string]int64, error) {
	return m.outs, nil
}
func (m *memStore) StreamsDuring(_ context.Context, _ string, periods []sb.TimeRange) ([]int64, error) {
	out := make([]int64, len(periods))
	for i := range out {
		out[i] = m.streamsOn
	}
	return out, nil
}
func (m *memStore) UsageBreakdown(_ context.Context, from, to time.Time, byRegion bool) (sb.UsageBreakdown, error) {
	b := m.usage(from, to)
	if !byRegion {
		for i := range b.Cells {
			b.Cells[i].Region = ""
		}
		for i := range b.Pieces {
			b.Pieces[i].Region = ""
		}
	}
	return b, nil
}
func (m *memStore) QualityBetween(context.Context, time.Time, time.Time) (map[sb.QualityKey]sb.QualityTotals, error) {
	return m.quality, nil
}

func tr(provider string, to sb.Status, min float64, reason string) sb.Transition {
	return sb.Transition{Provider: provider, To: to, At: at(min), Reason: reason}
}

func TestIncidents(t *testing.T) {
	from, to := at(0), at(100)
	tests := []struct {
		name    string
		trs     []sb.Transition
		want    []float64 // minutes within the period, per incident
		ongoing []bool
	}{
		{"none", nil, nil, nil},
		{"healthy only", []sb.Transition{tr("a", sb.StatusHealthy, 5, "")}, nil, nil},
		{"one", []sb.Transition{tr("a", sb.StatusCritical, 10, "3 failed"), tr("a", sb.StatusHealthy, 25, "")},
			[]float64{15}, []bool{false}},
		{"from before the period", []sb.Transition{tr("a", sb.StatusCritical, -30, "x"), tr("a", sb.StatusWarning, 20, "")},
			[]float64{20}, []bool{false}},
		{"ended before the period", []sb.Transition{tr("a", sb.StatusCritical, -30, "x"), tr("a", sb.StatusWarning, -20, "")},
			nil, nil},
		{"ongoing", []sb.Transition{tr("a", sb.StatusCritical, 90, "x")}, []float64{10}, []bool{true}},
		{"critical again is one incident", []sb.Transition{tr("a", sb.StatusCritical, 10, "x"),
			tr("a", sb.StatusCritical, 12, "y"), tr("a", sb.StatusHealthy, 20, ""), tr("a", sb.StatusCritical, 50, "z"),
			tr("a", sb.StatusDisabled, 55, "")}, []float64{10, 5}, []bool{false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Incidents(tt.trs, from, to)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d incidents %+v, want %d", len(got), got, len(tt.want))
			}
			for i, in := range got {
				if in.Minutes != tt.want[i] || (in.End == nil) != tt.ongoing[i] {
					t.Errorf("incident %d = %+v, want %v minutes, ongoing %v", i, in, tt.want[i], tt.ongoing[i])
				}
			}
		})
	}
}

func TestPredictions(t *testing.T) {
	incidents := []Incident{{Start: at(60)}, {Start: at(200)}}
	ds := []sb.DegradationRecord{
		{StartedAt: at(55)},  // 5 min ahead of the first
		{StartedAt: at(40)},  // 20 min ahead of it: the longest lead wins
		{StartedAt: at(100)}, // nothing within 30 min: a false alarm
		{StartedAt: at(205)}, // after the second began: not a prediction
	}
	ps := Predictions(ds, incidents)
	wantLead := []*float64{ptr(300.0), ptr(1200.0), nil, nil}
	for i, p := range ps {
		if (p.LeadSeconds == nil) != (wantLead[i] == nil) || (p.LeadSeconds != nil && *p.LeadSeconds != *wantLead[i]) {
			t.Errorf("prediction %d lead = %v, want %v", i, p.LeadSeconds, wantLead[i])
		}
	}
	if incidents[0].LeadSeconds == nil || *incidents[0].LeadSeconds != 1200 {
		t.Errorf("first incident's lead = %v, want 1200", incidents[0].LeadSeconds)
	}
	if incidents[1].LeadSeconds != nil {
		t.Errorf("second incident's lead = %v, want none", *incidents[1].LeadSeconds)
	}
}

func TestBuildSLA(t *testing.T) {
	st := &memStore{
		providers: []sb.ProviderRecord{{Provider: sb.Provider{Name: "agora"}}, {Provider: sb.Provider{Name: "zego"}}},
		history: []sb.Transition{tr("agora", sb.StatusCritical, 60, "probe failed 3 times"),
			tr("agora", sb.StatusHealthy, 90, ""), tr("agora", sb.StatusCritical, 1000, "auth"), tr("agora", sb.StatusHealthy, 1010, "")},
		degs:      []sb.DegradationRecord{{Provider: "agora", StartedAt: at(50)}},
		outs:      map[string]int64{"agora": 7, "gone": 2},
		streamsOn: 4,
	}
	rep, err := BuildSLA(context.Background(), st, "2026-11", at(0), at(1440))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Providers) != 3 {
		t.Fatalf("providers = %+v, want agora, gone, zego", rep.Providers)
	}
	a := rep.Providers[0]
	if a.Provider != "agora" || a.CriticalMinutes != 40 || len(a.Incidents) != 2 || a.FailoversOut != 7 ||
		a.StreamsAffected != 8 || a.PredictedIncidents != 1 || *a.MedianLeadSeconds != 600 || *a.MTTRMinutes != 20 {
		t.Fatalf("agora = %+v", a)
	}
	if want := round4(100 * (1 - 40.0/1440)); a.UptimePercent != want {
		t.Errorf("uptime = %v, want %v", a.UptimePercent, want)
	}
	if a.Incidents[0].Cause != "probe failed 3 times" {
		t.Errorf("cause = %q", a.Incidents[0].Cause)
	}
	if z := rep.Providers[2]; z.UptimePercent != 100 || z.MTTRMinutes != nil || len(z.Incidents) != 0 {
		t.Errorf("zego = %+v", z)
	}
	rows := rep.Rows()
	if len(rows) != 1+2+3 || rows[1][0] != "incident" || rows[3][0] != "provider" {
		t.Errorf("rows = %v", rows)
	}
}

func TestBuildCost(t *testing.T) {
	pr := sb.Pricing{Currency: "USD", PerThousandMinutes: map[sb.Quality]float64{sb.Quality("HD"): 3.99, sb.Quality("SD"): 0.99}}
	st := &memStore{
		providers: []sb.ProviderRecord{{Provider: sb.Provider{Name: "agora", Pricing: pr}}, {Provider: sb.Provider{Name: "zego", Pricing: pr}}},
		usage: func(from, to time.Time) sb.UsageBreakdown {
			if from.Before(t0) { // the previous period: half of agora's
				return sb.UsageBreakdown{Cells: []sb.UsageCell{{Provider: "agora", Region: "eu", Quality: "HD", Day: from, Streams: 5, Seconds: 30000}}}
			}
			return sb.UsageBreakdown{
				Cells: []sb.UsageCell{
					{Provider: "agora", Region: "eu", Quality: "HD", Day: t0, Streams: 10, Seconds: 60000},
					{Provider: "zego", Region: "us", Quality: "SD", Day: t0.AddDate(0, 0, 1), Streams: 3, Seconds: 5400},
				},
				Pieces: []sb.UsagePiece{ // s1 moved from agora to zego and ran over midnight
					{StreamID: "s1", Provider: "agora", Region: "eu", Quality: "HD", Day: t0, Seconds: 600},
					{StreamID: "s1", Provider: "zego", Region: "eu", Quality: "HD", Day: t0, Seconds: 300},
					{StreamID: "s1", Provider: "zego", Region: "eu", Quality: "HD", Day: t0.AddDate(0, 0, 1), Seconds: 300},
				},
			}
		},
	}
	reps := map[string]Cost{}
	for _, by := range []string{ByProvider, ByRegion, ByQuality, ByDay} {
		rep, err := BuildCost(context.Background(), st, by, t0, t0.AddDate(0, 0, 2))
		if err != nil {
			t.Fatal(err)
		}
		reps[by] = rep
		var cents, streams int64
		var minutes float64
		for _, g := range rep.Groups {
			cents += int64(g.Cost*100 + 0.5)
			streams += g.Streams
			minutes += g.Minutes
		}
		if cents != int64(rep.Total.Cost*100+0.5) {
			t.Errorf("by %s: groups cost %d cents, total %v", by, cents, rep.Total.Cost)
		}
		if d := minutes - rep.Total.Minutes; d > 0.01*float64(len(rep.Groups)) || d < -0.01*float64(len(rep.Groups)) {
			t.Errorf("by %s: groups %v minutes, total %v", by, minutes, rep.Total.Minutes)
		}
		if streams < rep.Total.Streams {
			t.Errorf("by %s: groups have %d streams, fewer than the total %d", by, streams, rep.Total.Streams)
		}
	}
	tot := reps[ByProvider].Total
	if tot.Streams != 14 || tot.Minutes != 1110 {
		t.Fatalf("total = %+v, want 14 streams, 1110 minutes", tot)
	}
	byProv := reps[ByProvider].Groups
	if byProv[0].Key != "agora" || byProv[0].Streams != 11 || byProv[1].Streams != 4 {
		t.Errorf("by provider = %+v", byProv)
	}
	// agora: 1010 min of HD at 3.99 per 1000 = 4.03; before: 500 min = 2.00.
	if byProv[0].Cost != 4.03 || byProv[0].Previous.Cost != 2 || *byProv[0].CostChangePercent != 101.5 {
		t.Errorf("agora = %+v, previous %+v", byProv[0].CostFigures, byProv[0].Previous)
	}
	// The previous period's day is compared with the day two days later.
	if g := reps[ByDay].Groups; len(g) != 2 || g[0].Key != "2026-11-01" || g[0].Streams != 11 || g[1].Streams != 4 ||
		g[0].Previous.Streams != 5 || g[1].Previous.Streams != 0 {
		t.Errorf("by day = %+v", g)
	}
	var buf bytes.Buffer
	if err := WriteCSV(&buf, reps[ByRegion].Rows()); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil || len(rows) != 1+2+1 || rows[0][0] != "region" || rows[3][0] != "total" {
		t.Errorf("csv = %v, %v", rows, err)
	}
}

func TestBuildQuality(t *testing.T) {
	h := func(bin int, n int64) sb.QualityHistogram { return sb.QualityHistogram{bin: n} }
	good := sb.QualityTotals{Samples: 10, Streams: 2, Histograms: map[string]sb.QualityHistogram{
		sb.MetricRTT: h(40, 10), sb.MetricJitter: h(5, 10), sb.MetricLoss: h(0, 10)}}
	bad := sb.QualityTotals{Samples: 10, Streams: 1, LossSum: 1, Histograms: map[string]sb.QualityHistogram{
		sb.MetricRTT: h(sb.QualityBin(400), 10), sb.MetricJitter: h(30, 10), sb.MetricLoss: h(1000, 10)}}
	st := &memStore{quality: map[sb.QualityKey]sb.QualityTotals{{Provider: "a", Region: "eu"}: good, {Provider: "b", Region: "eu"}: bad}}
	rep, err := BuildQuality(context.Background(), st, ByProvider, t0, at(60))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Groups) != 2 || rep.Total.Samples != 20 || rep.Total.Streams != 3 {
		t.Fatalf("report = %+v", rep)
	}
	a, b := rep.Groups[0], rep.Groups[1]
	if *a.MOS <= *b.MOS || *a.MOS < 4 || *b.MOS > 3.5 || *a.MOS > 4.5 || *b.MOS < 1 {
		t.Errorf("MOS a = %v, b = %v", *a.MOS, *b.MOS)
	}
	if *a.Score <= *b.Score {
		t.Errorf("score a = %v, b = %v", *a.Score, *b.Score)
	}
	byRegion, _ := BuildQuality(context.Background(), st, ByRegion, t0, at(60))
	if len(byRegion.Groups) != 1 || byRegion.Groups[0].Samples != 20 || *byRegion.Groups[0].MOS != *rep.Total.MOS {
		t.Errorf("by region = %+v", byRegion.Groups)
	}
	if empty := Figures(sb.QualityTotals{}); empty.MOS != nil || empty.Score != nil {
		t.Errorf("empty = %+v", empty)
	}
}

func TestMOS(t *testing.T) {
	// The README's examples: a clean call, and a far and lossy one.
	clean := sb.MOS(sb.EModelR(sb.QualityInputs{RTTMs: 40, JitterMs: 4, PacketLoss: 0.002}))
	lossy := sb.MOS(sb.EModelR(sb.QualityInputs{RTTMs: 300, JitterMs: 4, PacketLoss: 0.03}))
	if clean < 4.35 || clean >= 4.45 || lossy < 3.95 || lossy >= 4.05 {
		t.Errorf("MOS clean %v, lossy %v; want about 4.4 and 4.0", clean, lossy)
	}
	for _, tt := range []struct{ r, want float64 }{{-5, 1}, {0, 1}, {50, 2.58}, {93.2, 4.41}, {100, 4.5}} {
		if got := sb.MOS(tt.r); got != tt.want {
			t.Errorf("MOS(%v) = %v, want %v", tt.r, got, tt.want)
		}
	}
}

func TestParams(t *testing.T) {
	now := time.Date(2026, 12, 6, 3, 0, 0, 0, time.UTC)
	fieldOf := func(err error) string {
		if e, ok := err.(*sb.Error); ok {
			return e.Field
		}
		return ""
	}
	for _, tt := range []struct {
		name, from, to, field string
	}{
		{"defaults", "", "", ""},
		{"dates", "2026-11-01", "2026-12-01", ""},
		{"times", "2026-11-01T10:00:00Z", "2026-11-02T10:00:00+02:00", ""},
		{"bad from", "yesterday", "", "from"},
		{"bad to", "", "2026-13-01", "to"},
		{"reversed", "2026-11-02", "2026-11-01", "from"},
		{"future", "", "2027-01-01", "to"},
		{"too long", "2024-01-01", "2026-01-01", "to"},
	} {
		_, _, err := ParsePeriod(tt.from, tt.to, now)
		if fieldOf(err) != tt.field || (tt.field == "") != (err == nil) {
			t.Errorf("%s: err = %v, want field %q", tt.name, err, tt.field)
		}
	}
	for _, tt := range []struct {
		month string
		ok    bool
	}{{"2026-11", true}, {"2026-12", true}, {"2027-01", false}, {"2026-1", false}, {"nov", false}, {"", false}} {
		from, to, err := ParseMonth(tt.month, now)
		if (err == nil) != tt.ok || (err != nil && fieldOf(err) != "month") {
			t.Errorf("month %q: err = %v", tt.month, err)
		}
		if tt.month == "2026-12" && (!from.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) || !to.Equal(now)) {
			t.Errorf("current month = %v – %v", from, to)
		}
	}
	if _, err := ParseGroupBy("country", ByProvider, ByRegion); fieldOf(err) != "groupBy" {
		t.Errorf("groupBy: %v", err)
	}
	if g, _ := ParseGroupBy("", ByProvider, ByRegion); g != ByProvider {
		t.Errorf("default groupBy = %q", g)
	}
	if _, err := ParseFormat("xml"); fieldOf(err) != "format" {
		t.Errorf("format: %v", err)
	}
}

func TestCSVText(t *testing.T) {
	for in, want := range map[string]string{"eu": "eu", "=HYPERLINK(1)": "'=HYPERLINK(1)", "-1": "'-1", "": ""} {
		if got := text(in); got != want {
			t.Errorf("text(%q) = %q, want %q", in, got, want)
		}
	}
}
