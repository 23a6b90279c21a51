package conformance_test

import (
	"bufio"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/conformance"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

// TestConformance plays every scenario of the kit against the Go SDK and,
// when SWITCHBOARD_CONFORMANCE_JS names the TypeScript SDK's test service
// (sdk/js/build/test/service.js once `npm test` built it; relative to the
// repository's root, or absolute), against the TypeScript SDK under Node.js.
// scripts/test runs both.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs switchboard serve")
	}
	scenarios, err := conformance.Scenarios()
	if err != nil {
		t.Fatal(err)
	}
	if len(scenarios) == 0 {
		t.Fatal("no scenarios")
	}
	bin := filepath.Join(t.TempDir(), "switchboard")
	build := exec.Command("go", "build", "-o", bin, "./cmd/switchboard")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	t.Run("go", func(t *testing.T) {
		testutil.LeakCheck(t)
		svc := conformance.NewGoService()
		srv := httptest.NewServer(svc)
		t.Cleanup(func() { srv.Close(); svc.Close() })
		for _, sc := range scenarios {
			t.Run(sc.Name, func(t *testing.T) { conformance.Run(t, bin, srv.URL, sc) })
		}
	})

	t.Run("typescript", func(t *testing.T) {
		url := startJSService(t)
		for _, sc := range scenarios {
			t.Run(sc.Name, func(t *testing.T) { conformance.Run(t, bin, url, sc) })
		}
	})
}

var jsListening = regexp.MustCompile(`listening on (http://\S+)`)

// startJSService runs the TypeScript SDK's test service under Node.js.
func startJSService(t *testing.T) string {
	t.Helper()
	script := os.Getenv("SWITCHBOARD_CONFORMANCE_JS")
	if script == "" {
		t.Skip("SWITCHBOARD_CONFORMANCE_JS is not set: scripts/test sets it once sdk/js is built")
	}
	if !filepath.IsAbs(script) {
		script = filepath.Join("..", script) // relative to the repository's root
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("SWITCHBOARD_CONFORMANCE_JS is set but node is not installed: %v", err)
	}
	if _, err := os.Stat(script); err != nil {
		t.Fatalf("SWITCHBOARD_CONFORMANCE_JS: %v", err)
	}
	cmd := exec.Command(node, script)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := jsListening.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
			}
		}
		_ = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	select {
	case u := <-found:
		return u
	case <-exited:
		t.Fatal("the TypeScript test service exited")
	case <-time.After(testutil.Patience):
		t.Fatal("the TypeScript test service did not listen")
	}
	return ""
}
