package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboardhq/switchboard/internal/pgtest"
)

// buildBins builds Switchboard and this command in a temporary directory.
func buildBins(t *testing.T) (sbBin, benchBin string) {
	t.Helper()
	dir := t.TempDir()
	sbBin, benchBin = filepath.Join(dir, "switchboard"), filepath.Join(dir, "switchboard-bench")
	for bin, pkg := range map[string]string{sbBin: "../switchboard", benchBin: "."} {
		if out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return sbBin, benchBin
}

// TestTinyRun builds Switchboard and this command and runs the benchmark in
// its smallest mode, so that the tool keeps working as the server changes:
// every section of the report is there, and nothing failed on either side.
// It asserts no speed.
func TestTinyRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries and starts servers")
	}
	sbBin, benchBin := buildBins(t)
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"run", "--tiny", "--switchboard", sbBin, "--baseline", benchBin}, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	var r report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("the output is not one JSON report: %v\n%s", err, stdout.String())
	}
	for name, c := range map[string]comparison{"publicHealth": r.PublicHealth, "streamingConfig": r.Config, "starts": r.Starts, "heartbeats": r.Heartbeats} {
		for side, s := range map[string]stats{"switchboard": c.Switchboard, "baseline": c.Baseline} {
			if s.Requests == 0 || s.Errors != 0 || s.P99Ms <= 0 || s.RSSMiB <= 0 {
				t.Errorf("%s, %s: %+v", name, side, s)
			}
		}
		if c.ThroughputRatio <= 0 || c.Target == "" {
			t.Errorf("%s: ratio %v, target %q", name, c.ThroughputRatio, c.Target)
		}
	}
	for side, s := range map[string]sseSide{"switchboard": r.SSE.Switchboard, "baseline": r.SSE.Baseline} {
		if s.Subscribers == 0 || s.Missed != 0 || s.DeliveryP99Ms <= 0 {
			t.Errorf("sse, %s: %+v", side, s)
		}
	}
	if len(r.ColdStart.SwitchboardMs) == 0 || r.ColdStart.SwitchboardMedianMs <= 0 || r.ColdStart.BaselineMedianMs <= 0 {
		t.Errorf("cold start: %+v", r.ColdStart)
	}
	if r.Postgres == nil || r.Postgres.Skipped == "" {
		t.Errorf("postgres in --tiny: %+v, want skipped", r.Postgres)
	}
	for _, k := range []string{"1_publicHealthThroughput", "1_publicHealthCPU", "1_configThroughput", "2_startsThroughputVsBare",
		"3_heartbeatsThroughputVsBare", "4_postgresThreeOverOne", "5_sseMemoryPerSubscriber", "5_sseDeliveryP99", "6_coldStartVsBare"} {
		if _, ok := r.Ratios[k]; !ok {
			t.Errorf("ratio %s missing", k)
		}
	}
	for _, k := range []string{"1_publicHealth", "1_streamingConfig", "2_starts", "3_heartbeats", "5_sse", "6_coldStart"} {
		if _, ok := r.Met[k]; !ok {
			t.Errorf("verdict %s missing from met: %v", k, r.Met)
		}
	}
	if _, ok := r.Met["4_postgres"]; ok {
		t.Errorf("met holds a verdict on PostgreSQL, which --tiny skips: %v", r.Met)
	}
}

// TestTinyRunPostgres runs item 4 alone in the smallest mode on the test
// PostgreSQL server: Switchboard as one replica and as three, and the
// baseline as one process and as three, each answered every start it was
// sent, and the report holds both ratios and the verdict.
func TestTinyRunPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries and starts servers")
	}
	pg := os.Getenv(pgtest.EnvVar)
	if pg == "" {
		t.Skipf("set %s to run item 4", pgtest.EnvVar)
	}
	sbBin, benchBin := buildBins(t)
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"run", "--tiny", "--items", "4", "--postgres", pg,
		"--switchboard", sbBin, "--baseline", benchBin}, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	var r report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("the output is not one JSON report: %v\n%s", err, stdout.String())
	}
	p := r.Postgres
	if p == nil || p.Skipped != "" {
		t.Fatalf("postgres: %+v, want measured", p)
	}
	for name, s := range map[string]*stats{"one replica": p.OneReplica, "three replicas": p.ThreeReplicas,
		"one baseline": p.BareOneReplica, "three baselines": p.BareThreeReplicas} {
		if s == nil || s.Requests == 0 || s.Errors != 0 || s.P99Ms <= 0 {
			t.Errorf("%s: %+v", name, s)
		}
	}
	if p.ThreeOverOne <= 0 || p.BareThreeOverOne <= 0 {
		t.Errorf("ratios: three over one %v, the baseline's %v", p.ThreeOverOne, p.BareThreeOverOne)
	}
	if _, ok := r.Met["4_postgres"]; !ok || len(r.Met) != 1 {
		t.Errorf("met %v: want the verdict of item 4 alone", r.Met)
	}
}

// TestSSEOnlyRun runs the smallest benchmark with --sse-only: the report
// holds the event fan-out of both sides and its ratios, and no other item
// was measured.
func TestSSEOnlyRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries and starts servers")
	}
	sbBin, benchBin := buildBins(t)
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"run", "--tiny", "--sse-only", "--switchboard", sbBin, "--baseline", benchBin}, &stdout, &stderr); err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	var r report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("the output is not one JSON report: %v\n%s", err, stdout.String())
	}
	for side, s := range map[string]sseSide{"switchboard": r.SSE.Switchboard, "baseline": r.SSE.Baseline} {
		if s.Subscribers == 0 || s.Missed != 0 || s.DeliveryP99Ms <= 0 {
			t.Errorf("sse, %s: %+v", side, s)
		}
	}
	if r.SSE.Target == "" || len(r.Ratios) != 2 {
		t.Errorf("sse target %q, ratios %v: want the target and the two ratios of item 5", r.SSE.Target, r.Ratios)
	}
	if r.PublicHealth.Switchboard.Requests != 0 || len(r.ColdStart.SwitchboardMs) != 0 {
		t.Errorf("--sse-only measured other items: public health %+v, cold start %+v", r.PublicHealth.Switchboard, r.ColdStart)
	}
}

// TestParseItems: --items takes item numbers from 1 to 6 and refuses
// anything else, naming the flag.
func TestParseItems(t *testing.T) {
	got, err := parseItems("1, 6")
	if err != nil || len(got) != 2 || !got[1] || !got[6] {
		t.Fatalf("parseItems(1, 6) = %v, %v", got, err)
	}
	if o := (options{items: got}); !o.want(6) || o.want(2) {
		t.Errorf("want with items %v", got)
	}
	if all, err := parseItems(""); err != nil || all != nil || !(options{}).want(4) {
		t.Errorf("parseItems(\"\") = %v, %v; want all", all, err)
	}
	for _, bad := range []string{"0", "7", "x", "1,,2"} {
		if _, err := parseItems(bad); err == nil || !strings.Contains(err.Error(), "--items") {
			t.Errorf("parseItems(%q) = %v, want an error naming --items", bad, err)
		}
	}
}
