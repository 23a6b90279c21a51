package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/events"
	"github.com/switchboardhq/switchboard/internal/routing"
	"github.com/switchboardhq/switchboard/internal/streams"
)

// caller returns the owner key of the caller and whether it may act on any stream.
func caller(r *http.Request) (owner string, admin bool) {
	a := sb.ActorFrom(r.Context())
	return a.Key(), a.Role >= sb.RoleAdmin
}

// clientConfig is the body of GET /api/streaming/config.
type clientConfig struct {
	Providers []configProvider `json:"providers"`
	// Region is the caller's region (?region=, else the trusted edge's geo
	// header), for which usable is answered; empty when it is not known.
	Region string `json:"region,omitempty"`
	sb.ClientSettings
}

// configProvider is one provider of the configuration. Usable is the
// server's verdict (switchboard.Status.Usable) on whether the provider may
// take streams; Healthy is the same value under its original name.
type configProvider struct {
	streams.ProviderInfo
	Usable  bool     `json:"usable"`
	Healthy bool     `json:"healthy"`
	State   sb.State `json:"state"`
	Regions []string `json:"regions"`
	// RegionalStatus is the provider's status in the caller's region, where
	// there is regional health for it: Usable then also needs it usable.
	RegionalStatus sb.Status `json:"regionalStatus,omitempty"`
	// Maintenance is set while the provider takes no new streams because of
	// a maintenance window.
	Maintenance *configMaintenance `json:"maintenance,omitempty"`
}

type configMaintenance struct {
	Until  time.Time `json:"until"`
	Reason string    `json:"reason"`
}

func (s *Server) streamingConfig(w http.ResponseWriter, r *http.Request) {
	recs, err := s.streams.Providers(r.Context()) // the snapshot streams are routed with
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var region string
	if r.URL.RawQuery != "" { // parsing an empty query still makes a map
		region = r.URL.Query().Get("region")
	}
	if region != "" {
		if err := sb.ValidateRegion("region", region); err != nil {
			s.writeError(w, r, err)
			return
		}
	} else {
		region = s.edgeRegion(r)
	}
	client := s.settings(r.Context()).Client()
	var blocked map[string]routing.Maintenance
	if s.maint != nil {
		blocked = s.maint.Blocked(s.clock.Now())
	}
	var body []byte
	var etag []string
	if region != "" {
		// A caller's region: its regional statuses change apart from the
		// snapshot, so this body is built each time, not cached.
		regional, err := s.streams.RegionalStatuses(r.Context())
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		body, etag = s.configBody(recs, client, blocked, region, regional)
	} else {
		key := configKey{client: client, blocked: blockedKey(blocked), n: len(recs)}
		if len(recs) > 0 {
			key.recs = &recs[0]
		}
		var ok bool
		if body, etag, ok = s.config.get(key); !ok {
			body, etag = s.configBody(recs, client, blocked, "", nil)
			s.config.put(key, body, etag)
		}
	}
	// Prepared header values, as the public health sets them.
	h := w.Header()
	h["Etag"] = etag
	h["Cache-Control"] = noCache
	if match := r.Header.Get("If-None-Match"); match != "" && match == etag[0] {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h["Content-Type"] = jsonContentType
	_, _ = w.Write(body)
}

// noCache is the Cache-Control header value of the client config.
var noCache = []string{"no-cache"}

func (s *Server) startStream(w http.ResponseWriter, r *http.Request) {
	var req streams.StartRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Region == "" {
		req.Region = s.edgeRegion(r)
	}
	owner, _ := caller(r)
	a, created, err := s.streams.Start(r.Context(), owner, req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
	}
	w.Header().Set("Location", "/api/streams/"+a.ID)
	writeAppended(w, status, a, assignmentSize(&a))
}

func (s *Server) streamID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !sb.ValidStreamID(id) {
		s.writeError(w, r, sb.Errorf(sb.ENotFound, "no stream %s", strconv.Quote(sb.Truncate(id, 64))))
		return "", false
	}
	return id, true
}

func (s *Server) heartbeat(w http.ResponseWriter, r *http.Request) {
	id, ok := s.streamID(w, r)
	if !ok {
		return
	}
	var req streams.HeartbeatRequest
	if r.ContentLength != 0 { // the body is optional
		if err := decode(r, &req); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	owner, admin := caller(r)
	st, err := s.streams.Heartbeat(r.Context(), id, owner, admin, req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The answer is written without reflection: heartbeats are the busiest
	// path of the API.
	size := answerSize
	if st.Standby != nil {
		size += answerSize/2 + len(st.Standby.Token)
	}
	writeAppended(w, http.StatusOK, st, size)
}

// answerSize is room for a stream's or an assignment's answer without its
// tokens, its standby or its fallbacks.
const answerSize = 512

// assignmentSize is room for a's answer.
func assignmentSize(a *streams.Assignment) int {
	size := answerSize + len(a.Token)
	if a.Standby != nil {
		size += answerSize/2 + len(a.Standby.Token)
	}
	for _, f := range a.Fallbacks {
		size += len(f) + 3
	}
	return size
}

// jsonAppender is an answer that writes its own JSON, the bytes json.Marshal
// would write.
type jsonAppender interface {
	AppendJSON([]byte) ([]byte, error)
}

// writeAppended writes v's JSON with status, made without reflection in a
// buffer of size bytes; what AppendJSON refuses is answered by writeJSON, as
// it was before.
func writeAppended(w http.ResponseWriter, status int, v jsonAppender, size int) {
	b, err := v.AppendJSON(make([]byte, 0, size))
	if err != nil {
		writeJSON(w, status, v)
		return
	}
	writeJSONBytes(w, status, append(b, '\n'))
}

func (s *Server) reportFailure(w http.ResponseWriter, r *http.Request) {
	id, ok := s.streamID(w, r)
	if !ok {
		return
	}
	var f streams.FailureReport
	if err := decode(r, &f); err != nil {
		s.writeError(w, r, err)
		return
	}
	owner, admin := caller(r)
	if err := s.streams.ReportFailure(r.Context(), id, owner, admin, f); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) migrateStream(w http.ResponseWriter, r *http.Request) {
	id, ok := s.streamID(w, r)
	if !ok {
		return
	}
	var req streams.MigrateRequest
	if err := decode(r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	owner, admin := caller(r)
	a, err := s.streams.Migrate(r.Context(), id, owner, admin, req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeAppended(w, http.StatusOK, a, assignmentSize(&a))
}

func (s *Server) endStream(w http.ResponseWriter, r *http.Request) {
	id, ok := s.streamID(w, r)
	if !ok {
		return
	}
	owner, admin := caller(r)
	st, err := s.streams.End(r.Context(), id, owner, admin)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) listStreams(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f sb.StreamFilter
	switch v := q.Get("status"); v {
	case "", "active", "ended":
		f.Status = sb.StreamStatus(v)
	default:
		s.writeError(w, r, sb.Invalid("status", "must be active or ended"))
		return
	}
	if v := q.Get("provider"); v != "" {
		if !sb.ValidSlug(v) {
			s.writeError(w, r, sb.Invalid("provider", "is not a provider name"))
			return
		}
		f.Provider = v
	}
	limit, err := limitParam(q, 50, 500)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	f.Limit = limit
	if v := q.Get("cursor"); v != "" {
		c, ok := parseCursor(v)
		if !ok {
			s.writeError(w, r, sb.Invalid("cursor", "is not a cursor from a previous page"))
			return
		}
		f.Before = &c
	}
	list, err := s.store.ListStreams(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if list == nil {
		list = []sb.Stream{}
	}
	resp := map[string]any{"streams": list}
	if len(list) == f.Limit {
		last := list[len(list)-1]
		resp["nextCursor"] = strconv.FormatInt(last.StartedAt.UnixNano(), 10) + "." + last.ID
	}
	writeJSON(w, http.StatusOK, resp)
}

func parseCursor(v string) (sb.StreamCursor, bool) {
	ns, id, ok := strings.Cut(v, ".")
	if !ok || !sb.ValidStreamID(id) {
		return sb.StreamCursor{}, false
	}
	n, err := strconv.ParseInt(ns, 10, 64)
	if err != nil {
		return sb.StreamCursor{}, false
	}
	return sb.StreamCursor{StartedAt: time.Unix(0, n).UTC(), ID: id}, true
}

func (s *Server) getStream(w http.ResponseWriter, r *http.Request) {
	id, ok := s.streamID(w, r)
	if !ok {
		return
	}
	ss := s.store
	st, err := ss.GetStream(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	trail, err := ss.StreamTrail(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if trail == nil {
		trail = []sb.TrailEntry{}
	}
	writeJSON(w, http.StatusOK, struct {
		sb.Stream
		Trail []sb.TrailEntry `json:"trail"`
	}{st, trail})
}

func (s *Server) streamingStats(w http.ResponseWriter, r *http.Request) {
	now := s.clock.Now().UTC()
	current := now.Format("2006-01")
	if month := r.URL.Query().Get("month"); month != "" && month != current {
		m, err := time.Parse("2006-01", month)
		if err != nil {
			s.writeError(w, r, sb.Invalid("month", "must be YYYY-MM"))
			return
		}
		if m.After(now) {
			s.writeError(w, r, sb.Invalid("month", "must not be after the current month, %s", current))
			return
		}
		all, err := s.store.MonthlyUsageOf(r.Context(), "")
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		out := []sb.MonthlyUsage{}
		for _, u := range all {
			if u.Month == month {
				out = append(out, u)
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"month": month, "providers": out})
		return
	}
	stats, err := s.streams.Stats(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"month": current, "providers": stats})
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	// Each stream is registered under its token or session (and user), so
	// that revoking or logging out ends it (EndPrincipal), and their number
	// is bounded per token or session. It outlives this handler when the hub
	// takes its connection over, so its context does not end with the
	// request's, and the hub releases it when the stream ends.
	ctx, release, gone, err := s.open.open(context.WithoutCancel(r.Context()), s.ssePer, s.eventsHolders(r)...)
	if err != nil {
		s.refuseEvents(w, r)
		return
	}
	// A stream served by this handler keeps the goroutine's stack for as
	// long as it is open, so this frame stays small: the goroutine then
	// keeps its first stack size (see events.Hub.ServeStream).
	s.serveEvents(w, r, events.Stream{Context: ctx, Done: release, TakenOver: gone})
}

// eventsHolders returns who holds an event stream of r, the first being the
// one whose streams are bounded (see streamSet.open). Every instance of an
// app shares the app's client token, whose bound of streams would have let
// only the first --sse-per-token instances hear of a provider's failure (the
// rest polled), so a client token's streams are bounded per client address
// (IPv6 per /64), and still end with the token. Other tokens and sessions,
// each held by one operator or tool, are bounded as a whole.
func (s *Server) eventsHolders(r *http.Request) []Principal {
	id := identityFrom(r.Context())
	held := principalsOf(id)
	if id.session == nil && id.actor.Role == sb.RoleClient {
		return append([]Principal{clientAddressPrincipal(id.actor.ID, throttleKey(s.clientAddr(r)))}, held...)
	}
	return held
}

// refuseEvents answers an event stream over the per-token bound.
//
//go:noinline
func (s *Server) refuseEvents(w http.ResponseWriter, r *http.Request) {
	s.metrics.sseRefused.Inc()
	s.writeRateLimited(w, r, 5*time.Second, fmt.Sprintf("at most %d event streams may be open per token or session (per client address for a client token): close one first", s.ssePer))
}

// serveEvents streams the events to the caller of r, as st (whose role and
// owner it sets) tells.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request, st events.Stream) {
	a := sb.ActorFrom(r.Context())
	st.Role, st.Owner = a.Role, a.Key()
	s.hub.ServeStream(w, eventsRequest(w, r), st)
}

// eventsRequest lifts the server's read deadline from the connection (the
// request has arrived, and that timeout, meant for slow request bodies, must
// not cut a stream that its handler serves).
//
//go:noinline
func eventsRequest(w http.ResponseWriter, r *http.Request) *http.Request {
	_ = http.NewResponseController(w).SetReadDeadline(time.Time{})
	return r
}
