package client_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/internal/providers/fakes"
)

// An operator's change of the settings reaches a running Client over the
// event stream and is used at once: the next Start makes maxRetries attempts
// with the new backoff, without a restart or a refetch of the configuration.
func TestSettingsEventAppliedAtOnce(t *testing.T) {
	e := newEnv(t, settings())
	c := e.newClient()
	s, err := c.Start(context.Background(), "room-settings")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	waitFor(t, "the event stream", c.EventsConnected)
	if cfg, ok := c.Config(); !ok || cfg.MaxRetries != 3 {
		t.Fatalf("config before = %+v", cfg)
	}
	fetches := e.counter("GET /api/streaming/config").Load()

	var out map[string]any
	e.admin(http.MethodPut, "/api/settings", map[string]any{"maxRetries": 5, "retryBackoff": "20ms", "retryBudget": 1}, &out)
	waitFor(t, "the new settings", func() bool {
		cfg, _ := c.Config()
		return cfg.MaxRetries == 5 && cfg.RetryBackoff == 20*time.Millisecond && cfg.RetryBudget == 1
	})
	if got := e.counter("GET /api/streaming/config").Load(); got != fetches {
		t.Errorf("the configuration was fetched %d more times; the event alone should apply the settings", got-fetches)
	}
	// The settings are in use before the line that logs them is written.
	waitFor(t, "the client's log of the settings it applied", func() bool {
		return strings.Contains(e.logs.String(), "settings applied")
	})

	for _, p := range []string{primary, backup, fakes.LiveKit} {
		e.eng.Down(p, true)
	}
	before := e.eng.Connects()
	if _, err := c.Start(context.Background(), "room-settings-2"); err == nil {
		t.Fatal("Start succeeded with every provider down")
	}
	if got := e.eng.Connects() - before; got != 5 {
		t.Errorf("%d connects, want 5 (the new maxRetries)", got)
	}
}
