package main

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/internal/pgtest"
)

// TestRegionalEventsOncePerChange runs two replica processes on one
// PostgreSQL schema and reports an agent's probes to the one that does not
// lead: each replica's subscribers hear of the region turning CRITICAL
// exactly once, as only the leader publishes it.
func TestRegionalEventsOncePerChange(t *testing.T) {
	dsn := pgtest.DSN(t)
	reps := []*proc{startReplica(t, dsn), startReplica(t, dsn)}
	fake := agoraFake(t)
	body := agoraBody("agora", fake.URL())
	body["healthCheck"] = map[string]any{"interval": "1s", "timeout": "500ms"}
	if st := call(t, "POST", reps[0].url+"/api/streaming/providers", serveToken, body, nil); st != 201 {
		t.Fatalf("create provider: %d", st)
	}
	var tok struct{ Token string }
	if st := call(t, "POST", reps[0].url+"/api/auth/tokens", serveToken, map[string]any{"name": "sin-1", "role": "agent"}, &tok); st != 201 {
		t.Fatalf("create agent token: %d", st)
	}
	streams := [](<-chan sseEvent){subscribe(t, reps[0].url), subscribe(t, reps[1].url)}

	report := func(ok bool) {
		t.Helper()
		res := map[string]any{"provider": "agora", "ok": ok, "latencyMs": 40, "at": time.Now().UTC()}
		if !ok {
			res["stage"], res["message"] = "connect", "connection refused"
		}
		for _, rep := range reps { // to either replica, whichever leads
			if st := call(t, "POST", rep.url+"/api/agent/results", tok.Token,
				map[string]any{"region": "ap-south", "results": []any{res}}, nil); st != 200 {
				t.Fatalf("report: %d", st)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	report(true)
	time.Sleep(3 * time.Second) // a look of the leader's watch
	for range 2 {
		report(false)
	}
	for i, ch := range streams {
		type change struct{ Provider, Region, From, To, Source string }
		seen := map[[2]string]int{}
		var critical int
		for end := time.After(6 * time.Second); ; {
			var e sseEvent
			select {
			case e = <-ch:
			case <-end:
			}
			if e.typ == "" {
				break
			}
			if e.typ != "provider.regional" {
				continue
			}
			var c change
			if err := json.Unmarshal(e.data, &c); err != nil {
				t.Fatal(err)
			}
			if c.Region != "ap-south" || c.Source != "agent:sin-1" {
				t.Errorf("replica %d: change = %+v", i+1, c)
			}
			seen[[2]string{c.From, c.To}]++
			if c.To == "CRITICAL" {
				critical++
			}
		}
		if critical != 1 {
			t.Errorf("replica %d: %d events to CRITICAL, want 1 (changes: %v)", i+1, critical, seen)
		}
		for k, n := range seen {
			if n != 1 {
				t.Errorf("replica %d: change %v told %d times", i+1, k, n)
			}
		}
	}
}
