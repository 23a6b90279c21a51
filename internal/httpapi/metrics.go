package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/health"
)

// Metrics holds what /metrics serves: HTTP requests by route and status,
// latency histograms, admission per route class, probe results and registry
// gauges.
type Metrics struct {
	reg          *prometheus.Registry
	quality      *qualityCollector // quality.go
	requests     *prometheus.CounterVec
	latency      *prometheus.HistogramVec
	inFlight     *prometheus.GaugeVec
	waiting      *prometheus.GaugeVec
	shed         *prometheus.CounterVec
	cancelled    *prometheus.CounterVec
	probes       *prometheus.CounterVec
	probeLatency *prometheus.HistogramVec
	transitions  *prometheus.CounterVec
	handler      http.Handler
	// security are the counters of refused logins and event streams
	// (security_metrics.go).
	security
}

// NewMetrics registers Switchboard's metrics on reg. The registry gauges are
// read from store at scrape time.
func NewMetrics(reg *prometheus.Registry, store sb.Store) *Metrics {
	m := &Metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "switchboard_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchboard_http_requests_in_flight", Help: "HTTP requests being served, by admission class (failover, start, other).",
		}, []string{"class"}),
		waiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchboard_http_requests_waiting", Help: "HTTP requests waiting for an admission slot, by class.",
		}, []string{"class"}),
		shed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_http_requests_shed_total", Help: "HTTP requests answered 503 at once because their admission class was saturated, by class.",
		}, []string{"class"}),
		cancelled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_http_requests_cancelled_total", Help: "HTTP requests whose client went away before the answer, by route.",
		}, []string{"route"}),
		probes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_probes_total", Help: "Health probes by provider, result (success or failure) and failed stage.",
		}, []string{"provider", "result", "stage"}),
		probeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "switchboard_probe_duration_seconds", Help: "Health probe latency by provider.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"provider"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_status_transitions_total", Help: "Provider status transitions by provider and new status.",
		}, []string{"provider", "to"}),
	}
	// Every class has its series from the start, so that dashboards and
	// alerts see 0 rather than no data before the first overload.
	for _, c := range admissionClasses {
		m.inFlight.WithLabelValues(c)
		m.waiting.WithLabelValues(c)
		m.shed.WithLabelValues(c)
	}
	reg.MustRegister(m.requests, m.latency, m.inFlight, m.waiting, m.shed, m.cancelled, m.probes, m.probeLatency, m.transitions, &registryCollector{store: store},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.quality = &qualityCollector{store: store}
	reg.MustRegister(m.quality, &regionalCollector{store: store, now: m.quality.clock})
	m.security = newSecurity(reg)
	if w, ok := store.(interface{ WriteRetries() int64 }); ok {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "switchboard_store_write_retries_total",
			Help: "Write transactions run again after losing a deadlock to another writer (PostgreSQL: replicas writing the same rows in different orders)."},
			func() float64 { return float64(w.WriteRetries()) }))
	}
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

// ObserveProbe counts one recorded probe; wire it as health.Config.OnProbe.
func (m *Metrics) ObserveProbe(r health.Result) {
	if !r.Probed {
		return
	}
	result, stage := "success", ""
	if !r.Probe.OK {
		result, stage = "failure", string(r.Probe.Stage)
	}
	m.probes.WithLabelValues(r.Name, result, stage).Inc()
	m.probeLatency.WithLabelValues(r.Name).Observe(r.Probe.Latency.Seconds())
}

// forgetProvider drops the series of a deleted provider.
func (m *Metrics) forgetProvider(name string) {
	l := prometheus.Labels{"provider": name}
	m.probes.DeletePartialMatch(l)
	m.probeLatency.DeletePartialMatch(l)
	m.transitions.DeletePartialMatch(l)
}

// ObserveTransition counts a status change; wire it as health.Config.OnTransition.
func (m *Metrics) ObserveTransition(c health.StatusChange) {
	m.transitions.WithLabelValues(c.Name, string(c.To)).Inc()
}

func (m *Metrics) serve(w http.ResponseWriter, r *http.Request) { m.handler.ServeHTTP(w, r) }

// instrument counts and times requests to one route.
func (m *Metrics) instrument(route string, next http.Handler) http.Handler {
	rm := &routeMetrics{m: m, route: route}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		rm.count(sw.status).Inc()
		rm.observer().Observe(time.Since(start).Seconds())
	})
}

// routeMetrics holds one route's series once they are first used, so that
// a request does not look its labels up again.
type routeMetrics struct {
	m       *Metrics
	route   string
	once    sync.Once
	latency prometheus.Observer // set by once
	counts  sync.Map            // status code → prometheus.Counter
}

// observer returns the route's latency histogram.
func (rm *routeMetrics) observer() prometheus.Observer {
	rm.once.Do(func() { rm.latency = rm.m.latency.WithLabelValues(rm.route) })
	return rm.latency
}

// count returns the route's request counter for status.
func (rm *routeMetrics) count(status int) prometheus.Counter {
	if c, ok := rm.counts.Load(status); ok {
		return c.(prometheus.Counter)
	}
	c := rm.m.requests.WithLabelValues(rm.route, strconv.Itoa(status))
	rm.counts.Store(status, c)
	return c
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush on the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// registryCollector reports registry gauges at scrape time.
type registryCollector struct{ store sb.Store }

var (
	providersDesc = prometheus.NewDesc("switchboard_providers", "Providers in the registry by status.", []string{"status"}, nil)
	enabledDesc   = prometheus.NewDesc("switchboard_provider_enabled", "1 when the provider is enabled.", []string{"provider", "kind"}, nil)
	upDesc        = prometheus.NewDesc("switchboard_provider_up", "1 when the provider's status lets it take streams (EXCELLENT, HEALTHY or WARNING).", []string{"provider"}, nil)
	statusDesc    = prometheus.NewDesc("switchboard_provider_status", "The provider's status badge: one series per status (EXCELLENT, HEALTHY, WARNING, CRITICAL, DISABLED, UNKNOWN), 1 for the current one and 0 for the others.", []string{"provider", "status"}, nil)
	uptimeDesc    = prometheus.NewDesc("switchboard_provider_uptime_ratio", "Share of successful checks in the provider's health-check window, from 0 to 1.", []string{"provider"}, nil)
	errRateDesc   = prometheus.NewDesc("switchboard_provider_error_ratio", "Share of failed requests (probes and client reports) in the health-check window, from 0 to 1.", []string{"provider"}, nil)
)

// badges lists every status, in the order of the status gauge's series.
var badges = []sb.Status{sb.StatusExcellent, sb.StatusHealthy, sb.StatusWarning, sb.StatusCritical, sb.StatusDisabled, sb.StatusUnknown}

func (c *registryCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{providersDesc, enabledDesc, upDesc, statusDesc, uptimeDesc, errRateDesc} {
		ch <- d
	}
}

func (c *registryCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	recs, err := c.store.ListProviders(ctx)
	if err != nil {
		return
	}
	counts := map[sb.Status]int{}
	for _, s := range badges {
		counts[s] = 0
	}
	for _, r := range recs {
		counts[r.Health.Status]++
		v := 0.0
		if r.Enabled {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(enabledDesc, prometheus.GaugeValue, v, r.Name, string(r.Kind))
		up := 0.0
		if r.Health.Status.Usable() {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up, r.Name)
		for _, b := range badges {
			v := 0.0
			if r.Health.Status == b {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(statusDesc, prometheus.GaugeValue, v, r.Name, string(b))
		}
		// Uptime and error rate (of the window) are percentages; Prometheus states ratios.
		ch <- prometheus.MustNewConstMetric(uptimeDesc, prometheus.GaugeValue, r.Health.RecentUptime()/100, r.Name)
		ch <- prometheus.MustNewConstMetric(errRateDesc, prometheus.GaugeValue, r.Health.RecentErrorRate()/100, r.Name)
	}
	for st, n := range counts {
		ch <- prometheus.MustNewConstMetric(providersDesc, prometheus.GaugeValue, float64(n), string(st))
	}
}
