package client_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/client"
	"github.com/switchboardhq/switchboard/internal/providers/fakes"
)

type maintenanceWindow struct {
	ID            string `json:"id"`
	DrainProgress *struct {
		Asked, Moved, Remaining int
	} `json:"drainProgress"`
}

func (e *env) maintenance(provider string, start, end time.Time, drain bool) maintenanceWindow {
	e.t.Helper()
	var w maintenanceWindow
	e.admin(http.MethodPost, "/api/maintenance", map[string]any{"provider": provider, "start": start.UTC().Format(time.RFC3339Nano),
		"end": end.UTC().Format(time.RFC3339Nano), "reason": "vendor upgrade", "drain": drain, "drainRate": 20}, &w)
	return w
}

// A maintenance window that asks for a drain moves the SDK's live streams
// off the provider before it starts, make-before-break; new streams avoid it.
func TestMaintenanceDrainMovesStreams(t *testing.T) {
	e := newEnv(t, settings())
	c := e.newClient()
	var live []*client.Stream
	for i := range 4 {
		live = append(live, mustStart(t, c, fmt.Sprintf("drain-%d", i)))
	}
	waitFor(t, "the event stream", c.EventsConnected)
	now := time.Now()
	w := e.maintenance(primary, now.Add(time.Minute), now.Add(time.Hour), true)
	for _, s := range live {
		m := nextState[client.Migrated](t, s)
		if m.From != primary || m.To == primary {
			t.Errorf("stream migrated %s -> %s, want off %s", m.From, m.To, primary)
		}
		// The move to the standby is reported afterwards.
		waitFor(t, "the server to know the move", func() bool { return e.stream(s.ID()).Provider == m.To })
	}
	waitFor(t, "every connection off "+primary, func() bool { return e.eng.Active(primary) == 0 })
	waitFor(t, "the configuration to show the maintenance", func() bool {
		cfg, _ := c.Config()
		for _, p := range cfg.Providers {
			if p.Name == primary {
				return p.Maintenance != nil && p.Maintenance.Reason == "vendor upgrade"
			}
		}
		return false
	})
	if s := mustStart(t, c, "new"); s.Provider() == primary {
		t.Errorf("new stream on %s during its drain", primary)
	}
	waitFor(t, "the drain to report every stream moved", func() bool {
		var got maintenanceWindow
		e.admin(http.MethodGet, "/api/maintenance/"+w.ID, nil, &got)
		p := got.DrainProgress
		return p != nil && p.Remaining == 0 && p.Moved == len(live)
	})
}

// Without a drain, live streams stay on the provider in maintenance; only
// new streams avoid it, and the SDK does not move a stream there.
func TestMaintenanceWithoutDrainKeepsStreams(t *testing.T) {
	e := newEnv(t, settings())
	c := e.newClient(client.WithPolicy(client.MigrateGradually{Rate: 50}))
	s := mustStart(t, c, "stay")
	waitFor(t, "the event stream", c.EventsConnected)
	now := time.Now()
	e.maintenance(primary, now, now.Add(time.Hour), false)
	waitFor(t, "the configuration to show the maintenance", func() bool {
		cfg, _ := c.Config()
		return len(cfg.Providers) > 0 && cfg.Providers[0].Name == primary && cfg.Providers[0].Maintenance != nil
	})
	if n := mustStart(t, c, "new"); n.Provider() != fakes.Zegocloud {
		t.Errorf("new stream on %s, want %s", n.Provider(), fakes.Zegocloud)
	}
	// Two heartbeats later, the live stream is still where it was.
	e.waitRequests(t, 2, heartbeatKey(s))
	if s.Provider() != primary || s.Migrations() != 0 {
		t.Errorf("live stream moved to %s (%d migrations) without a drain", s.Provider(), s.Migrations())
	}
	// A priority change does not move streams onto the provider in maintenance.
	e.admin(http.MethodPut, "/api/streaming/providers/priorities", map[string][]string{"order": {backup, primary, fakes.LiveKit}}, nil)
	e.admin(http.MethodPut, "/api/streaming/providers/priorities", map[string][]string{"order": {primary, backup, fakes.LiveKit}}, nil)
	n := mustStart(t, c, "new-2")
	e.waitRequests(t, 2, heartbeatKey(n))
	if n.Provider() == primary {
		t.Errorf("stream moved onto %s during its maintenance", primary)
	}
}

// Two Clients of one app share its client token, and each owns the streams
// it starts: the server records them under different owners, and a drain's
// stream.migrate events, each sent to its stream's owner alone, move every
// stream of both.
func TestDrainReachesEachClientsOwnStreams(t *testing.T) {
	e := newEnv(t, settings())
	a, b := e.newClient(), e.newClient()
	var live []*client.Stream
	owners := map[*client.Client]string{}
	for i, c := range []*client.Client{a, b, a, b} {
		s := mustStart(t, c, fmt.Sprintf("owned-%d", i))
		live = append(live, s)
		owner := e.stream(s.ID()).Owner
		if prev, ok := owners[c]; ok && prev != owner {
			t.Fatalf("one Client's streams have owners %q and %q", prev, owner)
		}
		owners[c] = owner
	}
	if owners[a] == owners[b] || !strings.HasPrefix(owners[a], "token:") || !strings.Contains(owners[a], "/") {
		t.Fatalf("owners %q and %q: want the token and each Client's own instance", owners[a], owners[b])
	}
	waitFor(t, "the event streams", func() bool { return a.EventsConnected() && b.EventsConnected() })
	now := time.Now()
	e.maintenance(primary, now.Add(time.Minute), now.Add(time.Hour), true)
	for _, s := range live {
		if m := nextState[client.Migrated](t, s); m.From != primary {
			t.Errorf("stream migrated from %s, want %s", m.From, primary)
		}
	}
}
