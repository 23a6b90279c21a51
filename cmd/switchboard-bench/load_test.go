package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestOpenLoop: requests go out at the rate asked whatever the answers'
// pace, and a server slower than the rate shows in the latencies, counted
// from when each request was due, not in fewer requests.
func TestOpenLoop(t *testing.T) {
	serve := func(delay time.Duration) *httptest.Server {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			time.Sleep(delay)
			w.WriteHeader(http.StatusCreated)
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	next := func(srv *httptest.Server) request {
		host := hostOf(srv.URL)
		return func(dst []byte, i int64) (string, []byte) {
			return host, appendRequest(dst, "POST", host, "/x", "", []byte(`{}`))
		}
	}

	// A quick server: 200 a second for 0.5 s is 100 requests.
	fast := serve(0)
	r := openLoop(context.Background(), 200, 8, 500*time.Millisecond, http.StatusCreated, next(fast))
	if r.Errors != 0 || r.Requests != 100 {
		t.Fatalf("%d requests, %d errors (%s), want 100 and none", r.Requests, r.Errors, r.firstErr)
	}

	// A server that takes 20 ms, on 2 connections: 100 a second at most,
	// asked 200 a second. The requests due late wait, and say so: the last
	// ones were due about 0.25 s before they could go out.
	slow := serve(20 * time.Millisecond)
	r = openLoop(context.Background(), 200, 2, 500*time.Millisecond, http.StatusCreated, next(slow))
	if r.Errors != 0 || r.Requests != 100 {
		t.Fatalf("%d requests, %d errors (%s), want 100 and none", r.Requests, r.Errors, r.firstErr)
	}
	s := summarise([]loadResult{r})
	if s.P99Ms < 150 {
		t.Errorf("p99 %.1f ms from a server at half the rate asked: the wait of the requests due is not counted", s.P99Ms)
	}
	if r.Elapsed < 900*time.Millisecond {
		t.Errorf("100 requests of 20 ms on 2 connections took %v", r.Elapsed)
	}
}
