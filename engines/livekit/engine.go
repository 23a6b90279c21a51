// Package livekit is a client.MediaEngine for LiveKit, built on the LiveKit Go
// SDK (github.com/livekit/server-sdk-go/v2) and pion/webrtc.
//
// An Engine joins the room of each assignment the Switchboard SDK hands it,
// publishes the app's tracks there, hands every RTP packet it receives to the
// app, and reports trouble at once: a dropped signal or media connection is
// ConnectionLost, a join token the server refuses is TokenRejected, and media
// that stops flowing for longer than the watchdog allows is MediaStalled.
// Disconnect closes the room, which also stops the LiveKit SDK from retrying a
// dead server in the background.
//
// Tracks are pion TrackLocal values (for example webrtc.TrackLocalStaticSample)
// and may be bound to several connections at once, so a make-before-break
// switch publishes the same samples on the old and the new provider until the
// old one is disconnected.
//
// The module is separate from Switchboard's main module so that apps that do
// not use LiveKit do not carry the WebRTC stack.
package livekit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	protologger "github.com/livekit/protocol/logger"
	lksdk "github.com/livekit/server-sdk-go/v2"
	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/switchboardhq/switchboard/client"
)

// Packet is one RTP packet received from a remote participant's track.
type Packet struct {
	Provider    string              // the provider it came through
	Participant string              // identity of the participant who published the track
	Track       *webrtc.TrackRemote // the track it belongs to
	RTP         *rtp.Packet
	At          time.Time // when it was read
}

// Option configures an Engine.
type Option func(*options)

type options struct {
	tracks        []webrtc.TrackLocal
	onPacket      func(Packet)
	mediaTimeout  time.Duration
	autoSubscribe bool
	log           *slog.Logger
}

// WithTracks makes every connection publish tracks. A track may be published
// on several connections at once; each write reaches all of them.
func WithTracks(tracks ...webrtc.TrackLocal) Option {
	return func(o *options) { o.tracks = append(o.tracks, tracks...) }
}

// WithPacketHandler makes connections hand every RTP packet they receive to f.
// f runs on the track's reader goroutine: it must return quickly and must not
// keep p.RTP's payload beyond the call unless it copies it.
func WithPacketHandler(f func(p Packet)) Option {
	return func(o *options) { o.onPacket = f }
}

// WithMediaTimeout arms the receive watchdog: once a connection has received
// RTP, a pause longer than d reports MediaStalled (once). Zero, the default,
// disables it, leaving the decision to the SDK's own watchdog, which reads
// LastMedia. This is how a viewer notices a provider that hangs without
// closing its sockets; LiveKit itself notices only after about 15 seconds.
//
// A stalled publisher also looks like a stalled provider from the viewer's
// side, so d should comfortably exceed the longest pause the app's tracks make
// on purpose (Opus DTX, a muted camera).
//
// A connection that only publishes has no such signal: LiveKit sends an audio
// publisher no regular feedback, so a hung server is noticed by its viewers at
// once but by the publisher only when LiveKit gives up (about 15 seconds).
// Publishers that cannot wait that long keep a hot standby: a second
// connection, on the next provider, publishing the same tracks.
func WithMediaTimeout(d time.Duration) Option {
	return func(o *options) { o.mediaTimeout = d }
}

// WithAutoSubscribe sets whether connections subscribe to every track in the
// room (the default, true). Publishers that never watch others set it false.
func WithAutoSubscribe(v bool) Option {
	return func(o *options) { o.autoSubscribe = v }
}

// WithLogger sets the logger of the engine's own state changes (nil discards
// them). The LiveKit SDK's logs are always discarded: they include request
// URLs that carry the join token.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) { o.log = l }
}

// Engine connects an app's media to LiveKit servers. It is safe for
// concurrent use; each Connect makes an independent connection.
type Engine struct {
	o options
}

var _ client.MediaEngine = (*Engine)(nil)

// NewEngine returns an Engine configured by opts.
func NewEngine(opts ...Option) *Engine {
	o := options{autoSubscribe: true}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	silenceSDK.Do(func() { lksdk.SetLogger(sdkLogger) })
	return &Engine{o: o}
}

// sdkLogger discards the LiveKit SDK's logs (see WithLogger). The SDK's
// package logger also feeds pion's, so NewEngine replaces it once; an app that
// wants those logs back may call lksdk.SetLogger after NewEngine, knowing that
// they carry tokens.
var (
	sdkLogger  = protologger.LogRLogger(logr.Discard())
	silenceSDK sync.Once
)

// Connect joins a.Room on the LiveKit server at a.Provider.URL with a.Token,
// publishes the engine's tracks and returns once they are published. A token
// the server refuses fails with a client.MediaError of kind TokenRejected; any
// other failure to connect is a ConnectionLost MediaError. Afterwards, report
// receives at most one MediaError per connection.
//
// The LiveKit SDK cannot abandon a join in flight: when ctx ends first,
// Connect returns at once and the join is closed in the background when it
// finishes (within the SDK's own 15-second join timeout).
func (e *Engine) Connect(ctx context.Context, a client.Assignment, report func(client.MediaError)) (client.Connection, error) {
	u, err := signalURL(a.Provider.URL)
	if err != nil {
		return nil, client.MediaError{Kind: client.ConnectionLost, Err: fmt.Errorf("livekit %s: %w", a.Provider.Name, err)}
	}
	c := &Conn{
		provider: a.Provider.Name, report: report, o: e.o, token: a.Token,
		log:  e.o.log.With("provider", a.Provider.Name, "room", a.Room, "user_id", a.UserID),
		done: make(chan struct{}),
	}
	c.room = lksdk.NewRoom(c.callbacks())
	c.room.SetLogger(sdkLogger)

	joined := make(chan error, 1)
	go func() {
		joined <- c.room.JoinWithToken(u, a.Token,
			lksdk.WithAutoSubscribe(e.o.autoSubscribe),
			lksdk.WithDisableRegionDiscovery(),
			lksdk.WithInterceptors([]interceptor.Factory{activityFactory{c}}),
			lksdk.WithIncludeDefaultInterceptors(true))
	}()
	select {
	case err = <-joined:
	case <-ctx.Done():
		go func() {
			if <-joined == nil {
				c.room.Disconnect()
			}
		}()
		c.close()
		return nil, fmt.Errorf("livekit %s: join: %w", a.Provider.Name, ctx.Err())
	}
	if err != nil {
		c.close()
		kind := client.ConnectionLost
		if strings.HasPrefix(err.Error(), "unauthorized") {
			kind = client.TokenRejected
		}
		return nil, client.MediaError{Kind: kind, Err: fmt.Errorf("livekit %s: join: %s", a.Provider.Name, c.clean(err.Error()))}
	}
	for _, t := range e.o.tracks {
		if _, err := c.room.LocalParticipant.PublishTrack(t, &lksdk.TrackPublicationOptions{Name: t.ID()}); err != nil {
			_ = c.Disconnect(ctx)
			return nil, client.MediaError{Kind: client.ConnectionLost,
				Err: fmt.Errorf("livekit %s: publish track %s: %s", a.Provider.Name, t.ID(), c.clean(err.Error()))}
		}
	}
	if e.o.mediaTimeout > 0 {
		c.wg.Add(1)
		go c.watch()
	}
	c.log.Info("livekit connected", "tracks", len(e.o.tracks))
	return c, nil
}

// signalURL turns a provider URL into the websocket URL the LiveKit SDK dials:
// http becomes ws and https becomes wss.
func signalURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", errors.New("provider URL is not an absolute URL")
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("provider URL scheme %q is not ws, wss, http or https", u.Scheme)
	}
	return u.String(), nil
}

// Conn is one connection to a LiveKit room. It implements client.Connection
// and client.MediaActivity.
type Conn struct {
	provider string
	token    string
	report   func(client.MediaError)
	o        options
	log      *slog.Logger
	room     *lksdk.Room

	lastRTP atomic.Int64 // unix nanoseconds of the last RTP packet received; 0 = none yet

	reported atomic.Bool // a MediaError was reported
	closing  atomic.Bool // Disconnect was called: report nothing more
	once     sync.Once   // closes done
	done     chan struct{}
	wg       sync.WaitGroup // the watchdog and the track readers

	mu      sync.Mutex
	stopped bool // guarded by mu: closed, so no reader may join wg any more
}

var (
	_ client.Connection    = (*Conn)(nil)
	_ client.MediaActivity = (*Conn)(nil)
)

// Room returns the LiveKit room, for apps that need more of the LiveKit SDK
// (data packets, attributes). Closing it is Disconnect's job.
func (c *Conn) Room() *lksdk.Room { return c.room }

// LastMedia returns when the connection last received an RTP packet of a
// remote track; it is the zero time before the first, and stays zero on a
// connection that only publishes (see WithMediaTimeout).
func (c *Conn) LastMedia() time.Time {
	n := c.lastRTP.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Disconnect leaves the room, which closes its peer connections and stops the
// LiveKit SDK's reconnection attempts, and waits for the connection's
// goroutines until ctx ends. It is idempotent.
func (c *Conn) Disconnect(ctx context.Context) error {
	if c.closing.CompareAndSwap(false, true) {
		c.room.Disconnect()
		c.log.Info("livekit disconnected")
	}
	c.close()
	waited := make(chan struct{})
	go func() { c.wg.Wait(); close(waited) }()
	select {
	case <-waited:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("livekit %s: disconnect: %w", c.provider, ctx.Err())
	}
}

func (c *Conn) close() {
	c.closing.Store(true)
	c.mu.Lock()
	c.stopped = true
	c.mu.Unlock()
	c.once.Do(func() { close(c.done) })
}

// fail reports e unless the connection is closing or has reported already.
func (c *Conn) fail(kind client.MediaErrorKind, err error) {
	if c.closing.Load() || !c.reported.CompareAndSwap(false, true) {
		return
	}
	c.log.Warn("livekit media error", "kind", string(kind), "reason", err.Error())
	if c.report != nil {
		c.report(client.MediaError{Kind: kind, Err: fmt.Errorf("livekit %s: %w", c.provider, err)})
	}
}

func (c *Conn) callbacks() *lksdk.RoomCallback {
	return &lksdk.RoomCallback{
		OnReconnecting: func() {
			c.fail(client.ConnectionLost, errors.New("connection to the server lost"))
		},
		OnDisconnectedWithReason: func(r lksdk.DisconnectionReason) {
			if r != lksdk.LeaveRequested {
				c.fail(client.ConnectionLost, fmt.Errorf("disconnected: %s", r))
			}
		},
		ParticipantCallback: lksdk.ParticipantCallback{
			// The LiveKit SDK may subscribe from a goroutine of its own after
			// Disconnect: such a track gets no reader, so that Disconnect's
			// wait never races with a reader joining it.
			OnTrackSubscribed: func(t *webrtc.TrackRemote, _ *lksdk.RemoteTrackPublication, rp *lksdk.RemoteParticipant) {
				c.mu.Lock()
				defer c.mu.Unlock()
				if c.stopped {
					return
				}
				c.wg.Add(1)
				go c.read(t, rp.Identity())
			},
		},
	}
}

// read drains one remote track until its peer connection closes.
func (c *Conn) read(t *webrtc.TrackRemote, participant string) {
	defer c.wg.Done()
	for {
		p, _, err := t.ReadRTP()
		if err != nil {
			return
		}
		if c.o.onPacket != nil && !c.closing.Load() {
			c.o.onPacket(Packet{Provider: c.provider, Participant: participant, Track: t, RTP: p, At: time.Now()})
		}
	}
}

// watch is the media watchdog: it reports MediaStalled once when RTP stops
// for longer than the media timeout after having flowed.
func (c *Conn) watch() {
	defer c.wg.Done()
	t := time.NewTicker(max(c.o.mediaTimeout/5, 5*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case now := <-t.C:
			if d, ok := stalled(now, c.lastRTP.Load(), c.o.mediaTimeout); ok {
				c.fail(client.MediaStalled, fmt.Errorf("no media received for %s", d.Round(time.Millisecond)))
				return
			}
		}
	}
}

// stalled says whether more than limit has passed since last (unix
// nanoseconds); a zero last or limit never stalls.
func stalled(now time.Time, last int64, limit time.Duration) (time.Duration, bool) {
	if last == 0 || limit <= 0 {
		return 0, false
	}
	d := now.Sub(time.Unix(0, last))
	return d, d > limit
}

// clean removes the join token, and anything else shaped like a JWT, from text
// that came from the server or the LiveKit SDK.
func (c *Conn) clean(s string) string {
	if c.token != "" {
		s = strings.ReplaceAll(s, c.token, "[REDACTED]")
	}
	return jwtRE.ReplaceAllString(s, "[REDACTED]")
}

var jwtRE = regexp.MustCompile(`eyJ[A-Za-z0-9_-]*(\.[A-Za-z0-9_-]*){0,2}`)

// activityFactory builds the interceptor that stamps a connection's LastMedia.
type activityFactory struct{ c *Conn }

func (f activityFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &activity{c: f.c}, nil
}

// activity stamps the arrival of every RTP packet of remote tracks.
type activity struct {
	interceptor.NoOp
	c *Conn
}

func (a *activity) BindRemoteStream(_ *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	return interceptor.RTPReaderFunc(func(b []byte, attrs interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, attrs, err := r.Read(b, attrs)
		if err == nil {
			a.c.lastRTP.Store(time.Now().UnixNano())
		}
		return n, attrs, err
	})
}
