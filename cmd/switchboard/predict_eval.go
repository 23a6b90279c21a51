package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/switchboardhq/switchboard/internal/predict"
	"github.com/switchboardhq/switchboard/internal/predict/eval"
)

const predictEvalUsage = `Usage: switchboard predict-eval --traces DIR [--json]

Replays recorded probe traces through the status rules the server applies
(CRITICAL at the failure threshold) and through the degradation detector the
server runs, and reports how early the detector warned and how often it
warned for nothing.

A trace is NAME.csv with the header t,ok,latency_ms (seconds from the start,
1 or 0, milliseconds), optionally followed by loss,rtt_ms (field quality),
one row per probe, and NAME.json beside it holding {"interval": "10s"}.

An alarm followed by a CRITICAL onset within 30 minutes detects it, with the
lead from the alarm to the onset; any other alarm is a false alarm, counted
per hour that is neither CRITICAL nor within 30 minutes before an onset.
Traces are grouped into kinds by their name without its trailing number.
`

func predictEval(_ context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("predict-eval", predictEvalUsage, stderr)
	var dir string
	var asJSON bool
	fs.StringVar(&dir, "traces", "", "directory of traces (NAME.csv with NAME.json)")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if dir == "" {
		return usageError{msg: "--traces DIR is required"}
	}
	traces, err := eval.ReadDir(dir)
	if err != nil {
		return err
	}
	rep := eval.Evaluate(traces, predict.DefaultConfig())
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TRACE\tHOURS\tCRITICAL AT\tFIRST ALARM AT\tLEAD (s)\tONSETS\tDETECTED\tFALSE ALARMS\tNOTE")
	for _, r := range rep.Traces {
		note := ""
		if r.EarlySeconds != nil {
			note = fmt.Sprintf("alarm held from %.0f s before the onset: too early to count", *r.EarlySeconds)
		}
		fmt.Fprintf(w, "%s\t%.1f\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", r.Name, r.Hours, secs(r.CriticalAt), secs(r.FirstAlarmAt),
			secs(r.LeadSeconds), r.Onsets, r.Detected, r.FalseAlarms, note)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "KIND\tTRACES\tCRITICAL\tDETECTED\tMISSED (EARLY)\tMEDIAN LEAD (s)\tFALSE ALARMS\tQUIET HOURS\tFALSE ALARMS/HOUR")
	for _, s := range append(rep.Kinds, rep.Total) {
		kind := s.Kind
		if kind == "" {
			kind = "total"
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d (%d)\t%s\t%d\t%.1f\t%.3f\n", kind, s.Traces, s.WithCritical, s.Detected, s.Missed, s.MissedEarly,
			secs(s.MedianLeadSeconds), s.FalseAlarms, s.QuietHours, s.FalseAlarmsPerHour)
	}
	return w.Flush()
}

// secs prints seconds, or "-" for none.
func secs(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.0f", *v)
}
