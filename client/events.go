package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/switchboardhq/switchboard/client/internal/transport"
)

// Event stream tuning. The server sends a comment every 15 s; a stream that
// stays silent three times as long is dead even if its socket is not.
const (
	sseIdleTimeout  = 45 * time.Second
	sseBackoffBase  = time.Second // LaunchDarkly's SDKs reconnect after 1 s at first; the server's retry field overrides it
	maxEventPayload = 1 << 20
)

// watchEvents keeps the Client's one subscription to GET /api/events until
// ctx ends, reconnecting with a jittered backoff and resuming from the last
// event id. While it is down, the control loop polls provider health.
func (c *Client) watchEvents(ctx context.Context) {
	fails := 0
	base := sseBackoffBase
	for {
		connected, err := c.subscribe(ctx, &base)
		c.setEventsUp(false)
		if ctx.Err() != nil {
			return
		}
		if connected {
			fails = 0
		}
		fails++
		d := backoff(base, fails)
		c.log.Info("event stream down: polling provider health until it is back", "err", err.Error(), "retry_in", d.String())
		if !sleep(ctx, d) {
			return
		}
	}
}

func (c *Client) setEventsUp(up bool) {
	c.mu.Lock()
	c.sseUp = up
	c.mu.Unlock()
}

// subscribe reads one connection of the event stream until it ends, and
// reports whether it was established. A retry field of the stream sets
// *retry, the base of the reconnection backoff.
func (c *Client) subscribe(ctx context.Context, retry *time.Duration) (bool, error) {
	const path = "/api/events"
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c.mu.Lock()
	last := c.lastEvent
	c.mu.Unlock()
	h := http.Header{"Accept": {"text/event-stream"}, "Cache-Control": {"no-cache"}}
	if last != "" {
		h.Set("Last-Event-ID", last)
	}
	resp, err := c.events.Open(ctx, transport.Request{Method: http.MethodGet, Path: path, Header: h})
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, named(http.MethodGet, path, c.events.Decode(http.MethodGet, path, resp, nil))
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "text/event-stream" {
		return false, fmt.Errorf("GET %s: answer is %q, not an event stream", path, mt)
	}
	c.setEventsUp(true)
	c.log.Debug("event stream connected", "resumed", last != "")
	if last == "" {
		// Nothing to resume from: what happened before is in the configuration.
		c.requestRefresh()
	}

	// Whatever arrives, heartbeat comments included, shows the stream alive.
	idle := time.AfterFunc(sseIdleTimeout, cancel)
	defer idle.Stop()
	p := newSSEParser(activity{resp.Body, func() { idle.Reset(sseIdleTimeout) }}, maxEventPayload)
	for {
		ev, err := p.Next()
		if id := p.LastEventID(); id != "" {
			c.setLastEvent(id)
		}
		if d := p.Retry(); d > 0 {
			*retry = d
		}
		switch {
		case err == io.EOF:
			return true, errors.New("event stream ended by the server")
		case err != nil && ctx.Err() != nil && c.ctx.Err() == nil:
			return true, errors.New("event stream silent for too long")
		case err != nil:
			return true, fmt.Errorf("read event stream: %w", err)
		}
		c.dispatch(ev.Type, ev.Data)
	}
}

// activity is a reader that calls seen whenever bytes arrive.
type activity struct {
	r    io.Reader
	seen func()
}

func (a activity) Read(b []byte) (int, error) {
	n, err := a.r.Read(b)
	if n > 0 {
		a.seen()
	}
	return n, err
}

func (c *Client) setLastEvent(id string) {
	c.mu.Lock()
	c.lastEvent = id
	c.mu.Unlock()
}

// eventEnvelope is the data of every event but resync.
type eventEnvelope struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// eventProvider is the public provider view that provider.created and
// provider.updated carry.
type eventProvider struct {
	Name     string `json:"name"`
	Kind     Kind   `json:"kind"`
	Enabled  bool   `json:"enabled"`
	Priority int    `json:"priority"`
	Status   Status `json:"status"`
}

// dispatch reacts to one event at once: status transitions and configuration
// changes that make a provider unusable fail its streams over without waiting
// for anything else.
func (c *Client) dispatch(typ, data string) {
	if typ == "resync" {
		c.log.Info("event stream asked to resynchronise: refetching the configuration")
		c.requestRefresh()
		return
	}
	var env eventEnvelope
	if err := json.Unmarshal([]byte(data), &env); err != nil {
		c.log.Warn("event discarded: malformed", "type", typ, "err", err.Error())
		return
	}
	if strings.HasPrefix(typ, "provider") {
		// Whatever changed, some standbys may now be on the wrong provider.
		defer c.standbysChanged()
	}
	switch typ {
	case "provider.status":
		var ch struct {
			Name   string `json:"name"`
			From   Status `json:"from"`
			To     Status `json:"to"`
			Reason string `json:"reason"`
		}
		if json.Unmarshal(env.Data, &ch) != nil || ch.Name == "" {
			return
		}
		c.updateProvider(ch.Name, func(p *ProviderConfig) bool { p.Status, p.Usable = ch.To, usable(ch.To); return true })
		if mustLeave(ch.To) {
			c.failProvider(ch.Name, fmt.Sprintf("provider %s turned %s: %s", ch.Name, ch.To, ch.Reason))
		} else if mustLeave(ch.From) {
			c.forgive(ch.Name) // it has recovered
		} else if ch.From == StatusUnknown && usable(ch.To) {
			c.prioritiesChanged() // verified at last: it joins the providers to choose from, as a new one does
		}
	case "provider.created", "provider.updated":
		var p eventProvider
		if json.Unmarshal(env.Data, &p) != nil || p.Name == "" {
			return
		}
		known, reordered := false, false
		c.updateProvider(p.Name, func(cp *ProviderConfig) bool {
			known = true
			reordered = cp.Priority != p.Priority
			cp.Priority, cp.Status, cp.Usable = p.Priority, p.Status, usable(p.Status)
			return p.Enabled
		})
		switch {
		case !p.Enabled:
			c.failProvider(p.Name, "provider "+p.Name+" was disabled")
		case mustLeave(p.Status):
			c.failProvider(p.Name, "provider "+p.Name+" is "+string(p.Status))
		case !known:
			c.requestRefresh() // a new or re-enabled provider: fetch its full entry
			c.prioritiesChanged()
		case reordered:
			c.prioritiesChanged()
		}
	case "provider.deleted":
		var d struct {
			Name string `json:"name"`
		}
		if json.Unmarshal(env.Data, &d) != nil || d.Name == "" {
			return
		}
		c.updateProvider(d.Name, func(*ProviderConfig) bool { return false })
		c.failProvider(d.Name, "provider "+d.Name+" was deleted")
	case "settings.updated":
		var w wireConfig
		if json.Unmarshal(env.Data, &w) != nil {
			return
		}
		c.applySettings(w)
	case "maintenance.scheduled", "maintenance.started", "maintenance.ended":
		// Which providers take new streams may have changed: the
		// configuration says, and the standbys follow it.
		c.requestRefresh()
	case "stream.migrate":
		var m struct {
			StreamID string `json:"streamId"`
			From     string `json:"from"`
			Reason   string `json:"reason"`
		}
		if json.Unmarshal(env.Data, &m) != nil || m.StreamID == "" || m.From == "" {
			return
		}
		for _, s := range c.Streams() {
			if s.ID() == m.StreamID && s.trigger(trigger{kind: triggerHealth, provider: m.From, reason: m.Reason, at: time.Now()}) {
				c.log.Info("control plane asked to move the stream", "stream_id", m.StreamID, "from", m.From, "reason", m.Reason)
			}
		}
	case "providers.reordered":
		var r struct {
			Order []struct {
				Name     string `json:"name"`
				Priority int    `json:"priority"`
			} `json:"order"`
		}
		if json.Unmarshal(env.Data, &r) != nil {
			return
		}
		for _, o := range r.Order {
			c.updateProvider(o.Name, func(p *ProviderConfig) bool { p.Priority = o.Priority; return true })
		}
		c.prioritiesChanged()
	}
}
