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
	out, err = runCLI(t, "check", "agora", "--server", s.url, "--token", serveToken)
	if err == nil || !strings.Contains(out, "auth") {
		t.Fatalf("check of a failing provider: %v\n%s", err, out)
	}
	if strings.Contains(out, serveSecret) || strings.Contains(out, serveCustID) {
		t.Fatal("check printed a credential")
	}
	if _, err := runCLI(t, "check", "ghost", "--server", s.url, "--token", serveToken); err == nil {
		t.Fatal("check of an unknown provider succeeded")
	}
}
