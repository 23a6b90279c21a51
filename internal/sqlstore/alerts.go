package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/switchboardhq/switchboard"
)

// sealedChannelSecrets is the plaintext sealed into alert_channels.secrets. It
// names its channel, so that a sealed value copied onto another row is refused.
type sealedChannelSecrets struct {
	Channel string                     `json:"channel"`
	Secrets switchboard.ChannelSecrets `json:"secrets"`
}

func (s *Store) sealChannelSecrets(c switchboard.AlertChannel) ([]byte, error) {
	if len(c.Secrets.Values()) == 0 {
		return nil, nil
	}
	pt, err := json.Marshal(sealedChannelSecrets{Channel: c.Name, Secrets: c.Secrets})
	if err != nil {
		return nil, fmt.Errorf("encode channel secrets: %w", err)
	}
	sealed, err := s.sealer.Seal(pt)
	clear(pt)
	if err != nil {
		return nil, fmt.Errorf("seal channel secrets: %w", err)
	}
	return sealed, nil
}

func (s *Store) openChannelSecrets(name string, sealed []byte) (switchboard.ChannelSecrets, error) {
	if sealed == nil {
		return switchboard.ChannelSecrets{}, nil
	}
	pt, err := s.sealer.Open(sealed)
	if err != nil {
		return switchboard.ChannelSecrets{}, fmt.Errorf("secrets of alert channel %s: %w (did the secret key change?)", name, err)
	}
	defer clear(pt)
	var sc sealedChannelSecrets
	if err := json.Unmarshal(pt, &sc); err != nil {
		return switchboard.ChannelSecrets{}, fmt.Errorf("secrets of alert channel %s: malformed", name)
	}
	if sc.Channel != name {
		return switchboard.ChannelSecrets{}, fmt.Errorf("secrets of alert channel %s: sealed for another channel", name)
	}
	return sc.Secrets, nil
}

// channelAudit is the audit snapshot of a channel: its JSON form, which holds
// the names of the secrets set but never their values.
func channelAudit(c switchboard.AlertChannel) (json.RawMessage, error) {
	c.SecretsSet = c.Secrets.Names()
	return json.Marshal(c)
}

const channelColumns = `name, kind, config, secrets, created_at, updated_at`

func (s *Store) scanChannel(sc scanner) (switchboard.AlertChannel, error) {
	var (
		c                    switchboard.AlertChannel
		kind, config         string
		sealed               []byte
		createdAt, updatedAt int64
	)
	if err := sc.Scan(&c.Name, &kind, &config, &sealed, &createdAt, &updatedAt); err != nil {
		return c, err
	}
	c.Kind, c.CreatedAt, c.UpdatedAt = switchboard.ChannelKind(kind), goTime(createdAt), goTime(updatedAt)
	if err := json.Unmarshal([]byte(config), &c.Config); err != nil {
		return c, fmt.Errorf("alert channel %s: config: %w", c.Name, err)
	}
	var err error
	if c.Secrets, err = s.openChannelSecrets(c.Name, sealed); err != nil {
		return c, err
	}
	c.SecretsSet = c.Secrets.Names()
	return c, nil
}

// ListAlertChannels lists the channels by name, with their secrets opened.
func (s *Store) ListAlertChannels(ctx context.Context) ([]switchboard.AlertChannel, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+channelColumns+` FROM alert_channels ORDER BY name`)
	if err != nil {
		return nil, wrap("list alert channels", err)
	}
	defer rows.Close()
	out := []switchboard.AlertChannel{}
	for rows.Next() {
		c, err := s.scanChannel(rows)
		if err != nil {
			return nil, wrap("list alert channels", err)
		}
		out = append(out, c)
	}
	return out, wrap("list alert channels", rows.Err())
}

// GetAlertChannel returns one channel with its secrets. ENotFound.
func (s *Store) GetAlertChannel(ctx context.Context, name string) (switchboard.AlertChannel, error) {
	c, err := s.scanChannel(s.r.QueryRowContext(ctx, s.q(`SELECT `+channelColumns+` FROM alert_channels WHERE name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return c, switchboard.Errorf(switchboard.ENotFound, "no alert channel named %s", name)
	}
	return c, wrap("get alert channel", err)
}

// CreateAlertChannel stores a valid channel with its audit entry (default
// action alert.channel.create). EConflict when the name is taken.
func (s *Store) CreateAlertChannel(ctx context.Context, c switchboard.AlertChannel, audit switchboard.AuditEntry) error {
	if err := c.Validate(); err != nil {
		return err
	}
	now := s.clock.Now()
	c.CreatedAt, c.UpdatedAt = now, now
	sealed, err := s.sealChannelSecrets(c)
	if err != nil {
		return wrap("create alert channel", err)
	}
	config, err := json.Marshal(c.Config)
	if err != nil {
		return wrap("create alert channel", err)
	}
	if audit.After, err = channelAudit(c); err != nil {
		return wrap("create alert channel", err)
	}
	audit.Before = nil
	err = s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO alert_channels (`+channelColumns+`) VALUES (?, ?, ?, ?, ?, ?)`),
			c.Name, string(c.Kind), string(config), sealed, dbTime(now), dbTime(now))
		if s.d.isUnique(err) {
			return switchboard.Errorf(switchboard.EConflict, "alert channel %s already exists", c.Name)
		}
		if err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, audit, "alert.channel.create", c.Name)
	})
	return wrap("create alert channel", err)
}

// UpdateAlertChannel reads the channel, calls fn on it and stores the valid
// channel fn returns, with its audit entry (default action
// alert.channel.update), in one transaction. The name and kind may not change.
func (s *Store) UpdateAlertChannel(ctx context.Context, name string, fn func(switchboard.AlertChannel) (switchboard.AlertChannel, error), audit switchboard.AuditEntry) (switchboard.AlertChannel, error) {
	var (
		after switchboard.AlertChannel
		fnErr error
	)
	err := s.write(ctx, func(tx *sql.Tx) error {
		before, err := s.scanChannel(tx.QueryRowContext(ctx, s.q(`SELECT `+channelColumns+` FROM alert_channels WHERE name = ?`+s.d.lockRow), name))
		if errors.Is(err, sql.ErrNoRows) {
			return switchboard.Errorf(switchboard.ENotFound, "no alert channel named %s", name)
		}
		if err != nil {
			return err
		}
		a, err := fn(before)
		if err != nil {
			fnErr = err
			return err
		}
		if a.Name != before.Name {
			return switchboard.Invalid("name", "is immutable")
		}
		if a.Kind != before.Kind {
			return switchboard.Invalid("kind", "is immutable: delete the channel and create another")
		}
		if err := a.Validate(); err != nil {
			return err
		}
		a.CreatedAt, a.UpdatedAt = before.CreatedAt, s.clock.Now()
		a.SecretsSet = a.Secrets.Names()
		sealed, err := s.sealChannelSecrets(a)
		if err != nil {
			return err
		}
		config, err := json.Marshal(a.Config)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE alert_channels SET config = ?, secrets = ?, updated_at = ? WHERE name = ?`),
			string(config), sealed, dbTime(a.UpdatedAt), name); err != nil {
			return err
		}
		if audit.Before, err = channelAudit(before); err != nil {
			return err
		}
		if audit.After, err = channelAudit(a); err != nil {
			return err
		}
		after = a
		return s.insertAudit(ctx, tx, audit, "alert.channel.update", name)
	})
	if fnErr != nil {
		return switchboard.AlertChannel{}, fnErr
	}
	return after, wrap("update alert channel", err)
}

// DeleteAlertChannel deletes a channel no rule names (EConflict otherwise).
func (s *Store) DeleteAlertChannel(ctx context.Context, name string, audit switchboard.AuditEntry) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		before, err := s.scanChannel(tx.QueryRowContext(ctx, s.q(`SELECT `+channelColumns+` FROM alert_channels WHERE name = ?`+s.d.forDelete), name))
		if errors.Is(err, sql.ErrNoRows) {
			return switchboard.Errorf(switchboard.ENotFound, "no alert channel named %s", name)
		}
		if err != nil {
			return err
		}
		var rule string
		err = tx.QueryRowContext(ctx, s.q(`SELECT rule FROM alert_rule_channels WHERE channel = ? ORDER BY rule LIMIT 1`), name).Scan(&rule)
		if err == nil {
			return switchboard.Errorf(switchboard.EConflict, "alert channel %s is used by rule %s: change the rule first", name, rule)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM alert_channels WHERE name = ?`), name); err != nil {
			return err
		}
		if audit.Before, err = channelAudit(before); err != nil {
			return err
		}
		audit.After = nil
		return s.insertAudit(ctx, tx, audit, "alert.channel.delete", name)
	})
	return wrap("delete alert channel", err)
}

func scanRule(sc scanner) (switchboard.AlertRule, error) {
	var (
		r    switchboard.AlertRule
		data string
	)
	if err := sc.Scan(&data); err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(data), &r); err != nil {
		return r, fmt.Errorf("alert rule: %w", err)
	}
	return r, nil
}

// ListAlertRules lists the rules by name.
func (s *Store) ListAlertRules(ctx context.Context) ([]switchboard.AlertRule, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT data FROM alert_rules ORDER BY name`)
	if err != nil {
		return nil, wrap("list alert rules", err)
	}
	defer rows.Close()
	out := []switchboard.AlertRule{}
	for rows.Next() {
		r, err := scanRule(rows)
		if err != nil {
			return nil, wrap("list alert rules", err)
		}
		out = append(out, r)
	}
	return out, wrap("list alert rules", rows.Err())
}

// GetAlertRule returns one rule. ENotFound.
func (s *Store) GetAlertRule(ctx context.Context, name string) (switchboard.AlertRule, error) {
	r, err := scanRule(s.r.QueryRowContext(ctx, s.q(`SELECT data FROM alert_rules WHERE name = ?`), name))
	if errors.Is(err, sql.ErrNoRows) {
		return r, switchboard.Errorf(switchboard.ENotFound, "no alert rule named %s", name)
	}
	return r, wrap("get alert rule", err)
}

// writeRuleChannels replaces the channel rows of r, refusing a channel that
// does not exist with EInvalid naming the field channels.
func (s *Store) writeRuleChannels(ctx context.Context, tx *sql.Tx, r switchboard.AlertRule) error {
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM alert_rule_channels WHERE rule = ?`), r.Name); err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, c := range r.Channels {
		if seen[c] {
			continue
		}
		seen[c] = true
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM alert_channels WHERE name = ?`), c).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return switchboard.Invalid("channels", "no alert channel named %s", c)
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO alert_rule_channels (rule, channel) VALUES (?, ?)`), r.Name, c); err != nil {
			return err
		}
	}
	return nil
}

// CreateAlertRule stores a valid rule whose channels exist, with its audit
// entry (default action alert.rule.create). EConflict when the name is taken.
func (s *Store) CreateAlertRule(ctx context.Context, r switchboard.AlertRule, audit switchboard.AuditEntry) error {
	if err := r.Validate(); err != nil {
		return err
	}
	now := s.clock.Now()
	r.CreatedAt, r.UpdatedAt = now, now
	data, err := json.Marshal(r)
	if err != nil {
		return wrap("create alert rule", err)
	}
	audit.Before, audit.After = nil, data
	err = s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.q(`INSERT INTO alert_rules (name, data, created_at, updated_at) VALUES (?, ?, ?, ?)`),
			r.Name, string(data), dbTime(now), dbTime(now))
		if s.d.isUnique(err) {
			return switchboard.Errorf(switchboard.EConflict, "alert rule %s already exists", r.Name)
		}
		if err != nil {
			return err
		}
		if err := s.writeRuleChannels(ctx, tx, r); err != nil {
			return err
		}
		return s.insertAudit(ctx, tx, audit, "alert.rule.create", r.Name)
	})
	return wrap("create alert rule", err)
}

// ReplaceAlertRule replaces the rule of r's name with r (default action
// alert.rule.update). ENotFound, EInvalid.
func (s *Store) ReplaceAlertRule(ctx context.Context, r switchboard.AlertRule, audit switchboard.AuditEntry) (switchboard.AlertRule, error) {
	if err := r.Validate(); err != nil {
		return r, err
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		var before string
		err := tx.QueryRowContext(ctx, s.q(`SELECT data FROM alert_rules WHERE name = ?`+s.d.lockRow), r.Name).Scan(&before)
		if errors.Is(err, sql.ErrNoRows) {
			return switchboard.Errorf(switchboard.ENotFound, "no alert rule named %s", r.Name)
		}
		if err != nil {
			return err
		}
		var old switchboard.AlertRule
		if err := json.Unmarshal([]byte(before), &old); err != nil {
			return err
		}
		r.CreatedAt, r.UpdatedAt = old.CreatedAt, s.clock.Now()
		data, err := json.Marshal(r)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE alert_rules SET data = ?, updated_at = ? WHERE name = ?`),
			string(data), dbTime(r.UpdatedAt), r.Name); err != nil {
			return err
		}
		if err := s.writeRuleChannels(ctx, tx, r); err != nil {
			return err
		}
		audit.Before, audit.After = json.RawMessage(before), data
		return s.insertAudit(ctx, tx, audit, "alert.rule.update", r.Name)
	})
	return r, wrap("update alert rule", err)
}

// DeleteAlertRule deletes a rule (default action alert.rule.delete). ENotFound.
func (s *Store) DeleteAlertRule(ctx context.Context, name string, audit switchboard.AuditEntry) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		var before string
		err := tx.QueryRowContext(ctx, s.q(`SELECT data FROM alert_rules WHERE name = ?`+s.d.forDelete), name).Scan(&before)
		if errors.Is(err, sql.ErrNoRows) {
			return switchboard.Errorf(switchboard.ENotFound, "no alert rule named %s", name)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM alert_rule_channels WHERE rule = ?`), name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM alert_rules WHERE name = ?`), name); err != nil {
			return err
		}
		audit.Before, audit.After = json.RawMessage(before), nil
		return s.insertAudit(ctx, tx, audit, "alert.rule.delete", name)
	})
	return wrap("delete alert rule", err)
}

const incidentColumns = `id, key, cause, provider, severity, summary, status_from, status_to, reason, notice, opened_at, resolved_at`

func scanIncident(sc scanner) (switchboard.Incident, error) {
	var (
		inc                            switchboard.Incident
		severity, statusFrom, statusTo string
		openedAt                       int64
		resolvedAt                     sql.NullInt64
	)
	err := sc.Scan(&inc.ID, &inc.Key, &inc.Cause, &inc.Provider, &severity, &inc.Summary, &statusFrom, &statusTo,
		&inc.Reason, &inc.Notice, &openedAt, &resolvedAt)
	inc.Severity, inc.StatusFrom, inc.StatusTo = switchboard.Severity(severity), switchboard.Status(statusFrom), switchboard.Status(statusTo)
	inc.OpenedAt, inc.ResolvedAt = goTime(openedAt), goTimePtr(resolvedAt)
	return inc, err
}

// OpenIncident opens inc unless an incident of its key is active; it returns
// the active incident and whether this call opened it. A notice is resolved
// as it opens but keeps its key active, so that it is never opened again.
func (s *Store) OpenIncident(ctx context.Context, inc switchboard.Incident) (switchboard.Incident, bool, error) {
	if inc.Key == "" || inc.Cause == "" {
		return inc, false, switchboard.Invalid("key", "is required")
	}
	var opened bool
	err := s.write(ctx, func(tx *sql.Tx) error {
		opened = false
		got, err := scanIncident(tx.QueryRowContext(ctx, s.q(`SELECT `+incidentColumns+` FROM alert_incidents WHERE active_key = ?`), inc.Key))
		if err == nil {
			inc = got
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var resolved any
		if inc.Notice {
			resolved = dbTime(inc.OpenedAt)
			t := inc.OpenedAt
			inc.ResolvedAt = &t
		}
		if err := tx.QueryRowContext(ctx, s.q(`INSERT INTO alert_incidents (key, active_key, cause, provider, severity, summary,
			status_from, status_to, reason, notice, opened_at, resolved_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
			inc.Key, inc.Key, inc.Cause, inc.Provider, string(inc.Severity), inc.Summary, string(inc.StatusFrom), string(inc.StatusTo),
			inc.Reason, inc.Notice, dbTime(inc.OpenedAt), resolved).Scan(&inc.ID); err != nil {
			return err
		}
		opened = true
		return nil
	})
	if s.d.isUnique(err) {
		// Another replica opened it between our read and our insert.
		got, err := scanIncident(s.w.QueryRowContext(ctx, s.q(`SELECT `+incidentColumns+` FROM alert_incidents WHERE active_key = ?`), inc.Key))
		return got, false, wrap("open incident", err)
	}
	return inc, opened, wrap("open incident", err)
}

// ResolveIncident resolves the open incident of key: see switchboard.AlertStore.
func (s *Store) ResolveIncident(ctx context.Context, key string, at time.Time) (switchboard.Incident, bool, error) {
	var (
		inc switchboard.Incident
		ok  bool
	)
	err := s.write(ctx, func(tx *sql.Tx) error {
		ok = false
		var err error
		inc, err = scanIncident(tx.QueryRowContext(ctx, s.q(`SELECT `+incidentColumns+` FROM alert_incidents
			WHERE active_key = ? AND notice = ?`+s.d.lockRow), key, false))
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE alert_incidents SET active_key = NULL, resolved_at = ? WHERE id = ?`),
			dbTime(at), inc.ID); err != nil {
			return err
		}
		t := at.UTC()
		inc.ResolvedAt, ok = &t, true
		// Reminders not sent yet are moot; a pending trigger still goes out,
		// and its resolve waits behind it.
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE alert_deliveries SET status = ? WHERE incident_id = ? AND transition = ? AND status = ?`),
			switchboard.DeliveryCancelled, inc.ID, switchboard.TransitionReminder, switchboard.DeliveryPending); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.q(`INSERT INTO alert_deliveries (incident_id, rule, channel, transition, seq, status,
			attempts, created_at, next_at, last_error, claimed_by, claimed_until)
			SELECT incident_id, rule, channel, ?, 0, ?, 0, ?, ?, '', '', 0 FROM alert_deliveries
			WHERE incident_id = ? AND transition = ? AND status IN (?, ?)`),
			switchboard.TransitionResolve, switchboard.DeliveryPending, dbTime(at), dbTime(at),
			inc.ID, switchboard.TransitionTrigger, switchboard.DeliveryPending, switchboard.DeliverySent)
		return err
	})
	return inc, ok, wrap("resolve incident", err)
}

// OpenIncidents lists the unresolved incidents, oldest first.
func (s *Store) OpenIncidents(ctx context.Context) ([]switchboard.Incident, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+incidentColumns+` FROM alert_incidents WHERE resolved_at IS NULL ORDER BY id`)
	if err != nil {
		return nil, wrap("open incidents", err)
	}
	defer rows.Close()
	var out []switchboard.Incident
	for rows.Next() {
		inc, err := scanIncident(rows)
		if err != nil {
			return nil, wrap("open incidents", err)
		}
		out = append(out, inc)
	}
	return out, wrap("open incidents", rows.Err())
}

// GetIncident returns one incident. ENotFound.
func (s *Store) GetIncident(ctx context.Context, id int64) (switchboard.Incident, error) {
	inc, err := scanIncident(s.r.QueryRowContext(ctx, s.q(`SELECT `+incidentColumns+` FROM alert_incidents WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return inc, switchboard.Errorf(switchboard.ENotFound, "no incident %d", id)
	}
	return inc, wrap("get incident", err)
}

const deliveryColumns = `id, incident_id, rule, channel, transition, seq, status, attempts, created_at, next_at, sent_at, last_error`

func scanDelivery(sc scanner) (switchboard.Delivery, error) {
	var (
		d                 switchboard.Delivery
		incident          sql.NullInt64
		createdAt, nextAt int64
		sentAt            sql.NullInt64
	)
	err := sc.Scan(&d.ID, &incident, &d.Rule, &d.Channel, &d.Transition, &d.Seq, &d.Status, &d.Attempts,
		&createdAt, &nextAt, &sentAt, &d.LastError)
	d.IncidentID, d.CreatedAt, d.NextAt, d.SentAt = incident.Int64, goTime(createdAt), goTime(nextAt), goTimePtr(sentAt)
	return d, err
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// QueueDelivery adds a pending delivery unless the ledger has it already.
func (s *Store) QueueDelivery(ctx context.Context, d switchboard.Delivery) (switchboard.Delivery, bool, error) {
	if d.Channel == "" || d.Transition == "" {
		return d, false, switchboard.Invalid("channel", "is required")
	}
	if d.IncidentID == 0 && d.Transition != switchboard.TransitionTest {
		return d, false, switchboard.Invalid("incidentId", "is required")
	}
	now := s.clock.Now()
	if d.NextAt.IsZero() {
		d.NextAt = now
	}
	d.CreatedAt, d.Status, d.Attempts = now, switchboard.DeliveryPending, 0
	var until int64
	if d.Holder != "" {
		until = dbTime(now.Add(time.Hour))
	}
	var added bool
	err := s.write(ctx, func(tx *sql.Tx) error {
		added = false
		err := tx.QueryRowContext(ctx, s.q(`INSERT INTO alert_deliveries (incident_id, rule, channel, transition, seq, status,
			attempts, created_at, next_at, last_error, claimed_by, claimed_until) VALUES (?, ?, ?, ?, ?, ?, 0, ?, ?, '', ?, ?)
			ON CONFLICT DO NOTHING RETURNING id`),
			nullID(d.IncidentID), d.Rule, d.Channel, d.Transition, d.Seq, d.Status, dbTime(now), dbTime(d.NextAt), d.Holder, until).Scan(&d.ID)
		if errors.Is(err, sql.ErrNoRows) {
			return nil // in the ledger already
		}
		added = err == nil
		return err
	})
	return d, added, wrap("queue delivery", err)
}

// ClaimDeliveries claims due deliveries for holder: see switchboard.AlertStore.
func (s *Store) ClaimDeliveries(ctx context.Context, holder string, now, until time.Time, limit int) ([]switchboard.Delivery, error) {
	var out []switchboard.Delivery
	err := s.write(ctx, func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, s.q(`SELECT `+deliveryColumns+` FROM alert_deliveries d
			WHERE status = ? AND next_at <= ? AND incident_id IS NOT NULL
			AND (claimed_by = '' OR claimed_by = ? OR claimed_until < ?)
			AND NOT EXISTS (SELECT 1 FROM alert_deliveries e WHERE e.incident_id = d.incident_id AND e.rule = d.rule
				AND e.channel = d.channel AND e.status = ? AND e.id < d.id)
			ORDER BY id LIMIT ?`+s.d.lockRow),
			switchboard.DeliveryPending, dbTime(now), holder, dbTime(now), switchboard.DeliveryPending, limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			d, err := scanDelivery(rows)
			if err != nil {
				rows.Close()
				return err
			}
			out = append(out, d)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		for _, d := range out {
			if _, err := tx.ExecContext(ctx, s.q(`UPDATE alert_deliveries SET claimed_by = ?, claimed_until = ? WHERE id = ?`),
				holder, dbTime(until), d.ID); err != nil {
				return err
			}
		}
		return nil
	})
	return out, wrap("claim deliveries", err)
}

// RecordAttempt stores an attempt and applies its outcome to the delivery.
func (s *Store) RecordAttempt(ctx context.Context, holder string, a switchboard.DeliveryAttempt, next time.Time) (switchboard.Delivery, error) {
	if !slices.Contains([]string{switchboard.OutcomeSent, switchboard.OutcomeRetry, switchboard.OutcomeFailed}, a.Outcome) {
		return switchboard.Delivery{}, switchboard.Invalid("outcome", "must be sent, retry or failed")
	}
	var d switchboard.Delivery
	err := s.write(ctx, func(tx *sql.Tx) error {
		var claimedBy string
		var claimedUntil int64
		row := tx.QueryRowContext(ctx, s.q(`SELECT `+deliveryColumns+`, claimed_by, claimed_until FROM alert_deliveries WHERE id = ?`+s.d.lockRow), a.DeliveryID)
		var err error
		d, err = scanDelivery(scanFunc(func(dest ...any) error { return row.Scan(append(dest, &claimedBy, &claimedUntil)...) }))
		if errors.Is(err, sql.ErrNoRows) || (err == nil && (claimedBy != holder || d.Status != switchboard.DeliveryPending)) {
			return switchboard.Errorf(switchboard.ENotFound, "delivery %d is not held by this sender", a.DeliveryID)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO alert_attempts (delivery_id, at, outcome, http_status, error, duration_ms)
			VALUES (?, ?, ?, ?, ?, ?)`), d.ID, dbTime(a.At), a.Outcome, a.HTTPStatus, a.Error, a.DurationMs); err != nil {
			return err
		}
		d.Attempts++
		d.LastError = a.Error
		switch a.Outcome {
		case switchboard.OutcomeSent:
			d.Status = switchboard.DeliverySent
			t := a.At.UTC()
			d.SentAt = &t
		case switchboard.OutcomeFailed:
			d.Status = switchboard.DeliveryFailed
		default:
			d.NextAt = next.UTC()
		}
		_, err = tx.ExecContext(ctx, s.q(`UPDATE alert_deliveries SET status = ?, attempts = ?, next_at = ?, sent_at = ?,
			last_error = ?, claimed_by = '', claimed_until = 0 WHERE id = ?`),
			d.Status, d.Attempts, dbTime(d.NextAt), dbTimePtr(d.SentAt), d.LastError, d.ID)
		return err
	})
	return d, wrap("record attempt", err)
}

// scanFunc adapts a function to scanner.
type scanFunc func(dest ...any) error

func (f scanFunc) Scan(dest ...any) error { return f(dest...) }

// GetDelivery returns one delivery. ENotFound.
func (s *Store) GetDelivery(ctx context.Context, id int64) (switchboard.Delivery, error) {
	d, err := scanDelivery(s.r.QueryRowContext(ctx, s.q(`SELECT `+deliveryColumns+` FROM alert_deliveries WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return d, switchboard.Errorf(switchboard.ENotFound, "no delivery %d", id)
	}
	return d, wrap("get delivery", err)
}

// ListDeliveries lists the deliveries of an incident in id order.
func (s *Store) ListDeliveries(ctx context.Context, incidentID int64) ([]switchboard.Delivery, error) {
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT `+deliveryColumns+` FROM alert_deliveries WHERE incident_id = ? ORDER BY id`), incidentID)
	if err != nil {
		return nil, wrap("list deliveries", err)
	}
	defer rows.Close()
	out := []switchboard.Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, wrap("list deliveries", err)
		}
		out = append(out, d)
	}
	return out, wrap("list deliveries", rows.Err())
}

// Attempt page sizes.
const (
	defaultAttemptLimit = 100
	maxAttemptLimit     = 1000
)

// ListAttempts lists delivery attempts, newest first.
func (s *Store) ListAttempts(ctx context.Context, f switchboard.AttemptFilter) ([]switchboard.DeliveryAttempt, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = defaultAttemptLimit
	}
	limit = min(limit, maxAttemptLimit)
	before := f.BeforeID
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := s.r.QueryContext(ctx, s.q(`SELECT a.id, a.delivery_id, d.incident_id, d.channel, d.rule, d.transition,
		a.at, a.outcome, a.http_status, a.error, a.duration_ms
		FROM alert_attempts a JOIN alert_deliveries d ON d.id = a.delivery_id
		WHERE a.id < ? AND (? = '' OR d.channel = ?) ORDER BY a.id DESC LIMIT ?`), before, f.Channel, f.Channel, limit)
	if err != nil {
		return nil, wrap("list attempts", err)
	}
	defer rows.Close()
	out := []switchboard.DeliveryAttempt{}
	for rows.Next() {
		var (
			a        switchboard.DeliveryAttempt
			incident sql.NullInt64
			at       int64
		)
		if err := rows.Scan(&a.ID, &a.DeliveryID, &incident, &a.Channel, &a.Rule, &a.Transition, &at, &a.Outcome,
			&a.HTTPStatus, &a.Error, &a.DurationMs); err != nil {
			return nil, wrap("list attempts", err)
		}
		a.IncidentID, a.At = incident.Int64, goTime(at)
		out = append(out, a)
	}
	return out, wrap("list attempts", rows.Err())
}
