package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strconv"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/health"
)

// providerView is the JSON form of a provider: its settings (never its
// credentials) and its health, with the names of the system Switchboard replaces.
// Uptime, error rate and the check and request counts are those of the
// provider's healthCheck.window; Lifetime has the totals since its creation.
type providerView struct {
	sb.Provider
	CredentialsSet       bool           `json:"credentialsSet"`
	Status               sb.Status      `json:"status"`
	State                sb.State       `json:"state"`
	Usable               bool           `json:"usable"` // may take streams: switchboard.Status.Usable
	Uptime               float64        `json:"uptime"`
	ErrorRate            float64        `json:"errorRate"`
	ConsecutiveFailures  int            `json:"consecutiveFailures"`
	ConsecutiveSuccesses int            `json:"consecutiveSuccesses"`
	ClientFailures       int64          `json:"clientFailures"`
	TotalChecks          int64          `json:"totalChecks"`
	SuccessfulChecks     int64          `json:"successfulChecks"`
	LastCheck            *time.Time     `json:"lastCheck"`
	Latency              int64          `json:"latency"`
	AverageLatency       float64        `json:"averageLatency"`
	TotalRequests        int64          `json:"totalRequests"`
	FailedRequests       int64          `json:"failedRequests"`
	LastError            *sb.ProbeError `json:"lastError"`
	ActiveStreams        int64          `json:"activeStreams"`
	TotalStreams         int64          `json:"totalStreams"`
	MonthlyCost          float64        `json:"monthlyCost"`
	Lifetime             lifetimeView   `json:"lifetime"`
	Today                todayView      `json:"today"`
	// Degrading is set while the degradation detector flags the provider;
	// Degradation then holds its evidence.
	Degrading   bool            `json:"degrading"`
	Degradation *sb.Degradation `json:"degradation,omitempty"`
	// Quality is what clients measured, by region (quality.go).
	Quality map[string]qualityView `json:"quality"`
	// RegionalHealth is the provider's health in each region where the
	// server's own probes (serve --region) or probe agents probe it
	// (agent.go).
	RegionalHealth map[string]regionalView `json:"regionalHealth"`
}

// lifetimeView is a provider's health counted since its creation.
type lifetimeView struct {
	Uptime           float64 `json:"uptime"`
	ErrorRate        float64 `json:"errorRate"`
	TotalChecks      int64   `json:"totalChecks"`
	SuccessfulChecks int64   `json:"successfulChecks"`
	TotalRequests    int64   `json:"totalRequests"`
	FailedRequests   int64   `json:"failedRequests"`
}

// todayView is what happened on a provider since the last UTC midnight. The
// days before keep their counts; a new day starts at zero.
type todayView struct {
	Since          time.Time `json:"since"`
	StreamsStarted int64     `json:"streamsStarted"`
	FailoversIn    int64     `json:"failoversIn"`
	FailoversOut   int64     `json:"failoversOut"`
	ClientFailures int64     `json:"clientFailures"`
	StreamMinutes  float64   `json:"streamMinutes"`
}

// windowCounts returns h's checks, successful checks, requests and failed
// requests in its window, or the lifetime ones when the window is not known
// yet (a record from before windows that was not checked since).
func windowCounts(h sb.Health) (checks, ok, requests, failed int64) {
	if h.Window.Span <= 0 {
		return h.TotalChecks, h.SuccessfulChecks, h.TotalRequests, h.FailedRequests
	}
	w := h.Window
	return w.Checks, w.SuccessfulChecks, w.TotalRequests(), w.FailedRequests()
}

func viewOf(rec sb.ProviderRecord) providerView {
	h := rec.Health
	checks, ok, requests, failed := windowCounts(h)
	return providerView{
		Provider: rec.Provider, CredentialsSet: rec.CredentialsSet(),
		Status: h.Status, State: health.StateOf(h.Status), Usable: h.Status.Usable(), Uptime: sb.Round2(h.RecentUptime()), ErrorRate: sb.Round2(h.RecentErrorRate()),
		ConsecutiveFailures: h.ConsecutiveFailures, ConsecutiveSuccesses: h.ConsecutiveSuccesses,
		ClientFailures: h.Window.ClientFailures, TotalChecks: checks, SuccessfulChecks: ok,
		LastCheck: h.LastCheck, Latency: h.LatencyMs, AverageLatency: sb.Round2(h.AverageLatencyMs()),
		TotalRequests: requests, FailedRequests: failed, LastError: h.LastError,
		Lifetime: lifetimeView{
			Uptime: sb.Round2(h.Uptime()), ErrorRate: sb.Round2(h.ErrorRate()),
			TotalChecks: h.TotalChecks, SuccessfulChecks: h.SuccessfulChecks,
			TotalRequests: h.TotalRequests, FailedRequests: h.FailedRequests,
		},
	}
}

// auditView is the snapshot of a provider kept in the audit log: its settings
// without credentials, and whether credentials are set.
func auditView(p sb.Provider) json.RawMessage {
	return mustJSON(struct {
		sb.Provider
		CredentialsSet bool `json:"credentialsSet"`
	}{p, p.CredentialsSet()})
}

// withUsage fills the stream counts, this month's cost and today's activity
// (since the last UTC midnight of the server's clock) of views.
func (s *Server) withUsage(ctx context.Context, views []providerView) error {
	now := s.clock.Now()
	us, err := s.store.Usage(ctx, sb.MonthStart(now), now)
	if err != nil {
		return err
	}
	day := now.UTC().Truncate(24 * time.Hour)
	today, err := s.store.Activity(ctx, day, day.Add(24*time.Hour))
	if err != nil {
		return err
	}
	byName := make(map[string]sb.ProviderUsage, len(us))
	for _, u := range us {
		byName[u.Provider] = u
	}
	for i := range views {
		u := byName[views[i].Name]
		views[i].ActiveStreams, views[i].TotalStreams = u.ActiveStreams, u.TotalStreams
		views[i].MonthlyCost = views[i].Pricing.Cost(u.Minutes())
		a := today[views[i].Name]
		views[i].Today = todayView{
			Since: day, StreamsStarted: a.StreamsStarted, FailoversIn: a.FailoversIn, FailoversOut: a.FailoversOut,
			ClientFailures: a.ClientFailures, StreamMinutes: sb.Round2(a.StreamSeconds / 60),
		}
	}
	return s.withQuality(ctx, views)
}

// viewsOf renders records with their usage.
func (s *Server) viewsOf(ctx context.Context, recs ...sb.ProviderRecord) ([]providerView, error) {
	out := make([]providerView, len(recs))
	for i, rec := range recs {
		out[i] = viewOf(rec)
		if s.predictions != nil {
			if v := s.predictions.Get(rec.Name); v.Degrading {
				out[i].Degrading, out[i].Degradation = true, &v
			}
		}
	}
	if err := s.withUsage(ctx, out); err != nil {
		return nil, err
	}
	return out, s.withRegional(ctx, recs, out)
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only called on types that always marshal
	}
	return b
}

// allViews returns every provider, and its view with its usage.
func (s *Server) allViews(ctx context.Context) ([]sb.ProviderRecord, []providerView, error) {
	recs, err := s.store.ListProviders(ctx)
	if err != nil {
		return nil, nil, err
	}
	views, err := s.viewsOf(ctx, recs...)
	return recs, views, err
}

func (s *Server) listProviders(w http.ResponseWriter, r *http.Request) {
	_, out, err := s.allViews(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"providers": out})
}

func (s *Server) getProvider(w http.ResponseWriter, r *http.Request) {
	name, ok := s.pathName(w, r)
	if !ok {
		return
	}
	rec, err := s.store.GetProvider(r.Context(), name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.writeProvider(w, r, http.StatusOK, rec)
}

// writeProvider answers one provider with its usage.
func (s *Server) writeProvider(w http.ResponseWriter, r *http.Request, status int, rec sb.ProviderRecord) {
	views, err := s.viewsOf(r.Context(), rec)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, status, views[0])
}

// pathName reads and checks the {name} path value.
func (s *Server) pathName(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := nameParam(r)
	if !sb.ValidSlug(name) {
		s.writeError(w, r, sb.Errorf(sb.ENotFound, "no provider named %s", strconv.Quote(sb.Truncate(name, 64))))
		return "", false
	}
	return name, true
}

// decodeProvider reads a ProviderInput; see FuzzDecodeProvider.
func decodeProvider(r *http.Request) (sb.ProviderInput, error) {
	var in sb.ProviderInput
	err := decode(r, &in)
	return in, err
}

func (s *Server) createProvider(w http.ResponseWriter, r *http.Request) {
	in, err := decodeProvider(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := in.NewProvider()
	if err == nil {
		err = sb.ValidateProviderName(p.Name, s.reserved)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.clock.Now()
	p.CreatedAt, p.UpdatedAt = now, now
	audit := sb.AuditEntry{At: now, Actor: sb.ActorFrom(r.Context()), Action: "provider.create", Target: p.Name, After: auditView(p)}
	if err := s.store.CreateProvider(r.Context(), p, audit); err != nil {
		s.writeError(w, r, err)
		return
	}
	rec, err := s.store.GetProvider(r.Context(), p.Name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.logger.InfoContext(r.Context(), "provider created", "provider", p.Name, "kind", string(p.Kind), "actor", audit.Actor.Name)
	s.publish(sb.EventProviderCreated, sb.RoleClient, publicView(rec))
	s.changed()
	if p.Enabled {
		rec = s.verify(r, rec)
	}
	w.Header().Set("Location", "/api/streaming/providers/"+p.Name)
	s.writeProvider(w, r, http.StatusCreated, rec)
}

// verify checks the provider of rec at once, before the answer, and returns
// its record after the check. A provider is UNKNOWN, so takes no stream while
// a verified one is usable, until a check succeeds: without this it would wait
// for its first scheduled check, up to a whole interval. The check is bounded
// by the provider's healthCheck.timeout. A check that cannot run (no adapter,
// store error) is logged and the record answered as it was: the change itself
// is committed.
func (s *Server) verify(r *http.Request, rec sb.ProviderRecord) sb.ProviderRecord {
	if s.health == nil {
		return rec
	}
	if _, err := s.health.Check(r.Context(), rec.Name); err != nil {
		s.logger.WarnContext(r.Context(), "check after change", "provider", rec.Name, "err", err.Error())
		return rec
	}
	after, err := s.store.GetProvider(r.Context(), rec.Name)
	if err != nil {
		return rec
	}
	return after
}

// needsCheck reports whether a change from before to after calls for a check
// at once: the provider was enabled, or what its probe uses (kind, config,
// credentials) changed.
func needsCheck(before, after sb.Provider) bool {
	if !after.Enabled {
		return false
	}
	return !before.Enabled || before.Kind != after.Kind ||
		!reflect.DeepEqual(before.Config, after.Config) || !reflect.DeepEqual(before.Credentials, after.Credentials)
}

func (s *Server) updateProvider(w http.ResponseWriter, r *http.Request) {
	name, ok := s.pathName(w, r)
	if !ok {
		return
	}
	in, err := decodeProvider(r)
	if err == nil && in == (sb.ProviderInput{}) {
		err = sb.Invalid("body", "must set at least one field of the provider")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.clock.Now()
	audit := sb.AuditEntry{At: now, Actor: sb.ActorFrom(r.Context()), Action: "provider.update", Target: name}
	before, after, err := s.store.UpdateProvider(r.Context(), name, func(p sb.Provider) (sb.Provider, error) {
		q, err := in.ApplyTo(p)
		q.UpdatedAt = now
		return q, err
	}, audit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.logger.InfoContext(r.Context(), "provider updated", "provider", name, "actor", audit.Actor.Name,
		"enabled", after.Enabled, "priority", after.Priority)
	s.afterProviderChange(r, before, after)
	rec, err := s.store.GetProvider(r.Context(), name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.publish(sb.EventProviderUpdated, sb.RoleClient, publicView(rec))
	if needsCheck(before, after) {
		rec = s.verify(r, rec)
	}
	s.writeProvider(w, r, http.StatusOK, rec)
}

// afterProviderChange lets the rest of the server react to a committed change.
// A change of enabled or of the thresholds re-derives the status at once
// (DISABLED, or back from it), without waiting for a probe.
func (s *Server) afterProviderChange(r *http.Request, before, after sb.Provider) {
	if s.health != nil && (before.Enabled != after.Enabled || before.HealthCheck != after.HealthCheck) {
		if _, err := s.health.Refresh(r.Context(), after.Name); err != nil {
			s.logger.WarnContext(r.Context(), "refresh status", "provider", after.Name, "err", err.Error())
		}
	}
	s.changed()
}

type reorderRequest struct {
	Order []string `json:"order"`
}

func (s *Server) reorderProviders(w http.ResponseWriter, r *http.Request) {
	var req reorderRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if len(req.Order) == 0 {
		s.writeError(w, r, sb.Invalid("order", "must list every provider, highest priority first"))
		return
	}
	for i, n := range req.Order {
		if !sb.ValidSlug(n) {
			s.writeError(w, r, sb.Invalid("order["+strconv.Itoa(i)+"]", "is not a provider name"))
			return
		}
	}
	now := s.clock.Now()
	audit := sb.AuditEntry{At: now, Actor: sb.ActorFrom(r.Context()), Action: "provider.reorder", Target: "*",
		After: mustJSON(req)}
	if err := s.store.ReorderProviders(r.Context(), req.Order, audit); err != nil {
		s.writeError(w, r, err)
		return
	}
	recs, out, err := s.allViews(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	order := make([]map[string]any, len(recs))
	for i, rec := range recs {
		order[i] = map[string]any{"name": rec.Name, "priority": rec.Priority}
	}
	s.logger.InfoContext(r.Context(), "providers reordered", "order", req.Order, "actor", audit.Actor.Name)
	s.publish(sb.EventProvidersReorder, sb.RoleClient, map[string]any{"order": order})
	s.changed()
	writeJSON(w, http.StatusOK, map[string]any{"providers": out})
}

func (s *Server) deleteProvider(w http.ResponseWriter, r *http.Request) {
	name, ok := s.pathName(w, r)
	if !ok {
		return
	}
	now := s.clock.Now()
	audit := sb.AuditEntry{At: now, Actor: sb.ActorFrom(r.Context()), Action: "provider.delete", Target: name}
	if err := s.store.DeleteProvider(r.Context(), name, audit); err != nil {
		s.writeError(w, r, err)
		return
	}
	s.logger.InfoContext(r.Context(), "provider deleted", "provider", name, "actor", audit.Actor.Name)
	s.metrics.forgetProvider(name)
	s.publish(sb.EventProviderDeleted, sb.RoleClient, map[string]any{"name": name})
	s.changed()
	w.WriteHeader(http.StatusNoContent)
}

// publicProvider is what a client app may know of a provider.
type publicProvider struct {
	Name     string            `json:"name"`
	Kind     sb.Kind           `json:"kind"`
	Enabled  bool              `json:"enabled"`
	Priority int               `json:"priority"`
	Status   sb.Status         `json:"status"`
	Regions  []string          `json:"regions"`
	Config   map[string]string `json:"config"`
}

func publicView(rec sb.ProviderRecord) publicProvider {
	cfg := map[string]string{}
	switch rec.Kind {
	case sb.KindAgora, sb.KindZegocloud:
		cfg["appId"] = rec.Config.AppID
	case sb.KindLiveKit:
		cfg["url"] = rec.Config.URL
	}
	return publicProvider{Name: rec.Name, Kind: rec.Kind, Enabled: rec.Enabled, Priority: rec.Priority,
		Status: rec.Health.Status, Regions: rec.Regions, Config: cfg}
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := sb.AuditFilter{Target: q.Get("target")}
	if len(f.Target) > 256 || !sb.ValidText(f.Target) {
		s.writeError(w, r, sb.Invalid("target", "must be at most 256 characters of text"))
		return
	}
	limit, err := limitParam(q, 100, 1000)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f.Limit = limit
	if f.BeforeID, err = beforeParam(q, "audit entry"); err != nil {
		s.writeError(w, r, err)
		return
	}
	es, err := s.store.ListAudit(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if es == nil {
		es = []sb.AuditEntry{}
	}
	resp := map[string]any{"entries": es}
	if len(es) == f.Limit {
		resp["next"] = "/api/audit?before=" + strconv.FormatInt(es[len(es)-1].ID, 10) + "&limit=" + strconv.Itoa(f.Limit)
	}
	writeJSON(w, http.StatusOK, resp)
}
