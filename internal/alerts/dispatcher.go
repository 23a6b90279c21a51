package alerts

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/routing"
)

// Silencer tells whether alerts about a provider are silenced at a time (a
// maintenance window), and why. The Dispatcher opens no incident, and sends
// no reminder, for a silenced provider; an incident already open stays open
// and resolves as usual.
type Silencer interface {
	Silenced(provider string, at time.Time) (bool, string)
}

// Store is what the Dispatcher needs of storage; the SQL store implements it.
type Store interface {
	sb.AlertStore
	ListProviders(ctx context.Context) ([]sb.ProviderRecord, error)
	Transitions(ctx context.Context, name string, since time.Time, limit int) ([]sb.Transition, error)
	Activity(ctx context.Context, from, to time.Time) (map[string]sb.ProviderActivity, error)
}

// Subscriber hands out domain events (the events hub).
type Subscriber interface {
	Subscribe(ctx context.Context, filter func(sb.Event) bool) <-chan sb.Event
}

// Defaults of Config.
const (
	DefaultTick        = 15 * time.Second
	DefaultMaxAge      = 24 * time.Hour
	DefaultBaseBackoff = 10 * time.Second
	DefaultMaxBackoff  = 30 * time.Minute
	DefaultSendTimeout = 15 * time.Second
	// claimTTL is how long a claimed delivery is held by its sender: longer
	// than any send, so that no other sender takes it meanwhile.
	claimTTL = 5 * time.Minute
)

// Config wires a Dispatcher. Store and Senders are required.
type Config struct {
	Store   Store
	Senders map[sb.ChannelKind]Sender
	Clock   sb.Clock
	Logger  *slog.Logger
	Metrics *Metrics
	// Silencer, if set, is consulted before an incident opens.
	Silencer Silencer
	// Events, if set, wakes the Dispatcher on provider, stream and budget
	// events, and brings the budget alerts (budget.threshold).
	Events Subscriber
	// Predictions, if set, are the degradation detector's verdicts: a
	// provider it flags has a provider.degrading incident (a warning) while
	// the flag lasts.
	Predictions Predictions
	// Tick is how often Run reconciles and delivers (DefaultTick).
	Tick time.Duration
	// Holder names this sender in the ledger's claims (default: random).
	Holder string
	// DashboardURL is the dashboard's public URL, linked from notifications.
	DashboardURL string
	// MaxAge is how long a delivery is retried (DefaultMaxAge); BaseBackoff
	// and MaxBackoff bound the exponential backoff between attempts.
	MaxAge, BaseBackoff, MaxBackoff time.Duration
	// SendTimeout bounds one attempt (DefaultSendTimeout).
	SendTimeout time.Duration
	// Rand returns a number in [0, 1) for the jitter (default math/rand).
	Rand func() float64
}

// Predictions tells which providers the degradation detector flags
// (internal/predict.Tracker).
type Predictions interface {
	Degrading() map[string]sb.Degradation
}

// Dispatcher turns the registry's state and domain events into incidents,
// queues their notifications in the ledger and delivers them. Run it on the
// leading replica only (replica.Leadership); its ledger claims keep two
// senders from sending one notification even if two ran at once.
type Dispatcher struct {
	cfg  Config
	log  *slog.Logger
	wake chan struct{}
}

// New returns a Dispatcher for cfg with defaults filled in.
func New(cfg Config) *Dispatcher {
	if cfg.Clock == nil {
		cfg.Clock = sb.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Tick <= 0 {
		cfg.Tick = DefaultTick
	}
	if cfg.Holder == "" {
		var b [6]byte
		_, _ = rand.Read(b[:])
		cfg.Holder = "alerts-" + hex.EncodeToString(b[:])
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = DefaultMaxAge
	}
	if cfg.BaseBackoff <= 0 {
		cfg.BaseBackoff = DefaultBaseBackoff
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = DefaultMaxBackoff
	}
	if cfg.SendTimeout <= 0 {
		cfg.SendTimeout = DefaultSendTimeout
	}
	if cfg.Rand == nil {
		cfg.Rand = mrand.Float64
	}
	return &Dispatcher{cfg: cfg, log: cfg.Logger.With("component", "alerts"), wake: make(chan struct{}, 1)}
}

// SetSilencer sets the Silencer; call it before Run.
func (d *Dispatcher) SetSilencer(s Silencer) { d.cfg.Silencer = s }

// wakes are the event types after which the state is looked at again.
func wakes(e sb.Event) bool {
	return strings.HasPrefix(e.Type, "provider") || e.Type == sb.EventStreamFailover || e.Type == sb.EventBudgetAlert
}

// Run reconciles and delivers every Tick, and after events, until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) error {
	var events <-chan sb.Event
	if d.cfg.Events != nil {
		events = d.cfg.Events.Subscribe(ctx, wakes)
	}
	tick := time.NewTicker(d.cfg.Tick)
	defer tick.Stop()
	for {
		if err := d.RunOnce(ctx); err != nil && ctx.Err() == nil {
			d.log.Warn("alerts", "err", err.Error())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if events == nil && d.cfg.Events != nil {
				// Dropped earlier: listen again (the state was reconciled
				// meanwhile on every tick).
				events = d.cfg.Events.Subscribe(ctx, wakes)
			}
		case <-d.wake:
		case e, ok := <-events:
			if !ok {
				// Dropped for falling behind, or the hub closed: listen
				// again at the next tick.
				events = nil
				continue
			}
			// One pass for a burst of events (a failover storm publishes
			// one per migration): take every event queued so far.
			for more := true; more && events != nil; {
				d.event(ctx, e)
				select {
				case e, more = <-events:
					if !more {
						events = nil
					}
				default:
					more = false
				}
			}
		}
	}
}

// event handles an event Run received: budget alerts and regional status
// changes open their notice.
func (d *Dispatcher) event(ctx context.Context, e sb.Event) {
	switch e.Type {
	case sb.EventBudgetAlert:
		if err := d.budget(ctx, e); err != nil && ctx.Err() == nil {
			d.log.Warn("budget alert", "err", err.Error())
		}
	case sb.EventProviderRegional:
		if err := d.regional(ctx, e); err != nil && ctx.Err() == nil {
			d.log.Warn("regional status alert", "err", err.Error())
		}
	}
}

// Wake asks Run to reconcile and deliver now. It never blocks.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// RunOnce reconciles the incidents with the state and delivers what is due.
func (d *Dispatcher) RunOnce(ctx context.Context) error {
	err := d.Reconcile(ctx)
	_, derr := d.Deliver(ctx)
	return errors.Join(err, derr)
}

// Reconcile opens the incidents the state calls for, resolves those it no
// longer does, and queues the triggers and due reminders of the open ones.
func (d *Dispatcher) Reconcile(ctx context.Context) error {
	st := d.cfg.Store
	now := d.cfg.Clock.Now()
	rules, err := st.ListAlertRules(ctx)
	if err != nil {
		return err
	}
	rules = slices.DeleteFunc(rules, func(r sb.AlertRule) bool { return !r.Enabled })
	watched := map[string]bool{}
	for _, r := range rules {
		for _, e := range r.Events {
			watched[e] = true
		}
	}
	if watched[sb.AlertProviderRecovered] {
		watched[sb.AlertProviderCritical] = true
	}
	recs, err := st.ListProviders(ctx)
	if err != nil {
		return err
	}
	want := map[string]sb.Incident{}
	var degrading map[string]sb.Degradation
	if d.cfg.Predictions != nil && watched[sb.AlertProviderDegrading] {
		degrading = d.cfg.Predictions.Degrading()
	}
	for _, rec := range recs {
		p, h := rec.Provider, rec.Health
		if !p.Enabled {
			continue
		}
		if h.Status == sb.StatusCritical {
			want[sb.AlertProviderCritical+":"+p.Name] = sb.Incident{Cause: sb.AlertProviderCritical, Provider: p.Name,
				Severity: sb.SeverityCritical, Summary: fmt.Sprintf("Provider %s is CRITICAL", p.Name),
				StatusTo: h.Status, Reason: h.StatusReason}
		}
		if v, ok := degrading[p.Name]; ok && h.Status != sb.StatusCritical {
			var ev []string
			for _, e := range v.Evidence {
				ev = append(ev, e.Summary)
			}
			want[sb.AlertProviderDegrading+":"+p.Name] = sb.Incident{Cause: sb.AlertProviderDegrading, Provider: p.Name,
				Severity: sb.SeverityWarning, Summary: fmt.Sprintf("Provider %s is degrading: it may fail soon", p.Name),
				StatusTo: h.Status, Reason: strings.Join(ev, "; ")}
		}
		if authFailing(h) {
			want[sb.AlertAuthFailed+":"+p.Name] = sb.Incident{Cause: sb.AlertAuthFailed, Provider: p.Name,
				Severity: sb.SeverityCritical, Summary: fmt.Sprintf("Provider %s rejects its credentials", p.Name),
				StatusTo: h.Status, Reason: h.LastError.Message}
		}
	}
	if len(recs) > 0 {
		cands := make([]routing.Candidate, len(recs))
		for i := range recs {
			cands[i] = routing.Candidate{Provider: &recs[i].Provider, Health: &recs[i].Health}
		}
		if dec := routing.Select(cands, routing.Request{}, func() float64 { return 0 }); len(dec.Order) == 0 || dec.LeastBad || dec.Unverified {
			want[sb.AlertNoUsableProvider] = sb.Incident{Cause: sb.AlertNoUsableProvider, Severity: sb.SeverityCritical,
				Summary: "No usable provider is left: new streams get the least bad provider or none", Reason: dec.Reason}
		}
	}
	for _, r := range rules {
		if !slices.Contains(r.Events, sb.AlertFailoverStorm) {
			continue
		}
		// Up to a second ahead: a migration recorded at now counts.
		act, err := st.Activity(ctx, now.Add(-r.StormWindow.D()), now.Add(time.Second))
		if err != nil {
			return err
		}
		var n int64
		for _, a := range act {
			n += a.FailoversOut
		}
		if n > int64(r.StormMigrations) {
			want[sb.AlertFailoverStorm+":"+r.Name] = sb.Incident{Cause: sb.AlertFailoverStorm, Severity: sb.SeverityWarning,
				Summary: fmt.Sprintf("Failover storm: %d migrations in the last %s (more than %d)", n, r.StormWindow.D(), r.StormMigrations)}
		}
	}

	open, err := st.OpenIncidents(ctx)
	if err != nil {
		return err
	}
	openKeys := map[string]bool{}
	var errs []error
	for _, inc := range open {
		openKeys[inc.Key] = true
		if _, ok := want[inc.Key]; ok {
			continue
		}
		res, ok, err := st.ResolveIncident(ctx, inc.Key, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			d.log.Info("incident resolved", "incident", res.ID, "key", res.Key)
		}
	}
	for key, inc := range want {
		// An incident opens only when a rule asks for its cause; one
		// open stays open while its cause lasts, rules changing or not.
		if openKeys[key] || !watched[inc.Cause] {
			continue
		}
		if inc.Provider != "" && d.silenced(inc.Provider, now, key) {
			continue
		}
		inc.Key, inc.OpenedAt = key, now
		if inc.Provider != "" && inc.Cause == sb.AlertProviderCritical {
			if ts, err := st.Transitions(ctx, inc.Provider, time.Time{}, 1); err == nil && len(ts) == 1 && ts[0].To == inc.StatusTo {
				inc.StatusFrom, inc.OpenedAt = ts[0].From, ts[0].At
				if ts[0].Reason != "" {
					inc.Reason = ts[0].Reason
				}
			}
		}
		got, opened, err := st.OpenIncident(ctx, inc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if opened {
			d.log.Info("incident opened", "incident", got.ID, "key", got.Key, "severity", got.Severity, "summary", got.Summary)
		}
	}
	if open, err = st.OpenIncidents(ctx); err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, inc := range open {
		if err := d.queue(ctx, inc, rules, now); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// silenced consults the Silencer.
func (d *Dispatcher) silenced(provider string, at time.Time, key string) bool {
	if d.cfg.Silencer == nil {
		return false
	}
	ok, why := d.cfg.Silencer.Silenced(provider, at)
	if ok {
		d.log.Debug("alert silenced", "key", key, "provider", provider, "why", why)
	}
	return ok
}

// authFailing reports whether the last check of a provider failed at its
// auth stage.
func authFailing(h sb.Health) bool {
	return h.LastError != nil && h.LastError.Stage == sb.StageAuth && h.LastCheck != nil &&
		!h.LastCheck.After(h.LastError.At) && (h.LastSuccess == nil || h.LastSuccess.Before(h.LastError.At))
}

// matches reports whether rule r notifies of inc.
func matches(r sb.AlertRule, inc sb.Incident) bool {
	if !r.Enabled || inc.Severity.Rank() < r.MinSeverity.Rank() {
		return false
	}
	if !slices.Contains(r.Events, inc.Cause) {
		return false
	}
	if inc.Cause == sb.AlertFailoverStorm && inc.Key != sb.AlertFailoverStorm+":"+r.Name {
		return false // each rule watches its own storm thresholds
	}
	return inc.Provider == "" || len(r.Providers) == 0 || slices.Contains(r.Providers, inc.Provider)
}

// queue queues the trigger of inc for every matching rule and channel that
// has none yet, and the reminder due now for those whose trigger was queued
// a repeat interval or more ago.
func (d *Dispatcher) queue(ctx context.Context, inc sb.Incident, rules []sb.AlertRule, now time.Time) error {
	st := d.cfg.Store
	ds, err := st.ListDeliveries(ctx, inc.ID)
	if err != nil {
		return err
	}
	triggers := map[[2]string]sb.Delivery{}
	for _, dl := range ds {
		if dl.Transition == sb.TransitionTrigger {
			triggers[[2]string{dl.Rule, dl.Channel}] = dl
		}
	}
	silenced := inc.Provider != "" && d.silenced(inc.Provider, now, inc.Key)
	var errs []error
	for _, r := range rules {
		if !matches(r, inc) {
			continue
		}
		for _, ch := range r.Channels {
			t, ok := triggers[[2]string{r.Name, ch}]
			if !ok {
				if silenced {
					continue
				}
				if _, _, err := st.QueueDelivery(ctx, sb.Delivery{IncidentID: inc.ID, Rule: r.Name, Channel: ch,
					Transition: sb.TransitionTrigger, NextAt: now}); err != nil {
					errs = append(errs, err)
				}
				continue
			}
			rep := r.RepeatInterval.D()
			if inc.Notice || rep <= 0 || silenced {
				continue
			}
			seq := int(now.Sub(t.CreatedAt) / rep)
			if seq < 1 {
				continue
			}
			if _, _, err := st.QueueDelivery(ctx, sb.Delivery{IncidentID: inc.ID, Rule: r.Name, Channel: ch,
				Transition: sb.TransitionReminder, Seq: seq, NextAt: now}); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// budgetAlert is the Data of a budget.alert event (internal/jobs.BudgetAlert).
type budgetAlert struct {
	Provider  string  `json:"provider"`
	Month     string  `json:"month"`
	Threshold float64 `json:"threshold"`
	Cost      float64 `json:"cost"`
	Budget    float64 `json:"budget"`
	Currency  string  `json:"currency"`
}

// budget opens the notice of a budget alert and queues its triggers.
func (d *Dispatcher) budget(ctx context.Context, e sb.Event) error {
	var a budgetAlert
	raw, err := json.Marshal(e.Data)
	if err == nil {
		err = json.Unmarshal(raw, &a)
	}
	if err != nil || a.Provider == "" || a.Month == "" {
		return fmt.Errorf("malformed budget alert")
	}
	rules, err := d.cfg.Store.ListAlertRules(ctx)
	if err != nil {
		return err
	}
	sev := sb.SeverityWarning
	if a.Threshold >= 100 {
		sev = sb.SeverityCritical
	}
	now := d.cfg.Clock.Now()
	inc := sb.Incident{Key: fmt.Sprintf("%s:%s:%s:%g", sb.AlertBudgetThreshold, a.Provider, a.Month, a.Threshold),
		Cause: sb.AlertBudgetThreshold, Provider: a.Provider, Severity: sev, Notice: true, OpenedAt: now,
		Summary: fmt.Sprintf("Provider %s reached %g%% of its monthly budget for %s: %.2f of %.2f %s",
			a.Provider, a.Threshold, a.Month, a.Cost, a.Budget, a.Currency)}
	if d.silenced(a.Provider, now, inc.Key) {
		return nil
	}
	got, opened, err := d.cfg.Store.OpenIncident(ctx, inc)
	if err != nil || !opened {
		return err
	}
	d.log.Info("budget notice", "incident", got.ID, "key", got.Key)
	err = d.queue(ctx, got, slices.DeleteFunc(rules, func(r sb.AlertRule) bool { return !r.Enabled }), now)
	d.Wake()
	return err
}

// regionalChange is the Data of a provider.regional event
// (internal/streams.RegionalChange).
type regionalChange struct {
	Provider string    `json:"provider"`
	Region   string    `json:"region"`
	From     string    `json:"from"`
	To       string    `json:"to"`
	Reason   string    `json:"reason"`
	Source   string    `json:"source"`
	At       time.Time `json:"at"`
}

// regionalStale is the state of a region whose reports stopped.
const regionalStale = "stale"

// regionalSeverity is the severity of a change to the regional state to:
// critical for CRITICAL, warning for a status that is not usable or a stale
// region, info for the others (a recovery).
func regionalSeverity(to string) sb.Severity {
	switch {
	case to == string(sb.StatusCritical):
		return sb.SeverityCritical
	case to == regionalStale || !sb.Status(to).Usable() || to == string(sb.StatusWarning):
		return sb.SeverityWarning
	}
	return sb.SeverityInfo
}

// regionalStatus is the status an incident records for a regional state: a
// stale region is UNKNOWN.
func regionalStatus(state string) sb.Status {
	if state == regionalStale {
		return sb.StatusUnknown
	}
	return sb.Status(state)
}

// regional opens the notice of a change of a provider's status in a region
// and queues its triggers: one notice per change, never reminded.
func (d *Dispatcher) regional(ctx context.Context, e sb.Event) error {
	var c regionalChange
	raw, err := json.Marshal(e.Data)
	if err == nil {
		err = json.Unmarshal(raw, &c)
	}
	if err != nil || c.Provider == "" || c.Region == "" || c.To == "" {
		return fmt.Errorf("malformed regional status change")
	}
	rules, err := d.cfg.Store.ListAlertRules(ctx)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(rules, func(r sb.AlertRule) bool { return r.Enabled && slices.Contains(r.Events, sb.AlertProviderRegional) }) {
		return nil // no rule asks: no incident to keep
	}
	now := d.cfg.Clock.Now()
	at := c.At
	if at.IsZero() {
		at = e.At
	}
	inc := sb.Incident{Key: fmt.Sprintf("%s:%s:%s:%s:%d", sb.AlertProviderRegional, c.Provider, c.Region, c.To, at.UnixNano()),
		Cause: sb.AlertProviderRegional, Provider: c.Provider, Severity: regionalSeverity(c.To), Notice: true, OpenedAt: now,
		StatusFrom: regionalStatus(c.From), StatusTo: regionalStatus(c.To), Reason: c.Reason,
		Summary: fmt.Sprintf("Provider %s in region %s: %s → %s (reported by %s)", c.Provider, c.Region, c.From, c.To, c.Source)}
	if d.silenced(c.Provider, now, inc.Key) {
		return nil
	}
	got, opened, err := d.cfg.Store.OpenIncident(ctx, inc)
	if err != nil || !opened {
		return err
	}
	d.log.Info("regional status notice", "incident", got.ID, "key", got.Key)
	err = d.queue(ctx, got, slices.DeleteFunc(rules, func(r sb.AlertRule) bool { return !r.Enabled }), now)
	d.Wake()
	return err
}

// backoff is the wait before attempt n+1 (n ≥ 1): BaseBackoff doubled per
// attempt up to MaxBackoff, with jitter over its upper half, and at least
// what the receiver asked for.
func (d *Dispatcher) backoff(n int, retryAfter time.Duration) time.Duration {
	b := float64(d.cfg.BaseBackoff) * math.Pow(2, float64(n-1))
	b = math.Min(b, float64(d.cfg.MaxBackoff))
	w := time.Duration(b/2 + d.cfg.Rand()*b/2)
	return max(w, retryAfter)
}
