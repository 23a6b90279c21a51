// Package httpapi serves Switchboard's REST API: routes, access control, JSON
// decoding and errors. The whole API is listed in routes.go.
package httpapi

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/auth"
	"github.com/switchboardhq/switchboard/internal/events"
	"github.com/switchboardhq/switchboard/internal/geo"
	"github.com/switchboardhq/switchboard/internal/maintenance"
	"github.com/switchboardhq/switchboard/internal/streams"
	"golang.org/x/sync/singleflight"
)

// Options wires a Server.
type Options struct {
	Store  switchboard.Store
	Bus    switchboard.Bus
	Clock  switchboard.Clock
	Logger *slog.Logger
	// BootstrapToken, when set, is accepted as a superadmin bearer token.
	BootstrapToken string
	// ProvidersChanged is called after every committed change to the registry,
	// so that the health scheduler picks up new settings at once.
	ProvidersChanged func()
	// Health probes providers on demand.
	Health HealthChecker
	// Streams assigns streams to providers.
	Streams *streams.Service
	// Events streams events to subscribers; /metrics reports its counters
	// (see Metrics.WatchHub).
	Events *events.Hub
	// Metrics holds the metrics /metrics serves; nil creates them on a new registry.
	Metrics *Metrics
	// PublicRate and PublicBurst limit requests per client IP to the public
	// health endpoint; PublicRate 0 switches the limit off.
	PublicRate  float64
	PublicBurst int
	// SessionTTL is how long a dashboard login lasts (default 12 h).
	SessionTTL time.Duration
	// LoginEvery and LoginBurst limit the login attempts per client address:
	// every well-formed attempt, successful or not, takes a token from the
	// address's bucket, refilled by one token every LoginEvery up to
	// LoginBurst (defaults 6 s and 10). An attempt the bucket refuses is
	// answered 429 with Retry-After. No limit is kept per username, so that
	// nobody can lock a user out from another address.
	LoginEvery time.Duration
	LoginBurst int
	// LoginThrottle slows down the addresses whose logins fail (see
	// LoginThrottle); the zero value takes its defaults.
	LoginThrottle LoginThrottle
	// Passwords bounds the password hashes run at once (logins, password
	// changes, new users); nil takes auth.NewHashing's defaults.
	Passwords *auth.Hashing
	// TrustedProxies are the addresses of reverse proxies whose
	// X-Forwarded-For names the client (see clientAddr); none by default:
	// the client is the remote address of the connection.
	TrustedProxies []netip.Prefix
	// TLS reports that the server is reached over HTTPS (native TLS): its
	// answers carry Strict-Transport-Security and its cookies are Secure.
	TLS bool
	// Admission bounds the requests in flight per route class; the zero
	// value admits everything.
	Admission Admission
	// SSEPerToken bounds the event streams open at once per token or
	// session (default DefaultSSEPerToken; negative: no limit).
	SSEPerToken int
	// Settings are the defaults of the settings nobody set (zero fields:
	// switchboard.DefaultSettings).
	Settings switchboard.Settings
	// OnUserSessionsEnded is called with a username once that user's
	// sessions were deleted: the user was disabled or deleted, or its
	// password changed. Requests with those sessions are refused from then
	// on, and the server has already ended the event streams (GET
	// /api/events) the user held open, on every replica (EndPrincipal).
	// nil: nothing more is done.
	OnUserSessionsEnded func(username string)
	// OIDC configures single sign-on for the dashboard; nil switches it off.
	OIDC *OIDC
	// Alerts sends the test notifications of alert channels; nil answers 503.
	Alerts AlertTester
	// Maintenance holds the maintenance windows routing follows; the API
	// tells it of the changes it makes. Nil: changes are seen when the
	// windows are next read.
	Maintenance *maintenance.Service
	// CORSOrigins are the origins whose pages may call the API from a
	// browser (see ParseCORSOrigins and cors.go); none: no CORS header.
	CORSOrigins []string
	// Predictions are the degradation detector's verdicts, shown in the
	// provider view; nil shows none.
	Predictions Predictions
	// GeoHeader names the request header in which a trusted edge gives the
	// client's country (such as CF-IPCountry); empty: no header is believed.
	GeoHeader string
	// GeoMap maps the countries of GeoHeader to regions; nil: geo.Default.
	GeoMap geo.Map
}

// Predictions answers the degradation detector's verdict on a provider
// (internal/predict.Tracker).
type Predictions interface {
	Get(name string) switchboard.Degradation
}

// Server is the HTTP API of the control plane.
type Server struct {
	store   switchboard.Store
	bus     switchboard.Bus
	clock   switchboard.Clock
	logger  *slog.Logger
	boot    string
	changed func()
	metrics *Metrics
	health  HealthChecker
	streams *streams.Service
	hub     *events.Hub
	public  *limiterSet // nil: no limit
	ttl     time.Duration
	logins  *limiterSet
	handler http.Handler
	mux     *http.ServeMux
	// hotConfig and hotHealth are the mux's handlers of the routes that
	// dispatch finds itself.
	hotConfig, hotHealth http.Handler
	// reserved are the names a provider may not take (see reservedNames).
	reserved []string
	// setCache holds the effective settings (settings_handlers.go).
	setCache *settingsCache
	// pub holds the public health documents (health_snapshot.go).
	pub *publicSnapshot
	// tokens holds the API tokens that authenticated recently (token_cache.go).
	tokens *tokenCache
	// tokenReads shares a read of a token from the store among the requests
	// that miss the cache together (readToken).
	tokenReads singleflight.Group
	// config holds the last body of the streaming config (config_cache.go).
	config configCache
	// open are the open event streams by principal (principals.go); ssePer
	// bounds them per token or session (≤ 0: no limit).
	open   *streamSet
	ssePer int

	// failures slows down the addresses whose logins fail.
	failures *failureThrottle
	// passwords bounds the password hashes run at once.
	passwords *auth.Hashing
	proxies   []netip.Prefix
	// forwardWarned is set once untrustedForward has warned.
	forwardWarned atomic.Bool
	tls           bool
	// onSessionsEnded is Options.OnUserSessionsEnded.
	onSessionsEnded func(username string)
	// oidc is the single sign-on of the dashboard; nil when off.
	oidc *OIDC
	// alerts sends test notifications (alerts_handlers.go).
	alerts AlertTester
	// maint holds the maintenance windows; nil when not wired.
	maint *maintenance.Service
	// predictions are the detector's verdicts; nil when not wired.
	predictions Predictions
	// qualityLim limits quality reports per stream (quality.go).
	qualityOnce sync.Once
	qualityLim  *limiterSet
	// geoHeader and geoMap give a request its region (regions.go).
	geoHeader string
	geoMap    geo.Map
}

// DefaultSSEPerToken is the default of Options.SSEPerToken.
const DefaultSSEPerToken = 20

// New returns a Server with its routes registered.
func New(o Options) *Server {
	s := &Server{
		store: o.Store, bus: o.Bus, clock: o.Clock, logger: o.Logger,
		boot: o.BootstrapToken, changed: o.ProvidersChanged, ttl: o.SessionTTL,
		setCache: newSettingsCache(o.Settings), pub: newPublicSnapshot(), tokens: newTokenCache(),
		open: newStreamSet(), ssePer: o.SSEPerToken,
		onSessionsEnded: o.OnUserSessionsEnded, oidc: o.OIDC, alerts: o.Alerts, maint: o.Maintenance,
		predictions: o.Predictions, geoHeader: o.GeoHeader, geoMap: o.GeoMap,
	}
	if s.geoMap == nil {
		s.geoMap = geo.Default()
	}
	if s.ssePer == 0 {
		s.ssePer = DefaultSSEPerToken
	}
	if s.bus == nil {
		s.bus = switchboard.NopBus{}
	}
	if s.clock == nil {
		s.clock = switchboard.SystemClock{}
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.changed == nil {
		s.changed = func() {}
	}
	// A change to the registry also makes what is kept of it stale.
	notify := s.changed
	s.changed = func() { s.pub.invalidate(); notify() }
	if s.ttl <= 0 {
		s.ttl = 12 * time.Hour
	}
	every, burst := o.LoginEvery, o.LoginBurst
	if every <= 0 {
		every = 6 * time.Second
	}
	if burst <= 0 {
		burst = 10
	}
	s.logins = newLimiterSet(every, burst)
	s.failures = newFailureThrottle(o.LoginThrottle)
	if s.passwords = o.Passwords; s.passwords == nil {
		s.passwords = auth.NewHashing(0, 0)
	}
	s.proxies, s.tls = o.TrustedProxies, o.TLS
	s.health, s.streams, s.hub = o.Health, o.Streams, o.Events
	if o.PublicRate > 0 {
		s.public = newLimiterSet(time.Duration(float64(time.Second)/o.PublicRate), max(o.PublicBurst, 1))
	}
	s.metrics = o.Metrics
	if s.metrics == nil {
		s.metrics = NewMetrics(prometheus.NewRegistry(), s.store)
	}
	s.metrics.quality.now.Store(s.clock.Now)
	if o.Events != nil {
		s.metrics.WatchHub(o.Events)
	}
	gates := map[string]*gate{
		classFailover: newGate(classFailover, o.Admission.Failover, DefaultFailoverWait, s.metrics),
		classStart:    newGate(classStart, o.Admission.Start, DefaultWait, s.metrics),
		classOther:    newGate(classOther, o.Admission.Other, DefaultWait, s.metrics),
	}
	mux := http.NewServeMux()
	s.reserved = reservedNames(s.routes())
	for _, rt := range s.routes() {
		h := s.guard(rt)
		if c := routeClass(rt.Method, rt.Path); c != "" {
			h = s.admit(gates[c], h)
		}
		pattern := rt.Method + " " + rt.Path
		h = s.metrics.instrument(pattern, h)
		mux.Handle(pattern, h)
		switch pattern {
		case hotConfigPattern:
			s.hotConfig = h
		case hotHealthPattern:
			s.hotHealth = h
		}
	}
	mux.Handle("/", s.metrics.instrument("unmatched", s.admit(gates[classOther], http.HandlerFunc(s.notFound))))
	s.mux = mux
	s.handler = s.recoverer(withRequestID(cors(o.CORSOrigins, s.rejectSemicolons(http.HandlerFunc(s.dispatch)))))
	if s.tls {
		s.handler = withHSTS(s.handler)
	}
	return s
}

// The routes every app calls most, which dispatch finds without the mux.
const (
	hotConfigPath    = "/api/streaming/config"
	hotHealthPrefix  = "/api/streaming/providers/"
	hotHealthSuffix  = "/health"
	hotConfigPattern = "GET " + hotConfigPath
	hotHealthPattern = "GET " + hotHealthPrefix + "{name}" + hotHealthSuffix
)

// dispatch routes a request as the mux would, finding the client config and
// the public health of a provider itself: matching a path in a mux of a
// hundred routes was 5 % of the server's CPU on those paths, the ones apps
// poll. A request on them that the mux would treat in any other way (a
// path to clean or with escapes, another method, HEAD included) goes to the
// mux; TestDispatchAsTheMux and FuzzDispatch hold dispatch to the mux's
// choice.
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	if h, pattern, name := s.hot(r); h != nil {
		r.Pattern = pattern
		if name != "" {
			if c, ok := r.Context().(*reqCtx); ok {
				c.name = name // see nameParam
			} else {
				r.SetPathValue("name", name)
			}
		}
		h.ServeHTTP(w, r)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// hot returns the handler of r's route, its pattern and its name wildcard
// when it is one of the routes dispatch finds itself; a nil handler else.
func (s *Server) hot(r *http.Request) (http.Handler, string, string) {
	if r.Method != http.MethodGet || r.URL.RawPath != "" {
		return nil, "", ""
	}
	p := r.URL.Path
	if p == hotConfigPath {
		return s.hotConfig, hotConfigPattern, ""
	}
	name, ok := strings.CutPrefix(p, hotHealthPrefix)
	if !ok {
		return nil, "", ""
	}
	if name, ok = strings.CutSuffix(name, hotHealthSuffix); !ok || name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return nil, "", ""
	}
	return s.hotHealth, hotHealthPattern, name
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// notFound answers what no route matched: 405 with Allow when the path has
// routes for other methods, else 404.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, pattern := s.mux.Handler(probe); pattern != "" && pattern != "/" {
			allow = append(allow, m)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeError(w, r, switchboard.Errorf(switchboard.EMethodNotAllowed, "%s is not allowed here: use %s", r.Method, strings.Join(allow, ", ")))
		return
	}
	s.writeError(w, r, switchboard.Errorf(switchboard.ENotFound, "no route for %s %s", r.Method, r.URL.Path))
}

// publish sends an event on the bus, stamped with the time.
func (s *Server) publish(typ string, audience switchboard.Role, data any) {
	s.bus.Publish(switchboard.Event{Type: typ, At: s.clock.Now(), Audience: audience, Data: data})
}

// recoverer turns a panic in a handler into a logged 500 without the cause.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.logger.ErrorContext(r.Context(), "handler panic", "request_id", requestID(r.Context()), "route", r.Pattern, "panic", v)
				writeJSON(w, http.StatusInternalServerError, errorBody{Error: errorDetail{Code: switchboard.EInternal, Message: "internal error"}})
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// rejectSemicolons answers 400 to a request whose query holds a raw ";".
// net/url no longer takes ";" as a separator and drops the pair that holds
// one, so such a parameter would be silently ignored; a ";" inside a value is
// sent encoded, as %3B.
func (s *Server) rejectSemicolons(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.RawQuery, ";") {
			s.writeError(w, r, semicolonError(r.URL.RawQuery))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// semicolonError names the first query parameter of raw that holds a ";".
func semicolonError(raw string) error {
	field := "query"
	for pair := range strings.SplitSeq(raw, "&") {
		if !strings.Contains(pair, ";") {
			continue
		}
		key, _, _ := strings.Cut(pair, "=")
		key, _, _ = strings.Cut(key, ";")
		if k, err := url.QueryUnescape(key); err == nil && k != "" && switchboard.ValidText(k) {
			field = switchboard.Truncate(k, 64)
		}
		break
	}
	return switchboard.Invalid(field, "the query holds a \";\": separate parameters with \"&\" and send a \";\" in a value as %%3B")
}

type ridKey struct{}

// reqCtx is a request's context as withRequestID makes it: its id, which is
// also the value of its X-Request-Id header, and, once guard has
// authenticated it, its caller, answered to Value for ridKey, identityKey and
// switchboard.ActorKey. One allocation and one copy of the request carry
// both, rather than a copy and a context value for each: on the hot public
// and client paths those were half of what the chain allocated.
type reqCtx struct {
	context.Context
	header [1]string
	id     identity
	authed bool // id is set; written by guard before the route's handler runs
	// name is the {name} of a path that dispatch routed itself, which
	// SetPathValue would keep in a map made for it (see nameParam).
	name string
}

// nameParam is r's {name} path value.
func nameParam(r *http.Request) string {
	if c, ok := r.Context().(*reqCtx); ok && c.name != "" {
		return c.name
	}
	return r.PathValue("name")
}

// Value implements context.Context.
func (c *reqCtx) Value(key any) any {
	switch key {
	case ridKey{}:
		return c
	case identityKey{}:
		if c.authed {
			return c.id
		}
	case switchboard.ActorKey:
		if c.authed {
			return c.id.actor
		}
	}
	return c.Context.Value(key)
}

func withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := &reqCtx{Context: r.Context(), header: [1]string{newRequestID()}}
		w.Header()["X-Request-Id"] = c.header[:] // the canonical form of the name
		next.ServeHTTP(w, r.WithContext(c))
	})
}

func requestID(ctx context.Context) string {
	if c, ok := ctx.Value(ridKey{}).(*reqCtx); ok {
		return c.header[0]
	}
	return ""
}

// newRequestID returns 16 random hex digits. They only tell requests apart
// in logs, so they come from the runtime's fast generator rather than the
// operating system's.
func newRequestID() string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	return hex.EncodeToString(b[:])
}
