// Package eval measures the degradation detector on recorded probe traces:
// how early it warns before the status rules call a provider CRITICAL, and
// how often it warns for nothing. `switchboard predict-eval` prints what it
// finds.
//
// Each trace is replayed twice over the same probes: through the status
// rules the server applies (health.Observe, CRITICAL at the failure
// threshold) and through predict.Detector with its default configuration.
// An alarm (degrading raised while the provider is not CRITICAL) followed by
// a CRITICAL onset within Horizon is a detection of that onset, with the lead
// from the earliest such alarm; any other alarm is a false alarm. False
// alarms are counted per quiet hour: the time that is neither CRITICAL nor
// within Horizon before a CRITICAL onset.
package eval

import (
	"cmp"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/health"
	"github.com/switchboardhq/switchboard/internal/predict"
)

// Horizon is how soon after an alarm a CRITICAL onset must come for the alarm
// to count as its detection.
const Horizon = 30 * time.Minute

// Row is one probe of a trace.
type Row struct {
	T          float64 // seconds from the start
	OK         bool
	LatencyMs  float64
	HasQuality bool
	Loss       float64
	RTTMs      float64
}

// Trace is one provider's recorded probes.
type Trace struct {
	Name     string
	Interval time.Duration
	Rows     []Row
}

// Kind is the trace's name without its trailing number ("ramp-errors-03" is
// of the kind "ramp-errors").
func (t Trace) Kind() string { return kindOf(t.Name) }

var numbered = regexp.MustCompile(`-\d+$`)

func kindOf(name string) string { return numbered.ReplaceAllString(name, "") }

// ReadDir reads every NAME.csv in dir with its NAME.json, sorted by name.
func ReadDir(dir string) ([]Trace, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.csv"))
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no traces (*.csv) in %s", dir)
	}
	slices.Sort(names)
	var out []Trace
	for _, p := range names {
		tr, err := ReadTrace(p)
		if err != nil {
			return nil, err
		}
		out = append(out, tr)
	}
	return out, nil
}

// ReadTrace reads the trace at path (NAME.csv) and its NAME.json.
func ReadTrace(path string) (Trace, error) {
	name := strings.TrimSuffix(filepath.Base(path), ".csv")
	tr := Trace{Name: name}
	meta, err := os.ReadFile(strings.TrimSuffix(path, ".csv") + ".json")
	if err != nil {
		return tr, fmt.Errorf("trace %s: %w", name, err)
	}
	var m struct {
		Interval switchboard.Duration `json:"interval"`
	}
	if err := json.Unmarshal(meta, &m); err != nil {
		return tr, fmt.Errorf("trace %s: %s.json: %w", name, name, err)
	}
	if m.Interval <= 0 {
		return tr, fmt.Errorf("trace %s: %s.json: interval must be a positive duration", name, name)
	}
	tr.Interval = m.Interval.D()
	f, err := os.Open(path)
	if err != nil {
		return tr, fmt.Errorf("trace %s: %w", name, err)
	}
	defer f.Close()
	tr.Rows, err = parseCSV(f)
	if err != nil {
		return tr, fmt.Errorf("trace %s: %w", name, err)
	}
	return tr, nil
}

// parseCSV reads the rows of a trace: the header t,ok,latency_ms, optionally
// followed by loss,rtt_ms.
func parseCSV(r io.Reader) ([]Row, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	head, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	h := strings.Join(head, ",")
	quality := false
	switch h {
	case "t,ok,latency_ms":
	case "t,ok,latency_ms,loss,rtt_ms":
		quality = true
	default:
		return nil, fmt.Errorf("header %q: want t,ok,latency_ms[,loss,rtt_ms]", h)
	}
	var rows []Row
	prev := -1.0
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		num := func(i int, field string, lo, hi float64) (float64, error) {
			v, err := strconv.ParseFloat(rec[i], 64)
			if err != nil || !(v >= lo && v <= hi) {
				return 0, fmt.Errorf("line %d: %s %q: want a number from %g to %g", line, field, rec[i], lo, hi)
			}
			return v, nil
		}
		var row Row
		if row.T, err = num(0, "t", 0, 1e9); err != nil {
			return nil, err
		}
		if row.T <= prev {
			return nil, fmt.Errorf("line %d: t %s: not after the row before", line, rec[0])
		}
		prev = row.T
		switch rec[1] {
		case "1":
			row.OK = true
		case "0":
		default:
			return nil, fmt.Errorf("line %d: ok %q: want 1 or 0", line, rec[1])
		}
		if row.LatencyMs, err = num(2, "latency_ms", 0, 1e7); err != nil {
			return nil, err
		}
		if quality && rec[3] != "" {
			row.HasQuality = true
			if row.Loss, err = num(3, "loss", 0, 1); err != nil {
				return nil, err
			}
			if row.RTTMs, err = num(4, "rtt_ms", 0, 1e7); err != nil {
				return nil, err
			}
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil, errors.New("no rows")
	}
	return rows, nil
}

// Result is what one trace showed. Times are seconds from the trace's start.
type Result struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	// Hours is the length of the trace.
	Hours float64 `json:"hours"`
	// CriticalAt is the first CRITICAL onset under the status rules.
	CriticalAt *float64 `json:"criticalAt"`
	// FirstAlarmAt is the detector's first alarm.
	FirstAlarmAt *float64 `json:"firstAlarmAt"`
	// LeadSeconds is how long before CriticalAt the alarm that detected it
	// came; nil when it was missed.
	LeadSeconds *float64 `json:"leadSeconds"`
	// EarlySeconds is set when the first onset was missed only because its
	// alarm came more than Horizon before it (and was held until it): the
	// time from that alarm to the onset.
	EarlySeconds *float64 `json:"earlySeconds,omitempty"`
	// Onsets counts CRITICAL onsets; Detected those an alarm came before.
	Onsets   int `json:"onsets"`
	Detected int `json:"detected"`
	// FalseAlarms are alarms no CRITICAL onset followed within Horizon.
	FalseAlarms int `json:"falseAlarms"`
	// QuietHours is the time neither CRITICAL nor within Horizon before an onset.
	QuietHours float64 `json:"quietHours"`
}

// Replay runs tr through the status rules and a new Detector with cfg.
func Replay(tr Trace, cfg predict.Config) Result {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(t float64) time.Time { return start.Add(time.Duration(t * float64(time.Second))) }
	pol := switchboard.DefaultHealthCheck()
	pol.Interval = switchboard.Duration(tr.Interval)
	var h switchboard.Health
	det := predict.New(cfg)

	var criticals []span     // CRITICAL periods
	var alarms []float64     // alarms raised while not CRITICAL
	var heldAtOnset *float64 // when the alarm held at the first onset was raised
	for _, r := range tr.Rows {
		h = health.Observe(h, switchboard.ProbeResult{OK: r.OK, Latency: time.Duration(r.LatencyMs * float64(time.Millisecond)), At: at(r.T)}, pol, true)
		critical := h.Status == switchboard.StatusCritical
		n := len(criticals)
		switch {
		case critical && (n == 0 || criticals[n-1].to >= 0):
			criticals = append(criticals, span{r.T, -1})
		case !critical && n > 0 && criticals[n-1].to < 0:
			criticals[n-1].to = r.T
		}
		raised := det.Observe(predict.Sample{At: at(r.T), OK: r.OK, LatencyMs: r.LatencyMs,
			HasQuality: r.HasQuality, Loss: r.Loss, RTTMs: r.RTTMs}) && det.State().Degrading
		// An alarm on the probe that makes the provider CRITICAL is no later
		// than the rules; one raised later, while CRITICAL, predicts nothing.
		if raised && (!critical || criticals[len(criticals)-1].from == r.T) {
			alarms = append(alarms, r.T)
		}
		if st := det.State(); critical && len(criticals) == 1 && criticals[0].from == r.T && st.Degrading {
			heldAtOnset = ptr(st.Since.Sub(start).Seconds())
		}
	}
	end := tr.Rows[len(tr.Rows)-1].T
	if n := len(criticals); n > 0 && criticals[n-1].to < 0 {
		criticals[n-1].to = end
	}

	horizon := Horizon.Seconds()
	res := Result{Name: tr.Name, Kind: tr.Kind(), Hours: end / 3600, Onsets: len(criticals)}
	if len(alarms) > 0 {
		res.FirstAlarmAt = ptr(alarms[0])
	}
	used := make([]bool, len(alarms))
	prevEnd := -1.0
	for i, c := range criticals {
		for j, a := range alarms {
			if a > prevEnd && a <= c.from && a >= c.from-horizon {
				if i == 0 {
					res.LeadSeconds = ptr(c.from - a)
				}
				res.Detected++
				for k := j; k < len(alarms) && alarms[k] <= c.from; k++ {
					used[k] = true
				}
				break
			}
		}
		if i == 0 {
			res.CriticalAt = ptr(c.from)
		}
		prevEnd = c.to
	}
	if c := res.CriticalAt; c != nil && res.LeadSeconds == nil && heldAtOnset != nil && *c-*heldAtOnset > horizon {
		res.EarlySeconds = ptr(*c - *heldAtOnset)
	}
	for j, a := range alarms {
		if !used[j] && !followed(a, criticals, horizon) {
			res.FalseAlarms++
		}
	}
	// Quiet time: the trace minus the union of [onset − horizon, end of CRITICAL].
	busy, cursor := 0.0, 0.0
	for _, c := range criticals {
		from := max(c.from-horizon, cursor, 0)
		if c.to > from {
			busy += c.to - from
		}
		cursor = max(cursor, c.to)
	}
	res.QuietHours = (end - busy) / 3600
	return res
}

// span is a period of a trace, in seconds from its start.
type span struct{ from, to float64 }

// followed reports whether a CRITICAL onset comes within horizon after a.
func followed(a float64, criticals []span, horizon float64) bool {
	for _, c := range criticals {
		if c.from >= a && c.from <= a+horizon {
			return true
		}
	}
	return false
}

func ptr(v float64) *float64 { return &v }

// Summary totals a set of results.
type Summary struct {
	Kind   string `json:"kind,omitempty"`
	Traces int    `json:"traces"`
	// WithCritical counts traces that went CRITICAL; Detected those whose
	// first onset an alarm came before, Missed the others.
	WithCritical int `json:"withCritical"`
	Detected     int `json:"detected"`
	Missed       int `json:"missed"`
	// MissedEarly are the missed whose alarm came more than Horizon early
	// and was held until the onset.
	MissedEarly        int      `json:"missedEarly"`
	MedianLeadSeconds  *float64 `json:"medianLeadSeconds"`
	FalseAlarms        int      `json:"falseAlarms"`
	QuietHours         float64  `json:"quietHours"`
	FalseAlarmsPerHour float64  `json:"falseAlarmsPerHour"`
}

// Summarize totals rs under kind ("" for all).
func Summarize(kind string, rs []Result) Summary {
	s := Summary{Kind: kind, Traces: len(rs)}
	var leads []float64
	for _, r := range rs {
		s.FalseAlarms += r.FalseAlarms
		s.QuietHours += r.QuietHours
		if r.CriticalAt == nil {
			continue
		}
		s.WithCritical++
		if r.LeadSeconds != nil {
			s.Detected++
			leads = append(leads, *r.LeadSeconds)
		} else {
			s.Missed++
			if r.EarlySeconds != nil {
				s.MissedEarly++
			}
		}
	}
	if len(leads) > 0 {
		slices.Sort(leads)
		m := leads[len(leads)/2]
		if len(leads)%2 == 0 {
			m = (leads[len(leads)/2-1] + m) / 2
		}
		s.MedianLeadSeconds = &m
	}
	if s.QuietHours > 0 {
		s.FalseAlarmsPerHour = float64(s.FalseAlarms) / s.QuietHours
	}
	return s
}

// Report is the outcome of an evaluation.
type Report struct {
	Traces []Result  `json:"traces"`
	Kinds  []Summary `json:"kinds"`
	Total  Summary   `json:"total"`
}

// Evaluate replays every trace and totals the results by kind and overall.
func Evaluate(traces []Trace, cfg predict.Config) Report {
	var rep Report
	byKind := map[string][]Result{}
	for _, tr := range traces {
		r := Replay(tr, cfg)
		rep.Traces = append(rep.Traces, r)
		byKind[r.Kind] = append(byKind[r.Kind], r)
	}
	for k, rs := range byKind {
		rep.Kinds = append(rep.Kinds, Summarize(k, rs))
	}
	slices.SortFunc(rep.Kinds, func(a, b Summary) int { return cmp.Compare(a.Kind, b.Kind) })
	rep.Total = Summarize("", rep.Traces)
	return rep
}
