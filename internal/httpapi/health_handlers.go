package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/health"
)

// HealthChecker probes providers on demand; *health.Checker implements it.
type HealthChecker interface {
	Check(ctx context.Context, name string) (health.Result, error)
	CheckAll(ctx context.Context) ([]health.Result, error)
	Refresh(ctx context.Context, name string) (sb.Health, error)
}

// publicHealth is exactly the body of the public health endpoint. Usable is
// the server's verdict (switchboard.Status.Usable); Healthy is the same value
// under its original name.
type publicHealth struct {
	Name      string     `json:"name"`
	Usable    bool       `json:"usable"`
	Healthy   bool       `json:"healthy"`
	Status    sb.Status  `json:"status"`
	State     sb.State   `json:"state"`
	Latency   int64      `json:"latency"`
	Uptime    float64    `json:"uptime"`
	ErrorRate float64    `json:"errorRate"`
	LastCheck *time.Time `json:"lastCheck"`
	// Window is the span uptime and error rate count; omitted while the
	// window is not known (the lifetime counts stand in).
	Window *sb.Duration `json:"window,omitempty"`
}

// spanOf is the window of h, nil when not known.
func spanOf(h sb.Health) *sb.Duration {
	if h.Window.Span <= 0 {
		return nil
	}
	d := sb.Duration(h.Window.Span)
	return &d
}

// publicHealthMaxAge is how long clients and CDNs may cache the public health.
const publicHealthMaxAge = 5 * time.Second

func (s *Server) providerHealth(w http.ResponseWriter, r *http.Request) {
	if s.public != nil {
		// Per address, IPv6 per /64 (throttleKey): one host holds a whole
		// /64, and keyed by address each of its requests found a fresh
		// bucket, so the limit held nothing back.
		if wait, ok := s.public.allow(throttleKey(s.clientAddr(r))); !ok {
			s.writeRateLimited(w, r, wait, "rate limit exceeded: retry later")
			return
		}
	}
	// A name with a document kept is a provider's, valid when it was kept.
	d, ok := s.keptPublicHealth(nameParam(r))
	if !ok {
		name, ok := s.pathName(w, r)
		if !ok {
			return
		}
		var err error
		if d, err = s.publicHealthDoc(r.Context(), name); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	// The header values are set as prepared slices: the same bytes on
	// every answer, without a copy or a canonicalisation each time.
	h := w.Header()
	h["Cache-Control"] = publicHealthCacheControl
	h["Etag"] = d.etagHeader
	if match := r.Header.Get("If-None-Match"); match != "" && match == d.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h["Content-Type"] = jsonContentType
	_, _ = w.Write(d.body)
}

// publicHealthCacheControl is the Cache-Control of the public health.
var publicHealthCacheControl = []string{"public, max-age=" + strconv.Itoa(int(publicHealthMaxAge.Seconds()))}

// jsonContentType is the Content-Type header value of a JSON answer.
var jsonContentType = []string{"application/json"}

// keptPublicHealth returns the document of name kept in memory, if it is
// still current.
func (s *Server) keptPublicHealth(name string) (publicDoc, bool) {
	gens, cached := s.health.(generationer)
	if !cached {
		return publicDoc{}, false
	}
	return s.pub.get(name, gens.Generation(), time.Now())
}

// publicHealthDoc returns the public health document of the provider name:
// from the snapshot while it is current, else built from the store and kept.
func (s *Server) publicHealthDoc(ctx context.Context, name string) (publicDoc, error) {
	gens, cached := s.health.(generationer)
	var checkerGen uint64
	now := time.Now()
	if cached {
		checkerGen = gens.Generation()
		if d, ok := s.pub.get(name, checkerGen, now); ok {
			return d, nil
		}
	}
	gen := s.pub.generation()
	// The health record alone: an anonymous endpoint has no use for the
	// provider's settings, still less for decrypting its credentials.
	h, err := s.store.GetHealth(ctx, name)
	if err != nil {
		return publicDoc{}, err
	}
	body, _ := json.Marshal(publicHealth{
		Name: name, Usable: h.Status.Usable(), Healthy: h.Status.Usable(), Status: h.Status, State: health.StateOf(h.Status), Latency: h.LatencyMs,
		Uptime: sb.Round2(h.RecentUptime()), ErrorRate: sb.Round2(h.RecentErrorRate()), LastCheck: h.LastCheck,
		Window: spanOf(h),
	})
	if !cached {
		sum := sha256.Sum256(body)
		etag := `"` + hex.EncodeToString(sum[:12]) + `"`
		return publicDoc{body: append(body, '\n'), etag: etag, etagHeader: []string{etag}}, nil
	}
	return s.pub.put(name, body, gen, checkerGen, now), nil
}

// checkResult is the answer of a manual check. Healthy is the outcome of this
// probe (false when the provider was not probed, being disabled), as in the
// original API; Status (the badge), State and Usable are the provider's after
// the probe was folded in, so a probe that failed can leave a provider that
// is still usable. Uptime and error rate are those of the provider's window.
type checkResult struct {
	Name      string     `json:"name"`
	Healthy   bool       `json:"healthy"`
	Latency   int64      `json:"latency"`
	Status    sb.Status  `json:"status"`
	State     sb.State   `json:"state"`
	Usable    bool       `json:"usable"`
	Uptime    float64    `json:"uptime"`
	ErrorRate float64    `json:"errorRate"`
	LastCheck *time.Time `json:"lastCheck"`
	Probed    bool       `json:"probed"`
	Stage     sb.Stage   `json:"stage,omitempty"`
	Error     string     `json:"error,omitempty"`
}

func resultView(r health.Result) checkResult {
	out := checkResult{
		Name: r.Name, Healthy: r.Probed && r.Probe.OK, Latency: r.Health.LatencyMs,
		Status: r.Status, State: r.State, Usable: r.Status.Usable(),
		Uptime: sb.Round2(r.Health.RecentUptime()), ErrorRate: sb.Round2(r.Health.RecentErrorRate()), LastCheck: r.Health.LastCheck,
		Probed: r.Probed,
	}
	if r.Probed {
		out.Latency = r.Probe.Latency.Milliseconds()
		if !r.Probe.OK {
			out.Stage, out.Error = r.Probe.Stage, r.Probe.Message
		}
	}
	return out
}

func (s *Server) checkProvider(w http.ResponseWriter, r *http.Request) {
	name, ok := s.pathName(w, r)
	if !ok {
		return
	}
	res, err := s.health.Check(r.Context(), name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resultView(res))
}

func (s *Server) checkAll(w http.ResponseWriter, r *http.Request) {
	res, err := s.health.CheckAll(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := make([]checkResult, len(res))
	for i, x := range res {
		out[i] = resultView(x)
	}
	writeJSON(w, http.StatusOK, map[string]any{"results": out})
}

// healthView is the current health of one provider, for admins. Uptime,
// error rate and client failures are those of the provider's window. Usable
// is the server's verdict; Healthy is the same value under its original name.
type healthView struct {
	Name                string         `json:"name"`
	Usable              bool           `json:"usable"`
	Healthy             bool           `json:"healthy"`
	Status              sb.Status      `json:"status"`
	State               sb.State       `json:"state"`
	Uptime              float64        `json:"uptime"`
	Uptime24h           *float64       `json:"uptime24h"`
	Uptime30d           *float64       `json:"uptime30d"`
	ErrorRate           float64        `json:"errorRate"`
	ConsecutiveFailures int            `json:"consecutiveFailures"`
	ClientFailures      int64          `json:"clientFailures"`
	Window              *sb.Duration   `json:"window"`
	Latency             int64          `json:"latency"`
	AverageLatency      float64        `json:"averageLatency"`
	P95Latency24h       *int64         `json:"p95Latency24h"`
	LastCheck           *time.Time     `json:"lastCheck"`
	LastError           *sb.ProbeError `json:"lastError"`
	TotalChecks         int64          `json:"totalChecks"`
}

func (s *Server) currentHealthAll(w http.ResponseWriter, r *http.Request) {
	recs, err := s.store.ListProviders(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	now := s.clock.Now()
	out := make([]healthView, 0, len(recs))
	for _, rec := range recs {
		v, err := s.healthView(r.Context(), rec, now)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, map[string]any{"providers": out})
}

func (s *Server) healthView(ctx context.Context, rec sb.ProviderRecord, now time.Time) (healthView, error) {
	h := rec.Health
	checks, _, _, _ := windowCounts(h)
	v := healthView{
		Name: rec.Name, Usable: h.Status.Usable(), Healthy: h.Status.Usable(), Status: h.Status, State: health.StateOf(h.Status),
		Uptime: sb.Round2(h.RecentUptime()), ErrorRate: sb.Round2(h.RecentErrorRate()), ConsecutiveFailures: h.ConsecutiveFailures,
		ClientFailures: h.Window.ClientFailures, Window: spanOf(h), Latency: h.LatencyMs, AverageLatency: sb.Round2(h.AverageLatencyMs()), LastCheck: h.LastCheck,
		LastError: h.LastError, TotalChecks: checks,
	}
	var err error
	if v.Uptime24h, err = s.rollingUptime(ctx, rec.Name, now.Add(-24*time.Hour), now); err != nil {
		return v, err
	}
	if v.Uptime30d, err = s.rollingUptime(ctx, rec.Name, now.Add(-30*24*time.Hour), now); err != nil {
		return v, err
	}
	lat, err := s.store.RecentLatencies(ctx, rec.Name, now.Add(-24*time.Hour))
	if err != nil {
		return v, err
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		p := lat[(len(lat)*95+99)/100-1]
		v.P95Latency24h = &p
	}
	return v, nil
}

// rollingUptime is the uptime over [from, to) from the hourly rollups (nil when
// there were no checks).
func (s *Server) rollingUptime(ctx context.Context, name string, from, to time.Time) (*float64, error) {
	rs, err := s.store.HourlyRollups(ctx, name, from.Truncate(time.Hour), to)
	if err != nil {
		return nil, err
	}
	var sum sb.Rollup
	for _, r := range rs {
		sum.Checks += r.Checks
		sum.Successes += r.Successes
	}
	if sum.Checks == 0 {
		return nil, nil
	}
	u := sb.Round2(sum.Uptime())
	return &u, nil
}

type historyPoint struct {
	At             time.Time `json:"at"`
	Checks         int64     `json:"checks"`
	Uptime         float64   `json:"uptime"`
	AverageLatency float64   `json:"averageLatency"`
	MaxLatency     int64     `json:"maxLatency"`
}

func (s *Server) providerHistory(w http.ResponseWriter, r *http.Request) {
	name, ok := s.pathName(w, r)
	if !ok {
		return
	}
	window := r.URL.Query().Get("window")
	if window == "" {
		window = "24h"
	}
	now := s.clock.Now()
	var from time.Time
	var bucket string
	switch window {
	case "24h":
		from, bucket = now.Add(-24*time.Hour).Truncate(time.Hour), "hour"
	case "7d":
		from, bucket = now.Add(-7*24*time.Hour).Truncate(time.Hour), "hour"
	case "30d":
		from, bucket = now.AddDate(0, 0, -30).Truncate(24*time.Hour), "day"
	default:
		s.writeError(w, r, sb.Invalid("window", "must be 24h, 7d or 30d"))
		return
	}
	if _, err := s.store.GetProvider(r.Context(), name); err != nil {
		s.writeError(w, r, err)
		return
	}
	var rs []sb.Rollup
	var err error
	if bucket == "hour" {
		rs, err = s.store.HourlyRollups(r.Context(), name, from, now)
	} else {
		rs, err = s.store.DailyRollups(r.Context(), name, from, now)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	points := make([]historyPoint, len(rs))
	for i, x := range rs {
		points[i] = historyPoint{At: x.Bucket, Checks: x.Checks, Uptime: sb.Round2(x.Uptime()), AverageLatency: sb.Round2(x.AverageLatencyMs()), MaxLatency: x.LatencyMaxMs}
	}
	trs, err := s.store.Transitions(r.Context(), name, from, 200)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if trs == nil {
		trs = []sb.Transition{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"name": name, "window": window, "bucket": bucket, "points": points, "transitions": trs})
}
