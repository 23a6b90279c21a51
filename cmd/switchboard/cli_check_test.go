package main

import (
	"strings"
	"testing"

	"github.com/switchboardhq/switchboard/internal/providers/fault"
)

func TestCheckCLI(t *testing.T) {
	fake := agoraFake(t)
	s := startInProcess(t, t.TempDir())
	defer s.stop(t)
	call(t, "POST", s.url+"/api/streaming/providers", serveToken, agoraBody("agora", fake.URL()), nil)
	out, err := runCLI(t, "check", "--server", s.url, "--token", serveToken)
	if err != nil || !strings.Contains(out, "agora") || !strings.Contains(out, "EXCELLENT") {
		t.Fatalf("check all: %v\n%s", err, out)
	}
	if err := fake.Faults().Set(fault.RejectAuth); err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{"PROBE", "USABLE", "STATUS"} {
		if !strings.Contains(out, col) {
			t.Errorf("check header lacks %s:\n%s", col, out)
		}
	}
	if row := rowOf(out, "agora"); len(row) < 4 || row[1] != "ok" || row[2] != "yes" || row[3] != "EXCELLENT" {
		t.Errorf("check all: agora row %q, want probe ok, usable yes, EXCELLENT", row)
	}
	out, err = runCLI(t, "check", "agora", "--server", s.url, "--token", serveToken)
	if err == nil || !strings.Contains(out, "auth") {
		t.Fatalf("check of a failing provider: %v\n%s", err, out)
	}
	// This probe failed; the provider, verified before, is still usable
	// (one failure is below its failure threshold).
	if row := rowOf(out, "agora"); len(row) < 4 || row[1] != "failed" || row[2] != "yes" || row[3] != "WARNING" {
		t.Errorf("failed probe: agora row %q, want probe failed, usable yes, WARNING", row)
	}
	if strings.Contains(out, serveSecret) || strings.Contains(out, serveCustID) {
		t.Fatal("check printed a credential")
	}
	if _, err := runCLI(t, "check", "ghost", "--server", s.url, "--token", serveToken); err == nil {
		t.Fatal("check of an unknown provider succeeded")
	}
}

// rowOf returns the fields of the table row of out whose first field is name.
func rowOf(out, name string) []string {
	for line := range strings.Lines(out) {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return f
		}
	}
	return nil
}
