package httpapi

import (
	"net/http"

	sb "github.com/switchboardhq/switchboard"
)

// routingView is the body of GET /api/routing: the configuration, and the
// streams started over the last day per policy scope and provider, from
// which commit's shares can be checked.
type routingView struct {
	sb.RoutingConfig
	// Starts are the streams started over sb.CommitWindow, by scope ("" for
	// the global policy, else the region of an override) and provider.
	Starts sb.RoutingStarts `json:"starts"`
}

// getRouting answers the routing configuration: the policy, the shares commit
// holds, the weights and margin of optimized and the per-region overrides,
// with the starts of the last day.
func (s *Server) getRouting(w http.ResponseWriter, r *http.Request) {
	c, err := s.store.GetRouting(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	starts, err := s.store.RoutingStarts(r.Context(), s.clock.Now().Add(-sb.CommitWindow))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, routingView{RoutingConfig: c, Starts: starts})
}

// putRouting changes the fields of the routing configuration named in the
// body and keeps the others (a partial update; a region given replaces its
// override, a region given as null removes it). An unknown field, an invalid
// value or an empty body is refused with 400 naming the field, changing
// nothing. A change is audited, applied to the next stream started here, and
// published as routing.updated (to SDKs and to the other replicas); a body
// that changes nothing is answered with the configuration, without either.
func (s *Server) putRouting(w http.ResponseWriter, r *http.Request) {
	var in sb.RoutingInput
	if err := decode(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.Empty() {
		s.writeError(w, r, sb.Invalid("body", "must set at least one of policy, shares, weights, margin or regions"))
		return
	}
	audit := sb.AuditEntry{At: s.clock.Now(), Actor: sb.ActorFrom(r.Context()), Action: "routing.update", Target: "routing"}
	before, after, err := s.store.UpdateRouting(r.Context(), in.ApplyTo, audit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !after.Equal(before) {
		if s.streams != nil {
			s.streams.RoutingChanged()
		}
		s.logger.InfoContext(r.Context(), "routing updated", "actor", audit.Actor.Name,
			"policy", after.Policy, "shares", len(after.Shares), "regions", len(after.Regions), "margin", after.Margin)
		s.publish(sb.EventRoutingUpdated, sb.RoleClient, after)
	}
	writeJSON(w, http.StatusOK, after)
}
