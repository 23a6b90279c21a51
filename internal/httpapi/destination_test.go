package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	sb "github.com/switchboardhq/switchboard"
)

// recorder is a real HTTP server on loopback that keeps the headers it received.
type recorder struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []http.Header
}

func newRecorder(t *testing.T) *recorder {
	rec := &recorder{}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.mu.Lock()
		rec.got = append(rec.got, r.Header.Clone())
		rec.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

// saw reports whether any request received held s in a header value.
func (rec *recorder) saw(s string) bool {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, h := range rec.got {
		for _, vs := range h {
			for _, v := range vs {
				if strings.Contains(v, s) {
					return true
				}
			}
		}
	}
	return false
}

func (rec *recorder) requests() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return len(rec.got)
}

// TestDestinationChangeNeedsCredentials is the read-out of write-only
// credentials: an admin points a provider at an address of theirs and asks
// for a health check. A change of any field that decides where the probe
// goes, without new credentials, must be refused, for every role, and leave
// everything as it was.
func TestDestinationChangeNeedsCredentials(t *testing.T) {
	e := newTestEnv(t)
	target, attacker := newRecorder(t), newRecorder(t)
	e.createProvider(map[string]any{
		"name": "web", "kind": "http",
		"config":      map[string]any{"url": target.srv.URL + "/health", "method": "GET"},
		"credentials": map[string]any{"headers": map[string]string{"X-Api-Key": secretHeader}},
	})
	e.createProvider(e.agoraProvider("agora", 2))
	cases := []struct {
		provider string
		config   map[string]any
		field    string
	}{
		{"web", map[string]any{"url": attacker.srv.URL + "/"}, "config.url"},
		{"web", map[string]any{"url": target.srv.URL + "/health", "method": "POST"}, "config.method"},
		{"agora", map[string]any{"appId": agoraAppID, "baseUrl": attacker.srv.URL}, "config.baseUrl"},
		{"agora", map[string]any{"appId": agoraAppID}, "config.baseUrl"}, // back to the default host
	}
	for _, role := range []sb.Role{sb.RoleAdmin, sb.RoleSuperadmin} {
		for _, c := range cases {
			before := e.snapshot()
			audits := e.auditCount(c.provider)
			st, b := e.do("PUT", "/api/streaming/providers/"+c.provider, e.tokens[role], map[string]any{"config": c.config})
			d := wantInvalid(t, role.String()+" "+c.field, st, b, c.field)
			if d.Message != sb.ErrMsgRebindCredentials {
				t.Errorf("%s: message %q", c.field, d.Message)
			}
			if e.snapshot() != before || e.auditCount(c.provider) != audits {
				t.Errorf("%s: a refused change changed something", c.field)
			}
		}
	}
	e.mustDo("POST", "/api/streaming/providers/web/health-check", e.tokens[sb.RoleAdmin], nil, 200, nil)
	if attacker.requests() != 0 {
		t.Fatal("a probe reached the other address")
	}
	if !target.saw(secretHeader) {
		t.Fatal("the probe did not reach the provider's own address with its credentials: is the check looking at the right server?")
	}

	// Other settings still change without credentials.
	e.mustDo("PUT", "/api/streaming/providers/web", e.tokens[sb.RoleAdmin], map[string]any{"priority": 3}, 200, nil)
	e.mustDo("PUT", "/api/streaming/providers/web", e.tokens[sb.RoleAdmin],
		map[string]any{"config": map[string]any{"url": target.srv.URL + "/health", "expectStatus": []int{200, 204}}}, 200, nil)

	// With new credentials the move is allowed, and only those go there.
	const fresh = "fresh-header-value-5521"
	e.mustDo("PUT", "/api/streaming/providers/web", e.tokens[sb.RoleAdmin], map[string]any{
		"config":      map[string]any{"url": attacker.srv.URL + "/"},
		"credentials": map[string]any{"headers": map[string]string{"X-Other": fresh}},
	}, 200, nil)
	e.mustDo("POST", "/api/streaming/providers/web/health-check", e.tokens[sb.RoleAdmin], nil, 200, nil)
	if !attacker.saw(fresh) {
		t.Error("the new credentials were not sent to the new address")
	}
	if attacker.saw(secretHeader) {
		t.Error("the old credentials reached the new address")
	}
}
