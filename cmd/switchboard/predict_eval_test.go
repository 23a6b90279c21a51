package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// predict-eval on the shipped traces prints every trace and the totals, in
// text and in JSON that agree.
func TestPredictEval(t *testing.T) {
	const dir = "../../internal/predict/testdata/traces"
	out, err := runCLI(t, "predict-eval", "--traces", dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ramp-latency-01", "healthy-06", "MEDIAN LEAD (s)", "\ntotal "} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, err = runCLI(t, "predict-eval", "--traces", dir, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep struct {
		Traces []struct {
			Name        string   `json:"name"`
			CriticalAt  *float64 `json:"criticalAt"`
			LeadSeconds *float64 `json:"leadSeconds"`
		} `json:"traces"`
		Total struct {
			Traces       int `json:"traces"`
			WithCritical int `json:"withCritical"`
			Detected     int `json:"detected"`
			Missed       int `json:"missed"`
		} `json:"total"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, out)
	}
	if len(rep.Traces) < 30 || rep.Total.Traces != len(rep.Traces) {
		t.Fatalf("%d traces, total says %d; want at least 30, the same", len(rep.Traces), rep.Total.Traces)
	}
	detected := 0
	for _, r := range rep.Traces {
		if r.CriticalAt != nil && r.LeadSeconds != nil {
			detected++
		}
	}
	if detected != rep.Total.Detected || rep.Total.Detected+rep.Total.Missed != rep.Total.WithCritical {
		t.Errorf("total %+v disagrees with the traces (%d detected)", rep.Total, detected)
	}
}

func TestPredictEvalUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"--traces"}, {"--traces", "x", "extra"}} {
		_, err := runCLI(t, append([]string{"predict-eval"}, args...)...)
		if _, ok := err.(usageError); !ok {
			t.Errorf("predict-eval %v = %v, want a usage error", args, err)
		}
	}
	if _, err := runCLI(t, "predict-eval", "--traces", t.TempDir()); err == nil || !strings.Contains(err.Error(), "no traces") {
		t.Errorf("empty directory: %v, want no traces", err)
	}
}
