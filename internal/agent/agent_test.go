package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/providers"
)

func TestRunRefusesBadConfig(t *testing.T) {
	ok := Config{Server: "http://127.0.0.1:1", Token: "t", Region: "eu-west", Probers: providers.Probers()}
	for name, mut := range map[string]func(*Config){
		"no server":  func(c *Config) { c.Server = "" },
		"ftp server": func(c *Config) { c.Server = "ftp://x" },
		"no token":   func(c *Config) { c.Token = "" },
		"bad region": func(c *Config) { c.Region = "EU West" },
		"no probers": func(c *Config) { c.Probers = nil },
	} {
		cfg := ok
		mut(&cfg)
		if err := Run(context.Background(), cfg); err == nil {
			t.Errorf("%s: Run succeeded", name)
		}
	}
}

// A token the server refuses stops the agent at once, with the server's
// reason.
func TestRunRefusedToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`{"error":{"code":"forbidden","message":"this endpoint needs role agent"}}`))
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := Run(ctx, Config{Server: srv.URL, Token: "sbt_x", Region: "eu-west", Probers: providers.Probers()})
	if err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "needs role agent") {
		t.Fatalf("Run = %v; want the server's 403", err)
	}
}

// The reporter keeps what the server could not take, and sends it with the
// next report; what the server refuses is dropped.
func TestReporterKeepsUnsent(t *testing.T) {
	var got []int
	status := http.StatusServiceUnavailable
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Results []wireResult }
		_ = decodeBody(r, &body)
		got = append(got, len(body.Results))
		w.WriteHeader(status)
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	rep := &reporter{c: &client{base: srv.URL, token: "t", hc: srv.Client()}, region: "eu-west", log: nopLogger(), health: map[string]sb.Health{}}
	fold := func(h sb.Health) sb.Health { h.TotalChecks++; return h }
	at := time.Now()
	for range 2 {
		if _, _, err := rep.RecordCheck(context.Background(), "agora", sb.ProbeResult{OK: true, At: at}, fold); err != nil {
			t.Fatal(err)
		}
	}
	status = http.StatusBadRequest
	_, after, _ := rep.RecordCheck(context.Background(), "agora", sb.ProbeResult{OK: true, At: at}, fold)
	status = http.StatusOK
	_, _, _ = rep.RecordCheck(context.Background(), "agora", sb.ProbeResult{OK: true, At: at}, fold)
	if want := []int{1, 2, 3, 1}; !equal(got, want) {
		t.Errorf("results per report = %v; want %v", got, want)
	}
	if after.TotalChecks != 3 {
		t.Errorf("health from here = %d checks; want 3", after.TotalChecks)
	}
}
