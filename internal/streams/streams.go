// Package streams assigns streams to providers and follows them through their
// life: start (with a join token minted server-side), heartbeats, reported
// failures, migrations and end, and prices what they used.
package streams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/health"
	"github.com/switchboardhq/switchboard/internal/routing"
)

// Store is what the service needs of storage.
type Store interface {
	ListProviders(ctx context.Context) ([]sb.ProviderRecord, error)
	GetProvider(ctx context.Context, name string) (sb.ProviderRecord, error)
	// RegistryVersion changes after every change the store commits to the
	// providers or to their status (see switchboard.Store).
	RegistryVersion() uint64
	sb.StreamStore
}

// Maintenance tells which providers take no new streams because of a
// maintenance window (internal/maintenance.Service). It does no I/O.
type Maintenance interface {
	Blocked(at time.Time) map[string]routing.Maintenance
}

// Predictions tells which providers the degradation detector flags
// (internal/predict.Tracker). It does no I/O.
type Predictions interface {
	Degrading() map[string]sb.Degradation
}

// Checker is what the service needs of the health engine.
type Checker interface {
	Check(ctx context.Context, name string) (health.Result, error)
	ReportClientFailure(ctx context.Context, name string, at time.Time) (sb.Health, error)
}

// Config wires a Service.
type Config struct {
	Store   Store
	Checker Checker
	Minters map[sb.Kind]sb.TokenMinter
	Bus     sb.Bus
	Clock   sb.Clock
	Logger  *slog.Logger
	Rand    func() float64 // [0,1), for weighted choice; nil = math/rand
	// Maintenance, when set, keeps providers in maintenance from new streams.
	Maintenance Maintenance
	// Predictions, when set with Settings, keeps providers the degradation
	// detector flags from new streams while others can take them (setting
	// preemptive new-streams or migrate), and in the mode migrate RunPreemptive
	// moves their live streams.
	Predictions Predictions
	// Settings returns the settings in force (cached by the caller).
	Settings func(context.Context) sb.Settings
	// Routing, when set, applies the routing policy of its configuration to
	// new streams (priority, today's behaviour, without it) and counts the
	// starts commit holds its shares by.
	Routing RoutingStore
	// TokenTTL is the lifetime of join tokens (default 1 h).
	TokenTTL time.Duration
	// FailureThreshold client-reported failures of one provider within
	// FailureWindow trigger an immediate health check (default 5 in 30 s).
	FailureThreshold int
	FailureWindow    time.Duration
	// RegistryMaxAge is how old the in-memory snapshot of the providers and
	// their health may grow before it is read again (default 5 s). Changes
	// this process commits, and those ProvidersChanged is told of (another
	// replica's events), are seen at once; the age bounds the rest (the last
	// success of a provider checked by another replica).
	RegistryMaxAge time.Duration
	// CountsEvery is how often the in-memory number of active streams per
	// provider is reconciled with the store (default 2 s), for the streams
	// that other replicas and the abandoned sweep start and end.
	CountsEvery time.Duration
	// Regional, when set, gives the health of the providers per region: a
	// provider that is not usable in a stream's region takes no new stream
	// of it while another can (routing.Candidate.Regional).
	Regional RegionalReader
	// HeartbeatFlush, when positive and the Store is a HeartbeatRecorder,
	// has heartbeats acknowledged from memory and written every
	// HeartbeatFlush in one transaction (by Run, which must be running): a
	// crash loses at most that much of the streams' last-seen times. Zero
	// writes each heartbeat before it is acknowledged. When the Routing
	// store is a RoutingStartRecorder, the starts counted for commit are
	// written with the same period, in one transaction; when the Store is a
	// QualityRecorder, so are the quality reports (a crash loses at most
	// that much of the samples).
	HeartbeatFlush time.Duration
}

// Service is the stream lifecycle. Run must be running for reported failures
// to trigger immediate checks.
type Service struct {
	store   Store
	checker Checker
	minters map[sb.Kind]sb.TokenMinter
	bus     sb.Bus
	clock   sb.Clock
	log     *slog.Logger
	rand    func() float64
	ttl     time.Duration
	thresh  int
	window  time.Duration
	maint   Maintenance // nil: no maintenance windows
	predict Predictions // nil: no predictions
	setting func(context.Context) sb.Settings
	routes  RoutingStore // nil: priority
	pol     policyState

	recheck chan string // providers to check now; drained by Run

	mu       sync.Mutex
	failures map[string][]time.Time // guarded by mu: recent client-reported failures per provider

	// The hot paths (start, heartbeat, migrate, failure report) read the
	// providers from reg and the load from load, never from the store.
	regMaxAge   time.Duration
	countsEvery time.Duration
	reg         atomic.Pointer[registry]
	regMu       sync.Mutex    // held while the snapshot is read from the store
	changed     atomic.Uint64 // ProvidersChanged calls
	load        load

	// regionalReader and regionalCache give the policy the regional health
	// (regional.go).
	regionalReader RegionalReader
	regionalCache  regionalCache
	// beats takes heartbeats in batches; nil: each is written at once.
	beats *beatBatch
	// quality takes quality reports in batches; nil: each is written at once.
	quality *qualityBatch
	// startRec takes the starts counted for commit in batches, every
	// startFlush; nil: each is written as the stream starts.
	startRec   RoutingStartRecorder
	startFlush time.Duration
}

// registry is a snapshot of the providers with their health.
type registry struct {
	version uint64 // the store's RegistryVersion before it was read
	changed uint64 // Service.changed before it was read
	read    time.Time
	recs    []sb.ProviderRecord
	byName  map[string]sb.ProviderRecord
	// base are the candidates of recs with what the snapshot holds (the
	// provider and its health), which each decision copies at once rather
	// than field by field: building them was 7 % of a start's CPU with 100
	// providers.
	base []routing.Candidate
	// statuses are every provider's status in the snapshot, the same for
	// every decision made on it: the trail of each start records them, and
	// sharing one map (never written) lets the store encode it once.
	statuses map[string]sb.Status
	// limited is set when some provider has a maxActiveStreams: only then
	// do decisions need the active counts (routing reads Candidate.Active
	// of limited providers alone).
	limited bool
}

// load is the number of active streams per provider, kept in memory: the
// service adds its own starts, moves and ends, and reconciles it with the
// store every CountsEvery for the rest. The policy uses it to skip providers
// at capacity; the store enforces the capacity exactly.
type load struct {
	reconciling sync.Mutex // held by the one reconcile that runs at a time
	mu          sync.Mutex
	n           map[string]int64 // nil until first read
	read        time.Time
	pending     map[string]int64 // changes made while a reconcile reads the store; nil otherwise
}

// New returns a Service.
func New(c Config) *Service {
	s := &Service{
		store: c.Store, checker: c.Checker, minters: c.Minters, bus: c.Bus, clock: c.Clock, log: c.Logger,
		rand: c.Rand, ttl: c.TokenTTL, thresh: c.FailureThreshold, window: c.FailureWindow,
		recheck: make(chan string, 64), failures: map[string][]time.Time{}, maint: c.Maintenance,
		predict: c.Predictions, setting: c.Settings, routes: c.Routing, regionalReader: c.Regional,
	}
	if s.bus == nil {
		s.bus = sb.NopBus{}
	}
	if s.clock == nil {
		s.clock = sb.SystemClock{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.rand == nil {
		s.rand = mrand.Float64
	}
	if s.ttl <= 0 {
		s.ttl = time.Hour
	}
	if s.thresh <= 0 {
		s.thresh = 5
	}
	if s.window <= 0 {
		s.window = 30 * time.Second
	}
	s.regMaxAge, s.countsEvery = c.RegistryMaxAge, c.CountsEvery
	if s.regMaxAge <= 0 {
		s.regMaxAge = 5 * time.Second
	}
	if s.countsEvery <= 0 {
		s.countsEvery = 2 * time.Second
	}
	if rec, ok := c.Store.(HeartbeatRecorder); ok && c.HeartbeatFlush > 0 {
		s.beats = newBeatBatch(rec, c.HeartbeatFlush)
	}
	if rec, ok := c.Store.(QualityRecorder); ok && c.HeartbeatFlush > 0 {
		s.quality = &qualityBatch{rec: rec, every: c.HeartbeatFlush}
	}
	if rec, ok := c.Routing.(RoutingStartRecorder); ok && c.HeartbeatFlush > 0 {
		s.startRec, s.startFlush = rec, c.HeartbeatFlush
	}
	return s
}

// ProvidersChanged tells the service that the providers or their health
// changed elsewhere (another replica's event): the next request reads them
// again. Changes committed through the service's own store are seen without
// it.
func (s *Service) ProvidersChanged() { s.changed.Add(1) }

// Providers returns the providers with their health, in priority order, from
// the service's snapshot: what the hot paths route with. The records and their
// slices must not be changed.
func (s *Service) Providers(ctx context.Context) ([]sb.ProviderRecord, error) {
	r, err := s.registry(ctx)
	if err != nil {
		return nil, err
	}
	return r.recs, nil
}

// registry returns the snapshot of the providers, reading it again when this
// process changed them (the store's RegistryVersion moved), when
// ProvidersChanged was called, or when it is older than twice RegistryMaxAge
// (Run refreshes it at RegistryMaxAge).
func (s *Service) registry(ctx context.Context) (*registry, error) {
	if r := s.reg.Load(); s.fresh(r, 2*s.regMaxAge) {
		return r, nil
	}
	s.regMu.Lock()
	defer s.regMu.Unlock()
	if r := s.reg.Load(); s.fresh(r, 2*s.regMaxAge) {
		return r, nil // read by another request meanwhile
	}
	return s.readRegistry(ctx)
}

// fresh reports whether r is the registry as this process knows it and is
// younger than maxAge.
func (s *Service) fresh(r *registry, maxAge time.Duration) bool {
	return r != nil && r.version == s.store.RegistryVersion() && r.changed == s.changed.Load() && time.Since(r.read) < maxAge
}

// readRegistry reads the providers from the store into a new snapshot. The
// caller holds regMu.
func (s *Service) readRegistry(ctx context.Context) (*registry, error) {
	// The versions are taken before the read, so that a change committed
	// while it runs makes the snapshot stale at once.
	r := &registry{version: s.store.RegistryVersion(), changed: s.changed.Load(), read: time.Now()}
	recs, err := s.store.ListProviders(ctx)
	if err != nil {
		return nil, err
	}
	r.recs = recs
	r.byName = make(map[string]sb.ProviderRecord, len(recs))
	r.base = make([]routing.Candidate, len(recs))
	r.statuses = make(map[string]sb.Status, len(recs))
	for i := range recs {
		rec := &r.recs[i]
		r.byName[rec.Name] = *rec
		r.base[i] = routing.Candidate{Provider: &rec.Provider, Health: &rec.Health}
		r.statuses[rec.Name] = rec.Health.Status
		r.limited = r.limited || rec.MaxActiveStreams > 0
	}
	s.reg.Store(r)
	return r, nil
}

// refresh reads the registry again if it is older than RegistryMaxAge, and
// reconciles the active counts if they are older than CountsEvery. Run calls
// it every second.
func (s *Service) refresh(ctx context.Context) {
	if !s.fresh(s.reg.Load(), s.regMaxAge) {
		s.regMu.Lock()
		if !s.fresh(s.reg.Load(), s.regMaxAge) {
			if _, err := s.readRegistry(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("refresh the providers", "err", err.Error())
			}
		}
		s.regMu.Unlock()
	}
	s.load.mu.Lock()
	due := time.Since(s.load.read) >= s.countsEvery
	s.load.mu.Unlock()
	if due {
		if err := s.reconcile(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("reconcile the active streams", "err", err.Error())
		}
	}
}

// reconcile replaces the active counts with the store's, keeping the changes
// this process made while it read them.
func (s *Service) reconcile(ctx context.Context) error {
	s.load.reconciling.Lock()
	defer s.load.reconciling.Unlock()
	s.load.mu.Lock()
	s.load.pending = map[string]int64{}
	s.load.mu.Unlock()
	n, err := s.store.ActiveCounts(ctx)
	s.load.mu.Lock()
	defer s.load.mu.Unlock()
	if err == nil {
		for p, d := range s.load.pending {
			n[p] += d
		}
		s.load.n, s.load.read = n, time.Now()
	}
	s.load.pending = nil
	return err
}

// activeCounts returns a copy of the active counts, reading them from the
// store if it never did (or fresh, with force) or if they are older than twice
// CountsEvery (Run reconciles them at CountsEvery).
func (s *Service) activeCounts(ctx context.Context, force bool) (map[string]int64, error) {
	if err := s.freshCounts(ctx, force); err != nil {
		return nil, err
	}
	s.load.mu.Lock()
	defer s.load.mu.Unlock()
	out := make(map[string]int64, len(s.load.n))
	for p, c := range s.load.n {
		out[p] = c
	}
	return out, nil
}

// freshCounts reads the active counts from the store if it never did (or
// with force) or if they are older than twice CountsEvery.
func (s *Service) freshCounts(ctx context.Context, force bool) error {
	s.load.mu.Lock()
	stale := force || s.load.n == nil || time.Since(s.load.read) >= 2*s.countsEvery
	s.load.mu.Unlock()
	if stale {
		return s.reconcile(ctx)
	}
	return nil
}

// fillActive sets the Active count of each candidate with a
// maxActiveStreams from the counts in memory (see freshCounts), without
// copying them; the policy reads no other provider's count.
func (s *Service) fillActive(cands []routing.Candidate) {
	s.load.mu.Lock()
	defer s.load.mu.Unlock()
	for i := range cands {
		if cands[i].Provider.MaxActiveStreams > 0 {
			cands[i].Active = s.load.n[cands[i].Provider.Name]
		}
	}
}

// moveLoad records that a stream of this process left from (if not "") and
// went to to (if not "").
func (s *Service) moveLoad(from, to string) {
	s.load.mu.Lock()
	defer s.load.mu.Unlock()
	add := func(p string, d int64) {
		if p == "" {
			return
		}
		if s.load.n != nil {
			s.load.n[p] += d
		}
		if s.load.pending != nil {
			s.load.pending[p] += d
		}
	}
	add(from, -1)
	add(to, 1)
}

// Run performs the immediate re-checks that bursts of reported failures ask
// for, and keeps the snapshot of the providers and the active counts fresh
// (see RegistryMaxAge and CountsEvery), until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	// What is acknowledged from memory is written in batches, and once more
	// when ctx ends.
	if s.beats != nil {
		wg.Go(func() {
			s.flushEvery(ctx, s.beats.every, "heartbeats", func(ctx context.Context) error {
				_, err := s.beats.flush(ctx, time.Now())
				return err
			})
		})
	}
	if s.quality != nil {
		wg.Go(func() {
			s.flushEvery(ctx, s.quality.every, "quality reports", func(ctx context.Context) error {
				_, err := s.quality.flush(ctx)
				return err
			})
		})
	}
	if s.startRec != nil {
		wg.Go(func() { s.flushEvery(ctx, s.startFlush, "the starts counted for routing", s.flushStarts) })
	}
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				s.refresh(rctx)
				cancel()
			}
		}
	})
	for {
		select {
		case <-ctx.Done():
			return nil
		case name := <-s.recheck:
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := s.checker.Check(ctx, name)
				if err != nil {
					if ctx.Err() == nil {
						s.log.Warn("immediate check failed", "provider", name, "err", err.Error())
					}
					return
				}
				s.log.Info("immediate check after client failures", "provider", name, "status", string(res.Status))
			}()
		}
	}
}

// StartRequest is the body of POST /api/streams.
type StartRequest struct {
	Room           string     `json:"room"`
	UserID         string     `json:"userId"`
	Role           string     `json:"role"`
	Region         string     `json:"region,omitempty"`
	Quality        sb.Quality `json:"quality,omitempty"`
	Exclude        []string   `json:"exclude,omitempty"`
	IdempotencyKey string     `json:"idempotencyKey,omitempty"`
}

var (
	roomRE = regexp.MustCompile(`^[A-Za-z0-9!#$%&()+\-:;<=.>?@\[\]^_{|}~,]{1,64}$`) // Agora's channel-name alphabet
	userRE = regexp.MustCompile(`^[A-Za-z0-9_\-.@:]{1,64}$`)
	keyRE  = regexp.MustCompile(`^[\x21-\x7e]{1,128}$`)
)

// Validate checks a start request.
func (r *StartRequest) Validate() error {
	if !roomRE.MatchString(r.Room) {
		return sb.Invalid("room", "is required: 1 to 64 letters, digits or !#$%%&()+-:;<=.>?@[]^_{|}~,")
	}
	if !userRE.MatchString(r.UserID) {
		return sb.Invalid("userId", "is required: 1 to 64 letters, digits or _-.@:")
	}
	if r.Role != string(sb.RolePublisher) && r.Role != string(sb.RoleSubscriber) {
		return sb.Invalid("role", "must be publisher or subscriber")
	}
	if r.Region != "" {
		if err := sb.ValidateRegion("region", r.Region); err != nil {
			return err
		}
	}
	if r.Quality == "" {
		r.Quality = sb.QualityHD
	}
	if err := r.Quality.Validate("quality"); err != nil {
		return err
	}
	if err := validExclude(r.Exclude); err != nil {
		return err
	}
	if r.IdempotencyKey != "" && !keyRE.MatchString(r.IdempotencyKey) {
		return sb.Invalid("idempotencyKey", "must be 1 to 128 printable ASCII characters")
	}
	return nil
}

// Assignment is a stream's provider and the token to join it.
type Assignment struct {
	ID             string          `json:"id"`
	Room           string          `json:"room"`
	UserID         string          `json:"userId"`
	Role           sb.StreamRole   `json:"role"`
	Provider       ProviderInfo    `json:"provider"`
	Token          string          `json:"token"`
	TokenExpiresAt *time.Time      `json:"tokenExpiresAt"`
	Fallbacks      []string        `json:"fallbacks"`
	LeastBad       bool            `json:"leastBad,omitempty"`
	Status         sb.StreamStatus `json:"status"`
	// Standby is a ready assignment on the first fallback, or nil when there
	// is none: a client whose provider fails connects to it at once and
	// reports the move afterwards, with no control-plane round trip on the
	// failover's path.
	Standby *Standby `json:"standby"`
}

// Standby is a join token for the stream on another provider, minted ahead of
// need, with the same scope (room, user, role) and lifetime as the token of
// the provider the stream is on.
type Standby struct {
	Provider       ProviderInfo `json:"provider"`
	Token          string       `json:"token"`
	TokenExpiresAt *time.Time   `json:"tokenExpiresAt"`
}

// ProviderInfo is what a client may know of a provider: no secret.
type ProviderInfo struct {
	Name     string    `json:"name"`
	Kind     sb.Kind   `json:"kind"`
	Priority int       `json:"priority"`
	Status   sb.Status `json:"status"`
	AppID    string    `json:"appId,omitempty"`
	URL      string    `json:"url,omitempty"`
}

// PublicInfo returns the public part of a provider.
func PublicInfo(rec sb.ProviderRecord) ProviderInfo {
	pi := ProviderInfo{Name: rec.Name, Kind: rec.Kind, Priority: rec.Priority, Status: rec.Health.Status}
	switch rec.Kind {
	case sb.KindAgora, sb.KindZegocloud:
		pi.AppID = rec.Config.AppID
	case sb.KindLiveKit:
		pi.URL = rec.Config.URL
	}
	return pi
}

// candidates returns the registry and the load for the policy, from memory.
func (s *Service) candidates(ctx context.Context) ([]routing.Candidate, *registry, error) {
	reg, err := s.registry(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := s.freshCounts(ctx, false); err != nil {
		return nil, nil, err
	}
	var blocked map[string]routing.Maintenance
	if s.maint != nil {
		blocked = s.maint.Blocked(s.clock.Now())
	}
	cands := candidatesOf(reg, blocked, s.degrading(ctx), s.regional(ctx, reg.byName))
	if reg.limited {
		s.fillActive(cands)
	}
	return cands, reg, nil
}

// degrading returns the evidence of each provider the detector flags, when
// the operator acts on predictions (preemptive is not off); nil otherwise.
func (s *Service) degrading(ctx context.Context) map[string]string {
	if s.predict == nil || s.setting == nil {
		return nil
	}
	// The flags first: there are seldom any, and then the settings need
	// no look.
	deg := s.predict.Degrading()
	if len(deg) == 0 || s.setting(ctx).Preemptive == sb.PreemptiveOff {
		return nil
	}
	var out map[string]string
	for n, v := range deg {
		if out == nil {
			out = map[string]string{}
		}
		out[n] = predictSummary(v)
	}
	return out
}

// predictSummary is v's evidence in one line.
func predictSummary(v sb.Degradation) string {
	parts := make([]string, 0, len(v.Evidence))
	for _, e := range v.Evidence {
		parts = append(parts, e.Summary)
	}
	if len(parts) == 0 {
		return "degrading"
	}
	return strings.Join(parts, "; ")
}

// candidatesOf returns the candidates of reg with their maintenance,
// degradation and regional statuses; their Active counts are the caller's
// to set (fillActive). In the usual case, with nothing of the kind and no
// provider limited in its active streams, they are the snapshot's own
// candidates, shared by every decision made on it: a decision only reads its
// candidates (selectFor writes counts only when some provider is limited).
// Copying 100 of them was 5.6 KB for every start.
func candidatesOf(reg *registry, blocked map[string]routing.Maintenance, degrading map[string]string, regional map[string]map[string]sb.Status) []routing.Candidate {
	plain := len(blocked) == 0 && len(degrading) == 0 && len(regional) == 0
	if plain && !reg.limited {
		return reg.base
	}
	cands := slices.Clone(reg.base)
	if plain {
		return cands
	}
	for i := range cands {
		c := &cands[i]
		name := c.Provider.Name
		c.Degrading, c.Regional = degrading[name], regional[name]
		if m, ok := blocked[name]; ok {
			c.Maintenance = &m
		}
	}
	return cands
}

// selectFor runs the policy on cands: pick, or routing.Select when pick is
// nil. When it skipped a provider as at capacity by the counts in memory,
// which may be behind (streams ended by the abandoned sweep or another
// replica), it reads them from the store and runs it again: the counts are a
// few rows per provider.
func (s *Service) selectFor(ctx context.Context, cands []routing.Candidate, req routing.Request, pick func([]routing.Candidate) routing.Decision) ([]routing.Candidate, routing.Decision, error) {
	if pick == nil {
		pick = func(cs []routing.Candidate) routing.Decision { return routing.Select(cs, req, s.rand) }
	}
	d := pick(cands)
	full := false
	for _, c := range cands {
		if p := c.Provider; p.MaxActiveStreams > 0 && c.Active >= int64(p.MaxActiveStreams) {
			full = true
			break
		}
	}
	if !full {
		return cands, d, nil
	}
	active, err := s.activeCounts(ctx, true)
	if err != nil {
		return nil, routing.Decision{}, err
	}
	for i := range cands {
		cands[i].Active = active[cands[i].Provider.Name]
	}
	return cands, pick(cands), nil
}

// Start assigns a new stream to the best provider and mints its join token.
// A retried start with the same idempotency key returns the same stream
// (created false) with a fresh token.
func (s *Service) Start(ctx context.Context, owner string, req StartRequest) (Assignment, bool, error) {
	if err := req.Validate(); err != nil {
		return Assignment{}, false, err
	}
	cands, reg, err := s.candidates(ctx)
	if err != nil {
		return Assignment{}, false, err
	}
	byName := reg.byName
	rreq := routing.Request{Region: req.Region, Exclude: req.Exclude, Statuses: reg.statuses}
	in := s.policyInput(ctx, req.Region, req.Quality)
	cands, d, err := s.selectFor(ctx, cands, rreq, func(cs []routing.Candidate) routing.Decision {
		return routing.Decide(cs, rreq, in, s.rand)
	})
	if err != nil {
		return Assignment{}, false, err
	}
	reserved := ""
	if in.Routing.Policy == sb.PolicyCommit {
		d, reserved = s.commitDecide(cands, rreq, in)
	}
	done := false
	defer func() {
		if !done {
			s.unreserve(req.Region, reserved)
		}
	}()
	if len(d.Order) == 0 {
		if a, ok, err := s.retried(ctx, owner, req, cands, byName); ok || err != nil {
			return a, false, err
		}
		return Assignment{}, false, sb.Errorf(sb.EUnavailable, "no provider can take the stream: %s", skippedSummary(d))
	}
	now := s.clock.Now()
	st := sb.Stream{
		ID: sb.NewStreamID(), Room: req.Room, UserID: req.UserID, Role: sb.StreamRole(req.Role), Region: req.Region,
		Quality: req.Quality, Status: sb.StreamActive, Owner: owner, IdempotencyKey: req.IdempotencyKey,
		StartedAt: now, LastHeartbeat: now,
	}
	var lastErr error
	for i, name := range d.Order {
		rec := byName[name]
		tok, err := s.mint(rec, st)
		if err != nil {
			lastErr = err
			s.log.Warn("mint join token", "provider", name, "err", err.Error())
			continue
		}
		st.Provider = name
		reason := d.Reason
		if i > 0 {
			reason = fmt.Sprintf("%s; %s was skipped: %s", name, strings.Join(d.Order[:i], ", "), errText(lastErr))
			if d.Unverified {
				reason = "unverified: " + reason
			}
		}
		entry := sb.TrailEntry{StreamID: st.ID, At: now, Kind: sb.TrailAssign, Provider: name, Reason: reason,
			Statuses: d.Statuses, LeastBad: d.LeastBad}
		got, created, err := s.store.StartStream(ctx, st, entry, rec.MaxActiveStreams)
		if sb.IsCode(err, sb.EUnavailable) {
			lastErr = err // at capacity since we looked: try the next one
			continue
		}
		if err != nil {
			return Assignment{}, false, err
		}
		if !created {
			return s.again(got, cands, byName) // lost a race with a retry of the same start
		}
		s.moveLoad("", got.Provider)
		done = true
		s.started(ctx, got.Region, got.Provider, d, reserved)
		if d.LeastBad {
			s.log.Warn("every provider is CRITICAL: assigned the least bad", "stream_id", got.ID, "provider", name)
		}
		if d.Unverified {
			s.log.Warn("no provider has passed a health check yet: assigned an unverified one by priority", "stream_id", got.ID, "provider", name)
		}
		s.log.Debug("stream started", "stream_id", got.ID, "provider", name, "room", got.Room)
		s.bus.Publish(sb.Event{Type: sb.EventStreamStarted, At: now, Audience: sb.RoleAdmin, Data: Lifecycle(got, "")})
		a := s.assignment(got, rec, tok, without(d.Order, got.Provider), d.LeastBad)
		if !d.LeastBad && !d.Unverified {
			a.Standby = s.standby(got, a.Fallbacks, byName)
		}
		return a, true, nil
	}
	if a, ok, err := s.retried(ctx, owner, req, cands, byName); ok || err != nil {
		return a, false, err
	}
	return Assignment{}, false, sb.Errorf(sb.EUnavailable, "no provider can take the stream: %s", errText(lastErr))
}

// retried answers a retried start whose stream exists when no provider can
// take a new stream now: a retry answers the stream it started, whatever the
// providers' state. (When one can, StartStream finds the stream by its key,
// in its transaction, and the start needs no lookup of its own.)
func (s *Service) retried(ctx context.Context, owner string, req StartRequest, cands []routing.Candidate, byName map[string]sb.ProviderRecord) (Assignment, bool, error) {
	if req.IdempotencyKey == "" {
		return Assignment{}, false, nil
	}
	prev, err := s.store.ListStreams(ctx, sb.StreamFilter{Owner: owner, IdempotencyKey: req.IdempotencyKey, Limit: 1})
	if err != nil || len(prev) == 0 {
		return Assignment{}, false, err
	}
	a, _, err := s.again(prev[0], cands, byName)
	return a, true, err
}

// again answers an earlier start of the same key: the same stream, with a
// fresh token for the provider it is on.
func (s *Service) again(st sb.Stream, cands []routing.Candidate, byName map[string]sb.ProviderRecord) (Assignment, bool, error) {
	a, err := s.current(st, cands, byName, nil)
	return a, false, err
}

// current is the assignment of the provider st is on now, with a fresh token,
// the fallbacks and a standby on the first of them (exclude: providers the
// client cannot use).
func (s *Service) current(st sb.Stream, cands []routing.Candidate, byName map[string]sb.ProviderRecord, exclude []string) (Assignment, error) {
	rec, ok := byName[st.Provider]
	if !ok {
		return Assignment{}, sb.Errorf(sb.EConflict, "stream %s is on provider %s, which was deleted", st.ID, st.Provider)
	}
	tok, err := s.mint(rec, st)
	if err != nil {
		return Assignment{}, err
	}
	fallbacks, standby := s.fallbacks(st, cands, byName, exclude)
	a := s.assignment(st, rec, tok, fallbacks, false)
	a.Standby = standby
	return a, nil
}

// fallbacks are the providers the policy would move st to now, best first,
// and a standby on the first of them that can mint a token (nil when there is
// none, or when every candidate is CRITICAL or unverified: a standby is for a
// provider known to work).
func (s *Service) fallbacks(st sb.Stream, cands []routing.Candidate, byName map[string]sb.ProviderRecord, exclude []string) ([]string, *Standby) {
	ex := append([]string{st.Provider}, exclude...)
	d := routing.Select(cands, routing.Request{Region: st.Region, Exclude: ex, OrderOnly: true}, s.rand)
	if d.LeastBad || d.Unverified {
		return d.Order, nil
	}
	return d.Order, s.standby(st, d.Order, byName)
}

// standby mints st's token on the first provider of order that can mint one.
func (s *Service) standby(st sb.Stream, order []string, byName map[string]sb.ProviderRecord) *Standby {
	for _, name := range order {
		rec, ok := byName[name]
		if !ok || name == st.Provider {
			continue
		}
		tok, err := s.mint(rec, st)
		if err != nil {
			s.log.Warn("mint standby token", "provider", name, "err", err.Error())
			continue
		}
		sby := &Standby{Provider: PublicInfo(rec), Token: tok.Token}
		if !tok.ExpiresAt.IsZero() {
			t := tok.ExpiresAt.UTC()
			sby.TokenExpiresAt = &t
		}
		return sby
	}
	return nil
}

func errText(err error) string {
	if err == nil {
		return "unavailable"
	}
	var e *sb.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// skippedSummary says why each provider d left out was left out, as
// "name: reason" in name order.
func skippedSummary(d routing.Decision) string {
	return otherSummary(d, "")
}

// otherSummary is skippedSummary without current, the provider a migrating
// stream is on, which is left out because the stream is leaving it.
func otherSummary(d routing.Decision, current string) string {
	names := make([]string, 0, len(d.Skipped))
	for n := range d.Skipped {
		if n != current {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		if current != "" {
			return "no other provider is registered"
		}
		return "no provider is registered"
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + ": " + d.Skipped[n]
	}
	return strings.Join(parts, "; ")
}

func without(xs []string, drop ...string) []string {
	if len(drop) == 1 && len(xs) > 0 && xs[0] == drop[0] {
		// The usual case, the choice dropped from the head of its order
		// (names appear once in an order): the rest as it is, capped so
		// that an append cannot write into xs.
		return xs[1:len(xs):len(xs)]
	}
	out := make([]string, 0, len(xs))
	for _, v := range xs {
		if !slices.Contains(drop, v) {
			out = append(out, v)
		}
	}
	return out
}

func (s *Service) mint(rec sb.ProviderRecord, st sb.Stream) (sb.JoinToken, error) {
	m := s.minters[rec.Kind]
	if m == nil {
		return sb.JoinToken{}, sb.Errorf(sb.EUnavailable, "no token minter for kind %s", rec.Kind)
	}
	return m.MintToken(rec.Provider, sb.TokenRequest{Room: st.Room, UserID: st.UserID, Publisher: st.Role == sb.RolePublisher, TTL: s.ttl}, s.clock.Now())
}

func (s *Service) assignment(st sb.Stream, rec sb.ProviderRecord, tok sb.JoinToken, fallbacks []string, leastBad bool) Assignment {
	a := Assignment{ID: st.ID, Room: st.Room, UserID: st.UserID, Role: st.Role, Provider: PublicInfo(rec),
		Token: tok.Token, Fallbacks: fallbacks, LeastBad: leastBad, Status: st.Status}
	if fallbacks == nil {
		a.Fallbacks = []string{}
	}
	if !tok.ExpiresAt.IsZero() {
		t := tok.ExpiresAt.UTC()
		a.TokenExpiresAt = &t
	}
	return a
}

// own loads a stream and checks that owner may act on it (admins may act on any).
func (s *Service) own(ctx context.Context, id, owner string, admin bool) (sb.Stream, error) {
	st, err := s.store.GetStream(ctx, id)
	if err != nil {
		return st, err
	}
	if !admin && st.Owner != owner {
		// Not "forbidden": do not reveal that someone else's stream exists.
		return sb.Stream{}, sb.Errorf(sb.ENotFound, "no stream %s", id)
	}
	return st, nil
}

// forgetBeats drops what the heartbeats keep of the stream id, which moved or
// ended: its next heartbeat reads it again.
func (s *Service) forgetBeats(id string) {
	if s.beats != nil {
		s.beats.forget(id)
	}
}

// HeartbeatRequest is the optional body of POST /api/streams/{id}/heartbeat.
type HeartbeatRequest struct {
	// Exclude lists providers the client cannot use (no media engine for
	// their kind, or failed for this stream): the standby is on none of them.
	Exclude []string `json:"exclude,omitempty"`
}

// Validate checks a heartbeat request.
func (r HeartbeatRequest) Validate() error { return validExclude(r.Exclude) }

func validExclude(exclude []string) error {
	if len(exclude) > 64 {
		return sb.Invalid("exclude", "at most 64 providers")
	}
	for i, n := range exclude {
		if !sb.ValidSlug(n) {
			return sb.Invalid(fmt.Sprintf("exclude[%d]", i), "is not a provider name")
		}
	}
	return nil
}

// HeartbeatAnswer is the stream after a heartbeat, with a fresh standby
// assignment: heartbeats are how a client keeps its standby valid and on the
// provider it would fail over to now.
type HeartbeatAnswer struct {
	sb.Stream
	Standby *Standby `json:"standby"`
}

// Heartbeat records that the stream is alive and answers a fresh standby.
func (s *Service) Heartbeat(ctx context.Context, id, owner string, admin bool, req HeartbeatRequest) (HeartbeatAnswer, error) {
	if err := req.Validate(); err != nil {
		return HeartbeatAnswer{}, err
	}
	var st sb.Stream
	if s.beats != nil {
		var err error
		if st, err = s.beatStream(ctx, id, owner, admin); err != nil {
			return HeartbeatAnswer{}, err
		}
		if now := s.clock.Now(); now.After(st.LastHeartbeat) {
			st.LastHeartbeat = now
			s.beats.beat(id, now)
		}
	} else {
		if _, err := s.own(ctx, id, owner, admin); err != nil {
			return HeartbeatAnswer{}, err
		}
		var err error
		if st, err = s.store.Heartbeat(ctx, id, s.clock.Now()); err != nil {
			return HeartbeatAnswer{}, err
		}
	}
	ans := HeartbeatAnswer{Stream: st}
	if reg, err := s.registry(ctx); err == nil && !anyOther(reg, st.Provider, req.Exclude) {
		// No provider but the stream's own and those excluded: no standby,
		// whatever their health and load, so none is looked for.
		return ans, nil
	}
	cands, creg, err := s.candidates(ctx)
	if err != nil {
		// The heartbeat is recorded; the standby the client has stays valid
		// until it expires.
		s.log.Warn("standby for heartbeat", "stream_id", id, "err", err.Error())
		return ans, nil
	}
	_, ans.Standby = s.fallbacks(st, cands, creg.byName, req.Exclude)
	return ans, nil
}

// anyOther reports whether reg holds a provider other than current and
// those in exclude: the only ones a standby can be on.
func anyOther(reg *registry, current string, exclude []string) bool {
	for i := range reg.recs {
		if n := reg.recs[i].Name; n != current && !slices.Contains(exclude, n) {
			return true
		}
	}
	return false
}

// FailureReport is the body of POST /api/streams/{id}/failures.
type FailureReport struct {
	Provider string   `json:"provider"`
	Stage    sb.Stage `json:"stage"`
	Code     string   `json:"code,omitempty"`
	Message  string   `json:"message,omitempty"`
}

// ReportFailure records a failure a client saw on a provider: it goes in the
// stream's trail and counts toward the provider's error rate; past the
// threshold within the window it triggers an immediate health check.
func (s *Service) ReportFailure(ctx context.Context, id, owner string, admin bool, f FailureReport) error {
	if !sb.ValidSlug(f.Provider) {
		return sb.Invalid("provider", "is required: the provider that failed")
	}
	switch f.Stage {
	case sb.StageConnect, sb.StageAuth, sb.StageOperation, sb.StageTimeout, "media":
	default:
		return sb.Invalid("stage", "must be connect, auth, operation, timeout or media")
	}
	if len(f.Code) > 64 || !sb.ValidText(f.Code) {
		return sb.Invalid("code", "at most 64 characters of text")
	}
	if len(f.Message) > 1024 || !sb.ValidText(f.Message) {
		return sb.Invalid("message", "at most 1024 characters of text")
	}
	st, err := s.own(ctx, id, owner, admin)
	if err != nil {
		return err
	}
	if st.Status != sb.StreamActive {
		return sb.Errorf(sb.EConflict, "stream %s has ended", id)
	}
	if err := s.known(ctx, f.Provider); err != nil {
		return err
	}
	// A client reports only on providers its stream was assigned to, so that
	// one app cannot push up the error rate of providers it never used. Most
	// reports are on the provider the stream is on; the others need a look
	// at its segments.
	on := st.Provider == f.Provider
	if !on {
		if on, err = s.store.StreamWasOn(ctx, id, f.Provider); err != nil {
			return err
		}
	}
	if !on {
		return sb.Invalid("provider", "stream %s was never on %s", id, f.Provider)
	}
	now := s.clock.Now()
	if err := s.store.AppendTrail(ctx, sb.TrailEntry{StreamID: id, At: now, Kind: sb.TrailFailure, Provider: f.Provider,
		Reason: f.Message, Stage: f.Stage, Code: f.Code}); err != nil {
		return err
	}
	if _, err := s.checker.ReportClientFailure(ctx, f.Provider, now); err != nil {
		return err
	}
	if s.noteFailure(f.Provider, now) {
		select {
		case s.recheck <- f.Provider:
		default: // a check is already queued
		}
	}
	return nil
}

// known checks that a provider named name exists: in the snapshot, or, for
// one created since on another replica, in the store.
func (s *Service) known(ctx context.Context, name string) error {
	reg, err := s.registry(ctx)
	if err != nil {
		return err
	}
	if _, ok := reg.byName[name]; ok {
		return nil
	}
	if _, err := s.store.GetProvider(ctx, name); err != nil {
		if sb.IsCode(err, sb.ENotFound) {
			return sb.Invalid("provider", "no provider named %s", name)
		}
		return err
	}
	return nil
}

// noteFailure adds a failure to the provider's window and reports whether the
// threshold was just reached.
func (s *Service) noteFailure(name string, at time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	cut := at.Add(-s.window)
	fs := s.failures[name]
	i := 0
	for i < len(fs) && fs[i].Before(cut) {
		i++
	}
	fs = append(fs[i:], at)
	if len(fs) >= s.thresh {
		delete(s.failures, name) // start a fresh window after triggering
		return true
	}
	s.failures[name] = fs
	return false
}

// MigrateRequest is the body of POST /api/streams/{id}/migrate.
type MigrateRequest struct {
	To     string `json:"to,omitempty"`
	Reason string `json:"reason"`
	// MovedAt reports a move the client has made already, at that time, to To
	// (with its standby token): the control plane records it whatever To's
	// health or load now. Reporting the same move again changes nothing.
	MovedAt *sb.Time `json:"movedAt,omitempty"`
	// Exclude lists providers the client cannot use (no engine for their
	// kind, or failed for it): neither the new assignment nor its standby is
	// on one of them.
	Exclude []string `json:"exclude,omitempty"`
}

// maxReportSkew is how far in the future a reported move may claim to have
// happened (clock skew between client and server); later claims are refused,
// earlier ones are recorded at the server's time.
const maxReportSkew = 5 * time.Minute

// Migrate moves a live stream to another provider (to, or the best other one)
// and returns its new assignment.
func (s *Service) Migrate(ctx context.Context, id, owner string, admin bool, req MigrateRequest) (Assignment, error) {
	if req.To != "" && !sb.ValidSlug(req.To) {
		return Assignment{}, sb.Invalid("to", "is not a provider name")
	}
	if req.Reason == "" || len(req.Reason) > 256 || !sb.ValidText(req.Reason) {
		return Assignment{}, sb.Invalid("reason", "is required: at most 256 characters of text")
	}
	if err := validExclude(req.Exclude); err != nil {
		return Assignment{}, err
	}
	st, err := s.own(ctx, id, owner, admin)
	if err != nil {
		return Assignment{}, err
	}
	if st.Status != sb.StreamActive {
		return Assignment{}, sb.Errorf(sb.EConflict, "stream %s has ended", id)
	}
	if req.MovedAt != nil {
		return s.moved(ctx, st, req)
	}
	if req.To == st.Provider {
		return Assignment{}, sb.Invalid("to", "the stream is already on %s", req.To)
	}
	all, reg, err := s.candidates(ctx)
	if err != nil {
		return Assignment{}, err
	}
	byName := reg.byName
	exclude := append([]string{st.Provider}, req.Exclude...)
	if req.To != "" {
		exclude = slices.DeleteFunc(exclude, func(n string) bool { return n == req.To }) // asked for by name
	}
	_, d, err := s.selectFor(ctx, all, routing.Request{Region: st.Region, Exclude: exclude}, nil)
	if err != nil {
		return Assignment{}, err
	}
	order := d.Order
	if req.To != "" {
		if _, ok := byName[req.To]; !ok {
			return Assignment{}, sb.Invalid("to", "no provider named %s", req.To)
		}
		if !slices.Contains(order, req.To) {
			return Assignment{}, sb.Errorf(sb.EConflict, "provider %s cannot take the stream: %s", req.To, d.Skipped[req.To])
		}
		order = append([]string{req.To}, without(order, req.To)...)
	}
	if len(order) == 0 {
		return Assignment{}, sb.Errorf(sb.EUnavailable, "no other provider can take the stream (it is on %s): %s", st.Provider, otherSummary(d, st.Provider))
	}
	now := s.clock.Now()
	failed := map[string]string{} // why each provider in order could not take it
	for _, name := range order {
		rec := byName[name]
		tok, err := s.mint(rec, st)
		if err != nil {
			failed[name] = "could not mint a join token: " + errText(err)
			continue
		}
		entry := sb.TrailEntry{StreamID: id, At: now, Kind: sb.TrailMigrate, Provider: name, From: st.Provider,
			Reason: req.Reason, Statuses: d.Statuses, LeastBad: d.LeastBad}
		moved, err := s.store.MigrateStream(ctx, id, entry, rec.MaxActiveStreams)
		s.forgetBeats(id)
		if sb.IsCode(err, sb.EUnavailable) {
			failed[name] = errText(err)
			continue
		}
		if err != nil {
			return Assignment{}, err
		}
		s.moveLoad(st.Provider, name)
		s.log.Info("stream migrated", "stream_id", id, "from", st.Provider, "to", name, "reason", req.Reason)
		s.bus.Publish(sb.Event{Type: sb.EventStreamFailover, At: now, Audience: sb.RoleAdmin,
			Data: map[string]any{"streamId": id, "from": st.Provider, "to": name, "reason": req.Reason, "room": st.Room}})
		a := s.assignment(moved, rec, tok, without(order, name), d.LeastBad)
		if !d.LeastBad && !d.Unverified {
			a.Standby = s.standby(moved, without(a.Fallbacks, req.Exclude...), byName)
		}
		return a, nil
	}
	for n, why := range failed {
		d.Skipped[n] = why
	}
	return Assignment{}, sb.Errorf(sb.EUnavailable, "no other provider can take the stream (it is on %s): %s", st.Provider, otherSummary(d, st.Provider))
}

// moved records a move the client made already (a failover to its standby).
// It is idempotent: when the stream is on req.To already, it answers the
// current assignment and changes nothing.
func (s *Service) moved(ctx context.Context, st sb.Stream, req MigrateRequest) (Assignment, error) {
	if req.To == "" {
		return Assignment{}, sb.Invalid("to", "is required with movedAt: the provider the stream moved to")
	}
	now := s.clock.Now()
	at := req.MovedAt.UTC()
	if at.After(now.Add(maxReportSkew)) {
		return Assignment{}, sb.Invalid("movedAt", "is in the future")
	}
	if at.After(now) {
		at = now // within the skew allowed: nothing is recorded later than it was learnt
	}
	cands, reg, err := s.candidates(ctx)
	if err != nil {
		return Assignment{}, err
	}
	byName := reg.byName
	if _, ok := byName[req.To]; !ok {
		return Assignment{}, sb.Invalid("to", "no provider named %s", req.To)
	}
	if st.Provider == req.To {
		return s.current(st, cands, byName, req.Exclude)
	}
	statuses := make(map[string]sb.Status, len(cands))
	for _, c := range cands {
		statuses[c.Provider.Name] = c.Health.Status
	}
	// Capacity is not checked: the stream is on req.To whatever the count says.
	entry := sb.TrailEntry{StreamID: st.ID, At: at, ReportedAt: &now, Kind: sb.TrailMigrate, Provider: req.To,
		From: st.Provider, Reason: req.Reason, Statuses: statuses}
	moved, err := s.store.MigrateStream(ctx, st.ID, entry, 0)
	s.forgetBeats(st.ID)
	if err != nil {
		return Assignment{}, err
	}
	s.moveLoad(st.Provider, req.To)
	late := now.Sub(at)
	s.log.Info("stream moved to its standby", "stream_id", st.ID, "from", st.Provider, "to", req.To,
		"reason", req.Reason, "reported_after_ms", late.Milliseconds())
	s.bus.Publish(sb.Event{Type: sb.EventStreamFailover, At: now, Audience: sb.RoleAdmin,
		Data: map[string]any{"streamId": st.ID, "from": st.Provider, "to": req.To, "reason": req.Reason, "room": st.Room,
			"standby": true, "movedAt": at, "reportedAfterMs": late.Milliseconds()}})
	return s.current(moved, cands, byName, req.Exclude)
}

// End ends a stream. Ending an ended stream is not an error.
func (s *Service) End(ctx context.Context, id, owner string, admin bool) (sb.Stream, error) {
	if _, err := s.own(ctx, id, owner, admin); err != nil {
		return sb.Stream{}, err
	}
	// Only the call that ended the stream tells of it: the abandoned-stream
	// sweep, or another End, may have ended it since it was read.
	st, ended, err := s.store.EndStream(ctx, id, s.clock.Now(), sb.EndClient)
	s.forgetBeats(id)
	if err == nil && ended {
		s.moveLoad(st.Provider, "")
		s.bus.Publish(sb.Event{Type: sb.EventStreamEnded, At: s.clock.Now(), Audience: sb.RoleAdmin, Data: Lifecycle(st, st.EndReason)})
	}
	return st, err
}

// StreamLifecycle is the Data of stream.started and stream.ended events.
type StreamLifecycle struct {
	StreamID string        `json:"streamId"`
	Provider string        `json:"provider"`
	Room     string        `json:"room"`
	Role     sb.StreamRole `json:"role"`
	Quality  sb.Quality    `json:"quality"`
	Reason   string        `json:"reason,omitempty"` // why it ended
}

// Lifecycle describes a stream for a lifecycle event.
func Lifecycle(st sb.Stream, reason string) StreamLifecycle {
	return StreamLifecycle{StreamID: st.ID, Provider: st.Provider, Room: st.Room, Role: st.Role, Quality: st.Quality, Reason: reason}
}
