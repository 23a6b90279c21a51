package alerts

import (
	"context"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/events"
	"github.com/switchboardhq/switchboard/internal/streams"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

// A rule may name provider.regional; each regional status change it hears
// of becomes one notice (no reminder, no resolve), and a rule that does not
// name it hears nothing.
func TestRegionalNotice(t *testing.T) {
	testutil.LeakCheck(t)
	w := newWorld(t, "sqlite::memory:")
	ctx := context.Background()
	if _, err := (sb.RuleInput{Name: "typo", Events: []string{"provider.regionl"}, Channels: []string{"hook"}}).Build(); err == nil ||
		!strings.Contains(err.Error(), sb.AlertProviderRegional) {
		t.Fatalf("unknown event: err = %v; want one listing provider.regional", err)
	}
	hub := events.New(events.Options{Clock: w.clock})
	t.Cleanup(hub.Close)
	d := New(Config{Store: w.store, Senders: Senders(w.rc.Client(), nil, w.clock.Now), Clock: w.clock, Events: hub, Tick: time.Hour})
	event := func(to string) sb.Event {
		w.clock.Advance(time.Second)
		return sb.Event{Type: sb.EventProviderRegional, At: w.clock.Now(), Audience: sb.RoleAdmin,
			Data: streams.RegionalChange{Provider: "agora", Region: "ap-south", From: "HEALTHY", To: to,
				Reason: "3 consecutive failures", Source: "agent:sin-1", At: w.clock.Now()}}
	}
	// Only the oncall rule exists, which does not name provider.regional.
	d.event(ctx, event(string(sb.StatusCritical)))
	if err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(w.rc.requests()); n != 0 {
		t.Fatalf("no rule names provider.regional, yet %d notifications went out", n)
	}

	audit := sb.AuditEntry{Actor: sb.Actor{Kind: "user", Name: "test", Role: sb.RoleSuperadmin}}
	r, err := sb.RuleInput{Name: "regions", Events: []string{sb.AlertProviderRegional}, Channels: []string{"hook"},
		RepeatInterval: ptr(sb.Duration(time.Minute))}.Build()
	if err != nil {
		t.Fatalf("a rule naming provider.regional: %v", err)
	}
	if err := w.store.CreateAlertRule(ctx, r, audit); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	testutil.Eventually(t, "the subscription", func() bool { return hub.Stats().Subscribers > 0 })
	hub.Publish(event(regionalStale))
	testutil.Eventually(t, "the regional notice", func() bool { return len(w.rc.requests()) == 1 })
	n := w.bodies()[0]
	if n.Event != sb.AlertProviderRegional || n.Provider != "agora" || n.Severity != sb.SeverityWarning ||
		n.StatusAfter != sb.StatusUnknown || !strings.Contains(n.Summary, "ap-south") || !strings.Contains(n.Summary, "stale") {
		t.Fatalf("notice = %+v", n)
	}
	// Later passes neither remind nor resolve a notice.
	w.clock.Advance(2 * time.Hour)
	if err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := transitions(w.bodies()); got != "provider.regional/trigger" {
		t.Fatalf("notifications = %s; want the one trigger", got)
	}
}
