package alerts

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	sb "github.com/switchboardhq/switchboard"
)

// deliverBatch is how many deliveries one claim takes.
const deliverBatch = 20

// Deliver sends the deliveries due now, claimed in the ledger for this
// sender, and records every attempt. It returns how many it attempted.
func (d *Dispatcher) Deliver(ctx context.Context) (int, error) {
	total := 0
	for {
		now := d.cfg.Clock.Now()
		ds, err := d.cfg.Store.ClaimDeliveries(ctx, d.cfg.Holder, now, now.Add(claimTTL), deliverBatch)
		if err != nil {
			return total, err
		}
		for _, dl := range ds {
			if ctx.Err() != nil {
				return total, ctx.Err()
			}
			d.deliver(ctx, dl)
			total++
		}
		if len(ds) < deliverBatch {
			return total, nil
		}
	}
}

// deliver makes one attempt at dl and records it.
func (d *Dispatcher) deliver(ctx context.Context, dl sb.Delivery) {
	st := d.cfg.Store
	ch, err := st.GetAlertChannel(ctx, dl.Channel)
	if err != nil {
		d.record(ctx, dl, ch, d.cfg.Clock.Now(), 0, &SendError{Retryable: !sb.IsCode(err, sb.ENotFound), Msg: "channel unavailable: " + err.Error()})
		return
	}
	inc, err := st.GetIncident(ctx, dl.IncidentID)
	if err != nil {
		d.record(ctx, dl, ch, d.cfg.Clock.Now(), 0, &SendError{Retryable: true, Msg: "read incident: " + err.Error()})
		return
	}
	n := notificationOf(inc, dl, d.dashboard(inc.Provider))
	start, t := d.cfg.Clock.Now(), time.Now()
	err = d.send(ctx, ch, n)
	d.record(ctx, dl, ch, start, time.Since(t), err)
}

// send sends n through ch's sender within SendTimeout.
func (d *Dispatcher) send(ctx context.Context, ch sb.AlertChannel, n Notification) error {
	s := d.cfg.Senders[ch.Kind]
	if s == nil {
		return &SendError{Msg: "no sender for channel kind " + string(ch.Kind)}
	}
	sctx, cancel := context.WithTimeout(ctx, d.cfg.SendTimeout)
	defer cancel()
	err := s.Send(sctx, ch, n)
	if err != nil && !errors.As(err, new(*SendError)) {
		err = &SendError{Retryable: true, Msg: redact(ch, err.Error())}
	}
	return err
}

// record stores the outcome of an attempt at dl: sent; retried later when the
// error allows it and dl is younger than MaxAge; failed otherwise.
func (d *Dispatcher) record(ctx context.Context, dl sb.Delivery, ch sb.AlertChannel, at time.Time, took time.Duration, err error) {
	a := sb.DeliveryAttempt{DeliveryID: dl.ID, At: at, Outcome: sb.OutcomeSent, DurationMs: took.Milliseconds()}
	var next time.Time
	kind := string(ch.Kind)
	if kind == "" {
		kind = "unknown"
	}
	if err != nil {
		var se *SendError
		errors.As(err, &se)
		a.HTTPStatus, a.Error = se.Status, sb.Truncate(se.Msg, 500)
		a.Outcome = sb.OutcomeFailed
		if se.Retryable && dl.Transition != sb.TransitionTest {
			next = at.Add(d.backoff(dl.Attempts+1, se.RetryAfter))
			if next.Sub(dl.CreatedAt) <= d.cfg.MaxAge {
				a.Outcome = sb.OutcomeRetry
			}
		}
	}
	// The outcome is recorded even when the caller went away.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, rerr := d.cfg.Store.RecordAttempt(rctx, d.cfg.Holder, a, next); rerr != nil {
		d.log.Warn("record delivery attempt", "delivery", dl.ID, "err", rerr.Error())
	}
	d.cfg.Metrics.observe(kind, a.Outcome)
	log := d.log.With("delivery", dl.ID, "incident", dl.IncidentID, "rule", dl.Rule, "channel", dl.Channel,
		"kind", kind, "transition", dl.Transition, "attempt", dl.Attempts+1)
	switch a.Outcome {
	case sb.OutcomeSent:
		log.Info("alert sent")
	case sb.OutcomeRetry:
		log.Warn("alert delivery failed: will retry", "status", a.HTTPStatus, "err", a.Error, "next", next)
	default:
		log.Error("alert delivery failed", "status", a.HTTPStatus, "err", a.Error)
	}
}

// dashboard is the dashboard link of a notification about provider.
func (d *Dispatcher) dashboard(provider string) string {
	_ = provider // the dashboard has one page: it shows every provider
	return d.cfg.DashboardURL
}

// TestResult is the outcome of a test send: the delivery as recorded and
// its attempt.
type TestResult struct {
	Delivery sb.Delivery        `json:"delivery"`
	Attempt  sb.DeliveryAttempt `json:"attempt"`
}

// Test sends a test notification to the channel at once (on whichever
// replica is asked: it is the caller's send, not an incident's), once,
// and records it in the ledger.
func (d *Dispatcher) Test(ctx context.Context, channel string) (TestResult, error) {
	st := d.cfg.Store
	ch, err := st.GetAlertChannel(ctx, channel)
	if err != nil {
		return TestResult{}, err
	}
	holder := d.cfg.Holder + "-test"
	dl, _, err := st.QueueDelivery(ctx, sb.Delivery{Channel: ch.Name, Transition: sb.TransitionTest, Holder: holder})
	if err != nil {
		return TestResult{}, err
	}
	start, t := d.cfg.Clock.Now(), time.Now()
	serr := d.send(ctx, ch, testNotification(ch.Name, dl, start, d.cfg.DashboardURL))
	a := sb.DeliveryAttempt{DeliveryID: dl.ID, Channel: ch.Name, Transition: sb.TransitionTest, At: start,
		Outcome: sb.OutcomeSent, DurationMs: time.Since(t).Milliseconds()}
	if serr != nil {
		var se *SendError
		errors.As(serr, &se)
		a.Outcome, a.HTTPStatus, a.Error = sb.OutcomeFailed, se.Status, sb.Truncate(se.Msg, 500)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	dl, err = st.RecordAttempt(rctx, holder, a, time.Time{})
	if err != nil {
		return TestResult{}, err
	}
	d.cfg.Metrics.observe(string(ch.Kind), a.Outcome)
	d.log.Info("alert channel tested", "channel", ch.Name, "kind", ch.Kind, "outcome", a.Outcome, "status", a.HTTPStatus, "err", a.Error)
	return TestResult{Delivery: dl, Attempt: a}, nil
}

// Metrics count delivery attempts by channel kind.
type Metrics struct {
	sent, failed, retried *prometheus.CounterVec
}

// NewMetrics registers the alert metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_alert_deliveries_sent_total", Help: "Alert notifications delivered, by channel kind.",
		}, []string{"kind"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_alert_deliveries_failed_total", Help: "Alert notifications given up (an error not worth retrying, or retried for too long), by channel kind.",
		}, []string{"kind"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_alert_delivery_retries_total", Help: "Failed alert delivery attempts that will be retried, by channel kind.",
		}, []string{"kind"}),
	}
	for _, k := range sb.ChannelKinds {
		m.sent.WithLabelValues(string(k))
		m.failed.WithLabelValues(string(k))
		m.retried.WithLabelValues(string(k))
	}
	reg.MustRegister(m.sent, m.failed, m.retried)
	return m
}

func (m *Metrics) observe(kind, outcome string) {
	if m == nil {
		return
	}
	switch outcome {
	case sb.OutcomeSent:
		m.sent.WithLabelValues(kind).Inc()
	case sb.OutcomeRetry:
		m.retried.WithLabelValues(kind).Inc()
	default:
		m.failed.WithLabelValues(kind).Inc()
	}
}
