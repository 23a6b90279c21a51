package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	sb "github.com/switchboardhq/switchboard"
)

// metrics holds the HTTP and registry metrics served on /metrics.
type metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	handler  http.Handler
}

func newMetrics(reg *prometheus.Registry, store sb.Store) *metrics {
	m := &metrics{
		reg: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchboard_http_requests_total", Help: "HTTP requests by route and status.",
		}, []string{"route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "switchboard_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.latency, &registryCollector{store: store},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	return m
}

func (m *metrics) serve(w http.ResponseWriter, r *http.Request) { m.handler.ServeHTTP(w, r) }

// instrument counts and times requests to one route.
func (m *metrics) instrument(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r)
		m.requests.WithLabelValues(route, strconv.Itoa(sw.status)).Inc()
		m.latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
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
)

func (c *registryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- providersDesc
	ch <- enabledDesc
}

func (c *registryCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	recs, err := c.store.ListProviders(ctx)
	if err != nil {
		return
	}
	counts := map[sb.Status]int{}
	for _, s := range []sb.Status{sb.StatusExcellent, sb.StatusHealthy, sb.StatusWarning, sb.StatusCritical, sb.StatusDisabled, sb.StatusUnknown} {
		counts[s] = 0
	}
	for _, r := range recs {
		counts[r.Health.Status]++
		v := 0.0
		if r.Enabled {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(enabledDesc, prometheus.GaugeValue, v, r.Name, string(r.Kind))
	}
	for st, n := range counts {
		ch <- prometheus.MustNewConstMetric(providersDesc, prometheus.GaugeValue, float64(n), string(st))
	}
}
