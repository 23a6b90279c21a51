package httpapi

import (
	"context"
	"strings"
	"testing"

	sb "github.com/switchboardhq/switchboard"
)

func TestRoutingGetPut(t *testing.T) {
	e := newTestEnv(t)
	var got sb.RoutingConfig
	e.mustDo("GET", "/api/routing", e.tokens[sb.RoleAdmin], nil, 200, &got)
	if !got.Equal(sb.DefaultRoutingConfig()) {
		t.Fatalf("GET /api/routing = %+v, want the default", got)
	}
	// Access: admins read, only superadmins write.
	if st, _ := e.do("GET", "/api/routing", e.tokens[sb.RoleClient], nil); st != 403 {
		t.Errorf("GET as client: %d, want 403", st)
	}
	if st, _ := e.do("PUT", "/api/routing", e.tokens[sb.RoleAdmin], map[string]any{"policy": "cost"}); st != 403 {
		t.Errorf("PUT as admin: %d, want 403", st)
	}

	e.events.Take()
	e.mustDo("PUT", "/api/routing", e.tokens[sb.RoleSuperadmin], map[string]any{
		"policy": "commit", "shares": map[string]float64{"agora": 0.35, "zegocloud": 0.65},
		"regions": map[string]any{"eu-west": map[string]any{"policy": "optimized", "margin": 8}},
	}, 200, &got)
	if got.Policy != sb.PolicyCommit || got.Shares["zegocloud"] != 0.65 || got.Regions["eu-west"].Policy != sb.PolicyOptimized ||
		got.Margin != sb.DefaultRoutingMargin || got.Weights != sb.DefaultRoutingWeights() {
		t.Fatalf("PUT answer = %+v", got)
	}
	evs := e.events.Take()
	if len(evs) != 1 || evs[0].Type != sb.EventRoutingUpdated || evs[0].Audience != sb.RoleClient {
		t.Fatalf("events = %+v, want one routing.updated for clients", evs)
	}
	audit, err := e.store.ListAudit(context.Background(), sb.AuditFilter{Target: "routing"})
	if err != nil || len(audit) != 1 || audit[0].Action != "routing.update" || audit[0].Actor.Role != sb.RoleSuperadmin ||
		!strings.Contains(string(audit[0].Before), `"policy":"priority"`) || !strings.Contains(string(audit[0].After), `"policy":"commit"`) {
		t.Fatalf("audit = %+v, %v", audit, err)
	}

	// Fields left out keep their values; null removes a region.
	got = sb.RoutingConfig{}
	e.mustDo("PUT", "/api/routing", e.tokens[sb.RoleSuperadmin], `{"margin":9,"regions":{"eu-west":null}}`, 200, &got)
	if got.Policy != sb.PolicyCommit || got.Margin != 9 || len(got.Regions) != 0 || got.Shares["agora"] != 0.35 {
		t.Fatalf("partial PUT = %+v", got)
	}
	// A body that changes nothing: no audit entry, no event.
	e.events.Take()
	e.mustDo("PUT", "/api/routing", e.tokens[sb.RoleSuperadmin], `{"margin":9}`, 200, &got)
	if evs := e.events.Take(); len(evs) != 0 {
		t.Errorf("a no-op PUT published %+v", evs)
	}
}

func TestRoutingPutInvalid(t *testing.T) {
	e := newTestEnv(t)
	tests := []struct {
		body  string
		field string
	}{
		{`{}`, "body"},
		{`{"policy":"fastest"}`, "policy"},
		{`{"policy":"commit"}`, "shares"},
		{`{"shares":{"a":0.5}}`, "shares"},
		{`{"shares":{"a":-1,"b":2}}`, "shares.a"},
		{`{"weights":{"quality":2,"latency":0,"health":0,"cost":0}}`, "weights.quality"},
		{`{"margin":500}`, "margin"},
		{`{"regions":{"eu-west":{"policy":"nope"}}}`, "regions.eu-west.policy"},
		{`{"regions":{"Not A Slug":{"policy":"cost"}}}`, "regions.Not A Slug"},
		{`{"polcy":"cost"}`, "polcy"},
		{`{"margin":"x"}`, "margin"},
	}
	before := e.snapshotRouting()
	for _, tt := range tests {
		st, body := e.do("PUT", "/api/routing", e.tokens[sb.RoleSuperadmin], tt.body)
		if st != 400 || !strings.Contains(string(body), `"field":"`+tt.field+`"`) {
			t.Errorf("PUT %s: %d %s, want 400 naming %s", tt.body, st, body, tt.field)
		}
	}
	if after := e.snapshotRouting(); after != before {
		t.Errorf("a refused PUT changed the configuration: %s → %s", before, after)
	}
}

func (e *testEnv) snapshotRouting() string {
	e.t.Helper()
	_, b := e.do("GET", "/api/routing", e.tokens[sb.RoleAdmin], nil)
	return string(b)
}

// A stream started through the API follows the policy, and its trail says
// why, with every candidate's score.
func TestRoutingStartFollowsPolicy(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	e.createProvider(e.zegoProvider("zegocloud", 2))
	e.mustDo("POST", "/api/streaming/providers/health-check-all", e.tokens[sb.RoleAdmin], nil, 200, nil)
	e.mustDo("PUT", "/api/routing", e.tokens[sb.RoleSuperadmin], map[string]any{"policy": "commit", "shares": map[string]float64{"agora": 0.25, "zegocloud": 0.75}}, 200, nil)
	n := map[string]int{}
	var first string
	for i := range 8 {
		a := e.start(e.tokens[sb.RoleClient], streamBody("room", "u"))
		if i == 0 {
			first = a.ID
		}
		n[a.Provider.Name]++
	}
	if n["agora"] != 2 || n["zegocloud"] != 6 {
		t.Fatalf("commit 0.25/0.75 over 8 starts: %v", n)
	}
	var v struct {
		Policy string                      `json:"policy"`
		Starts map[string]map[string]int64 `json:"starts"`
	}
	e.mustDo("GET", "/api/routing", e.tokens[sb.RoleAdmin], nil, 200, &v)
	if v.Policy != "commit" || v.Starts[""]["agora"] != 2 || v.Starts[""]["zegocloud"] != 6 {
		t.Fatalf("GET /api/routing = %+v, want the starts counted", v)
	}
	var d struct {
		Trail []sb.TrailEntry `json:"trail"`
	}
	e.mustDo("GET", "/api/streams/"+first, e.tokens[sb.RoleAdmin], nil, 200, &d)
	if len(d.Trail) == 0 || !strings.Contains(d.Trail[0].Reason, "policy commit") || !strings.Contains(d.Trail[0].Reason, "scores: ") {
		t.Fatalf("trail = %+v", d.Trail)
	}
}
