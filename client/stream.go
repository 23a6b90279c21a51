package client

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// ErrClosed is returned by Start after the Client was closed.
var ErrClosed = errors.New("client: closed")

// Standby timing. A standby whose token expires within standbyMinLife is not
// used; heartbeats come early enough to renew a standby standbyRenewBefore its
// expiry; a change of the registry or of health that makes a standby stale
// renews it after a random delay within standbyRefreshSpread, so that the
// streams of many clients do not all ask at once.
const (
	standbyMinLife       = 5 * time.Second
	standbyRenewBefore   = time.Minute
	standbyRefreshSpread = 3 * time.Second
)

// reportMaxBackoff caps the backoff between attempts to report a move (unless
// the server asks for longer with Retry-After): a move report is small, and
// once a control plane is back from an outage it should learn of the moves
// within seconds, not after the SDK's general 30 s cap.
const reportMaxBackoff = 5 * time.Second

// maxUnreported bounds the moves a stream keeps to report while the control
// plane cannot be reached.
const maxUnreported = 16

// stateBuffer is how many states a Stream keeps for an app that reads them
// late; past it the oldest are dropped, never blocking the SDK.
const stateBuffer = 64

// StartOption configures Start, as Option configures New.
type StartOption func(*startOptions)

type startOptions struct {
	userID, region string
	role           Role
	quality        Quality
}

// WithUserID sets the user the join token is minted for (default: a random id).
func WithUserID(id string) StartOption { return func(o *startOptions) { o.userID = id } }

// WithRole sets the participant's role, RolePublisher (the default) or
// RoleSubscriber.
func WithRole(r Role) StartOption { return func(o *startOptions) { o.role = r } }

// WithQuality sets the quality tier the stream is priced at (the server's
// default is QualityHD).
func WithQuality(q Quality) StartOption { return func(o *startOptions) { o.quality = q } }

// WithRegion asks for a provider that serves the region, such as us-east.
func WithRegion(r string) StartOption { return func(o *startOptions) { o.region = r } }

// triggerKind says why a stream moves.
type triggerKind int

const (
	triggerMedia     triggerKind = iota + 1 // the engine reported an error
	triggerHealth                           // the provider became unusable
	triggerRebalance                        // the priority policy moves it
)

// trigger is a request to move a stream.
type trigger struct {
	kind     triggerKind
	provider string // triggerHealth: the provider to leave
	to       string // triggerRebalance: the provider to move to
	reason   string
	at       time.Time
	slot     *slot // triggerMedia: the connection that failed
	media    MediaError
}

// slot is one connection of a stream. err is guarded by the Stream's mu.
type slot struct {
	provider string
	conn     Connection // set once Connect returned; guarded by the Stream's mu
	err      *MediaError
	errAt    time.Time
}

// Stream is one live stream: its connection on the provider it is assigned
// to, the heartbeats that keep it on the server, and the failovers that keep
// it alive. It is safe for concurrent use.
type Stream struct {
	c      *Client
	id     string // set before the stream is returned; immutable after
	room   string
	states chan State
	kick   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	endOp  func() // ends the stream's share of the retry budget
	done   chan struct{}
	once   sync.Once

	mu sync.Mutex
	// The fields below are guarded by mu.
	a          Assignment  // of the current connection
	fallbacks  []string    // from the last assignment, best first
	standby    *Assignment // a ready assignment on the first fallback, or nil
	region     string      // asked for at the start
	cur        *slot
	pending    *trigger
	state      State
	finished   bool
	err        error // why the stream failed
	migrations int
	// stuckTo is a provider a rebalance could not move the stream to; the
	// priority policy does not try it again for this stream.
	stuckTo string
	// unreported are the moves to a standby not yet reported to the server,
	// oldest first; reporting says a goroutine is reporting them.
	unreported []moveReport
	reporting  bool
	reportMu   sync.Mutex    // held while a move is reported: one report at a time, in order
	hbKick     chan struct{} // asks for an early heartbeat, to renew the standby
	quality    qualityBuffer // samples not sent yet (quality.go); has its own locks
}

// moveReport is a move to a standby, to be reported to the server.
type moveReport struct {
	from, to string
	at       time.Time
	reason   string
	media    *MediaError // the failure on from, reported after the move
}

func newStream(c *Client, room string) *Stream {
	s := &Stream{c: c, room: room, states: make(chan State, stateBuffer), kick: make(chan struct{}, 1), done: make(chan struct{}),
		hbKick: make(chan struct{}, 1)}
	s.ctx, s.cancel = context.WithCancel(c.ctx)
	return s
}

// ID is the stream's id on the control plane.
func (s *Stream) ID() string { return s.id }

// Room is the room the stream is in.
func (s *Stream) Room() string { return s.room }

// Provider is the provider the stream's media is connected to now.
func (s *Stream) Provider() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.a.Provider.Name
}

// Assignment is the assignment of the current connection.
func (s *Stream) Assignment() Assignment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.a
}

// Standby is the stream's standby assignment, the one it will fail over to
// with no round trip to the control plane, and whether it has one.
func (s *Stream) Standby() (Assignment, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.standby == nil {
		return Assignment{}, false
	}
	return *s.standby, true
}

// Migrations counts the provider changes of the stream since it went live.
func (s *Stream) Migrations() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.migrations
}

// State is the stream's latest state.
func (s *Stream) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

// States delivers the stream's states in order, from Connecting on. It is
// buffered: an app that does not keep up loses the oldest states rather than
// ever slowing a failover. It is closed when the stream ends (Close, or after
// Failed).
func (s *Stream) States() <-chan State { return s.states }

// Done is closed when the stream has ended.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Err is why the stream failed, or nil.
func (s *Stream) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// emit records st and offers it to the app.
func (s *Stream) emit(st State) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.emitLocked(st)
}

func (s *Stream) emitLocked(st State) {
	s.state = st
	if s.finished {
		return
	}
	select {
	case s.states <- st:
		return
	default:
	}
	select { // full: drop the oldest
	case <-s.states:
	default:
	}
	select {
	case s.states <- st:
	default:
	}
}

// Close ends the stream: it stops its failover and heartbeats, disconnects the
// media and ends the stream on the control plane (whose error it returns). It
// is idempotent and returns nil once the stream has ended.
func (s *Stream) Close(ctx context.Context) error {
	s.cancel()
	s.wg.Wait()
	return s.finish(ctx, nil)
}

// finish ends the stream once: it disconnects, ends it on the server, emits
// final (when not nil) and closes States.
func (s *Stream) finish(ctx context.Context, final State) error {
	var err error
	s.once.Do(func() {
		s.cancel()
		s.mu.Lock()
		cur := s.cur
		var conn Connection
		if cur != nil {
			conn = cur.conn
		}
		s.mu.Unlock()
		if conn != nil {
			if derr := conn.Disconnect(ctx); derr != nil {
				s.c.log.Warn("disconnect", "stream_id", s.id, "provider", cur.provider, "err", derr.Error())
			}
		}
		// A move to a standby not reported yet is reported before the end,
		// so that the server ends the stream where it was (its minutes there
		// counted to that provider) and takes the samples measured there.
		if ferr := s.flushReports(ctx); ferr != nil && ctx.Err() == nil {
			s.c.log.Warn("report of a move before the end failed", "stream_id", s.id, "err", ferr.Error())
		}
		s.flushQuality(ctx) // the last samples, while the stream is still active
		if err = s.c.endStream(ctx, s.id); err != nil {
			err = fmt.Errorf("end stream %s: %w", s.id, err)
		}
		s.c.untrack(s)
		if s.endOp != nil {
			s.endOp()
		}
		s.mu.Lock()
		if final != nil {
			s.emitLocked(final)
		}
		s.finished = true
		close(s.states)
		s.mu.Unlock()
		close(s.done)
	})
	return err
}

// mediaError records an error a connection reported and, when the connection
// is the stream's current one, makes the stream fail over at once.
func (s *Stream) mediaError(sl *slot, me MediaError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sl.err != nil {
		return // one error per connection is enough
	}
	sl.err, sl.errAt = &me, time.Now()
	if sl == s.cur {
		s.setPendingLocked(s.mediaTrigger(sl))
	}
}

func (s *Stream) mediaTrigger(sl *slot) *trigger {
	return &trigger{kind: triggerMedia, provider: sl.provider, slot: sl, media: *sl.err, at: sl.errAt,
		reason: fmt.Sprintf("%s on %s", sl.err.Kind, sl.provider)}
}

// trigger asks the stream to move, and reports whether it will.
func (s *Stream) trigger(t trigger) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished || s.cur == nil {
		return false
	}
	switch t.kind {
	case triggerHealth:
		if s.a.Provider.Name != t.provider {
			return false
		}
	case triggerRebalance:
		if s.a.Provider.Name == t.to || s.pending != nil || s.stuckTo == t.to {
			return false
		}
	}
	s.setPendingLocked(&t)
	return true
}

// setPendingLocked queues t for the stream's loop. A failure replaces a
// pending rebalance; otherwise the first request stands. s.mu must be held.
func (s *Stream) setPendingLocked(t *trigger) {
	if s.pending == nil || (s.pending.kind == triggerRebalance && t.kind != triggerRebalance) {
		s.pending = t
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// takePending returns the queued request if it still applies.
func (s *Stream) takePending() (trigger, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.pending
	s.pending = nil
	if t == nil {
		return trigger{}, false
	}
	switch t.kind {
	case triggerMedia:
		return *t, t.slot == s.cur
	case triggerHealth:
		return *t, t.provider == s.a.Provider.Name
	default:
		return *t, t.to != s.a.Provider.Name && t.to != s.stuckTo
	}
}

// Start starts a stream in room and returns it live. It asks the control plane
// for an assignment and connects with the engine of the provider's kind;
// following the original app, attempt 1 uses the first provider, attempt 2
// retries it and attempt 3 fails over to the next one (the counts and backoff
// come from the server's configuration, under the Client's retry budget).
// Every failed attempt is reported to the server. ctx bounds the start only;
// the stream lives until Close.
func (c *Client) Start(ctx context.Context, room string, opts ...StartOption) (*Stream, error) {
	o := startOptions{role: RolePublisher}
	for _, f := range opts {
		f(&o)
	}
	if o.userID == "" {
		o.userID = "u-" + randomHex(8)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.starts.Add(1)
	c.mu.Unlock()
	defer c.starts.Done()
	// Close abandons the start: it waits for it, so it must not wait long.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.ctx, cancel)()
	closedErr := func(err error) error {
		if c.ctx.Err() != nil {
			return fmt.Errorf("start stream in room %s: %w", room, ErrClosed)
		}
		return fmt.Errorf("start stream in room %s: %w", room, err)
	}
	cfg, err := c.config(ctx)
	if err != nil {
		return nil, closedErr(err)
	}
	s := newStream(c, room)
	s.region = o.region
	endOp := c.budget.begin()
	sl, g, err := s.startAttempts(ctx, cfg, startBody{
		Room: room, UserID: o.userID, Role: o.role, Region: o.region, Quality: o.quality,
		Exclude: c.withoutEngine(cfg), IdempotencyKey: randomHex(16),
	})
	if err != nil {
		endOp()
		s.cancel()
		s.mu.Lock()
		s.err = err
		s.emitLocked(Failed{Err: err})
		s.finished = true
		close(s.states)
		s.mu.Unlock()
		close(s.done)
		return nil, closedErr(err)
	}
	a := g.a
	s.id, s.endOp = a.StreamID, endOp
	s.mu.Lock()
	s.a, s.fallbacks, s.standby, s.cur = a, g.fallbacks, c.usableStandby(g.standby), sl
	if sl.err != nil { // the connection failed already
		s.setPendingLocked(s.mediaTrigger(sl))
	}
	s.mu.Unlock()
	if !c.track(s) { // Close came first
		fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), c.requestTimeout)
		_ = s.finish(fctx, nil)
		fcancel()
		return nil, fmt.Errorf("start stream in room %s: %w", room, ErrClosed)
	}
	s.emit(Live{Provider: a.Provider.Name})
	s.wg.Add(3)
	go s.run()
	go s.heartbeats()
	go s.qualityLoop()
	return s, nil
}

// startAttempts makes the start attempts and returns the live connection.
func (s *Stream) startAttempts(ctx context.Context, cfg Config, body startBody) (*slot, grant, error) {
	c := s.c
	var (
		g       grant
		started bool
		lastErr error
		first   string
	)
	tries := map[string]int{}
	failed := map[string]bool{}
	giveUp := func(err error) (*slot, grant, error) {
		if started {
			ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.requestTimeout)
			if eerr := c.endStream(ectx, g.a.StreamID); eerr != nil {
				c.log.Warn("end stream after a failed start", "stream_id", g.a.StreamID, "err", eerr.Error())
			}
			cancel()
		}
		return nil, grant{}, err
	}
	attempts := max(cfg.MaxRetries, 1)
	var slot retrySlot
	defer slot.free()
	for attempt := 1; attempt <= attempts; attempt++ {
		slot.free()
		if attempt > 1 {
			if !slot.take(c.budget) {
				return giveUp(fmt.Errorf("%w (after: %w)", ErrRetryBudget, lastErr))
			}
			if !sleep(ctx, retryDelay(lastErr, cfg.RetryBackoff, attempt-1)) {
				return giveUp(ctx.Err())
			}
		}
		a := g.a
		switch {
		case !started:
			var err error
			if g, err = c.startStream(ctx, body); err != nil {
				lastErr = err
				if !retryable(err) {
					return giveUp(err)
				}
				s.emit(Reconnecting{Attempt: attempt, Err: err})
				continue
			}
			a = g.a
			started, first = true, a.Provider.Name
		case failed[a.Provider.Name]:
			to := s.pick(g.fallbacks, failed)
			ng, err := c.migrateStream(ctx, a.StreamID, migrateBody{To: to, Reason: "start failed on " + a.Provider.Name,
				Exclude: c.exclude(failed, false)})
			if err != nil {
				lastErr = err
				if to != "" && isStatus(err, http.StatusBadRequest, http.StatusConflict) {
					failed[to] = true
				} else if !retryable(err) {
					return giveUp(err)
				}
				continue
			}
			g, a = ng, ng.a
		}
		s.emit(Connecting{Provider: a.Provider.Name, Attempt: attempt})
		sl, err := s.connect(ctx, a)
		if err == nil {
			if a.Provider.Name != first {
				c.log.Info("Successfully failed over to "+a.Provider.Name, "stream_id", a.StreamID, "from", first, "to", a.Provider.Name, "attempt", attempt)
			}
			return sl, g, nil
		}
		lastErr = err
		s.report(ctx, a.StreamID, a.Provider.Name, err)
		tries[a.Provider.Name]++
		if tries[a.Provider.Name] >= 2 || errorKind(err) == TokenRejected {
			failed[a.Provider.Name] = true
			s.emit(FailingOver{From: a.Provider.Name, Reason: err.Error()})
		} else {
			s.emit(Reconnecting{Provider: a.Provider.Name, Attempt: attempt, Err: err})
		}
	}
	return giveUp(fmt.Errorf("gave up after %d attempts: %w", attempts, lastErr))
}

// pick chooses the provider to move to: the first fallback of the last
// assignment that has not failed and that the Client has an engine for, or
// the best such provider of the configuration; "" lets the server choose.
func (s *Stream) pick(fallbacks []string, failed map[string]bool) string {
	cfg, _ := s.c.Config()
	ok := func(name string) bool {
		p, found := cfg.provider(name)
		if !found || failed[name] || !p.takesNew() {
			return false
		}
		_, has := s.c.engineFor(p.Provider)
		return has
	}
	for _, n := range fallbacks {
		if ok(n) {
			return n
		}
	}
	for _, p := range cfg.Providers {
		if ok(p.Name) {
			return p.Name
		}
	}
	return ""
}

// connect connects a with its engine.
func (s *Stream) connect(ctx context.Context, a Assignment) (*slot, error) {
	e, ok := s.c.engineFor(a.Provider)
	if !ok {
		return nil, fmt.Errorf("no media engine for provider kind %s", a.Provider.Kind)
	}
	sl := &slot{provider: a.Provider.Name}
	ctx, cancel := context.WithTimeout(ctx, s.c.connectTimeout)
	defer cancel()
	// An engine's errors reach logs, states and the server's failure reports:
	// the join token is taken out of them, whatever the engine put in.
	conn, err := e.Connect(ctx, a, func(me MediaError) { s.mediaError(sl, redact(me, a.Token).(MediaError)) })
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", a.Provider.Name, redact(err, a.Token))
	}
	s.mu.Lock()
	sl.conn = conn
	s.mu.Unlock()
	return sl, nil
}

// report tells the server that err happened on provider.
func (s *Stream) report(ctx context.Context, id, provider string, err error) {
	stage, code := "connect", ""
	if k := errorKind(err); k != "" {
		code = string(k)
		switch k {
		case TokenRejected:
			stage = "auth"
		case ConnectionLost, MediaStalled:
			stage = "media"
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		stage = "timeout"
	}
	if rerr := s.c.reportFailure(ctx, id, failureBody{Provider: provider, Stage: stage, Code: code, Message: err.Error()}); rerr != nil && ctx.Err() == nil {
		s.c.log.Warn("report failure", "stream_id", id, "provider", provider, "err", rerr.Error())
	}
}

// redact hides secret in err's message. A MediaError stays a MediaError (of
// the same kind, its cause redacted); any other error is wrapped, its chain
// still reachable with errors.Is and errors.As.
func redact(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	if me, ok := err.(MediaError); ok {
		return MediaError{Kind: me.Kind, Err: redact(me.Err, secret)}
	}
	return redacted{err: err, secret: secret}
}

// redacted is an error whose message has a secret taken out.
type redacted struct {
	err    error
	secret string
}

func (r redacted) Error() string { return strings.ReplaceAll(r.err.Error(), r.secret, "[REDACTED]") }
func (r redacted) Unwrap() error { return r.err }

func errorKind(err error) MediaErrorKind {
	var me MediaError
	if errors.As(err, &me) {
		return me.Kind
	}
	var pme *MediaError
	if errors.As(err, &pme) && pme != nil {
		return pme.Kind
	}
	return ""
}

func isStatus(err error, codes ...int) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	for _, c := range codes {
		if e.StatusCode == c {
			return true
		}
	}
	return false
}

// run is the stream's loop: it moves the stream when asked, one move at a
// time (the Client's watchMedia and the engine's reports ask).
func (s *Stream) run() {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.kick:
			t, ok := s.takePending()
			if !ok {
				continue
			}
			if err := s.move(t); err != nil {
				if s.ctx.Err() != nil {
					return // closing
				}
				s.c.log.Error("stream failed", "stream_id", s.id, "err", err.Error())
				s.mu.Lock()
				s.err = err
				s.mu.Unlock()
				ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), s.c.requestTimeout)
				_ = s.finish(ctx, Failed{Err: err})
				cancel()
				return
			}
		}
	}
}

// checkMedia fails the stream over when its connection has carried no media
// for longer than the watchdog allows. The Client's watchMedia calls it.
func (s *Stream) checkMedia() {
	s.mu.Lock()
	cur := s.cur
	var ma MediaActivity
	if cur != nil {
		ma, _ = cur.conn.(MediaActivity)
	}
	s.mu.Unlock()
	if ma == nil {
		return
	}
	// The time is taken before the connection is asked: a goroutine paused
	// between the two (a busy process: a mass failover ran 10,000 streams
	// in 4 processes on 2 cores) would count its own pause as the
	// connection's silence, and move a stream whose media flows.
	now := time.Now()
	last := ma.LastMedia()
	if last.IsZero() {
		return // no media yet: the watchdog arms with the first packet
	}
	if idle := now.Sub(last); idle > s.c.watchdog {
		s.mediaError(cur, MediaError{Kind: MediaStalled, Err: fmt.Errorf("no media for %s", idle.Round(time.Millisecond))})
	}
}

// move moves the stream as t asks and returns an error only when the stream
// is lost. A failure moves it to its standby when it has a usable one: the
// connection is made at once and the move is reported to the control plane
// afterwards. Otherwise it gets a new assignment from the control plane,
// connects it, and only then disconnects the old connection
// (make-before-break). A failover ends within the Client's failover timeout:
// Live on another provider, back on a connection that still works, or lost.
func (s *Stream) move(t trigger) error {
	c := s.c
	s.mu.Lock()
	from, fallbacks, old := s.a.Provider.Name, s.fallbacks, s.cur
	s.mu.Unlock()
	planned := t.kind == triggerRebalance
	ctx := s.ctx
	// Reports of this Client's moves wait for this one (moves.go).
	settled := c.moves.enter()
	defer settled()
	failed := map[string]bool{}
	if !planned {
		s.emit(FailingOver{From: from, Reason: t.reason})
		c.log.Info("failing over", "stream_id", s.id, "from", from, "reason", t.reason)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(s.ctx, c.failoverTimeout)
		defer cancel()
		failed[from] = true
		if t.kind == triggerMedia {
			c.avoid(from)
		}
		if sa := s.takeStandby(failed); sa != nil {
			// A standby connect gets half the failover time at most, so that
			// the control plane can still be asked if it hangs.
			sctx, scancel := context.WithTimeout(ctx, min(c.connectTimeout, c.failoverTimeout/2))
			sl, err := s.connect(sctx, *sa)
			scancel()
			if err == nil {
				r := moveReport{from: from, to: sa.Provider.Name, at: time.Now(), reason: t.reason}
				if t.kind == triggerMedia {
					r.media = &t.media
				}
				s.swap(t, from, old, sl, grant{a: *sa, fallbacks: without(fallbacks, sa.Provider.Name)}, false, &r, settled)
				return nil
			}
			// The provider is not marked failed: the control plane may still
			// assign it with a fresh token (a server just restarted may refuse
			// a token minted before, or be slow to its first connect).
			c.log.Warn("standby connect failed: asking the control plane", "stream_id", s.id, "provider", sa.Provider.Name, "err", err.Error())
		}
	}
	// The control plane must know where the stream is before it moves it.
	if err := s.flushReports(ctx); err != nil && ctx.Err() == nil {
		c.log.Warn("report of an earlier move failed: asking the control plane anyway", "stream_id", s.id, "err", err.Error())
	}
	cfg, _ := c.Config()
	attempts := max(cfg.MaxRetries, 1)
	if planned {
		attempts = 1
	}
	var lastErr error
	// A retry the budget refuses is skipped after the same backoff.
	var slot retrySlot
	defer slot.free()
	for attempt := 1; attempt <= attempts && ctx.Err() == nil; attempt++ {
		slot.free()
		if attempt > 1 {
			ok := slot.take(c.budget)
			if ok {
				s.emit(Reconnecting{Provider: from, Attempt: attempt - 1, Err: lastErr})
			} else if !errors.Is(lastErr, ErrRetryBudget) {
				lastErr = fmt.Errorf("%w (after: %w)", ErrRetryBudget, lastErr)
			}
			if !sleep(ctx, retryDelay(lastErr, cfg.RetryBackoff, attempt-1)) {
				break
			}
			if !ok {
				continue
			}
		}
		to := t.to
		if !planned {
			to = s.pick(fallbacks, failed)
		}
		ng, err := c.migrateStream(ctx, s.id, migrateBody{To: to, Reason: t.reason, Exclude: c.exclude(failed, false)})
		if err != nil {
			lastErr = err
			switch {
			case to != "" && isStatus(err, http.StatusBadRequest, http.StatusConflict):
				failed[to] = true // it cannot take the stream: try another
			case isStatus(err, http.StatusNotFound, http.StatusConflict):
				return fmt.Errorf("fail over from %s: %w", from, err) // the stream ended on the server
			case !planned && unreachable(err) && (!isStatus(err, http.StatusServiceUnavailable) || retryAfterOf(err) > 0):
				// The control plane did not answer, or shed the request: that
				// costs no attempt on a provider (a 503 without Retry-After
				// says no provider can take the stream, and does); the
				// failover timeout bounds the wait.
				attempt--
			}
			continue
		}
		fallbacks = ng.fallbacks
		sl, err := s.connect(ctx, ng.a)
		if err != nil {
			lastErr = err
			failed[ng.a.Provider.Name] = true
			if ctx.Err() == nil { // not our own deadline: the provider's failure
				s.report(s.ctx, s.id, ng.a.Provider.Name, err)
			}
			if planned {
				s.stuck(t.to)
				s.stay(from, t.reason)
				return nil
			}
			continue
		}
		s.swap(t, from, old, sl, ng, true, nil, settled)
		return nil
	}
	if s.ctx.Err() != nil {
		return s.ctx.Err() // closing
	}
	if planned {
		s.stuck(t.to)
	}
	if planned || (t.kind == triggerHealth && s.slotErr(old) == nil) {
		s.stay(from, t.reason)
		return nil
	}
	if ctx.Err() != nil {
		if lastErr == nil {
			lastErr = ctx.Err()
		}
		return fmt.Errorf("fail over from %s: no provider took the stream within %s: %w", from, c.failoverTimeout, lastErr)
	}
	return fmt.Errorf("fail over from %s: gave up after %d attempts: %w", from, attempts, lastErr)
}

// takeStandby returns the stream's standby, consumed, when it can be used now:
// on a provider that has not failed, that the configuration still lists as
// usable and this Client has an engine for, with a token that is still valid.
func (s *Stream) takeStandby(failed map[string]bool) *Assignment {
	s.mu.Lock()
	sa := s.standby
	s.standby = nil
	cur := s.a.Provider.Name
	s.mu.Unlock()
	if sa == nil || failed[sa.Provider.Name] || sa.Provider.Name == cur || s.c.avoided(sa.Provider.Name) {
		return nil
	}
	if !sa.TokenExpiresAt.IsZero() && time.Until(sa.TokenExpiresAt) < standbyMinLife {
		return nil
	}
	cfg, _ := s.c.Config()
	p, ok := cfg.provider(sa.Provider.Name)
	if !ok || !p.takesNew() {
		return nil
	}
	if _, ok := s.c.engineFor(sa.Provider); !ok {
		return nil
	}
	return sa
}

// queueReportLocked queues a move to a standby for reporting to the control
// plane, and reports whether reportMoves must be started. s.mu must be held.
func (s *Stream) queueReportLocked(r moveReport) (start bool) {
	if len(s.unreported) >= maxUnreported {
		s.unreported = s.unreported[1:]
	}
	s.unreported = append(s.unreported, r)
	start = !s.reporting
	s.reporting = true
	return start
}

// reportMoves reports the queued moves, oldest first, until none is left or
// the stream ends.
func (s *Stream) reportMoves() {
	c := s.c
	// The first attempt waits for the Client's other moves, then a random
	// part of a second (moves.go).
	if !c.moves.holdReport(s.ctx, time.Now()) {
		s.stopReporting()
		return
	}
	var slot retrySlot
	defer slot.free()
	var lastErr error
	// n counts the attempts that failed in a row: a retry the budget refuses
	// waits the same backoff again, without pushing it further out.
	for n := 0; ; {
		if n > 0 {
			cfg, _ := c.Config()
			d := retryDelay(lastErr, cfg.RetryBackoff, n)
			if ra := retryAfterOf(lastErr); ra < reportMaxBackoff {
				d = min(d, reportMaxBackoff)
			}
			if !sleep(s.ctx, d) {
				s.stopReporting()
				return
			}
			if !slot.take(c.budget) {
				continue
			}
		}
		more, err := s.reportNext(s.ctx)
		switch {
		case s.ctx.Err() != nil:
			s.stopReporting()
			return
		case err != nil:
			lastErr = err
			n++
		case !more:
			return
		default:
			n, lastErr = 0, nil
		}
	}
}

// stopReporting marks that no goroutine reports the stream's moves.
func (s *Stream) stopReporting() {
	s.mu.Lock()
	s.reporting = false
	s.mu.Unlock()
}

// reportNext makes one attempt at reporting the oldest unreported move, and
// says whether more remain (false once none is left: reporting has then
// stopped). A report the server refuses is dropped.
func (s *Stream) reportNext(ctx context.Context) (more bool, err error) {
	s.reportMu.Lock()
	defer s.reportMu.Unlock()
	s.mu.Lock()
	if len(s.unreported) == 0 {
		s.reporting = false
		s.mu.Unlock()
		return false, nil
	}
	r := s.unreported[0]
	s.mu.Unlock()
	err = s.sendReport(ctx, r)
	if err != nil && (retryable(err) || ctx.Err() != nil) {
		return true, err // kept: a stream closing reports it before its end
	}
	s.mu.Lock()
	s.unreported = s.unreported[1:]
	more = len(s.unreported) > 0
	if !more {
		s.reporting = false
	}
	s.mu.Unlock()
	return more, nil
}

// flushReports reports, now and in order, the moves not reported yet: the
// control plane must know where the stream is before it is asked to move it
// again. It returns the first error; what is left stays queued.
func (s *Stream) flushReports(ctx context.Context) error {
	s.reportMu.Lock()
	defer s.reportMu.Unlock()
	for {
		s.mu.Lock()
		if len(s.unreported) == 0 {
			s.mu.Unlock()
			return nil
		}
		r := s.unreported[0]
		s.mu.Unlock()
		if err := s.sendReport(ctx, r); err != nil && (retryable(err) || ctx.Err() != nil) {
			return err
		}
		s.mu.Lock()
		s.unreported = s.unreported[1:]
		s.mu.Unlock()
	}
}

// sendReport tells the control plane about a move made already and, once it
// is recorded, reports the failure that caused it (off this path). s.reportMu
// must be held, so that reports reach the server in the order of the moves.
func (s *Stream) sendReport(ctx context.Context, r moveReport) error {
	c := s.c
	at := r.at
	g, err := c.migrateStream(ctx, s.id, migrateBody{To: r.to, Reason: r.reason, MovedAt: &at, Exclude: c.exclude(nil, true)})
	if err != nil {
		if !retryable(err) && ctx.Err() == nil {
			c.log.Warn("move report refused", "stream_id", s.id, "from", r.from, "to", r.to, "err", err.Error())
		}
		return err
	}
	s.mu.Lock()
	if s.a.Provider.Name == g.a.Provider.Name {
		s.fallbacks, s.standby = g.fallbacks, c.usableStandby(g.standby)
	}
	s.mu.Unlock()
	c.log.Debug("move reported", "stream_id", s.id, "from", r.from, "to", r.to, "late_ms", time.Since(r.at).Milliseconds())
	if r.media != nil {
		s.wg.Go(func() { s.report(s.ctx, s.id, r.from, *r.media) })
	}
	return nil
}

// stuck records that a rebalance could not move the stream to provider, so
// that the priority policy does not keep trying it at its rate for ever.
func (s *Stream) stuck(provider string) {
	s.mu.Lock()
	s.stuckTo = provider
	s.mu.Unlock()
}

func (s *Stream) slotErr(sl *slot) *MediaError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sl.err
}

// stay keeps the stream on its current, still working connection after a
// move failed, and puts it back on that provider on the server.
func (s *Stream) stay(provider, reason string) {
	s.c.log.Warn("could not move the stream: staying on its working connection", "stream_id", s.id, "provider", provider, "reason", reason)
	s.emit(Live{Provider: provider})
	if _, err := s.c.migrateStream(s.ctx, s.id, migrateBody{To: provider, Reason: "move failed: back to " + provider}); err != nil && !isStatus(err, http.StatusBadRequest) {
		s.c.log.Warn("put the stream back on its provider", "stream_id", s.id, "provider", provider, "err", err.Error())
	}
}

// swap makes sl the stream's connection, then disconnects old. reportMedia
// reports the media failure that caused the move (a move to a standby reports
// it after the move itself); report, when not nil, is a move the control plane
// has not made (to a standby), queued for reporting. settled ends the move
// for the Client's reports (moves.go) once the stream is live on sl.
func (s *Stream) swap(t trigger, from string, old, sl *slot, g grant, reportMedia bool, report *moveReport, settled func()) {
	c := s.c
	to := g.a.Provider.Name
	s.mu.Lock()
	s.cur, s.a, s.fallbacks, s.standby = sl, g.a, g.fallbacks, c.usableStandby(g.standby)
	// A move the control plane has not seen is queued with the swap, under
	// the same lock: from the moment the stream is on its new connection,
	// its quality samples there wait for the report (the server refuses
	// samples of a provider it does not know the stream is on). Queued
	// after the swap, a few samples of a mass failover went out first.
	startReporting := report != nil && s.queueReportLocked(*report)
	s.migrations++
	gap := time.Since(t.at)
	s.emitLocked(Migrated{From: from, To: to, Reason: t.reason, Gap: gap})
	s.emitLocked(Live{Provider: to})
	if sl.err != nil { // the new connection failed already
		s.setPendingLocked(s.mediaTrigger(sl))
	}
	oldConn := old.conn
	s.mu.Unlock()
	settled()
	if startReporting {
		s.wg.Go(s.reportMoves)
	}
	if t.kind == triggerRebalance {
		c.log.Info("stream migrated", "stream_id", s.id, "from", from, "to", to, "reason", t.reason, "gap_ms", gap.Milliseconds())
	} else {
		c.log.Info("Successfully failed over to "+to, "stream_id", s.id, "from", from, "to", to, "reason", t.reason, "gap_ms", gap.Milliseconds())
	}
	if oldConn != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), c.connectTimeout)
		if err := oldConn.Disconnect(ctx); err != nil {
			c.log.Warn("disconnect", "stream_id", s.id, "provider", from, "err", err.Error())
		}
		cancel()
	}
	if reportMedia && t.kind == triggerMedia {
		// Reported after the move, off the failover's path, once the
		// Client's other moves are done (moves.go).
		moved := time.Now()
		s.wg.Go(func() {
			if c.moves.holdReport(s.ctx, moved) {
				s.report(s.ctx, s.id, from, t.media)
			}
		})
	}
}

// heartbeats tells the server the stream is alive until the stream ends, and
// keeps its standby fresh: each answer carries a new one, a heartbeat comes
// early enough to renew a standby before it expires, and one comes early when
// a change of the registry or of health made the standby stale. A failed
// heartbeat is logged: the media keeps running whatever the control plane's
// state.
func (s *Stream) heartbeats() {
	defer s.wg.Done()
	t := time.NewTimer(s.nextHeartbeat())
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-s.hbKick:
			t.Reset(time.Duration(rand.Int64N(int64(standbyRefreshSpread))))
			continue
		case <-t.C:
		}
		s.heartbeat()
		t.Reset(s.nextHeartbeat())
	}
}

// heartbeat sends one heartbeat and keeps the standby it answers.
func (s *Stream) heartbeat() {
	ans, err := s.c.heartbeatStream(s.ctx, s.id, heartbeatBody{Exclude: s.c.exclude(nil, true)})
	if err != nil {
		if s.ctx.Err() == nil {
			s.c.log.Warn("heartbeat failed", "stream_id", s.id, "err", err.Error())
		}
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if ans.Provider == s.a.Provider.Name { // else a move is not reported yet
		s.standby = s.c.usableStandby(ans.Standby.standby(s.a))
	}
}

// nextHeartbeat is the time to the next heartbeat: the Client's interval, or
// less when the standby must be renewed sooner.
func (s *Stream) nextHeartbeat() time.Duration {
	d := s.c.heartbeat
	s.mu.Lock()
	sa := s.standby
	s.mu.Unlock()
	if sa != nil && !sa.TokenExpiresAt.IsZero() {
		d = min(d, max(time.Until(sa.TokenExpiresAt)-standbyRenewBefore, time.Second))
	}
	return d
}

// renewStandby asks for an early heartbeat when the standby is stale: missing
// while another provider could take the stream, or on a provider that is no
// longer usable, or worse than the best one the configuration offers.
func (s *Stream) renewStandby(cfg Config) {
	s.mu.Lock()
	sa, cur, finished, reporting := s.standby, s.a.Provider.Name, s.finished, len(s.unreported) > 0
	s.mu.Unlock()
	if finished || cur == "" || reporting {
		return // a move report's answer brings a new standby
	}
	var best *ProviderConfig
	for i, p := range cfg.Providers {
		if _, ok := s.c.engineFor(p.Provider); ok && p.Name != cur && p.takesNew() && !s.c.avoided(p.Name) &&
			(s.region == "" || len(p.Regions) == 0 || slices.Contains(p.Regions, s.region)) {
			best = &cfg.Providers[i]
			break
		}
	}
	stale := false
	if sa == nil {
		stale = best != nil
	} else if p, ok := cfg.provider(sa.Provider.Name); !ok || !p.takesNew() || s.c.avoided(p.Name) {
		stale = true
	} else if best != nil && best.Priority < p.Priority {
		stale = true
	}
	if stale {
		select {
		case s.hbKick <- struct{}{}:
		default:
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = crand.Read(b)
	return hex.EncodeToString(b)
}

// newInstance draws the value by which a Client names itself to the server
// (128 random bits): it acts as a key to the Client's streams.
func newInstance() string { return randomHex(16) }
