package benchbase

import (
	"bufio"
	"context"
	"database/sql"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/internal/pgtest"
)

// TestHandler checks that the baseline answers the documents it was given on
// Switchboard's paths, refuses a start it cannot decode, and sends a
// published event to a subscriber.
func TestHandler(t *testing.T) {
	docs := Docs{Health: []byte(`{"name":"agora"}`), Config: []byte(`{"providers":[]}`), Start: []byte(`{"id":"s"}`), Heartbeat: []byte(`{"stream":{}}`)}
	hub := NewHub()
	srv := httptest.NewServer(Handler(docs, hub, nil))
	defer srv.Close()
	for _, c := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/api/streaming/providers/agora/health", "", 200, `{"name":"agora"}`},
		{"GET", "/api/streaming/config", "", 200, `{"providers":[]}`},
		{"POST", "/api/streams", `{"room":"r","userId":"u","role":"publisher"}`, 201, `{"id":"s"}`},
		{"POST", "/api/streams", `{"room":`, 400, `"field":"room"`},
		{"POST", "/api/streams/s/heartbeat", "", 200, `{"stream":{}}`},
		{"POST", "/api/streams/s/heartbeat", `{"provider":`, 400, `"field":"body"`},
		{"GET", "/healthz", "", 200, `{"status":"ok"}`},
	} {
		req, _ := http.NewRequest(c.method, srv.URL+c.path, strings.NewReader(c.body))
		if c.body == "" {
			req.Body, req.ContentLength = http.NoBody, 0
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(b), c.want) {
			t.Errorf("%s %s: %d %s, want %d %s", c.method, c.path, resp.StatusCode, b, c.status, c.want)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	if line, err := r.ReadString('\n'); err != nil || line != ": ok\n" {
		t.Fatalf("first line %q %v", line, err)
	}
	for hub.Len() == 0 { // registered just after the first line is flushed
		time.Sleep(time.Millisecond)
	}
	if resp, err := http.Post(srv.URL+"/bench/publish", "application/json", strings.NewReader(`{"room":"m-1"}`)); err != nil || resp.StatusCode != 204 {
		t.Fatalf("publish: %v %v", resp, err)
	}
	var got []string
	for len(got) < 3 {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, line)
	}
	if strings.Join(got, "") != "\nevent: bench\ndata: {\"room\":\"m-1\"}\n" {
		t.Fatalf("event lines %q", got)
	}
}

// TestHandlerRecordsStarts: on PostgreSQL the baseline answers a start once
// its row is committed, and a start it cannot record is an error, not a 201.
func TestHandlerRecordsStarts(t *testing.T) {
	db, err := sql.Open("pgx", pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	srv := httptest.NewServer(Handler(Docs{Start: []byte(`{"id":"s"}`)}, NewHub(), db))
	defer srv.Close()
	post := func() int {
		resp, err := http.Post(srv.URL+"/api/streams", "application/json", strings.NewReader(`{"room":"r-1","userId":"u","role":"publisher"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post(); code != http.StatusServiceUnavailable {
		t.Fatalf("start without the table: %d, want 503", code)
	}
	if _, err := db.Exec(StartsTable); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if code := post(); code != http.StatusCreated {
			t.Fatalf("start: %d, want 201", code)
		}
	}
	var n int
	var room, user, role string
	if err := db.QueryRow(`SELECT count(*), min(room), min(user_id), min(role) FROM bench_starts`).Scan(&n, &room, &user, &role); err != nil {
		t.Fatal(err)
	}
	if n != 3 || room != "r-1" || user != "u" || role != "publisher" {
		t.Errorf("bench_starts holds %d rows (%s, %s, %s), want 3 of r-1, u, publisher", n, room, user, role)
	}
}
