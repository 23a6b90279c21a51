package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/internal/providers/agora/agorafake"
	"github.com/switchboardhq/switchboard/internal/providers/fault"
)

// sseEvent is one event read from GET /api/events.
type sseEvent struct {
	typ  string
	id   string
	data json.RawMessage
}

// subscribe reads the server's event stream as the superadmin until the test
// ends.
func subscribe(t *testing.T, url string) <-chan sseEvent {
	t.Helper()
	return subscribeFrom(t, url, "")
}

// subscribeFrom is subscribe resuming after the event lastID (none when
// empty), as an EventSource that reconnects does.
func subscribeFrom(t *testing.T, url, lastID string) <-chan sseEvent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", url+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+serveToken)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		cancel()
		t.Fatalf("GET /api/events: %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "retry:") {
		cancel()
		t.Fatalf("event stream did not open with a retry line: %q", sc.Text())
	}
	ch := make(chan sseEvent, 1024)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		var typ, id string
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "id: "):
				id = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				typ = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				var env struct {
					Data json.RawMessage `json:"data"`
				}
				if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &env) == nil {
					select {
					case ch <- sseEvent{typ: typ, id: id, data: env.Data}:
					default: // the test stopped reading
					}
				}
			}
		}
	}()
	t.Cleanup(func() { cancel(); resp.Body.Close(); <-done })
	return ch
}

// waitEvent returns the first event of type typ whose data holds want,
// failing the test after 15 s.
func waitEvent(t *testing.T, ch <-chan sseEvent, typ, want string) sseEvent {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("event stream ended before %s %s", typ, want)
			}
			if e.typ == typ && strings.Contains(string(e.data), want) {
				return e
			}
		case <-timeout:
			t.Fatalf("no %s with %s in 15 s", typ, want)
		}
	}
}

// TestPreemptiveModes runs switchboard serve with two providers, makes the
// first one degrade (failed probes scattered among successes: never three in
// a row, so its status stays usable) and checks what each value of the
// setting preemptive does with it, then storm control.
func TestPreemptiveModes(t *testing.T) {
	fa, fb := agoraFake(t), agoraFake(t)
	s := startInProcess(t, t.TempDir())
	defer s.stop(t)
	events := subscribe(t, s.url)
	for i, p := range []struct {
		name string
		fake *agorafake.Fake
	}{{"a", fa}, {"b", fb}} {
		body := agoraBody(p.name, p.fake.URL())
		body["priority"] = i + 1
		if st := call(t, "POST", s.url+"/api/streaming/providers", serveToken, body, nil); st != 201 {
			t.Fatalf("create %s: %d", p.name, st)
		}
	}
	degrade := func(name string, f *agorafake.Fake) {
		t.Helper()
		for i, ok := range []bool{false, true, false, true, false} {
			mode := fault.OK
			if !ok {
				mode = fault.ServerErr
			}
			if err := f.Faults().Set(mode); err != nil {
				t.Fatal(err)
			}
			var res struct {
				Healthy bool `json:"healthy"`
				Usable  bool `json:"usable"`
			}
			if st := call(t, "POST", s.url+"/api/streaming/providers/"+name+"/health-check", serveToken, nil, &res); st != 200 || res.Healthy != ok || !res.Usable {
				t.Fatalf("check %d of %s: %d %+v, want healthy %v and usable", i, name, st, res, ok)
			}
		}
		if err := f.Faults().Set(fault.OK); err != nil {
			t.Fatal(err)
		}
		waitEvent(t, events, "provider.degrading", `"provider":"`+name+`"`)
	}
	start := func() (id, provider string) {
		t.Helper()
		var a struct {
			ID       string `json:"id"`
			Provider struct {
				Name string `json:"name"`
			} `json:"provider"`
		}
		if st := call(t, "POST", s.url+"/api/streams", serveToken, map[string]any{"room": "r", "userId": "u", "role": "publisher"}, &a); st != 201 {
			t.Fatalf("start: %d", st)
		}
		return a.ID, a.Provider.Name
	}
	settings := func(body map[string]any) {
		t.Helper()
		if st, b, err := callErr("PUT", s.url+"/api/settings", serveToken, body); err != nil || st != 200 {
			t.Fatalf("PUT /api/settings %v: %d %s %v", body, st, b, err)
		}
	}

	if _, p := start(); p != "a" {
		t.Fatalf("before any prediction a stream went to %s, want a (priority 1)", p)
	}
	degrade("a", fa)

	// The provider view and the metric show it, with the evidence.
	var view struct {
		Status      string `json:"status"`
		Usable      bool   `json:"usable"`
		Degrading   bool   `json:"degrading"`
		Degradation struct {
			Evidence []struct {
				Signal  string `json:"signal"`
				Summary string `json:"summary"`
			} `json:"evidence"`
		} `json:"degradation"`
	}
	if st := call(t, "GET", s.url+"/api/streaming/providers/a", serveToken, nil, &view); st != 200 || !view.Usable || !view.Degrading ||
		len(view.Degradation.Evidence) == 0 || view.Degradation.Evidence[0].Signal != "errors" {
		t.Fatalf("GET a: %d %+v, want usable and degrading on errors", st, view)
	}
	_, metrics, err := callErr("GET", s.url+"/metrics", "", nil)
	if err != nil || !strings.Contains(string(metrics), `switchboard_provider_degrading{provider="a"} 1`) {
		t.Fatalf("metrics lack switchboard_provider_degrading for a: %v", err)
	}

	// new-streams, the default: new streams go to b; a is only a fallback.
	id, p := start()
	if p != "b" {
		t.Fatalf("new-streams: a stream went to %s, want b", p)
	}
	_, detail, _ := callErr("GET", s.url+"/api/streams/"+id, serveToken, nil)
	if !strings.Contains(string(detail), "a is degrading") {
		t.Errorf("the decision trail does not say why a was passed over:\n%s", detail)
	}

	// off: predictions are ignored.
	settings(map[string]any{"preemptive": "off"})
	for range 3 {
		if _, p := start(); p != "a" {
			t.Fatalf("off: a stream went to %s, want a", p)
		}
	}

	// migrate: the streams on a are asked to move, at most 2 a minute.
	settings(map[string]any{"preemptive": "migrate", "maxPreemptiveMigrationsPerMinute": 2})
	asked := map[string]bool{}
	for range 2 {
		e := waitEvent(t, events, "stream.migrate", `"from":"a"`)
		var m struct {
			StreamID   string `json:"streamId"`
			Reason     string `json:"reason"`
			Prediction struct {
				Degrading bool `json:"degrading"`
			} `json:"prediction"`
		}
		if err := json.Unmarshal(e.data, &m); err != nil || !m.Prediction.Degrading || !strings.Contains(m.Reason, "a is degrading") {
			t.Fatalf("stream.migrate %s: %v", e.data, err)
		}
		asked[m.StreamID] = true
	}
	if len(asked) != 2 {
		t.Fatalf("asked %v, want two different streams", asked)
	}
	// Four streams are on a; within the minute no third is asked.
	quiet := time.After(3 * time.Second)
wait:
	for {
		select {
		case e := <-events:
			if e.typ == "stream.migrate" {
				t.Fatalf("a third stream.migrate within the minute: %s", e.data)
			}
		case <-quiet:
			break wait
		}
	}

	// Storm control: with b degrading too, every usable provider is, and
	// predictions are ignored: a (priority 1) takes new streams again.
	settings(map[string]any{"preemptive": "new-streams"})
	degrade("b", fb)
	id, p = start()
	if p != "a" {
		t.Fatalf("storm: a stream went to %s, want a", p)
	}
	_, detail, _ = callErr("GET", s.url+"/api/streams/"+id, serveToken, nil)
	if !strings.Contains(string(detail), "storm control") {
		t.Errorf("the decision trail does not mention storm control:\n%s", detail)
	}
}
