package conformance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchboardhq/switchboard/client"
	"github.com/switchboardhq/switchboard/client/clienttest"
)

// GoService is the test service of the Go SDK (package client), with the
// simulated engine of package clienttest for every provider kind. It serves
// the protocol of docs/sdk-protocol.md ("The test service"). Close closes the
// clients it still holds.
type GoService struct {
	mu      sync.Mutex
	next    int
	clients map[string]*goClient
}

type goClient struct {
	c       *client.Client
	eng     *clienttest.Engine
	gate    *hangGate
	logs    *logLines
	mu      sync.Mutex
	streams map[string]*goStream
	next    int
}

type goStream struct {
	s      *client.Stream
	mu     sync.Mutex
	states []map[string]any
	done   chan struct{}
}

// NewGoService returns an empty service.
func NewGoService() *GoService { return &GoService{clients: map[string]*goClient{}} }

// Close closes every client still open.
func (g *GoService) Close() {
	g.mu.Lock()
	cs := g.clients
	g.clients = map[string]*goClient{}
	g.mu.Unlock()
	for _, c := range cs {
		_ = c.c.Close()
	}
}

// ServeHTTP serves the test service protocol.
func (g *GoService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/":
		writeJSON(w, http.StatusOK, map[string]any{"name": "switchboard-go", "sdk": "github.com/switchboardhq/switchboard/client"})
	case r.Method == http.MethodPost && len(parts) == 1 && parts[0] == "clients":
		g.newClient(w, r)
	case len(parts) >= 2 && parts[0] == "clients":
		g.mu.Lock()
		c := g.clients[parts[1]]
		g.mu.Unlock()
		if c == nil {
			writeError(w, http.StatusNotFound, "NotFound", "no such client")
			return
		}
		g.clientRoute(w, r, parts[1], c, parts[2:])
	default:
		writeError(w, http.StatusNotFound, "NotFound", "no such route")
	}
}

func (g *GoService) newClient(w http.ResponseWriter, r *http.Request) {
	var in struct {
		ServerURL         string `json:"serverUrl"`
		Token             string `json:"token"`
		FailoverTimeoutMs int    `json:"failoverTimeoutMs"`
		HeartbeatMs       int    `json:"heartbeatMs"`
		Policy            struct {
			Type string  `json:"type"`
			Rate float64 `json:"rate"`
		} `json:"policy"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	eng := clienttest.New(5 * time.Millisecond)
	gate := &hangGate{MediaEngine: eng, hung: map[string]chan struct{}{}}
	logs := &logLines{}
	opts := []client.Option{client.WithLogger(slog.New(logs))}
	for _, k := range []client.Kind{client.KindAgora, client.KindZegocloud, client.KindLiveKit, client.KindHTTP} {
		opts = append(opts, client.WithEngine(k, gate))
	}
	if in.FailoverTimeoutMs > 0 {
		opts = append(opts, client.WithFailoverTimeout(time.Duration(in.FailoverTimeoutMs)*time.Millisecond))
	}
	if in.Policy.Type == "migrateGradually" {
		opts = append(opts, client.WithPolicy(client.MigrateGradually{Rate: in.Policy.Rate}))
	}
	if in.HeartbeatMs > 0 {
		opts = append(opts, client.WithHeartbeat(time.Duration(in.HeartbeatMs)*time.Millisecond))
	}
	c, err := client.New(in.ServerURL, in.Token, opts...)
	if err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	g.mu.Lock()
	g.next++
	id := "c" + strconv.Itoa(g.next)
	g.clients[id] = &goClient{c: c, eng: eng, gate: gate, logs: logs, streams: map[string]*goStream{}}
	g.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"id": id})
}

func (g *GoService) clientRoute(w http.ResponseWriter, r *http.Request, id string, c *goClient, rest []string) {
	switch {
	case len(rest) == 0 && r.Method == http.MethodGet:
		cfg, _ := c.c.Config()
		providers := make([]map[string]any, len(cfg.Providers))
		for i, p := range cfg.Providers {
			providers[i] = map[string]any{"name": p.Name, "priority": p.Priority, "status": p.Status}
		}
		writeJSON(w, http.StatusOK, map[string]any{"eventsConnected": c.c.EventsConnected(), "logs": c.logs.list(),
			"config": map[string]any{"maxRetries": cfg.MaxRetries, "maxFailures": cfg.MaxFailures, "providers": providers}})
	case len(rest) == 0 && r.Method == http.MethodDelete:
		g.mu.Lock()
		delete(g.clients, id)
		g.mu.Unlock()
		out := map[string]any{}
		if err := c.c.Close(); err != nil {
			out["error"] = err.Error()
		}
		writeJSON(w, http.StatusOK, out)
	case len(rest) == 1 && rest[0] == "streams" && r.Method == http.MethodPost:
		c.start(w, r)
	case len(rest) == 1 && rest[0] == "faults" && r.Method == http.MethodPost:
		c.fault(w, r)
	case len(rest) >= 2 && rest[0] == "streams":
		c.mu.Lock()
		s := c.streams[rest[1]]
		c.mu.Unlock()
		if s == nil {
			writeError(w, http.StatusNotFound, "NotFound", "no such stream")
			return
		}
		switch {
		case len(rest) == 2 && r.Method == http.MethodGet:
			s.mu.Lock()
			states := append([]map[string]any{}, s.states...)
			s.mu.Unlock()
			ended := false
			select {
			case <-s.s.Done():
				ended = true
			default:
			}
			writeJSON(w, http.StatusOK, map[string]any{"streamId": s.s.ID(), "provider": s.s.Provider(), "ended": ended, "states": states})
		case len(rest) == 3 && rest[2] == "end" && r.Method == http.MethodPost:
			ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
			defer cancel()
			out := map[string]any{}
			if err := s.s.Close(ctx); err != nil {
				out["error"] = err.Error()
			}
			<-s.done
			writeJSON(w, http.StatusOK, out)
		default:
			writeError(w, http.StatusNotFound, "NotFound", "no such route")
		}
	default:
		writeError(w, http.StatusNotFound, "NotFound", "no such route")
	}
}

func (c *goClient) start(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Room   string `json:"room"`
		UserID string `json:"userId"`
		Role   string `json:"role"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 30*time.Second)
	defer cancel()
	s, err := c.c.Start(ctx, in.Room, client.WithUserID(in.UserID), client.WithRole(client.Role(in.Role)))
	if err != nil {
		writeError(w, http.StatusUnprocessableEntity, errorType(err), err.Error())
		return
	}
	gs := &goStream{s: s, done: make(chan struct{})}
	// The Go SDK's states channel starts with the states of the start:
	// Connecting ... Live. Drain it for the whole life of the stream.
	go func() {
		defer close(gs.done)
		for st := range s.States() {
			gs.mu.Lock()
			gs.states = append(gs.states, stateJSON(st))
			gs.mu.Unlock()
		}
	}()
	c.mu.Lock()
	c.next++
	id := "s" + strconv.Itoa(c.next)
	c.streams[id] = gs
	c.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{"id": id, "streamId": s.ID(), "provider": s.Provider()})
}

func (c *goClient) fault(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Provider string `json:"provider"`
		Kind     string `json:"kind"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, "BadRequest", err.Error())
		return
	}
	n := 0
	switch in.Kind {
	case "down":
		c.eng.Down(in.Provider, true)
	case "up":
		c.eng.Down(in.Provider, false)
		c.gate.hang(in.Provider, false)
	case "hang":
		c.gate.hang(in.Provider, true)
		n = c.eng.Stall(in.Provider)
	case string(client.ConnectionLost), string(client.TokenRejected), string(client.MediaStalled):
		n = len(c.eng.Cut(in.Provider, client.MediaErrorKind(in.Kind), 1))
	default:
		writeError(w, http.StatusBadRequest, "BadRequest", "kind: unknown fault "+strconv.Quote(in.Kind))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"affected": n})
}

// hangGate holds the connects to the providers that hang until they are up
// again (then they go on) or their context ends: a provider that answers no
// join, for as long as the scenario says.
type hangGate struct {
	client.MediaEngine
	mu   sync.Mutex
	hung map[string]chan struct{} // closed when the provider is up again
}

func (g *hangGate) hang(provider string, on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch, hung := g.hung[provider]
	switch {
	case on && !hung:
		g.hung[provider] = make(chan struct{})
	case !on && hung:
		close(ch)
		delete(g.hung, provider)
	}
}

// Connect waits while the provider hangs, then connects with the engine.
func (g *hangGate) Connect(ctx context.Context, a client.Assignment, report func(client.MediaError)) (client.Connection, error) {
	g.mu.Lock()
	ch := g.hung[a.Provider.Name]
	g.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("simulated connect to %s: no answer: %w", a.Provider.Name, ctx.Err())
		}
	}
	return g.MediaEngine.Connect(ctx, a, report)
}

// errorType names an error of Start as the kit does.
func errorType(err error) string {
	var e *client.Error
	switch {
	case errors.Is(err, client.ErrClosed):
		return "ClosedError"
	case errors.As(err, &e) && e.StatusCode < 500 && e.StatusCode != http.StatusTooManyRequests:
		return "ApiError"
	default:
		return "NoProviderError"
	}
}

func stateJSON(st client.State) map[string]any {
	switch s := st.(type) {
	case client.Connecting:
		return map[string]any{"type": "connecting", "provider": s.Provider, "attempt": s.Attempt}
	case client.Live:
		return map[string]any{"type": "live", "provider": s.Provider}
	case client.Reconnecting:
		return map[string]any{"type": "reconnecting", "provider": s.Provider, "attempt": s.Attempt, "error": fmt.Sprint(s.Err)}
	case client.FailingOver:
		return map[string]any{"type": "failingOver", "from": s.From, "reason": s.Reason}
	case client.Migrated:
		return map[string]any{"type": "migrated", "from": s.From, "to": s.To, "reason": s.Reason, "gapMs": s.Gap.Milliseconds()}
	case client.Failed:
		return map[string]any{"type": "failed", "error": fmt.Sprint(s.Err)}
	}
	return map[string]any{"type": "unknown"}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, typ, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{"type": typ, "message": msg}})
}

// logLines is a slog.Handler that keeps the messages.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.lines = append(l.lines, r.Message)
	l.mu.Unlock()
	return nil
}
func (l *logLines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logLines) WithGroup(string) slog.Handler      { return l }
func (l *logLines) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string{}, l.lines...)
}
