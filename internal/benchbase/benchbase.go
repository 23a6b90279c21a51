// Package benchbase is the bare net/http baseline that the benchmark
// (cmd/switchboard-bench, run by scripts/bench) measures Switchboard
// against: the same paths, answering documents of the same size that
// Switchboard answered, with the standard library alone and nothing else to
// do (no authentication, no routing, and no store but, for the starts on
// PostgreSQL, a committed row each), and a minimal event hub for the fan-out
// comparison. What the baseline costs is the floor of what the
// machine, the HTTP stack and the load generator cost.
package benchbase

import (
	"database/sql"
	"encoding/json"
	"io"
	"net/http"
	"sync"
)

// Docs are the bodies the baseline answers, copied from Switchboard's
// answers to the same requests so that both sides write as many bytes.
type Docs struct {
	Health    json.RawMessage `json:"health"`
	Config    json.RawMessage `json:"config"`
	Start     json.RawMessage `json:"start"`
	Heartbeat json.RawMessage `json:"heartbeat"`
}

// startRequest is what a stream start decodes, as Switchboard decodes it.
type startRequest struct {
	Room           string   `json:"room"`
	UserID         string   `json:"userId"`
	Role           string   `json:"role"`
	Region         string   `json:"region"`
	IdempotencyKey string   `json:"idempotencyKey"`
	Exclude        []string `json:"exclude"`
}

// heartbeatRequest is the optional body of a heartbeat.
type heartbeatRequest struct {
	Provider string `json:"provider"`
	State    string `json:"state"`
}

// StartsTable is the table a baseline on PostgreSQL records its starts in:
// the least a durable start can write, a row under a key the database draws.
// The benchmark creates it before it starts the baselines that share it.
const StartsTable = `CREATE TABLE bench_starts (
	id bigserial PRIMARY KEY,
	room text NOT NULL,
	user_id text NOT NULL,
	role text NOT NULL,
	started_at timestamptz NOT NULL DEFAULT now())`

// Handler serves docs on Switchboard's paths, and hub's event stream on
// GET /api/events with POST /bench/publish sending its body to every
// subscriber. With db, a start is answered once its row is committed in
// bench_starts (see StartsTable), a transaction of its own: the baseline of
// starts on PostgreSQL, where a replica is any number of such processes.
func Handler(docs Docs, hub *Hub, db *sql.DB) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		write(w, http.StatusOK, []byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("GET /api/streaming/providers/{name}/health", func(w http.ResponseWriter, r *http.Request) {
		write(w, http.StatusOK, docs.Health)
	})
	mux.HandleFunc("GET /api/streaming/config", func(w http.ResponseWriter, r *http.Request) {
		write(w, http.StatusOK, docs.Config)
	})
	mux.HandleFunc("POST /api/streams", func(w http.ResponseWriter, r *http.Request) {
		var req startRequest
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil || req.Room == "" {
			write(w, http.StatusBadRequest, []byte(`{"error":{"code":"invalid","field":"room"}}`))
			return
		}
		if db != nil {
			if _, err := db.ExecContext(r.Context(), `INSERT INTO bench_starts (room, user_id, role) VALUES ($1, $2, $3)`,
				req.Room, req.UserID, req.Role); err != nil {
				write(w, http.StatusServiceUnavailable, []byte(`{"error":{"code":"unavailable"}}`))
				return
			}
		}
		write(w, http.StatusCreated, docs.Start)
	})
	mux.HandleFunc("POST /api/streams/{id}/heartbeat", func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 {
			var req heartbeatRequest
			if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
				write(w, http.StatusBadRequest, []byte(`{"error":{"code":"invalid","field":"body"}}`))
				return
			}
		}
		write(w, http.StatusOK, docs.Heartbeat)
	})
	mux.Handle("GET /api/events", hub)
	mux.HandleFunc("POST /bench/publish", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		hub.Publish(b)
		w.WriteHeader(http.StatusNoContent)
	})
	return mux
}

func write(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Hub is the minimal server-sent events hub: one goroutine per subscriber
// (its handler's), a buffered channel each, events dropped for a subscriber
// whose buffer is full.
type Hub struct {
	mu   sync.Mutex
	subs map[chan []byte]struct{} // guarded by mu
}

// NewHub returns a hub with no subscribers.
func NewHub() *Hub { return &Hub{subs: map[chan []byte]struct{}{}} }

// Publish sends data as one event to every subscriber. It never blocks.
func (h *Hub) Publish(data []byte) {
	frame := append(append([]byte("event: bench\ndata: "), data...), '\n', '\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.subs {
		select {
		case c <- frame:
		default:
		}
	}
}

// Len returns the number of subscribers.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// ServeHTTP streams the published events to the caller until it goes away.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write([]byte(": ok\n\n"))
	if rc.Flush() != nil {
		return
	}
	c := make(chan []byte, 16)
	h.mu.Lock()
	h.subs[c] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.subs, c)
		h.mu.Unlock()
	}()
	for {
		select {
		case <-r.Context().Done():
			return
		case f := <-c:
			if _, err := w.Write(f); err != nil {
				return
			}
			if rc.Flush() != nil {
				return
			}
		}
	}
}
