package eval

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboardhq/switchboard/internal/predict"
)

// writeTrace writes NAME.csv (from rows) and NAME.json into dir.
func writeTrace(t *testing.T, dir, name, csv, meta string) string {
	t.Helper()
	p := filepath.Join(dir, name+".csv")
	if err := os.WriteFile(p, []byte(csv), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), []byte(meta), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadTraceErrors(t *testing.T) {
	tests := []struct {
		name, csv, meta, want string
	}{
		{"header", "t,ok\n0,1\n", `{"interval":"10s"}`, "header"},
		{"ok", "t,ok,latency_ms\n0,2,50\n", `{"interval":"10s"}`, "line 2: ok"},
		{"t order", "t,ok,latency_ms\n10,1,50\n5,1,50\n", `{"interval":"10s"}`, "line 3: t"},
		{"latency", "t,ok,latency_ms\n0,1,-4\n", `{"interval":"10s"}`, "line 2: latency_ms"},
		{"loss", "t,ok,latency_ms,loss,rtt_ms\n0,1,50,1.5,80\n", `{"interval":"10s"}`, "line 2: loss"},
		{"empty", "t,ok,latency_ms\n", `{"interval":"10s"}`, "no rows"},
		{"interval", "t,ok,latency_ms\n0,1,50\n", `{"interval":"soon"}`, "json"},
		{"no interval", "t,ok,latency_ms\n0,1,50\n", `{}`, "interval"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeTrace(t, t.TempDir(), "x-01", tt.csv, tt.meta)
			_, err := ReadTrace(p)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ReadTrace: %v, want an error about %q", err, tt.want)
			}
		})
	}
}

// rows builds a trace's CSV: healthy 80 ms probes every 10 s, with f
// overriding probe i's ok and latency.
func rows(n int, f func(i int) (ok bool, lat int)) string {
	var b strings.Builder
	b.WriteString("t,ok,latency_ms\n")
	for i := range n {
		ok, lat := true, 80+(i*7)%11
		if f != nil {
			ok, lat = f(i)
			if ok && lat == 0 {
				lat = 80 + (i*7)%11
			}
		}
		o := 0
		if ok {
			o = 1
		}
		fmt.Fprintf(&b, "%d,%d,%d\n", i*10, o, lat)
	}
	return b.String()
}

func TestReplay(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	tests := []struct {
		name     string
		csv      string
		critical *float64
		lead     *float64
		detected int
		false_   int
		quiet    float64 // hours
	}{
		{name: "healthy", csv: rows(720, nil), quiet: 7190.0 / 3600},
		{name: "sudden outage at 4000 s: no later than the rules", csv: rows(720, func(i int) (bool, int) {
			return i < 400 || i >= 460, 0
		}), critical: f(4020), lead: f(0), detected: 1, quiet: (7190.0 - (4610 - 2220)) / 3600},
		{name: "latency ramp from 4800 s, then down from 6000 s", csv: rows(720, func(i int) (bool, int) {
			if i >= 600 {
				return false, 3000
			}
			if i >= 480 {
				return true, 80 + (i-480)*8
			}
			return true, 0
		}), critical: f(6020), detected: 1, quiet: (6020.0 - 1800) / 3600},
		{name: "latency step that recovers: a false alarm", csv: rows(720, func(i int) (bool, int) {
			if i >= 300 && i < 360 {
				return true, 800
			}
			return true, 0
		}), false_: 1, quiet: 7190.0 / 3600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := ReadTrace(writeTrace(t, t.TempDir(), "x-01", tt.csv, `{"interval":"10s"}`))
			if err != nil {
				t.Fatal(err)
			}
			r := Replay(tr, predict.DefaultConfig())
			eq := func(a, b *float64) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
			if !eq(r.CriticalAt, tt.critical) {
				t.Errorf("criticalAt = %v, want %v", str(r.CriticalAt), str(tt.critical))
			}
			if tt.lead != nil && !eq(r.LeadSeconds, tt.lead) {
				t.Errorf("lead = %v, want %v", str(r.LeadSeconds), str(tt.lead))
			}
			if tt.lead == nil && tt.detected == 1 && (r.LeadSeconds == nil || *r.LeadSeconds < 120) {
				t.Errorf("lead = %v, want at least 120 s", str(r.LeadSeconds))
			}
			if r.Detected != tt.detected || r.FalseAlarms != tt.false_ {
				t.Errorf("detected %d, false alarms %d; want %d, %d", r.Detected, r.FalseAlarms, tt.detected, tt.false_)
			}
			if d := r.QuietHours - tt.quiet; d > 1e-9 || d < -1e-9 {
				t.Errorf("quiet hours = %g, want %g", r.QuietHours, tt.quiet)
			}
		})
	}
}

func str(v *float64) string {
	if v == nil {
		return "nil"
	}
	return fmt.Sprint(*v)
}

// TestShippedTraces holds the detector to the targets on the traces in the
// repository (internal/predict/testdata/traces, from gentraces -seed 1): at a
// 10 s interval, slow ramps detected at least 80 % of the time with a median
// lead of at least 120 s, at most 0.05 false alarms an hour on healthy days,
// and sudden outages no later than the rules. These are counts over a fixed
// input, not timings.
func TestShippedTraces(t *testing.T) {
	traces, err := ReadDir("../testdata/traces")
	if err != nil {
		t.Fatal(err)
	}
	if len(traces) < 30 {
		t.Fatalf("%d traces, want at least 30", len(traces))
	}
	rep := Evaluate(traces, predict.DefaultConfig())
	var ramps []Result
	for _, r := range rep.Traces {
		switch {
		case strings.HasPrefix(r.Kind, "ramp"):
			ramps = append(ramps, r)
		case r.Kind == "outage":
			if r.CriticalAt == nil || r.LeadSeconds == nil || *r.LeadSeconds < 0 {
				t.Errorf("%s: criticalAt %s, lead %s: want an alarm no later than CRITICAL", r.Name, str(r.CriticalAt), str(r.LeadSeconds))
			}
		}
	}
	s := Summarize("ramp", ramps)
	if s.WithCritical == 0 || float64(s.Detected) < 0.8*float64(s.WithCritical) {
		t.Errorf("ramps: %d of %d detected, want at least 80 %%", s.Detected, s.WithCritical)
	}
	if s.MedianLeadSeconds == nil || *s.MedianLeadSeconds < 120 {
		t.Errorf("ramps: median lead %s s, want at least 120", str(s.MedianLeadSeconds))
	}
	for _, k := range rep.Kinds {
		if k.Kind == "healthy" {
			if k.QuietHours < 100 || k.FalseAlarmsPerHour > 0.05 {
				t.Errorf("healthy: %d false alarms in %.1f h = %.3f/h, want at most 0.05/h", k.FalseAlarms, k.QuietHours, k.FalseAlarmsPerHour)
			}
			return
		}
	}
	t.Error("no healthy traces")
}
