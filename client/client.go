package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchboardhq/switchboard/client/internal/transport"
)

// Policy decides what happens to live streams when an admin changes provider
// priorities: KeepLive (the default) or MigrateGradually. Whatever the policy,
// a stream never moves back on its own when the provider it left recovers.
type Policy interface{ isPolicy() }

// KeepLive leaves live streams where they are when priorities change; only new
// streams follow the new order.
type KeepLive struct{}

// MigrateGradually moves live streams to the highest-priority healthy provider
// after a priority change, at most Rate streams per second per Client.
type MigrateGradually struct {
	Rate float64
}

func (KeepLive) isPolicy()         {}
func (MigrateGradually) isPolicy() {}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client for API calls and the event stream (the
// event stream ignores its Timeout). The default is a client with its own
// transport.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithEngine sets the media engine of a provider kind. Streams are only
// assigned to kinds that have an engine.
func WithEngine(kind Kind, e MediaEngine) Option {
	return func(c *Client) { c.engines[kind] = e }
}

// WithLogger sets the logger (default: discard).
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// WithPolicy sets the priority-change policy (default KeepLive).
func WithPolicy(p Policy) Option { return func(c *Client) { c.policy = p } }

// WithWatchdog makes streams fail over when their connection, if it implements
// MediaActivity, has carried no media for d. Zero (the default) switches the
// watchdog off.
func WithWatchdog(d time.Duration) Option { return func(c *Client) { c.watchdog = d } }

// WithHeartbeat sets the interval of stream heartbeats (default 30 s, well
// under the server's two-minute abandonment).
func WithHeartbeat(d time.Duration) Option { return func(c *Client) { c.heartbeat = d } }

// WithConnectTimeout bounds each MediaEngine.Connect (default 15 s).
func WithConnectTimeout(d time.Duration) Option { return func(c *Client) { c.connectTimeout = d } }

// WithFailoverTimeout bounds a failover (default 10 s): a stream that has
// not reached Live on another provider by then, nor stayed on a connection
// that still works, ends Failed with the reason. No stream is left failing
// over for longer.
func WithFailoverTimeout(d time.Duration) Option { return func(c *Client) { c.failoverTimeout = d } }

// WithRequestTimeout bounds each API call (default 10 s).
func WithRequestTimeout(d time.Duration) Option { return func(c *Client) { c.requestTimeout = d } }

// Client starts and keeps streams alive through one Switchboard control plane.
// It holds one event subscription shared by all its streams, the last known
// configuration and a retry budget. It is safe for concurrent use; Close stops
// it.
type Client struct {
	hc              *http.Client
	ownHC           bool             // hc was made by New: Close closes its idle connections
	api             transport.Client // API calls, through hc
	events          transport.Client // the event stream, through a copy of hc without a timeout
	engines         map[Kind]MediaEngine
	log             *slog.Logger
	policy          Policy
	watchdog        time.Duration
	heartbeat       time.Duration
	connectTimeout  time.Duration
	requestTimeout  time.Duration
	failoverTimeout time.Duration
	qualityEvery    time.Duration // 0: the default; < 0: no quality telemetry (quality.go)

	budget    *budget
	moves     *moveGate     // the streams moving now, which reports wait for
	refresh   chan struct{} // asks the control loop to refetch the configuration
	rebalance chan struct{} // tells the control loop that priorities changed
	// configured tells the control loop that the first configuration arrived
	// (a start fetches it itself): the polling interval is now known.
	configured chan struct{}

	ctx    context.Context // ends when the Client closes
	cancel context.CancelFunc
	wg     sync.WaitGroup // the Client's background goroutines
	starts sync.WaitGroup // calls of Start in flight; Add only under mu while !closed

	mu sync.Mutex
	// The fields below are guarded by mu.
	cfg       Config
	haveCfg   bool
	etag      string
	streams   map[*Stream]struct{}
	sseUp     bool
	lastEvent string // id of the last event received, for Last-Event-ID
	closed    bool
	// avoidUntil holds the providers whose media failed on this Client
	// recently: no standby on them is used or asked for until then.
	avoidUntil map[string]time.Time
}

// avoidFor is how long a provider whose media failed is kept out of standby
// assignments, unless the control plane reports it healthy again sooner.
const avoidFor = 30 * time.Second

// New returns a Client of the control plane at serverURL that authenticates
// with token (a client-role API token). It starts the Client's background work
// (the event subscription and the polling fallback) but makes no request
// before it returns.
func New(serverURL, token string, opts ...Option) (*Client, error) {
	base, u, err := transport.BaseURL(serverURL)
	if err == nil && u.User != nil {
		err = errors.New("server URL: must not hold user info")
	}
	if err == nil {
		err = transport.CheckToken(token)
	}
	if err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}
	c := &Client{
		engines: map[Kind]MediaEngine{},
		policy:  KeepLive{}, heartbeat: 30 * time.Second, connectTimeout: 15 * time.Second,
		requestTimeout: 10 * time.Second, failoverTimeout: 10 * time.Second, budget: newBudget(), moves: newMoveGate(), avoidUntil: map[string]time.Time{},
		refresh: make(chan struct{}, 1), rebalance: make(chan struct{}, 1), configured: make(chan struct{}, 1), streams: map[*Stream]struct{}{},
	}
	for _, o := range opts {
		o(c)
	}
	if c.hc == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 32 // many streams call one server
		c.hc = &http.Client{Transport: tr}
		c.ownHC = true
	}
	sse := *c.hc
	sse.Timeout = 0 // the event stream lives as long as the Client
	// The Client names itself to the server with a random value drawn
	// here: the streams it starts are then its own, and their events come
	// to its event stream alone, although every instance of an app shares
	// the app's client token.
	instance := newInstance()
	c.api = transport.Client{Base: base, Token: token, Instance: instance, HTTP: c.hc, MaxAnswer: maxResponse}
	c.events = transport.Client{Base: base, Token: token, Instance: instance, HTTP: &sse, MaxAnswer: maxResponse}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.policy == nil {
		c.policy = KeepLive{}
	}
	if g, ok := c.policy.(MigrateGradually); ok && g.Rate <= 0 {
		return nil, errors.New("client: MigrateGradually.Rate must be positive")
	}
	if len(c.engines) == 0 {
		return nil, errors.New("client: at least one media engine is required (WithEngine)")
	}
	for kind, e := range c.engines {
		if e == nil {
			return nil, fmt.Errorf("client: engine of kind %s is nil", kind)
		}
	}
	if c.heartbeat <= 0 || c.connectTimeout <= 0 || c.requestTimeout <= 0 || c.failoverTimeout <= 0 {
		return nil, errors.New("client: heartbeat, connect, request and failover timeouts must be positive")
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.wg.Go(func() { c.watchEvents(c.ctx) })
	c.wg.Go(func() { c.control(c.ctx) })
	if c.watchdog > 0 {
		c.wg.Go(func() { c.watchMedia(c.ctx) })
	}
	return c, nil
}

// watchMedia runs the media watchdog of every stream from one goroutine, a
// check every quarter of the watchdog, until ctx ends. A ticker per stream
// woke each of them 13 times a second (with the default 300 ms): an SDK
// process holding 2,500 simulated streams spent a fifth of a core on it while
// nothing happened, CPU that a mass failover then lacked. A check runs beside
// the stream's moves: during a failover the stream's connection is the one
// that failed, whose error is already known, and a check that comes too late
// is dropped by the stream (it names a connection the stream has left).
func (c *Client) watchMedia(ctx context.Context) {
	t := time.NewTicker(max(c.watchdog/4, 10*time.Millisecond))
	defer t.Stop()
	var list []*Stream
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.mu.Lock()
		for s := range c.streams {
			list = append(list, s)
		}
		c.mu.Unlock()
		for _, s := range list {
			s.checkMedia()
		}
		clear(list) // no ended stream is kept until the next check
		list = list[:0]
	}
}

// Close ends every stream of the Client (each on the server, with a fresh
// deadline, and on its media engine), stops the background work and returns
// once every goroutine of the Client has exited. Starts in flight are
// abandoned: they return an error wrapping ErrClosed, or a stream that Close
// ends. It is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	// Stop the background work and the starts in flight, and wait for the
	// starts: a stream they had tracked is in the list below, with its
	// goroutines started.
	c.cancel()
	c.starts.Wait()
	list := c.Streams()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	errs := make([]error, len(list))
	var wg sync.WaitGroup
	for i, s := range list {
		wg.Go(func() { errs[i] = s.Close(ctx) })
	}
	wg.Wait()
	c.wg.Wait()
	if c.ownHC {
		c.hc.CloseIdleConnections()
	}
	return errors.Join(errs...)
}

// Config returns the last configuration the Client fetched (zero before the
// first) and whether it has one.
func (c *Client) Config() (Config, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cfg.clone(), c.haveCfg
}

// EventsConnected reports whether the event subscription is up; while it is
// down, the Client polls provider health instead.
func (c *Client) EventsConnected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sseUp
}

// Streams returns the live streams of the Client.
func (c *Client) Streams() []*Stream {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*Stream, 0, len(c.streams))
	for s := range c.streams {
		out = append(out, s)
	}
	return out
}

// config returns the configuration, fetching it when the Client has none.
func (c *Client) config(ctx context.Context) (Config, error) {
	c.mu.Lock()
	cfg, ok := c.cfg, c.haveCfg
	c.mu.Unlock()
	if ok {
		return cfg, nil
	}
	return c.refreshConfig(ctx)
}

// refreshConfig fetches the configuration and keeps it as the last known good.
// After a change it fails streams over from providers that left it or became
// unusable, and applies the priority policy if priorities changed.
func (c *Client) refreshConfig(ctx context.Context) (Config, error) {
	c.mu.Lock()
	etag := c.etag
	c.mu.Unlock()
	cfg, tag, changed, err := c.fetchConfig(ctx, etag)
	if err != nil {
		return Config{}, fmt.Errorf("fetch configuration: %w", err)
	}
	c.mu.Lock()
	if !changed {
		c.cfg.FetchedAt = time.Now()
		cfg = c.cfg
		c.mu.Unlock()
		return cfg, nil
	}
	old, had := c.cfg, c.haveCfg
	c.cfg, c.haveCfg, c.etag = cfg, true, tag
	c.mu.Unlock()
	if !had {
		select {
		case c.configured <- struct{}{}:
		default:
		}
	}
	c.budget.setRatio(cfg.RetryBudget)
	if had {
		for _, p := range old.Providers {
			np, ok := cfg.provider(p.Name)
			switch {
			case !ok:
				c.failProvider(p.Name, "provider "+p.Name+" was removed or disabled")
			case mustLeave(np.Status):
				c.failProvider(p.Name, "provider "+p.Name+" is "+string(np.Status))
			}
		}
		if priorities(old) != priorities(cfg) {
			c.prioritiesChanged()
		}
		c.standbysChanged()
	}
	return cfg.clone(), nil
}

// applySettings applies the settings of a settings.updated event to the
// cached configuration at once: the next start, retry, backoff and poll use
// them, without a refetch or a restart.
func (c *Client) applySettings(w wireConfig) {
	s := w.config(time.Now())
	c.mu.Lock()
	if !c.haveCfg {
		c.mu.Unlock()
		return // the first fetch brings them
	}
	c.cfg.MaxRetries, c.cfg.MaxFailures, c.cfg.HealthCheckInterval = s.MaxRetries, s.MaxFailures, s.HealthCheckInterval
	c.cfg.RetryBackoff, c.cfg.RetryBudget = s.RetryBackoff, s.RetryBudget
	c.etag = "" // the cached configuration is no longer the one the ETag names
	c.mu.Unlock()
	c.budget.setRatio(s.RetryBudget)
	c.log.Info("settings applied", "max_retries", s.MaxRetries, "max_failures", s.MaxFailures,
		"retry_backoff", s.RetryBackoff.String(), "retry_budget", s.RetryBudget)
}

// standbysChanged renews, spread over a few seconds, the standbys that a
// change of the configuration made stale.
func (c *Client) standbysChanged() {
	cfg, _ := c.Config()
	for _, s := range c.Streams() {
		s.renewStandby(cfg)
	}
}

// avoid keeps provider out of standby assignments for a while: its media just
// failed on this Client.
func (c *Client) avoid(provider string) {
	c.mu.Lock()
	c.avoidUntil[provider] = time.Now().Add(avoidFor)
	c.mu.Unlock()
}

// avoided reports whether provider's media failed on this Client recently.
func (c *Client) avoided(provider string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	until, ok := c.avoidUntil[provider]
	if ok && time.Now().After(until) {
		delete(c.avoidUntil, provider)
		return false
	}
	return ok
}

// forgive ends the avoidance of a provider the control plane reports usable
// again after a status change.
func (c *Client) forgive(provider string) {
	c.mu.Lock()
	delete(c.avoidUntil, provider)
	c.mu.Unlock()
}

// exclude lists the providers the control plane must not assign this Client's
// streams to, nor put their standby on: the kinds it has no engine for and
// those in failed; with avoided, also those whose media failed on it recently
// (at most 64, the server's limit). Avoidance is a preference for standbys
// only: a stream that asks the control plane for a new assignment takes a
// provider that failed half a minute ago rather than none.
func (c *Client) exclude(failed map[string]bool, avoided bool) []string {
	cfg, _ := c.Config()
	out := c.withoutEngine(cfg)
	for name := range failed {
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	if avoided {
		c.mu.Lock()
		now := time.Now()
		for name, until := range c.avoidUntil {
			if now.Before(until) && !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
		c.mu.Unlock()
	}
	slices.Sort(out)
	if len(out) > 64 {
		out = out[:64]
	}
	return out
}

// usableStandby returns sa when this Client has an engine for its provider.
func (c *Client) usableStandby(sa *Assignment) *Assignment {
	if sa == nil {
		return nil
	}
	if _, ok := c.engineFor(sa.Provider); !ok {
		return nil
	}
	return sa
}

func without(xs []string, x string) []string {
	out := make([]string, 0, len(xs))
	for _, v := range xs {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

// priorities is a comparable summary of the order of providers.
func priorities(c Config) string {
	var b strings.Builder
	for _, p := range c.Providers {
		fmt.Fprintf(&b, "%s=%d;", p.Name, p.Priority)
	}
	return b.String()
}

// requestRefresh asks the control loop to refetch the configuration.
func (c *Client) requestRefresh() {
	select {
	case c.refresh <- struct{}{}:
	default:
	}
}

// prioritiesChanged applies the priority policy.
func (c *Client) prioritiesChanged() {
	if _, ok := c.policy.(MigrateGradually); !ok {
		return
	}
	select {
	case c.rebalance <- struct{}{}:
	default:
	}
}

// failProvider makes every stream on the named provider fail over now.
func (c *Client) failProvider(name, reason string) {
	at := time.Now()
	n := 0
	for _, s := range c.Streams() {
		if s.trigger(trigger{kind: triggerHealth, provider: name, reason: reason, at: at}) {
			n++
		}
	}
	if n > 0 {
		c.log.Info("provider unusable: failing streams over", "provider", name, "reason", reason, "streams", n)
	}
}

// updateProvider applies fn to the cached configuration entry of name, and
// drops the entry when fn returns false. The slice is copied, never changed
// in place, so that configurations handed out stay as they were. The cached
// configuration no longer being the one its ETag names, the next refresh
// fetches it in full: a 304 would otherwise keep what the events made of it
// even after the server's configuration went back to the one fetched.
func (c *Client) updateProvider(name string, fn func(p *ProviderConfig) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := slices.IndexFunc(c.cfg.Providers, func(p ProviderConfig) bool { return p.Name == name })
	if i < 0 {
		return
	}
	c.etag = ""
	ps := slices.Clone(c.cfg.Providers)
	if !fn(&ps[i]) {
		ps = slices.Delete(ps, i, i+1)
	}
	slices.SortStableFunc(ps, func(a, b ProviderConfig) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), strings.Compare(a.Name, b.Name))
	})
	c.cfg.Providers = ps
}

// engineFor returns the engine of a provider's kind.
func (c *Client) engineFor(p Provider) (MediaEngine, bool) {
	e, ok := c.engines[p.Kind]
	return e, ok
}

// withoutEngine lists the providers of cfg whose kind has no engine.
func (c *Client) withoutEngine(cfg Config) []string {
	var out []string
	for _, p := range cfg.Providers {
		if _, ok := c.engines[p.Kind]; !ok {
			out = append(out, p.Name)
		}
	}
	return out
}

// preferred returns the highest-priority usable provider this Client has an
// engine for.
func (c *Client) preferred() (string, bool) {
	cfg, _ := c.Config()
	for _, p := range cfg.Providers {
		if _, ok := c.engines[p.Kind]; ok && p.takesNew() {
			return p.Name, true
		}
	}
	return "", false
}

// control runs the configuration refreshes, the polling fallback and gradual
// migrations until ctx ends.
func (c *Client) control(ctx context.Context) {
	poll := newPoller(c)
	pollTimer := time.NewTimer(time.Hour)
	defer pollTimer.Stop()
	var retry <-chan time.Time // refetch after a failed refresh
	refreshFails := 0
	var rebalTick *time.Ticker
	var rebalC <-chan time.Time
	defer func() {
		if rebalTick != nil {
			rebalTick.Stop()
		}
	}()
	resetPoll := func() {
		cfg, _ := c.Config()
		pollTimer.Reset(cmp.Or(cfg.HealthCheckInterval, 30*time.Second))
	}
	resetPoll()
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.refresh:
		case <-retry:
		case <-pollTimer.C:
			if !c.EventsConnected() {
				poll.run(ctx)
			} else {
				poll.reset()
			}
			resetPoll()
			continue
		case <-c.configured:
			// Poll at the configured interval from now, not at the default
			// one set before the configuration was known.
			resetPoll()
			continue
		case <-c.rebalance:
			if rebalTick == nil {
				g := c.policy.(MigrateGradually)
				rebalTick = time.NewTicker(time.Duration(float64(time.Second) / g.Rate))
				rebalC = rebalTick.C
			}
			continue
		case <-rebalC:
			if !c.rebalanceOne() {
				rebalTick.Stop()
				rebalTick, rebalC = nil, nil
			}
			continue
		}
		// A refresh was asked for, or a failed one is due again.
		retry = nil
		if _, err := c.refreshConfig(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			refreshFails++
			cfg, _ := c.Config()
			d := retryDelay(err, cmp.Or(cfg.RetryBackoff, time.Second), refreshFails)
			c.log.Warn("control plane unreachable: keeping the last known configuration", "err", err.Error(), "retry_in", d.String())
			retry = time.After(d)
			continue
		}
		refreshFails = 0
		resetPoll()
	}
}

// rebalanceOne moves one stream that is not on the preferred provider there,
// and reports whether more may need to move.
func (c *Client) rebalanceOne() bool {
	to, ok := c.preferred()
	if !ok {
		return false
	}
	for _, s := range c.Streams() {
		if s.Provider() != to && s.trigger(trigger{kind: triggerRebalance, to: to, reason: "priorities changed: moving to " + to, at: time.Now()}) {
			return true
		}
	}
	return false
}

// poller is the fallback health watch while the event stream is down: it reads
// the public health of every provider in use, and maxFailures consecutive
// unusable answers make the streams leave the provider. An unreachable control
// plane is not a provider failure: streams keep running.
type poller struct {
	c     *Client
	fails map[string]int
}

func newPoller(c *Client) *poller { return &poller{c: c, fails: map[string]int{}} }

func (p *poller) reset() { clear(p.fails) }

func (p *poller) run(ctx context.Context) {
	inUse := map[string]bool{}
	for _, s := range p.c.Streams() {
		if name := s.Provider(); name != "" {
			inUse[name] = true
		}
	}
	for name := range p.fails {
		if !inUse[name] {
			delete(p.fails, name)
		}
	}
	cfg, _ := p.c.Config()
	for name := range inUse {
		h, err := p.c.providerHealth(ctx, name)
		var e *Error
		switch {
		case errors.As(err, &e) && e.StatusCode == http.StatusNotFound:
			h.Status = statusDeleted
		case err != nil:
			p.c.log.Debug("health poll failed: control plane unreachable", "provider", name, "err", err.Error())
			continue
		}
		if h.Status != statusDeleted && !mustLeave(h.Status) {
			p.fails[name] = 0
			continue
		}
		p.fails[name]++
		p.c.log.Info("health poll: provider unusable", "provider", name, "status", h.Status, "consecutive", p.fails[name])
		if p.fails[name] >= cfg.MaxFailures {
			p.fails[name] = 0
			p.c.failProvider(name, fmt.Sprintf("provider %s is %s after %d health checks", name, h.Status, cfg.MaxFailures))
		}
	}
}

// track and untrack keep the set of live streams.
func (c *Client) track(s *Stream) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.streams[s] = struct{}{}
	return true
}

func (c *Client) untrack(s *Stream) {
	c.mu.Lock()
	delete(c.streams, s)
	c.mu.Unlock()
}
