package main

import (
	"database/sql"
	"strconv"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/internal/pgtest"
)

// TestReplicaResumeFromBeforeItStarted: a replica's hub holds the events
// appended after the replica started, and no earlier one. A client that
// resumes there with the id of an event from before (it was subscribed at
// another replica, which went away) is told to resync, rather than given
// the events this replica has and silently missing those in between.
func TestReplicaResumeFromBeforeItStarted(t *testing.T) {
	dsn := pgtest.DSN(t)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// eventID waits for the event of type typ to be in the shared log.
	eventID := func(typ string) int64 {
		t.Helper()
		var id int64
		if !poll(10*time.Second, func() bool {
			return db.QueryRow(`SELECT id FROM switchboard_events WHERE type = $1 ORDER BY id DESC LIMIT 1`, typ).Scan(&id) == nil
		}) {
			t.Fatalf("no %s event in the log", typ)
		}
		return id
	}

	first := startReplica(t, dsn)
	fake := agoraFake(t)
	if st := call(t, "POST", first.url+"/api/streaming/providers", serveToken, agoraBody("agora", fake.URL()), nil); st != 201 {
		t.Fatalf("create provider: %d", st)
	}
	seen := eventID("provider.created") // the client's last event, at the first replica
	if st := call(t, "PUT", first.url+"/api/routing", serveToken, map[string]any{"margin": 7}, nil); st != 200 {
		t.Fatalf("PUT /api/routing: %d", st)
	}
	missed := eventID("routing.updated") // appended before the second replica starts
	if missed <= seen {
		t.Fatalf("routing.updated has id %d, provider.created %d", missed, seen)
	}

	second := startReplica(t, dsn)
	live := subscribe(t, second.url)
	if st := call(t, "POST", first.url+"/api/streaming/providers", serveToken, agoraBody("agora-2", fake.URL()), nil); st != 201 {
		t.Fatalf("create provider: %d", st)
	}
	waitEvent(t, live, "provider.created", `"agora-2"`) // the second replica's hub has events after `missed`

	resumed := subscribeFrom(t, second.url, strconv.FormatInt(seen, 10))
	select {
	case e := <-resumed:
		if e.typ != "resync" {
			t.Fatalf("resuming at id %d (routing.updated %d came before this replica): first event %s %s %s, want resync",
				seen, missed, e.typ, e.id, e.data)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no event after resuming")
	}
}
