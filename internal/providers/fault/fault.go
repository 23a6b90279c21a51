// Package fault runs the loopback fakes of the providers on a real listener and
// injects the faults that health probes must notice: refused connections, hangs,
// 5xx answers, rejected authentication, added latency and flapping.
package fault

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
)

// Mode is the behaviour of a fake server.
type Mode string

// Modes.
const (
	OK         Mode = "ok"          // serve normally
	Refuse     Mode = "refuse"      // close the listener: connections are refused
	Hang       Mode = "hang"        // accept, then never answer (until the request is cancelled or Stop)
	ServerErr  Mode = "5xx"         // answer 503 to every request
	RejectAuth Mode = "reject-auth" // authenticate every request as if its credentials were wrong
	Flap       Mode = "flap"        // alternate: FlapEvery requests OK, then FlapEvery answered 503
)

// Server is a loopback HTTP server with fault injection. The provider's handler
// asks AuthRejected to learn whether to treat credentials as wrong.
type Server struct {
	handler http.Handler
	addr    string

	mu        sync.Mutex
	mode      Mode
	latency   time.Duration
	flapEvery int
	count     int
	srv       *http.Server
	ln        net.Listener
	hangCh    chan struct{} // closed to release hanging requests
	requests  int
}

// Start starts a fake on an ephemeral loopback port.
func Start(h http.Handler) (*Server, error) {
	s := &Server{handler: h, mode: OK, flapEvery: 1, hangCh: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s.addr = ln.Addr().String()
	s.serve(ln)
	return s, nil
}

func (s *Server) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(s.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	s.srv, s.ln = srv, ln
	go func() { _ = srv.Serve(ln) }()
}

// URL is the base URL of the fake, e.g. http://127.0.0.1:41234.
func (s *Server) URL() string { return "http://" + s.addr }

// Addr is the host:port of the fake.
func (s *Server) Addr() string { return s.addr }

// Requests counts the requests served so far.
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// Set switches the fake to mode. Switching away from Refuse listens again on the
// same address; switching away from Hang releases hanging requests.
func (s *Server) Set(m Mode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mode == m {
		return nil
	}
	if s.mode == Hang {
		close(s.hangCh)
		s.hangCh = make(chan struct{})
	}
	if m == Refuse {
		srv, ln := s.srv, s.ln
		s.srv, s.ln = nil, nil
		if srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = srv.Shutdown(ctx)
			cancel()
			_ = srv.Close()
		}
		if ln != nil {
			// Close it here too: Serve may not have taken the listener yet, and
			// until it is closed the kernel still completes connections to it.
			_ = ln.Close()
		}
	} else if s.mode == Refuse {
		ln, err := listenRetry(s.addr)
		if err != nil {
			return err
		}
		s.serve(ln)
	}
	s.mode, s.count = m, 0
	return nil
}

func listenRetry(addr string) (net.Listener, error) {
	var err error
	for i := 0; i < 50; i++ {
		var ln net.Listener
		if ln, err = net.Listen("tcp", addr); err == nil {
			return ln, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return nil, err
}

// Mode returns the current mode.
func (s *Server) Mode() Mode {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mode
}

// SetLatency adds d before every answer.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	s.latency = d
	s.mu.Unlock()
}

// SetFlapEvery sets how many requests each half of a Flap cycle lasts (≥ 1).
func (s *Server) SetFlapEvery(n int) {
	s.mu.Lock()
	if n < 1 {
		n = 1
	}
	s.flapEvery = n
	s.mu.Unlock()
}

type ctxKey struct{}

// AuthRejected reports whether the fake is in RejectAuth mode for the request r:
// the provider handler then answers exactly as the real service does for wrong
// credentials.
func AuthRejected(r *http.Request) bool {
	v, _ := r.Context().Value(ctxKey{}).(bool)
	return v
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	mode, latency, hang := s.mode, s.latency, s.hangCh
	failFlap := false
	if mode == Flap {
		failFlap = (s.count/s.flapEvery)%2 == 1
		s.count++
	}
	s.mu.Unlock()

	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	switch {
	case mode == Hang:
		select {
		case <-hang:
		case <-r.Context().Done():
		}
		return
	case mode == ServerErr || failFlap:
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		return
	}
	ctx := context.WithValue(r.Context(), ctxKey{}, mode == RejectAuth)
	s.handler.ServeHTTP(w, r.WithContext(ctx))
}

// Close stops the fake and releases hanging requests.
func (s *Server) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mode == Hang {
		close(s.hangCh)
		s.hangCh = make(chan struct{})
	}
	s.mode = Refuse
	if s.srv == nil {
		return nil
	}
	err := s.srv.Close()
	if s.ln != nil {
		_ = s.ln.Close()
	}
	s.srv, s.ln = nil, nil
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Fake is the part every provider fake shares: the fault-injecting Server it
// runs on, with URL, Faults and Close. A provider's fake embeds it and sets it
// with StartFake once its handler is built.
type Fake struct{ srv *Server }

// StartFake starts a Server for h, as Start does, and returns it as a Fake.
func StartFake(h http.Handler) (Fake, error) {
	srv, err := Start(h)
	if err != nil {
		return Fake{}, err
	}
	return Fake{srv: srv}, nil
}

// URL is the base URL of the fake, e.g. http://127.0.0.1:41234.
func (f Fake) URL() string { return f.srv.URL() }

// Faults is the fault injector of the fake, to switch modes and latency.
func (f Fake) Faults() *Server { return f.srv }

// Close stops the fake and releases hanging requests.
func (f Fake) Close() error { return f.srv.Close() }
