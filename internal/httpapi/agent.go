package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/health"
)

// Limits of POST /api/agent/results.
const (
	// maxAgentResults is the most results one report may hold.
	maxAgentResults = 100
	// maxAgentLatency is the longest latency a result may state.
	maxAgentLatency = 10 * time.Minute
	// maxAgentMessage is the longest message of a failed result, in bytes.
	maxAgentMessage = 512
	// agentResultAge is how old a result may be when it arrives; agentSkew
	// is how far ahead of the server's clock it may be.
	agentResultAge = time.Hour
	agentSkew      = time.Minute
)

// agentProvider is a provider as a probe agent reads it: what its probe
// needs, credentials included.
type agentProvider struct {
	Name        string               `json:"name"`
	Kind        sb.Kind              `json:"kind"`
	Enabled     bool                 `json:"enabled"`
	Config      sb.ProviderConfig    `json:"config"`
	HealthCheck sb.HealthCheckPolicy `json:"healthCheck"`
	Credentials sb.CredentialsInput  `json:"credentials"`
}

func credentialsOut(c sb.Credentials) sb.CredentialsInput {
	str := func(s string) *string {
		if s == "" {
			return nil
		}
		return &s
	}
	return sb.CredentialsInput{
		CustomerID: str(c.CustomerID), CustomerSecret: str(c.CustomerSecret), AppCertificate: str(c.AppCertificate),
		ServerSecret: str(c.ServerSecret), APIKey: str(c.APIKey), APISecret: str(c.APISecret), Headers: c.Headers,
	}
}

// agentProviders is GET /api/agent/providers: the enabled providers with
// what their probes need, credentials included. Each provider whose
// credentials are read gets an audit entry (provider.credentials.read) naming
// the agent, written before the answer: a read that cannot be audited is not
// answered.
func (s *Server) agentProviders(w http.ResponseWriter, r *http.Request) {
	recs, err := s.store.ListProviders(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	actor := sb.ActorFrom(r.Context())
	now := s.clock.Now()
	out := []agentProvider{}
	for _, rec := range recs {
		if !rec.Enabled {
			continue
		}
		if rec.CredentialsSet() {
			e := sb.AuditEntry{Actor: actor, Action: "provider.credentials.read", Target: rec.Name, At: now,
				After: mustJSON(map[string]any{"reason": "probe agent"})}
			if err := s.store.AppendAudit(r.Context(), e); err != nil {
				s.writeError(w, r, err)
				return
			}
		}
		out = append(out, agentProvider{Name: rec.Name, Kind: rec.Kind, Enabled: rec.Enabled, Config: rec.Config,
			HealthCheck: rec.HealthCheck, Credentials: credentialsOut(rec.Credentials)})
	}
	s.logger.InfoContext(r.Context(), "agent read providers", "token_id", actor.ID, "agent", actor.Name, "providers", len(out))
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"providers": out})
}

// agentReport is the body of POST /api/agent/results.
type agentReport struct {
	Region  string        `json:"region"`
	Results []agentResult `json:"results"`
}

// agentResult is one probe of one provider by an agent.
type agentResult struct {
	Provider  string     `json:"provider"`
	OK        *bool      `json:"ok"`
	LatencyMs *int64     `json:"latencyMs"`
	Stage     sb.Stage   `json:"stage,omitempty"`
	Message   string     `json:"message,omitempty"`
	At        *time.Time `json:"at"`
}

// validate checks a report against the registry and the clock, naming the
// first field that is wrong, and returns each result as a probe result with
// its provider.
func (rep agentReport) validate(recs map[string]sb.ProviderRecord, now time.Time) ([]sb.ProbeResult, error) {
	if err := sb.ValidateRegion("region", rep.Region); err != nil {
		return nil, err
	}
	if len(rep.Results) == 0 || len(rep.Results) > maxAgentResults {
		return nil, sb.Invalid("results", "must hold 1 to %d results", maxAgentResults)
	}
	out := make([]sb.ProbeResult, len(rep.Results))
	for i, res := range rep.Results {
		f := func(name string) string { return fmt.Sprintf("results[%d].%s", i, name) }
		if !sb.ValidSlug(res.Provider) {
			return nil, sb.Invalid(f("provider"), "must be a provider name")
		}
		if _, ok := recs[res.Provider]; !ok {
			return nil, sb.Invalid(f("provider"), "no provider %s", res.Provider)
		}
		if res.OK == nil {
			return nil, sb.Invalid(f("ok"), "is required")
		}
		if res.LatencyMs == nil || *res.LatencyMs < 0 || *res.LatencyMs > maxAgentLatency.Milliseconds() {
			return nil, sb.Invalid(f("latencyMs"), "is required: 0 to %d", maxAgentLatency.Milliseconds())
		}
		if res.At == nil || res.At.IsZero() {
			return nil, sb.Invalid(f("at"), "is required")
		}
		if res.At.After(now.Add(agentSkew)) || res.At.Before(now.Add(-agentResultAge)) {
			return nil, sb.Invalid(f("at"), "must be within the last hour (and at most a minute ahead of the server's clock)")
		}
		stage := res.Stage
		switch {
		case *res.OK && (stage != "" || res.Message != ""):
			return nil, sb.Invalid(f("stage"), "a successful probe has no stage or message")
		case !*res.OK && stage == "":
			stage = sb.StageOperation
		case !*res.OK && stage != sb.StageConnect && stage != sb.StageAuth && stage != sb.StageOperation && stage != sb.StageTimeout:
			return nil, sb.Invalid(f("stage"), "must be connect, auth, operation or timeout")
		}
		if len(res.Message) > maxAgentMessage || !sb.ValidText(res.Message) {
			return nil, sb.Invalid(f("message"), "must be valid UTF-8 text of at most %d bytes", maxAgentMessage)
		}
		msg := res.Message
		for _, v := range recs[res.Provider].Credentials.Values() {
			msg = strings.ReplaceAll(msg, v, "[REDACTED]")
		}
		msg = sb.Truncate(msg, maxAgentMessage)
		out[i] = sb.ProbeResult{OK: *res.OK, Latency: time.Duration(*res.LatencyMs) * time.Millisecond, Stage: stage, Message: msg, At: res.At.UTC()}
	}
	return out, nil
}

// agentResults is POST /api/agent/results: a probe agent reports the
// results of its probes from its region. Every result is checked before any
// is recorded; each is then folded into the provider's health in that
// region by the status rules (health.ObserveRegional), with the source
// "agent:" and the agent's token name.
func (s *Server) agentResults(w http.ResponseWriter, r *http.Request) {
	var rep agentReport
	if err := decode(r, &rep); err != nil {
		s.writeError(w, r, err)
		return
	}
	list, err := s.store.ListProviders(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	recs := make(map[string]sb.ProviderRecord, len(list))
	for _, rec := range list {
		recs[rec.Name] = rec
	}
	results, err := rep.validate(recs, s.clock.Now())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	source := sb.SourceAgentPrefix + sb.ActorFrom(r.Context()).Name
	type recorded struct {
		Provider string    `json:"provider"`
		Status   sb.Status `json:"status"`
	}
	out := make([]recorded, 0, len(results))
	for i, res := range results {
		rec := recs[rep.Results[i].Provider]
		pol, enabled := rec.HealthCheck, rec.Enabled
		_, after, err := s.store.RecordRegionalCheck(r.Context(), rec.Name, rep.Region, source, func(h sb.Health) sb.Health {
			return health.ObserveRegional(h, res, pol, enabled)
		})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		out = append(out, recorded{Provider: rec.Name, Status: after.Status})
	}
	writeJSON(w, http.StatusOK, map[string]any{"region": rep.Region, "recorded": out})
}

// regionalView is the health of a provider in one region, as the provider
// view and the streaming configuration show it.
type regionalView struct {
	Status    sb.Status  `json:"status"`
	Usable    bool       `json:"usable"`
	Stale     bool       `json:"stale"`
	Reason    string     `json:"reason"`
	Uptime    float64    `json:"uptime"`
	ErrorRate float64    `json:"errorRate"`
	Latency   int64      `json:"latency"`
	LastCheck *time.Time `json:"lastCheck"`
	// Quality is the quality score (0–100) that clients measured on the
	// provider in the region over the last hour; null without samples.
	Quality *float64 `json:"quality"`
	Source  string   `json:"source"`
}

// regionalHealth returns the regional views of every provider of recs that
// has regional health, by provider then region, as of now, with the quality
// score of each provider and region in quality (by provider, then region).
func (s *Server) regionalHealth(ctx context.Context, recs []sb.ProviderRecord, quality map[string]map[string]qualityView) (map[string]map[string]regionalView, error) {
	rows, err := s.store.ListRegionalHealth(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]regionalView{}
	if len(rows) == 0 {
		return out, nil
	}
	byName := make(map[string]sb.ProviderRecord, len(recs))
	for _, rec := range recs {
		byName[rec.Name] = rec
	}
	now := s.clock.Now()
	for _, row := range rows {
		rec, ok := byName[row.Provider]
		if !ok {
			continue
		}
		status, reason, stale := health.RegionalStatus(row.Health, rec.HealthCheck, rec.Enabled, now)
		v := regionalView{Status: status, Usable: status.Usable(), Stale: stale, Reason: reason,
			Uptime: sb.Round2(row.Health.RecentUptime()), ErrorRate: sb.Round2(row.Health.RecentErrorRate()),
			Latency: row.Health.LatencyMs, LastCheck: row.Health.LastCheck, Source: row.Source}
		if qv, ok := quality[row.Provider][row.Region]; ok {
			v.Quality = qv.Score
		}
		if out[row.Provider] == nil {
			out[row.Provider] = map[string]regionalView{}
		}
		out[row.Provider][row.Region] = v
	}
	return out, nil
}

// withRegional fills the regional health of views, whose quality is
// filled already (withQuality).
func (s *Server) withRegional(ctx context.Context, recs []sb.ProviderRecord, views []providerView) error {
	quality := make(map[string]map[string]qualityView, len(views))
	for _, v := range views {
		quality[v.Name] = v.Quality
	}
	rh, err := s.regionalHealth(ctx, recs, quality)
	if err != nil {
		return err
	}
	for i := range views {
		views[i].RegionalHealth = rh[views[i].Name]
		if views[i].RegionalHealth == nil {
			views[i].RegionalHealth = map[string]regionalView{}
		}
	}
	return nil
}
