package storetest

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/reports"
)

func testDegradations(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	since := s0.Add(-5 * time.Minute)
	ev := []switchboard.DegradationEvidence{{Signal: "latency", Baseline: 80, Current: 400, Distance: 6.5, Since: since, Summary: "latency 400 ms"}}
	raise := switchboard.Degradation{Provider: "agora", Degrading: true, Since: &since, Evidence: ev, At: s0}
	for range 2 { // the second changes nothing
		if err := s.RecordDegradation(ctx, raise); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RecordDegradation(ctx, switchboard.Degradation{Provider: "agora", At: s0.Add(20 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDegradation(ctx, switchboard.Degradation{Provider: "zego", At: s0}); err != nil { // nothing open
		t.Fatal(err)
	}
	if err := s.RecordDegradation(ctx, switchboard.Degradation{Provider: "agora", Degrading: true, At: s0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	wantCode(t, s.RecordDegradation(ctx, switchboard.Degradation{Degrading: true, At: s0}), switchboard.EInvalid)
	all, err := s.Degradations(ctx, s0.Add(-time.Hour), s0.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("degradations = %+v, want 2", all)
	}
	first := all[0]
	if !first.StartedAt.Equal(since) || first.EndedAt == nil || !first.EndedAt.Equal(s0.Add(20*time.Minute)) ||
		len(first.Evidence) != 1 || first.Evidence[0].Signal != "latency" || first.Evidence[0].Current != 400 || !first.Evidence[0].Since.Equal(since) {
		t.Errorf("first = %+v", first)
	}
	if all[1].EndedAt != nil || !all[1].StartedAt.Equal(s0.Add(time.Hour)) || len(all[1].Evidence) != 0 {
		t.Errorf("second = %+v", all[1])
	}
	// Overlap: the open one reaches any later period; the closed one ends
	// before it.
	later, err := s.Degradations(ctx, s0.Add(30*time.Minute), s0.Add(24*time.Hour))
	if err != nil || len(later) != 1 || later[0].ID != all[1].ID {
		t.Errorf("later = %+v, %v", later, err)
	}
	// A verdict dated before the open record's start closes it at its start.
	if err := s.RecordDegradation(ctx, switchboard.Degradation{Provider: "agora", At: s0.Add(30 * time.Minute)}); err != nil {
		t.Fatal(err)
	}
	closed, err := s.Degradations(ctx, s0.Add(-time.Hour), s0.Add(2*time.Hour))
	if err != nil || len(closed) != 2 || closed[1].EndedAt == nil || !closed[1].EndedAt.Equal(s0.Add(time.Hour)) {
		t.Errorf("closed early = %+v, %v", closed, err)
	}
}

// setStatus records a change of provider name's status at at.
func setStatus(t *testing.T, s switchboard.Store, name string, st switchboard.Status, at time.Time, reason string) {
	t.Helper()
	_, _, err := s.UpdateHealth(context.Background(), name, at, func(h switchboard.Health) switchboard.Health {
		h.Status, h.StatusReason = st, reason
		return h
	})
	if err != nil {
		t.Fatal(err)
	}
}

func testStatusHistory(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustCreate(t, s, AgoraProvider(t, "a"))
	mustCreate(t, s, AgoraProvider(t, "b"))
	setStatus(t, s, "a", switchboard.StatusHealthy, s0.Add(-3*time.Hour), "up")
	setStatus(t, s, "a", switchboard.StatusCritical, s0.Add(-2*time.Hour), "down")
	setStatus(t, s, "b", switchboard.StatusHealthy, s0.Add(-2*time.Hour), "up")
	setStatus(t, s, "a", switchboard.StatusHealthy, s0.Add(time.Hour), "back")
	setStatus(t, s, "a", switchboard.StatusWarning, s0.Add(5*time.Hour), "later")
	got, err := s.StatusHistory(ctx, s0, s0.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var desc []string
	for _, tr := range got {
		desc = append(desc, fmt.Sprintf("%s:%s@%s", tr.Provider, tr.To, tr.Reason))
	}
	want := []string{"a:CRITICAL@down", "b:HEALTHY@up", "a:HEALTHY@back"}
	if fmt.Sprint(desc) != fmt.Sprint(want) {
		t.Errorf("history = %v, want %v", desc, want)
	}
}

// reportFixture stores two providers, a CRITICAL half hour of agora, and
// streams over two days: ones that stay on a provider within a day, one that
// moves, one that runs over midnight and one still live.
func reportFixture(t *testing.T, s switchboard.Store) {
	mustCreate(t, s, AgoraProvider(t, "agora"))
	mustCreate(t, s, AgoraProvider(t, "zego"))
	day := time.Date(2025, 1, 30, 0, 0, 0, 0, time.UTC)
	for i := range 12 {
		p := []string{"agora", "zego"}[i%2]
		st := newStream(fmt.Sprintf("s%02d", i), p, "o", day.Add(time.Duration(i)*3*time.Hour+7*time.Minute))
		st.Region = []string{"eu-west", "us-east", ""}[i%3]
		if i%4 == 0 {
			st.Quality = switchboard.QualitySD
		}
		mustStart(t, s, st, 0)
		mustEnd(t, s, st.ID, st.StartedAt.Add(time.Duration(10+i)*time.Minute))
	}
	moved := newStream("moved", "agora", "o", day.Add(20*time.Hour))
	mustStart(t, s, moved, 0)
	mustMigrate(t, s, "moved", "zego", day.Add(20*time.Hour+15*time.Minute))
	mustEnd(t, s, "moved", day.Add(21*time.Hour))
	late := newStream("late", "zego", "o", day.Add(23*time.Hour+30*time.Minute))
	mustStart(t, s, late, 0)
	mustEnd(t, s, "late", day.Add(25*time.Hour))
	live := newStream("live", "agora", "o", day.Add(40*time.Hour))
	mustStart(t, s, live, 0)
	mustHeartbeat(t, s, "live", day.Add(41*time.Hour))
	setStatus(t, s, "agora", switchboard.StatusHealthy, day.Add(-time.Hour), "up")
	setStatus(t, s, "agora", switchboard.StatusCritical, day.Add(20*time.Hour+10*time.Minute), "3 probes failed")
	setStatus(t, s, "agora", switchboard.StatusHealthy, day.Add(20*time.Hour+40*time.Minute), "recovered")
}

func testUsageBreakdown(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	reportFixture(t, s)
	from, to := time.Date(2025, 1, 30, 6, 0, 0, 0, time.UTC), time.Date(2025, 1, 31, 18, 0, 0, 0, time.UTC)
	b, err := s.UsageBreakdown(ctx, from, to, true)
	if err != nil {
		t.Fatal(err)
	}
	seconds := map[string]float64{}
	for _, c := range b.Cells {
		seconds[c.Provider] += c.Seconds
		if c.Day.Hour() != 0 || c.Day.Before(from.Truncate(24*time.Hour)) {
			t.Errorf("cell day %v", c.Day)
		}
	}
	pieces := map[string]bool{}
	for _, p := range b.Pieces {
		seconds[p.Provider] += p.Seconds
		pieces[p.StreamID] = true
	}
	// Usage is the reference.
	for name, u := range mustUsage(t, s, from, to) {
		var want float64
		for _, v := range u.Seconds {
			want += v
		}
		if math.Abs(seconds[name]-want) > 1e-3 {
			t.Errorf("%s: breakdown %v s, Usage %v s", name, seconds[name], want)
		}
	}
	for _, id := range []string{"moved", "late", "live"} {
		if !pieces[id] {
			t.Errorf("%s is not among the pieces %v", id, pieces)
		}
	}
	if pieces["s04"] {
		t.Errorf("a simple stream is among the pieces")
	}
	// Without regions: the same time, every region "".
	nb, err := s.UsageBreakdown(ctx, from, to, false)
	if err != nil {
		t.Fatal(err)
	}
	var with, without float64
	regions := map[string]bool{}
	for _, c := range b.Cells {
		with += c.Seconds
		regions[c.Region] = true
	}
	for _, p := range b.Pieces {
		with += p.Seconds
	}
	for _, c := range nb.Cells {
		without += c.Seconds
		if c.Region != "" {
			t.Errorf("cell without regions has region %q", c.Region)
		}
	}
	for _, p := range nb.Pieces {
		without += p.Seconds
		if p.Region != "" {
			t.Errorf("piece without regions has region %q", p.Region)
		}
	}
	if math.Abs(with-without) > 1e-3 || len(regions) != 3 {
		t.Errorf("by region %v s in regions %v, without %v s", with, regions, without)
	}

	day := time.Date(2025, 1, 30, 0, 0, 0, 0, time.UTC)
	counts, err := s.StreamsDuring(ctx, "zego", []switchboard.TimeRange{
		{From: day.Add(20 * time.Hour), To: day.Add(26 * time.Hour)}, // moved, late and s07
		{From: day.Add(40 * time.Hour), To: day.Add(48 * time.Hour)}, // none: live is on agora
	})
	if err != nil || len(counts) != 2 || counts[0] != 3 || counts[1] != 0 {
		t.Errorf("StreamsDuring(zego) = %v, %v; want [3 0]", counts, err)
	}
	counts, err = s.StreamsDuring(ctx, "agora", []switchboard.TimeRange{
		{From: day.Add(20*time.Hour + 10*time.Minute), To: day.Add(20*time.Hour + 40*time.Minute)}, // moved
		{From: day.Add(40*time.Hour + 30*time.Minute), To: day.Add(50 * time.Hour)},                // live, up to its heartbeat
		{From: day.Add(41*time.Hour + time.Minute), To: day.Add(50 * time.Hour)},                   // after it
	})
	if err != nil || len(counts) != 3 || counts[0] != 1 || counts[1] != 1 || counts[2] != 0 {
		t.Errorf("StreamsDuring(agora) = %v, %v; want [1 1 0]", counts, err)
	}
	if counts, err := s.StreamsDuring(ctx, "agora", nil); err != nil || len(counts) != 0 {
		t.Errorf("StreamsDuring of no period = %v, %v", counts, err)
	}
}

// testReportsAgree checks that the reports' figures agree with each other
// and with Usage: the cost of every grouping adds up to the same total, the
// minutes too, and the incidents' minutes make the uptime.
func testReportsAgree(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	reportFixture(t, s)
	from, to := time.Date(2025, 1, 30, 0, 0, 0, 0, time.UTC), time.Date(2025, 2, 1, 0, 0, 0, 0, time.UTC)
	var total *reports.CostFigures
	for _, by := range []string{reports.ByProvider, reports.ByRegion, reports.ByQuality, reports.ByDay} {
		rep, err := reports.BuildCost(ctx, s, by, from, to)
		if err != nil {
			t.Fatal(err)
		}
		var cents int64
		var minutes float64
		for _, g := range rep.Groups {
			cents += int64(math.Round(g.Cost * 100))
			minutes += g.Minutes
		}
		if cents != int64(math.Round(rep.Total.Cost*100)) || cents == 0 {
			t.Errorf("by %s: the groups cost %d cents, the total %v", by, cents, rep.Total.Cost)
		}
		if math.Abs(minutes-rep.Total.Minutes) > 0.01*float64(len(rep.Groups)) {
			t.Errorf("by %s: the groups have %v minutes, the total %v", by, minutes, rep.Total.Minutes)
		}
		if total == nil {
			total = &rep.Total
		} else if *total.CostPerStream != *rep.Total.CostPerStream || total.Cost != rep.Total.Cost || total.Streams != rep.Total.Streams {
			t.Errorf("by %s: total %+v, by provider %+v", by, rep.Total, *total)
		}
	}
	if total.Streams != 15 {
		t.Errorf("streams = %d, want 15", total.Streams)
	}
	// The total priced as Usage's minutes per provider: the same within a
	// cent per provider, tier and day priced.
	recs, err := s.ListProviders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want, minutes float64
	u := mustUsage(t, s, from, to)
	for _, r := range recs {
		want += r.Pricing.Cost(u[r.Name].Minutes())
		for _, m := range u[r.Name].Minutes() {
			minutes += m
		}
	}
	if math.Abs(want-total.Cost) > 0.01*2*2*2 || math.Abs(minutes-total.Minutes) > 0.01 {
		t.Errorf("cost %v for %v minutes, Usage priced %v for %v minutes", total.Cost, total.Minutes, want, minutes)
	}

	sla, err := reports.BuildSLA(ctx, s, "2025-01", from, to)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range sla.Providers {
		var sum float64
		for _, in := range p.Incidents {
			sum += in.Minutes
		}
		if math.Abs(sum-p.CriticalMinutes) > 0.01 || math.Abs(p.UptimePercent-100*(1-p.CriticalMinutes/p.PeriodMinutes)) > 1e-3 {
			t.Errorf("%s: incidents %v min, critical %v of %v min, uptime %v", p.Provider, sum, p.CriticalMinutes, p.PeriodMinutes, p.UptimePercent)
		}
		if p.Provider != "agora" {
			continue
		}
		// The moved stream was on agora during its incident (20:10–20:40), and
		// moved away.
		if len(p.Incidents) != 1 || p.CriticalMinutes != 30 || p.Incidents[0].Cause != "3 probes failed" ||
			p.Incidents[0].StreamsAffected != 1 || p.FailoversOut != 1 || p.MTTRMinutes == nil || *p.MTTRMinutes != 30 {
			t.Errorf("agora = %+v", p)
		}
	}
}
