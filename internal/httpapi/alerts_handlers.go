package httpapi

import (
	"context"
	"net/http"
	"strconv"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/alerts"
)

// AlertTester sends a test notification to a channel (the alerts
// Dispatcher).
type AlertTester interface {
	Test(ctx context.Context, channel string) (alerts.TestResult, error)
}

// alertName reads and checks the {name} path value of a channel or rule.
func (s *Server) alertName(w http.ResponseWriter, r *http.Request, what string) (string, bool) {
	name := r.PathValue("name")
	if !sb.ValidAlertName(name) {
		s.writeError(w, r, sb.Errorf(sb.ENotFound, "no alert %s named %s", what, strconv.Quote(sb.Truncate(name, 64))))
		return "", false
	}
	return name, true
}

func (s *Server) alertAudit(r *http.Request, action, target string) sb.AuditEntry {
	return sb.AuditEntry{At: s.clock.Now(), Actor: sb.ActorFrom(r.Context()), Action: action, Target: target}
}

// decodeChannel reads a ChannelInput; see FuzzDecodeAlertChannel.
func decodeChannel(r *http.Request) (sb.ChannelInput, error) {
	var in sb.ChannelInput
	err := decode(r, &in)
	return in, err
}

// decodeRule reads a RuleInput; see FuzzDecodeAlertRule.
func decodeRule(r *http.Request) (sb.RuleInput, error) {
	var in sb.RuleInput
	err := decode(r, &in)
	return in, err
}

func (s *Server) listAlertChannels(w http.ResponseWriter, r *http.Request) {
	cs, err := s.store.ListAlertChannels(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"channels": cs})
}

func (s *Server) getAlertChannel(w http.ResponseWriter, r *http.Request) {
	name, ok := s.alertName(w, r, "channel")
	if !ok {
		return
	}
	c, err := s.store.GetAlertChannel(r.Context(), name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) createAlertChannel(w http.ResponseWriter, r *http.Request) {
	in, err := decodeChannel(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := in.Build(sb.ChannelSecrets{})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.store.CreateAlertChannel(r.Context(), c, s.alertAudit(r, "alert.channel.create", c.Name)); err != nil {
		s.writeError(w, r, err)
		return
	}
	got, err := s.store.GetAlertChannel(r.Context(), c.Name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.logger.InfoContext(r.Context(), "alert channel created", "channel", c.Name, "kind", string(c.Kind), "actor", sb.ActorFrom(r.Context()).Name)
	w.Header().Set("Location", "/api/alerts/channels/"+c.Name)
	writeJSON(w, http.StatusCreated, got)
}

// updateAlertChannel replaces the channel's config; the secrets left out of
// the body keep their stored values.
func (s *Server) updateAlertChannel(w http.ResponseWriter, r *http.Request) {
	name, ok := s.alertName(w, r, "channel")
	if !ok {
		return
	}
	in, err := decodeChannel(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.Name == "" {
		in.Name = name
	}
	if in.Name != name {
		s.writeError(w, r, sb.Invalid("name", "is immutable"))
		return
	}
	c, err := s.store.UpdateAlertChannel(r.Context(), name, func(old sb.AlertChannel) (sb.AlertChannel, error) {
		if in.Kind == "" {
			in.Kind = old.Kind
		}
		if in.Kind != old.Kind {
			return old, sb.Invalid("kind", "is immutable: delete the channel and create another")
		}
		return in.Build(old.Secrets)
	}, s.alertAudit(r, "alert.channel.update", name))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.logger.InfoContext(r.Context(), "alert channel updated", "channel", name, "actor", sb.ActorFrom(r.Context()).Name)
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) deleteAlertChannel(w http.ResponseWriter, r *http.Request) {
	name, ok := s.alertName(w, r, "channel")
	if !ok {
		return
	}
	if err := s.store.DeleteAlertChannel(r.Context(), name, s.alertAudit(r, "alert.channel.delete", name)); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.logger.InfoContext(r.Context(), "alert channel deleted", "channel", name, "actor", sb.ActorFrom(r.Context()).Name)
	w.WriteHeader(http.StatusNoContent)
}

// testAlertChannel sends a test notification at once and answers its
// outcome (200 whether the receiver took it or not: the attempt tells).
func (s *Server) testAlertChannel(w http.ResponseWriter, r *http.Request) {
	name, ok := s.alertName(w, r, "channel")
	if !ok {
		return
	}
	if s.alerts == nil {
		s.writeError(w, r, sb.Errorf(sb.EUnavailable, "alerting is not running on this server"))
		return
	}
	res, err := s.alerts.Test(r.Context(), name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (s *Server) listAlertRules(w http.ResponseWriter, r *http.Request) {
	rs, err := s.store.ListAlertRules(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"rules": rs})
}

func (s *Server) getAlertRule(w http.ResponseWriter, r *http.Request) {
	name, ok := s.alertName(w, r, "rule")
	if !ok {
		return
	}
	rule, err := s.store.GetAlertRule(r.Context(), name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rule)
}

func (s *Server) createAlertRule(w http.ResponseWriter, r *http.Request) {
	in, err := decodeRule(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rule, err := in.Build()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := s.store.CreateAlertRule(r.Context(), rule, s.alertAudit(r, "alert.rule.create", rule.Name)); err != nil {
		s.writeError(w, r, err)
		return
	}
	got, err := s.store.GetAlertRule(r.Context(), rule.Name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.logger.InfoContext(r.Context(), "alert rule created", "rule", rule.Name, "actor", sb.ActorFrom(r.Context()).Name)
	w.Header().Set("Location", "/api/alerts/rules/"+rule.Name)
	writeJSON(w, http.StatusCreated, got)
}

// updateAlertRule replaces the rule with the body (fields left out take
// their defaults, as on create).
func (s *Server) updateAlertRule(w http.ResponseWriter, r *http.Request) {
	name, ok := s.alertName(w, r, "rule")
	if !ok {
		return
	}
	in, err := decodeRule(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.Name == "" {
		in.Name = name
	}
	if in.Name != name {
		s.writeError(w, r, sb.Invalid("name", "is immutable"))
		return
	}
	rule, err := in.Build()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	got, err := s.store.ReplaceAlertRule(r.Context(), rule, s.alertAudit(r, "alert.rule.update", name))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.logger.InfoContext(r.Context(), "alert rule updated", "rule", name, "actor", sb.ActorFrom(r.Context()).Name)
	writeJSON(w, http.StatusOK, got)
}

func (s *Server) deleteAlertRule(w http.ResponseWriter, r *http.Request) {
	name, ok := s.alertName(w, r, "rule")
	if !ok {
		return
	}
	if err := s.store.DeleteAlertRule(r.Context(), name, s.alertAudit(r, "alert.rule.delete", name)); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.logger.InfoContext(r.Context(), "alert rule deleted", "rule", name, "actor", sb.ActorFrom(r.Context()).Name)
	w.WriteHeader(http.StatusNoContent)
}

// listAlertDeliveries lists delivery attempts, newest first, by pages.
func (s *Server) listAlertDeliveries(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := sb.AttemptFilter{Channel: q.Get("channel")}
	if f.Channel != "" && !sb.ValidAlertName(f.Channel) {
		s.writeError(w, r, sb.Invalid("channel", "must be a channel name"))
		return
	}
	limit, err := limitParam(q, 100, 1000)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f.Limit = limit
	if f.BeforeID, err = beforeParam(q, "attempt"); err != nil {
		s.writeError(w, r, err)
		return
	}
	as, err := s.store.ListAttempts(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	resp := map[string]any{"attempts": as}
	if len(as) == f.Limit {
		next := "/api/alerts/deliveries?before=" + strconv.FormatInt(as[len(as)-1].ID, 10) + "&limit=" + strconv.Itoa(f.Limit)
		if f.Channel != "" {
			next += "&channel=" + f.Channel
		}
		resp["next"] = next
	}
	writeJSON(w, http.StatusOK, resp)
}
