package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestReadResponse reads the answers the servers give (a length, chunks,
// no body, a body to the end of the connection) and refuses malformed ones.
func TestReadResponse(t *testing.T) {
	cases := []struct {
		name   string
		in     string
		status int
		keep   bool
		err    bool
	}{
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: application/json\r\n\r\nhello", 200, true, false},
		{"chunked", "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n3\r\nabc\r\n0\r\nTrailer: t\r\n\r\n", 201, true, false},
		{"no body", "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n", 304, true, false},
		{"close", "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", 503, false, false},
		{"to the end", "HTTP/1.1 200 OK\r\n\r\nall of it", 200, false, false},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", 200, false, false},
		{"not http", "SSH-2.0-OpenSSH\r\n\r\n", 0, false, true},
		{"bad status", "HTTP/1.1 2x0 OK\r\n\r\n", 0, false, true},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 200, false, true},
		{"bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 200, true, true},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 200, true, true},
		{"header without colon", "HTTP/1.1 200 OK\r\nbroken\r\n\r\n", 200, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			br := bufio.NewReader(strings.NewReader(c.in))
			status, keep, err := readResponse(br)
			if (err != nil) != c.err {
				t.Fatalf("err = %v, want error: %v", err, c.err)
			}
			if status != c.status {
				t.Errorf("status = %d, want %d", status, c.status)
			}
			if err == nil && keep != c.keep {
				t.Errorf("keep = %v, want %v", keep, c.keep)
			}
			if err == nil {
				if rest, _ := io.ReadAll(br); len(rest) != 0 {
					t.Errorf("left unread: %q", rest)
				}
			}
		})
	}
}

// TestRawClientAgainstNetHTTP sends requests built by appendRequest to a
// real net/http server on one kept-alive connection: the server sees the
// method, path, token and body, and every answer (fixed length, chunked,
// empty, closing) is read whole so that the next one starts in the right
// place.
func TestRawClientAgainstNetHTTP(t *testing.T) {
	var dials atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer tok" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/big": // past net/http's buffer: chunked
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, strings.Repeat("x", 10000))
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/close":
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, body)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			dials.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	host := hostOf(srv.URL)
	rc := newRawClient(time.Now().Add(10 * time.Second))
	defer rc.close()
	want := []struct {
		method, path, token string
		body                []byte
		status              int
	}{
		{"POST", "/api/streams", "tok", []byte(`{"room":"r"}`), 201},
		{"GET", "/big", "tok", nil, 200},
		{"POST", "/x/heartbeat", "tok", nil, 201},
		{"GET", "/empty", "tok", nil, 204},
		{"GET", "/a", "", nil, 401},
		{"GET", "/a", "tok", nil, 201},
	}
	for _, w := range want {
		status, err := rc.do(host, appendRequest(nil, w.method, host, w.path, w.token, w.body))
		if err != nil || status != w.status {
			t.Fatalf("%s %s: status %d, %v; want %d", w.method, w.path, status, err, w.status)
		}
	}
	if dials.Load() != 1 {
		t.Errorf("%d connections for %d requests, want 1 kept alive", dials.Load(), len(want))
	}
	if status, err := rc.do(host, appendRequest(nil, "GET", host, "/close", "tok", nil)); err != nil || status != 503 {
		t.Fatalf("close: %d %v", status, err)
	}
	if status, err := rc.do(host, appendRequest(nil, "GET", host, "/a", "tok", nil)); err != nil || status != 201 {
		t.Fatalf("after close: %d %v", status, err)
	}
	if dials.Load() != 2 {
		t.Errorf("%d connections, want a second one after the server closed the first", dials.Load())
	}
	if got := requestLine(appendRequest(nil, "POST", host, "/p", "secret-token", nil)); got != "POST /p" {
		t.Errorf("requestLine = %q", got)
	}
	if _, err := rc.do("127.0.0.1:1", []byte("GET / HTTP/1.1\r\n\r\n")); err == nil || errors.Is(err, errMalformed) {
		t.Errorf("dial to a closed port: %v", err)
	}
}
