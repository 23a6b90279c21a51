package alerts

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/events"
	"github.com/switchboardhq/switchboard/internal/jobs"
	"github.com/switchboardhq/switchboard/internal/pgtest"
	"github.com/switchboardhq/switchboard/internal/replica"
	"github.com/switchboardhq/switchboard/internal/secrets"
	"github.com/switchboardhq/switchboard/internal/sqlstore"
	"github.com/switchboardhq/switchboard/internal/storetest"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

func sealer(t *testing.T) secrets.BoundSealer {
	t.Helper()
	key := make([]byte, secrets.KeySize)
	_, _ = rand.Read(key)
	s, err := secrets.NewAESGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openStore(t *testing.T, dsn string, seal secrets.BoundSealer, clock sb.Clock) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), dsn, seal, clock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// world is a store with a provider, a webhook channel to a receiver and a
// rule, and a dispatcher on them.
type world struct {
	t     *testing.T
	dsn   string
	seal  secrets.BoundSealer
	clock *testutil.Clock
	store *sqlstore.Store
	rc    *receiver
	logs  *bytes.Buffer
	reg   *prometheus.Registry
}

func newWorld(t *testing.T, dsn string, answers ...func(http.ResponseWriter)) *world {
	t.Helper()
	w := &world{t: t, dsn: dsn, seal: sealer(t), clock: testutil.NewClock(t0), logs: &bytes.Buffer{}}
	w.store = openStore(t, dsn, w.seal, w.clock)
	w.rc = newReceiver(t, answers...)
	ctx := context.Background()
	audit := sb.AuditEntry{Actor: sb.Actor{Kind: "user", Name: "test", Role: sb.RoleSuperadmin}}
	if err := w.store.CreateProvider(ctx, storetest.HTTPProvider(t, "agora", "http://127.0.0.1:1/"), audit); err != nil {
		t.Fatal(err)
	}
	if err := w.store.CreateProvider(ctx, storetest.HTTPProvider(t, "backup", "http://127.0.0.1:1/"), audit); err != nil {
		t.Fatal(err)
	}
	ch := sb.AlertChannel{Name: "hook", Kind: sb.ChannelWebhook, Config: sb.ChannelConfig{URL: w.rc.URL + "/hook"},
		Secrets: sb.ChannelSecrets{SigningSecret: signingSecret}}
	if err := w.store.CreateAlertChannel(ctx, ch, audit); err != nil {
		t.Fatal(err)
	}
	r, err := sb.RuleInput{Name: "oncall", Events: []string{sb.AlertProviderCritical, sb.AlertProviderRecovered, sb.AlertAuthFailed},
		Channels: []string{"hook"}, RepeatInterval: ptr(sb.Duration(time.Hour))}.Build()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.store.CreateAlertRule(ctx, r, audit); err != nil {
		t.Fatal(err)
	}
	return w
}

func ptr[T any](v T) *T { return &v }

// dispatcher returns a Dispatcher on store (the world's when nil).
func (w *world) dispatcher(store Store, holder string) *Dispatcher {
	if store == nil {
		store = w.store
	}
	if w.reg == nil {
		w.reg = prometheus.NewRegistry()
	}
	m := &Metrics{}
	if holder == "main" || holder == "" {
		m = NewMetrics(w.reg)
	} else {
		m = nil
	}
	return New(Config{Store: store, Senders: Senders(w.rc.Client(), nil, w.clock.Now), Clock: w.clock, Holder: holder,
		Logger: slog.New(slog.NewTextHandler(&syncWriter{w: w.logs}, nil)), Metrics: m,
		DashboardURL: "https://switchboard.example.com/", Rand: func() float64 { return 0.5 }})
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// setStatus records a status for a provider, as the health checker does.
func (w *world) setStatus(name string, st sb.Status, reason string) {
	w.t.Helper()
	_, _, err := w.store.UpdateHealth(context.Background(), name, w.clock.Now(), func(h sb.Health) sb.Health {
		now := w.clock.Now()
		h.Status, h.StatusReason, h.StatusSince = st, reason, &now
		return h
	})
	if err != nil {
		w.t.Fatal(err)
	}
}

// bodies decodes the webhook bodies received so far.
func (w *world) bodies() []Notification {
	var out []Notification
	for _, r := range w.rc.requests() {
		var n Notification
		if err := json.Unmarshal(r.Body, &n); err != nil {
			w.t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func transitions(ns []Notification) string {
	var s []string
	for _, n := range ns {
		s = append(s, n.Event+"/"+n.Transition)
	}
	return strings.Join(s, " ")
}

func TestIncidentTriggerReminderResolve(t *testing.T) {
	testutil.LeakCheck(t)
	w := newWorld(t, "sqlite:"+filepath.Join(t.TempDir(), "a.db"))
	d := w.dispatcher(nil, "main")
	ctx := context.Background()
	mustRun := func() {
		t.Helper()
		if err := d.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	mustRun()
	if n := len(w.rc.requests()); n != 0 {
		t.Fatalf("%d notifications with every provider healthy", n)
	}
	w.setStatus("agora", sb.StatusHealthy, "")
	w.clock.Advance(time.Minute)
	w.setStatus("agora", sb.StatusCritical, "5 consecutive failures")
	mustRun()
	mustRun() // again: nothing new
	got := w.bodies()
	if transitions(got) != "provider.critical/trigger" {
		t.Fatalf("notifications = %s", transitions(got))
	}
	trig := got[0]
	if trig.Provider != "agora" || trig.StatusBefore != sb.StatusHealthy || trig.StatusAfter != sb.StatusCritical ||
		trig.Reason != "5 consecutive failures" || trig.IncidentID == 0 || !trig.Time.Equal(t0.Add(time.Minute)) || trig.DashboardURL == "" {
		t.Errorf("trigger = %+v", trig)
	}
	// Reminders at the repeat interval, one per interval.
	w.clock.Advance(59 * time.Minute)
	mustRun()
	w.clock.Advance(30 * time.Minute)
	mustRun()
	w.clock.Advance(31 * time.Minute)
	mustRun()
	if got := transitions(w.bodies()); got != "provider.critical/trigger provider.critical/reminder provider.critical/reminder" {
		t.Fatalf("notifications = %s", got)
	}
	if r := w.bodies()[2]; r.Reminder != 2 || r.IncidentID != trig.IncidentID {
		t.Errorf("second reminder = %+v", r)
	}
	// Recovery: one resolve.
	w.setStatus("agora", sb.StatusHealthy, "")
	mustRun()
	mustRun()
	got = w.bodies()
	if transitions(got) != "provider.critical/trigger provider.critical/reminder provider.critical/reminder provider.recovered/resolve" {
		t.Fatalf("notifications = %s", transitions(got))
	}
	if res := got[3]; res.IncidentID != trig.IncidentID || res.StatusBefore != sb.StatusCritical || res.Severity != sb.SeverityInfo {
		t.Errorf("resolve = %+v", res)
	}
	// Every request carried a valid signature.
	for _, r := range w.rc.requests() {
		if err := Verify(signingSecret, r.Header.Get(SignatureHeader), r.Body, w.clock.Now(), 3*time.Hour); err != nil {
			t.Errorf("signature: %v", err)
		}
	}
	// A new failure is a new incident.
	w.setStatus("agora", sb.StatusCritical, "down again")
	mustRun()
	if got := w.bodies(); len(got) != 5 || got[4].IncidentID == trig.IncidentID {
		t.Errorf("second incident = %s", transitions(got))
	}
	atts, err := w.store.ListAttempts(ctx, sb.AttemptFilter{})
	if err != nil || len(atts) != 5 {
		t.Fatalf("attempts = %d, %v", len(atts), err)
	}
	if strings.Contains(w.logs.String(), signingSecret) {
		t.Error("a log line holds the signing secret")
	}
	checkMetrics(t, w.reg, map[string]float64{`switchboard_alert_deliveries_sent_total{kind="webhook"}`: 5})
}

// checkMetrics lints the registry's metrics and checks some values.
func checkMetrics(t *testing.T, reg *prometheus.Registry, want map[string]float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	problems, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil || len(problems) > 0 {
		t.Errorf("promlint: %v %v", problems, err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetName() + `="` + l.GetValue() + `"}`
			}
			got[key] = m.GetCounter().GetValue()
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestRetriesHonourRetryAfter(t *testing.T) {
	testutil.LeakCheck(t)
	w := newWorld(t, "sqlite:"+filepath.Join(t.TempDir(), "a.db"),
		status(http.StatusServiceUnavailable), status(http.StatusTooManyRequests, "Retry-After", "120"))
	d := w.dispatcher(nil, "main")
	ctx := context.Background()
	w.setStatus("agora", sb.StatusCritical, "down")
	if err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	first := w.clock.Now()
	// Attempt 1 failed with 503: the next is due after the backoff (10 s
	// base, jitter 0.5: 7.5 s), not before.
	w.clock.Advance(7 * time.Second)
	if _, err := d.Deliver(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(w.rc.requests()); n != 1 {
		t.Fatalf("%d requests before the backoff ran out", n)
	}
	w.clock.Advance(time.Second)
	if _, err := d.Deliver(ctx); err != nil {
		t.Fatal(err)
	}
	// Attempt 2 got 429 with Retry-After 120: nothing before 120 s.
	w.clock.Advance(119 * time.Second)
	if _, err := d.Deliver(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(w.rc.requests()); n != 2 {
		t.Fatalf("%d requests, want 2 before Retry-After ran out", n)
	}
	w.clock.Advance(time.Second)
	if _, err := d.Deliver(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(w.rc.requests()); n != 3 {
		t.Fatalf("%d requests, want the third attempt", n)
	}
	atts, _ := w.store.ListAttempts(ctx, sb.AttemptFilter{})
	if len(atts) != 3 || atts[2].Outcome != sb.OutcomeRetry || atts[2].HTTPStatus != 503 || atts[1].Outcome != sb.OutcomeRetry ||
		atts[1].HTTPStatus != 429 || atts[0].Outcome != sb.OutcomeSent || !atts[2].At.Equal(first) {
		t.Errorf("attempts = %+v", atts)
	}
	dl, _ := w.store.GetDelivery(ctx, atts[0].DeliveryID)
	if dl.Status != sb.DeliverySent || dl.Attempts != 3 {
		t.Errorf("delivery = %+v", dl)
	}
	checkMetrics(t, w.reg, map[string]float64{`switchboard_alert_deliveries_sent_total{kind="webhook"}`: 1,
		`switchboard_alert_delivery_retries_total{kind="webhook"}`: 2})
}

func TestClientErrorNotRetried(t *testing.T) {
	w := newWorld(t, "sqlite:"+filepath.Join(t.TempDir(), "a.db"), status(http.StatusBadRequest))
	d := w.dispatcher(nil, "main")
	ctx := context.Background()
	w.setStatus("agora", sb.StatusCritical, "down")
	if err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		w.clock.Advance(time.Hour)
		if _, err := d.Deliver(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(w.rc.requests()); n != 1 {
		t.Fatalf("%d requests, want the one 400 not retried", n)
	}
	atts, _ := w.store.ListAttempts(ctx, sb.AttemptFilter{})
	if len(atts) != 1 || atts[0].Outcome != sb.OutcomeFailed || atts[0].HTTPStatus != 400 || atts[0].Error == "" {
		t.Errorf("attempts = %+v", atts)
	}
	checkMetrics(t, w.reg, map[string]float64{`switchboard_alert_deliveries_failed_total{kind="webhook"}`: 1})
}

func TestRetriesStopAfterMaxAge(t *testing.T) {
	var answers []func(http.ResponseWriter)
	for range 200 {
		answers = append(answers, status(http.StatusBadGateway))
	}
	w := newWorld(t, "sqlite:"+filepath.Join(t.TempDir(), "a.db"), answers...)
	d := w.dispatcher(nil, "main")
	ctx := context.Background()
	w.setStatus("agora", sb.StatusCritical, "down")
	if err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	for range 100 {
		w.clock.Advance(30 * time.Minute)
		if _, err := d.Deliver(ctx); err != nil {
			t.Fatal(err)
		}
	}
	atts, _ := w.store.ListAttempts(ctx, sb.AttemptFilter{})
	if len(atts) < 5 || atts[0].Outcome != sb.OutcomeFailed {
		t.Fatalf("%d attempts, last %+v; want retries then a final failure", len(atts), atts[0])
	}
	if span := atts[0].At.Sub(atts[len(atts)-1].At); span > DefaultMaxAge {
		t.Errorf("retried for %s, more than %s", span, DefaultMaxAge)
	}
}

// No duplicate after a restart mid-incident: the trigger was sent, the
// server stops, starts again on the same SQLite file with a new dispatcher,
// and sends the resolve only.
func TestNoDuplicateAcrossRestart(t *testing.T) {
	testutil.LeakCheck(t)
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "a.db")
	w := newWorld(t, dsn)
	ctx := context.Background()
	w.setStatus("agora", sb.StatusCritical, "down")
	runCtx, stop := context.WithCancel(ctx)
	d := w.dispatcher(nil, "main")
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	testutil.Eventually(t, "the trigger", func() bool { return len(w.rc.requests()) == 1 })
	// The receiver has it; stop only once the sender has recorded it as
	// sent, or the delivery stays due for a retry (at least once) and the
	// resolve waits behind it.
	inc := w.bodies()[0].IncidentID
	testutil.Eventually(t, "the trigger recorded as sent", func() bool {
		ds, err := w.store.ListDeliveries(ctx, inc)
		return err == nil && len(ds) > 0 && !slices.ContainsFunc(ds, func(d sb.Delivery) bool { return d.Status != sb.DeliverySent })
	})
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := w.store.Close(); err != nil {
		t.Fatal(err)
	}

	// Restart: a new store on the file, a new dispatcher with a new holder.
	w.store = openStore(t, dsn, w.seal, w.clock)
	w.reg = nil
	d2 := w.dispatcher(nil, "main")
	for range 3 {
		if err := d2.RunOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(w.rc.requests()); n != 1 {
		t.Fatalf("%d notifications after the restart, want the one trigger", n)
	}
	w.setStatus("agora", sb.StatusHealthy, "")
	if err := d2.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := transitions(w.bodies()); got != "provider.critical/trigger provider.recovered/resolve" {
		t.Fatalf("notifications = %s", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "a.db")); err != nil {
		t.Fatal(err)
	}
}

func TestAuthFailedAndSilencer(t *testing.T) {
	w := newWorld(t, "sqlite::memory:")
	d := w.dispatcher(nil, "main")
	sil := &silencer{}
	d.SetSilencer(sil)
	ctx := context.Background()
	// A failed probe at the auth stage.
	_, _, err := w.store.RecordCheck(ctx, "backup", sb.ProbeResult{OK: false, Stage: sb.StageAuth, Message: "401 from the provider", At: w.clock.Now()},
		func(h sb.Health) sb.Health {
			now := w.clock.Now()
			h.LastCheck = &now
			h.LastError = &sb.ProbeError{Stage: sb.StageAuth, Message: "401 from the provider", At: now}
			h.Status = sb.StatusWarning
			return h
		})
	if err != nil {
		t.Fatal(err)
	}
	// Silenced: nothing opens.
	sil.set(true)
	if err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(w.rc.requests()); n != 0 {
		t.Fatalf("%d notifications while silenced", n)
	}
	if !sil.asked("backup") {
		t.Error("the silencer was not asked about backup")
	}
	sil.set(false)
	if err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	got := w.bodies()
	if transitions(got) != "provider.auth_failed/trigger" || got[0].Provider != "backup" || got[0].Reason != "401 from the provider" {
		t.Fatalf("notifications = %+v", got)
	}
	// A later success resolves it.
	w.clock.Advance(time.Minute)
	_, _, err = w.store.RecordCheck(ctx, "backup", sb.ProbeResult{OK: true, At: w.clock.Now()}, func(h sb.Health) sb.Health {
		now := w.clock.Now()
		h.LastCheck, h.LastSuccess = &now, &now
		return h
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := transitions(w.bodies()); got != "provider.auth_failed/trigger provider.auth_failed/resolve" {
		t.Fatalf("notifications = %s", got)
	}
}

type silencer struct {
	mu   sync.Mutex
	on   bool
	seen map[string]bool
}

func (s *silencer) set(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.on = on
}

func (s *silencer) asked(p string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[p]
}

func (s *silencer) Silenced(p string, _ time.Time) (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]bool{}
	}
	s.seen[p] = true
	return s.on, "maintenance"
}

func TestNoUsableProviderBudgetAndFilters(t *testing.T) {
	w := newWorld(t, "sqlite::memory:")
	ctx := context.Background()
	audit := sb.AuditEntry{Actor: sb.Actor{Kind: "user", Name: "test", Role: sb.RoleSuperadmin}}
	// A second rule: every provider down and budgets, critical only, for backup only.
	r, err := sb.RuleInput{Name: "fleet", Events: []string{sb.AlertNoUsableProvider, sb.AlertBudgetThreshold},
		Channels: []string{"hook"}, Providers: []string{"backup"}, MinSeverity: sb.SeverityCritical}.Build()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.store.CreateAlertRule(ctx, r, audit); err != nil {
		t.Fatal(err)
	}
	// The oncall rule only watches backup now, so agora's failure is not its.
	on, _ := w.store.GetAlertRule(ctx, "oncall")
	on.Providers = []string{"backup"}
	if _, err := w.store.ReplaceAlertRule(ctx, on, audit); err != nil {
		t.Fatal(err)
	}
	d := w.dispatcher(nil, "main")
	w.setStatus("agora", sb.StatusCritical, "down")
	w.setStatus("backup", sb.StatusHealthy, "")
	if err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(w.rc.requests()); n != 0 {
		t.Fatalf("notifications for a filtered provider: %s", transitions(w.bodies()))
	}
	w.setStatus("backup", sb.StatusCritical, "down")
	if err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := transitions(w.bodies()); !strings.Contains(got, "no_usable_provider/trigger") || !strings.Contains(got, "provider.critical/trigger") || len(w.bodies()) != 2 {
		t.Fatalf("notifications = %s", got)
	}
	// Budget alerts: 80 % is a warning, under the rule's minimum; 100 % is
	// critical. The same alert twice (a replayed event) is one notice.
	for _, th := range []float64{80, 100, 100} {
		data, _ := json.Marshal(map[string]any{"provider": "backup", "month": "2026-12", "threshold": th, "cost": 100, "budget": 100, "currency": "USD"})
		e := sb.Event{Type: sb.EventBudgetAlert, Data: json.RawMessage(data)}
		if err := d.budget(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := d.Deliver(ctx); err != nil {
		t.Fatal(err)
	}
	got := w.bodies()
	if len(got) != 3 || got[2].Event != sb.AlertBudgetThreshold || got[2].Severity != sb.SeverityCritical || !strings.Contains(got[2].Summary, "100%") {
		t.Fatalf("notifications = %s / %+v", transitions(got), got[len(got)-1])
	}
}

func TestFailoverStorm(t *testing.T) {
	w := newWorld(t, "sqlite::memory:")
	ctx := context.Background()
	audit := sb.AuditEntry{Actor: sb.Actor{Kind: "user", Name: "test", Role: sb.RoleSuperadmin}}
	r, err := sb.RuleInput{Name: "storm", Events: []string{sb.AlertFailoverStorm}, Channels: []string{"hook"},
		StormMigrations: 2, StormWindow: sb.Duration(10 * time.Minute)}.Build()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.store.CreateAlertRule(ctx, r, audit); err != nil {
		t.Fatal(err)
	}
	d := w.dispatcher(nil, "main")
	migrate := func(n int) {
		for range n {
			now := w.clock.Now()
			st := sb.Stream{ID: fmt.Sprintf("s-%d", now.UnixNano()), Room: "r", UserID: "u", Role: sb.RolePublisher,
				Quality: sb.QualityHD, Provider: "agora", Status: sb.StreamActive, Owner: "o", StartedAt: now, LastHeartbeat: now}
			if _, _, err := w.store.StartStream(ctx, st, sb.TrailEntry{StreamID: st.ID, At: now, Kind: sb.TrailAssign, Provider: "agora", Reason: "test"}, 0); err != nil {
				t.Fatal(err)
			}
			w.clock.Advance(time.Second)
			if _, err := w.store.MigrateStream(ctx, st.ID, sb.TrailEntry{StreamID: st.ID, At: w.clock.Now(), Kind: sb.TrailMigrate,
				Provider: "backup", From: "agora", Reason: "test"}, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	migrate(2)
	if err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(w.rc.requests()); n != 0 {
		t.Fatalf("storm with 2 migrations: %s", transitions(w.bodies()))
	}
	migrate(1)
	if err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := transitions(w.bodies()); got != "failover.storm/trigger" {
		t.Fatalf("notifications = %s", got)
	}
	w.clock.Advance(15 * time.Minute)
	if err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := transitions(w.bodies()); got != "failover.storm/trigger failover.storm/resolve" {
		t.Fatalf("notifications = %s", got)
	}
}

func TestTestSend(t *testing.T) {
	w := newWorld(t, "sqlite::memory:", status(http.StatusOK), status(http.StatusForbidden))
	d := w.dispatcher(nil, "main")
	ctx := context.Background()
	res, err := d.Test(ctx, "hook")
	if err != nil || res.Attempt.Outcome != sb.OutcomeSent || res.Delivery.Status != sb.DeliverySent {
		t.Fatalf("Test = %+v, %v", res, err)
	}
	if got := w.bodies(); len(got) != 1 || got[0].Event != EventTest || got[0].Transition != sb.TransitionTest {
		t.Fatalf("test body = %+v", got)
	}
	res, err = d.Test(ctx, "hook")
	if err != nil || res.Attempt.Outcome != sb.OutcomeFailed || res.Attempt.HTTPStatus != 403 || res.Delivery.Status != sb.DeliveryFailed {
		t.Fatalf("failed Test = %+v, %v", res, err)
	}
	if _, err := d.Test(ctx, "nope"); !sb.IsCode(err, sb.ENotFound) {
		t.Fatalf("Test of an unknown channel = %v", err)
	}
	atts, _ := w.store.ListAttempts(ctx, sb.AttemptFilter{})
	if len(atts) != 2 || atts[0].Transition != sb.TransitionTest {
		t.Errorf("attempts = %+v", atts)
	}
}

// Two replicas on one PostgreSQL: under the leader lease only one runs the
// dispatcher; and even two dispatchers running at once (a leader that has
// not noticed it lost its lease) send each notification once, through the
// ledger's claims.
func TestReplicasSendOnce(t *testing.T) {
	testutil.LeakCheck(t)
	dsn := pgtest.DSN(t)
	w := newWorld(t, dsn)
	other := openStore(t, dsn, w.seal, w.clock)
	ctx := context.Background()
	w.setStatus("agora", sb.StatusCritical, "down")

	// With the leader lease: both replicas campaign, one sends.
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var mu sync.Mutex
	leading := map[string]int{}
	for i, st := range []*sqlstore.Store{w.store, other} {
		holder := fmt.Sprintf("replica-%d", i)
		d := w.dispatcher(st, holder)
		l := replica.NewLeader(st, replica.LeaderOptions{Name: "alerts-test", ID: holder, TTL: 30 * time.Second})
		wg.Add(2)
		go func() { defer wg.Done(); _ = l.Run(runCtx) }()
		go func() {
			defer wg.Done()
			_ = l.RunWhileLeader(runCtx, func(ctx context.Context) error {
				mu.Lock()
				leading[holder]++
				mu.Unlock()
				return d.Run(ctx)
			})
		}()
	}
	testutil.Eventually(t, "the trigger", func() bool { return len(w.rc.requests()) >= 1 })
	// The receiver has it; wait until the sender has also recorded it as
	// sent, or stopping now would leave the delivery claimed until its
	// claim runs out, and agora's resolve waiting behind it below.
	inc := w.bodies()[0].IncidentID
	testutil.Eventually(t, "the trigger recorded as sent", func() bool {
		ds, err := w.store.ListDeliveries(ctx, inc)
		return err == nil && len(ds) > 0 && !slices.ContainsFunc(ds, func(d sb.Delivery) bool { return d.Status != sb.DeliverySent })
	})
	stop()
	wg.Wait()
	mu.Lock()
	if len(leading) != 1 {
		t.Errorf("replicas that led: %v, want one", leading)
	}
	mu.Unlock()

	// Without it: two dispatchers at once, many times over.
	w.setStatus("agora", sb.StatusHealthy, "")
	w.setStatus("backup", sb.StatusCritical, "down")
	ds := []*Dispatcher{w.dispatcher(w.store, "a"), w.dispatcher(other, "b")}
	for range 5 {
		var wg sync.WaitGroup
		for _, d := range ds {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := d.RunOnce(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
	}
	got := w.bodies()
	count := map[string]int{}
	for _, n := range got {
		count[fmt.Sprintf("%s/%s/%d", n.Event, n.Transition, n.IncidentID)]++
	}
	for k, n := range count {
		if n != 1 {
			t.Errorf("%s sent %d times", k, n)
		}
	}
	if len(count) != 3 {
		t.Errorf("notifications = %s, want agora's trigger and resolve and backup's trigger", transitions(got))
	}
}

// Run takes budget alerts from the events hub (as internal/jobs publishes
// them) and is woken by provider events.
func TestRunTakesEvents(t *testing.T) {
	testutil.LeakCheck(t)
	w := newWorld(t, "sqlite::memory:")
	ctx := context.Background()
	audit := sb.AuditEntry{Actor: sb.Actor{Kind: "user", Name: "test", Role: sb.RoleSuperadmin}}
	r, err := sb.RuleInput{Name: "budget", Events: []string{sb.AlertBudgetThreshold}, Channels: []string{"hook"}}.Build()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.store.CreateAlertRule(ctx, r, audit); err != nil {
		t.Fatal(err)
	}
	hub := events.New(events.Options{Clock: w.clock})
	t.Cleanup(hub.Close)
	d := New(Config{Store: w.store, Senders: Senders(w.rc.Client(), nil, w.clock.Now), Clock: w.clock, Events: hub, Tick: time.Hour})
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
	hub.Publish(sb.Event{Type: sb.EventBudgetAlert, At: w.clock.Now(), Audience: sb.RoleAdmin,
		Data: jobs.BudgetAlert{Provider: "agora", Month: "2026-12", Threshold: 80, Cost: 40, Budget: 50, Currency: "USD"}})
	testutil.Eventually(t, "the budget notice", func() bool { return len(w.rc.requests()) == 1 })
	if n := w.bodies()[0]; n.Event != sb.AlertBudgetThreshold || n.Provider != "agora" || n.Severity != sb.SeverityWarning {
		t.Errorf("notice = %+v", n)
	}
	// A provider event wakes it: agora turns CRITICAL, the oncall rule fires
	// long before the hourly tick.
	w.setStatus("agora", sb.StatusCritical, "down")
	hub.Publish(sb.Event{Type: sb.EventProviderStatus, At: w.clock.Now(), Audience: sb.RoleClient, Data: map[string]any{"name": "agora"}})
	testutil.Eventually(t, "the trigger", func() bool { return len(w.rc.requests()) == 2 })
}

// Disabling the rule mid-incident stops its reminders but does not resolve
// an incident whose cause lasts; the recovery still sends its resolve.
func TestRuleDisabledMidIncident(t *testing.T) {
	w := newWorld(t, "sqlite::memory:")
	d := w.dispatcher(nil, "main")
	ctx := context.Background()
	w.setStatus("agora", sb.StatusCritical, "down")
	if err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	r, _ := w.store.GetAlertRule(ctx, "oncall")
	r.Enabled = false
	if _, err := w.store.ReplaceAlertRule(ctx, r, sb.AuditEntry{Actor: sb.Actor{Kind: "user", Name: "test", Role: sb.RoleAdmin}}); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(3 * time.Hour)
	if err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := transitions(w.bodies()); got != "provider.critical/trigger" {
		t.Fatalf("notifications = %s, want the trigger alone", got)
	}
	w.setStatus("agora", sb.StatusHealthy, "")
	if err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := transitions(w.bodies()); got != "provider.critical/trigger provider.recovered/resolve" {
		t.Fatalf("notifications = %s", got)
	}
}

// flags is the degradation detector's verdicts, set by the test.
type flags struct {
	mu  sync.Mutex
	deg map[string]sb.Degradation
}

func (f *flags) Degrading() map[string]sb.Degradation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.deg)
}

func (f *flags) set(names ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deg = map[string]sb.Degradation{}
	for _, n := range names {
		f.deg[n] = sb.Degradation{Provider: n, Degrading: true,
			Evidence: []sb.DegradationEvidence{{Signal: "errors", Summary: "errors 30.0% vs 0.2% (150.0×)"}}}
	}
}

// A provider the detector flags has a provider.degrading incident, a
// warning with the evidence, resolved when the flag clears; a rule that does
// not name the event hears nothing of it.
func TestProviderDegrading(t *testing.T) {
	w := newWorld(t, "sqlite::memory:")
	ctx := context.Background()
	pred := &flags{}
	d := New(Config{Store: w.store, Senders: Senders(w.rc.Client(), nil, w.clock.Now), Clock: w.clock,
		Logger: slog.New(slog.DiscardHandler), Predictions: pred, Rand: func() float64 { return 0.5 }})
	w.setStatus("agora", sb.StatusHealthy, "ok")
	w.setStatus("backup", sb.StatusHealthy, "ok")
	pred.set("agora")
	if err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(w.rc.requests()); n != 0 {
		t.Fatalf("the rule oncall does not name provider.degrading, yet: %s", transitions(w.bodies()))
	}
	audit := sb.AuditEntry{Actor: sb.Actor{Kind: "user", Name: "test", Role: sb.RoleSuperadmin}}
	r, err := sb.RuleInput{Name: "early", Events: []string{sb.AlertProviderDegrading}, Channels: []string{"hook"}}.Build()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.store.CreateAlertRule(ctx, r, audit); err != nil {
		t.Fatal(err)
	}
	if err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	ns := w.bodies()
	if got := transitions(ns); got != "provider.degrading/trigger" {
		t.Fatalf("notifications = %s", got)
	}
	if n := ns[0]; n.Provider != "agora" || n.Severity != sb.SeverityWarning || !strings.Contains(n.Reason, "errors 30.0%") {
		t.Errorf("trigger = %+v", n)
	}
	pred.set()
	w.clock.Advance(time.Minute)
	if err := d.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if got := transitions(w.bodies()); got != "provider.degrading/trigger provider.degrading/resolve" {
		t.Fatalf("notifications = %s", got)
	}
}
