package httpapi

import (
	"errors"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchboardhq/switchboard/internal/events"
)

var (
	eventSubscribersDesc = prometheus.NewDesc("switchboard_events_subscribers",
		"Current event subscribers: SSE streams and in-process subscriptions.", nil, nil)
	eventsPublishedDesc = prometheus.NewDesc("switchboard_events_published_total",
		"Events published on the event hub.", nil, nil)
	eventsDroppedDesc = prometheus.NewDesc("switchboard_events_dropped_subscribers_total",
		"Event subscribers dropped for not keeping up; an SSE client then reconnects and resumes or resynchronises.", nil, nil)
)

// WatchHub makes /metrics report the event hub's subscribers, published events
// and dropped subscribers, read from h.Stats at scrape time. New calls it when
// Options.Events is set. Calling it again, with the same hub or another,
// replaces the hub watched.
func (m *Metrics) WatchHub(h *events.Hub) {
	c := &hubCollector{}
	c.hub.Store(h)
	err := m.reg.Register(c)
	if are, ok := errors.AsType[prometheus.AlreadyRegisteredError](err); ok {
		if existing, ok := are.ExistingCollector.(*hubCollector); ok {
			existing.hub.Store(h)
			return
		}
	}
	if err != nil {
		panic("httpapi: register event hub metrics: " + err.Error()) // as MustRegister does in NewMetrics
	}
}

// hubCollector reports an event hub's counters at scrape time.
type hubCollector struct{ hub atomic.Pointer[events.Hub] }

func (c *hubCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- eventSubscribersDesc
	ch <- eventsPublishedDesc
	ch <- eventsDroppedDesc
}

func (c *hubCollector) Collect(ch chan<- prometheus.Metric) {
	h := c.hub.Load()
	if h == nil {
		return
	}
	s := h.Stats()
	ch <- prometheus.MustNewConstMetric(eventSubscribersDesc, prometheus.GaugeValue, float64(s.Subscribers))
	ch <- prometheus.MustNewConstMetric(eventsPublishedDesc, prometheus.CounterValue, float64(s.Published))
	ch <- prometheus.MustNewConstMetric(eventsDroppedDesc, prometheus.CounterValue, float64(s.Dropped))
}
