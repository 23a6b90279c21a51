package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/events"
)

// TestMetricsShowEventHub opens an event stream, publishes on the hub and reads
// the hub's counters on /metrics.
func TestMetricsShowEventHub(t *testing.T) {
	e := newTestEnv(t)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/api/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", bearer(e.tokens[sb.RoleClient]))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("open event stream: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("event stream: status %d, want 200", resp.StatusCode)
	}
	// The hub registers the stream before the response headers are sent.
	for range 2 {
		e.api.hub.Publish(sb.Event{Type: sb.EventProviderUpdated, Audience: sb.RoleClient})
	}

	_, body := e.do("GET", "/metrics", "", nil)
	for _, want := range []string{
		"# TYPE switchboard_events_subscribers gauge",
		"switchboard_events_subscribers 1\n",
		"# TYPE switchboard_events_published_total counter",
		"switchboard_events_published_total 2\n",
		"# TYPE switchboard_events_dropped_subscribers_total counter",
		"switchboard_events_dropped_subscribers_total 0\n",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestWatchHubReplaces wires the test server's Metrics into further servers,
// as a process that rebuilds its API would: each new hub replaces the one
// watched instead of failing the registration.
func TestWatchHubReplaces(t *testing.T) {
	e := newTestEnv(t)
	first, second := events.New(events.Options{}), events.New(events.Options{})
	defer first.Close()
	defer second.Close()
	first.Publish(sb.Event{Type: "test"})
	for range 3 {
		second.Publish(sb.Event{Type: "test"})
	}

	tests := []struct {
		name string
		hub  *events.Hub
		want string
	}{
		{"first", first, "switchboard_events_published_total 1\n"},
		{"second", second, "switchboard_events_published_total 3\n"},
		{"first again", first, "switchboard_events_published_total 1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			New(Options{Store: e.store, Metrics: e.api.metrics, Events: tt.hub})
			if _, got := e.do("GET", "/metrics", "", nil); !strings.Contains(string(got), tt.want) {
				t.Errorf("metrics lack %q", tt.want)
			}
		})
	}
}
