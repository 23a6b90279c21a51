package httpapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	sb "github.com/switchboardhq/switchboard"
)

// Admission classes. Work on live streams (failover) is kept apart from new
// starts so that a saturated node sheds starts before it sheds a migration
// or a heartbeat, and neither waits behind the rest of the API.
const (
	classFailover = "failover"
	classStart    = "start"
	classOther    = "other"
)

var admissionClasses = []string{classFailover, classStart, classOther}

// Admission bounds the requests in flight of each route class. A request
// that cannot get a slot within its class's wait is answered 503 with
// Retry-After at once: under a mass failover a queue would only turn into
// timeouts, after the clients had given up and retried. The zero value
// admits everything.
type Admission struct {
	// Failover: POST /api/streams/{id}/migrate, heartbeat, failures and end.
	Failover ClassLimit
	// Start: POST /api/streams.
	Start ClassLimit
	// Other: the rest of the API, but for /healthz, /readyz, /metrics and
	// the event stream, which are never limited.
	Other ClassLimit
}

// ClassLimit bounds one admission class.
type ClassLimit struct {
	// MaxInFlight is how many of the class's requests are served at once;
	// 0 means no limit.
	MaxInFlight int
	// MaxWait is how long a request may wait for a slot; 0 takes the
	// class's default, DefaultFailoverWait or DefaultWait.
	MaxWait time.Duration
}

// The default waits for a slot: failover work may wait longer than starts
// and the rest, so that when the node is saturated starts are shed first.
const (
	DefaultFailoverWait = 2 * time.Second
	DefaultWait         = 250 * time.Millisecond
)

// routeClass returns the admission class of a route, or "" for the routes
// that are never limited: probes and metrics, which must answer most of all
// when the node is saturated, and the event stream, whose subscribers would
// each hold a slot for hours.
func routeClass(method, path string) string {
	switch method + " " + path {
	case "GET /healthz", "GET /readyz", "GET /metrics", "GET /api/events":
		return ""
	case "POST /api/streams":
		return classStart
	case "POST /api/streams/{id}/migrate", "POST /api/streams/{id}/heartbeat",
		"POST /api/streams/{id}/failures", "POST /api/streams/{id}/end":
		return classFailover
	}
	return classOther
}

// gate admits the requests of one class: at most cap(slots) at a time, each
// waiting at most wait for a slot. A nil slots admits every request.
type gate struct {
	class    string
	slots    chan struct{}
	wait     time.Duration
	inFlight prometheus.Gauge
	waiting  prometheus.Gauge
	shed     prometheus.Counter
}

func newGate(class string, l ClassLimit, defaultWait time.Duration, m *Metrics) *gate {
	g := &gate{
		class: class, wait: l.MaxWait,
		inFlight: m.inFlight.WithLabelValues(class), waiting: m.waiting.WithLabelValues(class), shed: m.shed.WithLabelValues(class),
	}
	if l.MaxInFlight > 0 {
		g.slots = make(chan struct{}, l.MaxInFlight)
	}
	if g.wait <= 0 {
		g.wait = defaultWait
	}
	return g
}

// errShed is await's answer when no slot came free in time.
var errShed = errors.New("admission: no slot within the wait")

// tryAcquire takes a slot if one is free.
func (g *gate) tryAcquire() bool {
	if g.slots != nil {
		select {
		case g.slots <- struct{}{}:
		default:
			return false
		}
	}
	g.inFlight.Inc()
	return true
}

// await takes a slot, waiting at most g.wait, or until ctx ends: a request
// whose client went away leaves the line at once. Blocked senders on a
// channel are served in order, so the waiting requests need no goroutine of
// their own.
func (g *gate) await(ctx context.Context) error {
	g.waiting.Inc()
	defer g.waiting.Dec()
	t := time.NewTimer(g.wait)
	defer t.Stop()
	select {
	case g.slots <- struct{}{}:
		g.inFlight.Inc()
		return nil
	case <-t.C:
		g.shed.Inc()
		return errShed
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) release() {
	g.inFlight.Dec()
	if g.slots != nil {
		<-g.slots
	}
}

// admit serves next once the request has a slot in g. It wraps the whole
// route, authentication included, since that reads the store as well.
func (s *Server) admit(g *gate, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.tryAcquire() {
			var err error
			if r, err = readBody(r); err != nil {
				s.writeError(w, r, err)
				return
			}
			if err := g.await(r.Context()); errors.Is(err, errShed) {
				s.shed(w, r, g.class)
				return
			} else if err != nil {
				s.writeError(w, r, err) // the client went away while waiting
				return
			}
		}
		defer g.release()
		next.ServeHTTP(w, r)
	})
}

// readBody returns r with its body read into memory. net/http notices that a
// client went away, and cancels the request's context, only once the body
// has been read: without this, a waiting POST would stay in line until its
// wait ran out. Bodies of unknown or excessive length are left as they are
// (the handler refuses the latter without reading it).
func readBody(r *http.Request) (*http.Request, error) {
	if r.ContentLength <= 0 || r.ContentLength > maxBody {
		return r, nil
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return r, jsonError(err) // an upload broken off: what decode would answer
	}
	r = r.WithContext(r.Context())
	r.Body = io.NopCloser(bytes.NewReader(b))
	return r, nil
}

// shed answers a request that found its class saturated. It writes the
// error envelope itself rather than through writeError, which logs every
// 5xx as a warning: a node shedding thousands of requests a second must not
// add a log line for each (switchboard_http_requests_shed_total counts them).
func (s *Server) shed(w http.ResponseWriter, r *http.Request, class string) {
	s.logger.DebugContext(r.Context(), "request shed", "request_id", requestID(r.Context()), "route", r.Pattern, "class", class)
	writeShed(w, "server overloaded: too many "+class+" requests in flight; retry after Retry-After seconds")
}

// writeShed answers 503 unavailable with message and a Retry-After of one
// or two seconds, at random, so that the clients shed in one burst do not
// all come back in the same instant.
func writeShed(w http.ResponseWriter, message string) {
	w.Header().Set("Retry-After", strconv.Itoa(1+rand.IntN(2)))
	writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: errorDetail{Code: sb.EUnavailable, Message: message}})
}
