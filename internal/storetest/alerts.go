package storetest

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
)

func webhookChannel(name string) switchboard.AlertChannel {
	return switchboard.AlertChannel{Name: name, Kind: switchboard.ChannelWebhook,
		Config:  switchboard.ChannelConfig{URL: "https://hooks.example.com/" + name},
		Secrets: switchboard.ChannelSecrets{SigningSecret: "whsec-" + name + "-0123456789abcdef"}}
}

// testAlertChannels checks channels: secrets round-trip sealed and never in
// the audit, updates keep the kind, and a channel a rule uses cannot go.
func testAlertChannels(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	c := webhookChannel("ops")
	if err := s.CreateAlertChannel(ctx, c, audit("")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAlertChannel(ctx, c, audit("")); !switchboard.IsCode(err, switchboard.EConflict) {
		t.Fatalf("second create = %v, want conflict", err)
	}
	bad := c
	bad.Name, bad.Config.URL = "bad", "ftp://x"
	if err := s.CreateAlertChannel(ctx, bad, audit("")); !switchboard.IsCode(err, switchboard.EInvalid) {
		t.Fatalf("invalid create = %v", err)
	}
	got, err := s.GetAlertChannel(ctx, "ops")
	if err != nil || got.Secrets != c.Secrets || got.Config.URL != c.Config.URL || len(got.SecretsSet) != 1 {
		t.Fatalf("GetAlertChannel = %+v, %v", got, err)
	}
	upd, err := s.UpdateAlertChannel(ctx, "ops", func(ch switchboard.AlertChannel) (switchboard.AlertChannel, error) {
		ch.Config.URL = "https://hooks.example.com/other"
		return ch, nil
	}, audit(""))
	if err != nil || upd.Config.URL != "https://hooks.example.com/other" || upd.Secrets != c.Secrets {
		t.Fatalf("UpdateAlertChannel = %+v, %v", upd, err)
	}
	if _, err := s.UpdateAlertChannel(ctx, "ops", func(ch switchboard.AlertChannel) (switchboard.AlertChannel, error) {
		ch.Kind = switchboard.ChannelSlack
		return ch, nil
	}, audit("")); !switchboard.IsCode(err, switchboard.EInvalid) {
		t.Fatalf("kind change = %v, want invalid", err)
	}
	if _, err := s.UpdateAlertChannel(ctx, "nope", func(ch switchboard.AlertChannel) (switchboard.AlertChannel, error) { return ch, nil }, audit("")); !switchboard.IsCode(err, switchboard.ENotFound) {
		t.Fatalf("update of unknown = %v", err)
	}
	r := switchboard.AlertRule{Name: "r1", Events: []string{switchboard.AlertProviderCritical}, Channels: []string{"ops"},
		Providers: []string{}, Enabled: true, MinSeverity: switchboard.SeverityInfo, RepeatInterval: switchboard.Duration(time.Hour)}
	if err := s.CreateAlertRule(ctx, r, audit("")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAlertChannel(ctx, "ops", audit("")); !switchboard.IsCode(err, switchboard.EConflict) {
		t.Fatalf("delete of a channel in use = %v, want conflict", err)
	}
	if err := s.DeleteAlertRule(ctx, "r1", audit("")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAlertChannel(ctx, "ops", audit("")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetAlertChannel(ctx, "ops"); !switchboard.IsCode(err, switchboard.ENotFound) {
		t.Fatalf("get after delete = %v", err)
	}
	entries := mustAudit(t, s)
	var actions []string
	for _, e := range entries {
		actions = append(actions, e.Action)
		for _, v := range c.Secrets.Values() {
			if strings.Contains(string(e.Before)+string(e.After), v) {
				t.Errorf("audit entry %s holds a secret", e.Action)
			}
		}
	}
	want := "alert.channel.delete alert.rule.delete alert.rule.create alert.channel.update alert.channel.create"
	if got := strings.Join(actions, " "); got != want {
		t.Errorf("audit actions = %s, want %s", got, want)
	}
}

// testAlertRules checks rules: round trip, an unknown channel refused with
// the field, replace and delete.
func testAlertRules(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	if err := s.CreateAlertChannel(ctx, webhookChannel("ops"), audit("")); err != nil {
		t.Fatal(err)
	}
	in := switchboard.RuleInput{Name: "storm", Events: []string{switchboard.AlertFailoverStorm}, Channels: []string{"ops", "ghost"}}
	r, err := in.Build()
	if err != nil {
		t.Fatal(err)
	}
	err = s.CreateAlertRule(ctx, r, audit(""))
	if e, ok := err.(*switchboard.Error); !ok || e.Field != "channels" {
		t.Fatalf("rule with an unknown channel = %v, want invalid channels", err)
	}
	if rules, _ := s.ListAlertRules(ctx); len(rules) != 0 {
		t.Fatalf("a refused rule was stored: %+v", rules)
	}
	r.Channels = []string{"ops"}
	if err := s.CreateAlertRule(ctx, r, audit("")); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetAlertRule(ctx, "storm")
	if err != nil || got.StormMigrations != switchboard.DefaultStormMigrations || got.StormWindow.D() != switchboard.DefaultStormWindow || !got.Enabled {
		t.Fatalf("GetAlertRule = %+v, %v", got, err)
	}
	r.Enabled = false
	if _, err := s.ReplaceAlertRule(ctx, r, audit("")); err != nil {
		t.Fatal(err)
	}
	rules, err := s.ListAlertRules(ctx)
	if err != nil || len(rules) != 1 || rules[0].Enabled || rules[0].CreatedAt.IsZero() {
		t.Fatalf("ListAlertRules = %+v, %v", rules, err)
	}
	if _, err := s.ReplaceAlertRule(ctx, switchboard.AlertRule{Name: "nope", Events: r.Events, Channels: r.Channels, MinSeverity: "info", StormMigrations: 1, StormWindow: r.StormWindow}, audit("")); !switchboard.IsCode(err, switchboard.ENotFound) {
		t.Fatalf("replace of unknown = %v", err)
	}
}

// testAlertLedger checks incidents and deliveries: one open incident per key,
// the ledger refusing a second delivery of a transition, claims by one
// holder at a time, retries and the resolve queued behind its trigger.
func testAlertLedger(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	inc := switchboard.Incident{Key: "provider.critical:agora", Cause: switchboard.AlertProviderCritical, Provider: "agora",
		Severity: switchboard.SeverityCritical, Summary: "agora is CRITICAL", StatusFrom: "HEALTHY", StatusTo: "CRITICAL", OpenedAt: t0}
	a, opened, err := s.OpenIncident(ctx, inc)
	if err != nil || !opened || a.ID == 0 {
		t.Fatalf("OpenIncident = %+v, %v, %v", a, opened, err)
	}
	b, opened, err := s.OpenIncident(ctx, inc)
	if err != nil || opened || b.ID != a.ID {
		t.Fatalf("second OpenIncident = %+v, %v, %v; want the first", b, opened, err)
	}
	trig := switchboard.Delivery{IncidentID: a.ID, Rule: "r", Channel: "ops", Transition: switchboard.TransitionTrigger, NextAt: t0}
	d, added, err := s.QueueDelivery(ctx, trig)
	if err != nil || !added {
		t.Fatalf("QueueDelivery = %v, %v", added, err)
	}
	if _, added, err := s.QueueDelivery(ctx, trig); err != nil || added {
		t.Fatalf("second QueueDelivery = %v, %v; want not added", added, err)
	}
	// Two holders claim at once: one gets it.
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		claims = map[string]int{}
	)
	for _, h := range []string{"h1", "h2"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ds, err := s.ClaimDeliveries(ctx, h, t0, t0.Add(time.Minute), 10)
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			claims[h] = len(ds)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if claims["h1"]+claims["h2"] != 1 {
		t.Fatalf("claims = %v, want the delivery claimed once", claims)
	}
	holder := "h1"
	if claims["h2"] == 1 {
		holder = "h2"
	}
	if _, err := s.RecordAttempt(ctx, "other", switchboard.DeliveryAttempt{DeliveryID: d.ID, At: t0, Outcome: switchboard.OutcomeSent}, time.Time{}); !switchboard.IsCode(err, switchboard.ENotFound) {
		t.Fatalf("attempt by a non-holder = %v, want not found", err)
	}
	got, err := s.RecordAttempt(ctx, holder, switchboard.DeliveryAttempt{DeliveryID: d.ID, At: t0, Outcome: switchboard.OutcomeRetry, HTTPStatus: 503, Error: "503"}, t0.Add(time.Minute))
	if err != nil || got.Status != switchboard.DeliveryPending || got.Attempts != 1 || !got.NextAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("retry = %+v, %v", got, err)
	}
	if ds, _ := s.ClaimDeliveries(ctx, holder, t0.Add(30*time.Second), t0.Add(2*time.Minute), 10); len(ds) != 0 {
		t.Fatalf("claimed before it was due: %+v", ds)
	}
	// Resolved while the trigger is pending: its resolve waits behind it.
	rem := switchboard.Delivery{IncidentID: a.ID, Rule: "r", Channel: "ops", Transition: switchboard.TransitionReminder, Seq: 1, NextAt: t0}
	if _, added, err := s.QueueDelivery(ctx, rem); err != nil || !added {
		t.Fatal(added, err)
	}
	res, ok, err := s.ResolveIncident(ctx, inc.Key, t0.Add(time.Minute))
	if err != nil || !ok || res.ResolvedAt == nil {
		t.Fatalf("ResolveIncident = %+v, %v, %v", res, ok, err)
	}
	if _, ok, _ := s.ResolveIncident(ctx, inc.Key, t0.Add(time.Minute)); ok {
		t.Fatal("a resolved incident resolved again")
	}
	ds, err := s.ClaimDeliveries(ctx, holder, t0.Add(2*time.Minute), t0.Add(3*time.Minute), 10)
	if err != nil || len(ds) != 1 || ds[0].Transition != switchboard.TransitionTrigger {
		t.Fatalf("claim = %+v, %v; want the trigger alone (the resolve waits, the reminder is cancelled)", ds, err)
	}
	if _, err := s.RecordAttempt(ctx, holder, switchboard.DeliveryAttempt{DeliveryID: d.ID, At: t0.Add(2 * time.Minute), Outcome: switchboard.OutcomeSent, HTTPStatus: 200}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	ds, err = s.ClaimDeliveries(ctx, holder, t0.Add(2*time.Minute), t0.Add(3*time.Minute), 10)
	if err != nil || len(ds) != 1 || ds[0].Transition != switchboard.TransitionResolve {
		t.Fatalf("claim = %+v, %v; want the resolve", ds, err)
	}
	all, err := s.ListDeliveries(ctx, a.ID)
	if err != nil || len(all) != 3 || all[1].Status != switchboard.DeliveryCancelled {
		t.Fatalf("ListDeliveries = %+v, %v", all, err)
	}
	// A new incident of the key opens once the last is resolved.
	c, opened, err := s.OpenIncident(ctx, inc)
	if err != nil || !opened || c.ID == a.ID {
		t.Fatalf("reopen = %+v, %v, %v", c, opened, err)
	}
	if open, err := s.OpenIncidents(ctx); err != nil || len(open) != 1 || open[0].ID != c.ID {
		t.Fatalf("OpenIncidents = %+v, %v", open, err)
	}
	// A notice opens once, for ever.
	n := switchboard.Incident{Key: "budget.threshold:agora:2026-12:80", Cause: switchboard.AlertBudgetThreshold, Notice: true, OpenedAt: t0, Severity: "warning"}
	if _, opened, err := s.OpenIncident(ctx, n); err != nil || !opened {
		t.Fatal(opened, err)
	}
	if _, opened, err := s.OpenIncident(ctx, n); err != nil || opened {
		t.Fatalf("notice opened twice: %v %v", opened, err)
	}
	atts, err := s.ListAttempts(ctx, switchboard.AttemptFilter{Channel: "ops"})
	if err != nil || len(atts) != 2 || atts[0].Outcome != switchboard.OutcomeSent || atts[1].HTTPStatus != 503 || atts[0].IncidentID != a.ID {
		t.Fatalf("ListAttempts = %+v, %v", atts, err)
	}
	// A test send is claimed for its caller at once.
	td, added, err := s.QueueDelivery(ctx, switchboard.Delivery{Channel: "ops", Transition: switchboard.TransitionTest, Holder: "api"})
	if err != nil || !added {
		t.Fatal(added, err)
	}
	// A sender never takes it, even once the caller's claim ran out.
	far := time.Now().Add(365 * 24 * time.Hour) // after any claim of the caller ran out
	ds, err = s.ClaimDeliveries(ctx, "worker", far, far.Add(time.Hour), 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if d.ID == td.ID {
			t.Fatalf("a sender claimed the test send %+v", d)
		}
	}
	if _, err := s.RecordAttempt(ctx, "api", switchboard.DeliveryAttempt{DeliveryID: td.ID, At: t0, Outcome: switchboard.OutcomeFailed, HTTPStatus: 400, Error: "400"}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetDelivery(ctx, td.ID); err != nil || got.Status != switchboard.DeliveryFailed {
		t.Fatalf("test delivery = %+v, %v", got, err)
	}
}
