package httpapi

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/geo"
)

// streamRegion starts a stream with headers and returns its region as the
// server stored it.
func (e *testEnv) streamRegion(room string, body map[string]any, headers map[string]string) string {
	e.t.Helper()
	h := map[string]string{"Authorization": bearer(e.tokens[sb.RoleClient])}
	for k, v := range headers {
		h[k] = v
	}
	st, b := e.doHeaders("POST", "/api/streams", body, h)
	if st != 201 {
		e.t.Fatalf("start %s: %d %s", room, st, b)
	}
	var got sb.Stream
	e.mustDo("GET", "/api/streams/"+idOf(b), e.tokens[sb.RoleAdmin], nil, 200, &got)
	return got.Region
}

func TestGeoHeader(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	de := map[string]string{"CF-IPCountry": "DE"}

	// Not configured: the header is never believed.
	if got := e.streamRegion("r1", streamBody("r1", "u1"), de); got != "" {
		t.Errorf("without --geo-header, region = %q; want none", got)
	}

	e.api.geoHeader = "CF-IPCountry"
	for _, tc := range []struct {
		name    string
		body    map[string]any
		headers map[string]string
		want    string
	}{
		{"header mapped by continent", streamBody("r2", "u2"), de, geo.Europe},
		{"lower case country", streamBody("r3", "u3"), map[string]string{"CF-IPCountry": "sg"}, geo.Asia},
		{"the request's region wins", withRegion(streamBody("r4", "u4"), "us-west"), de, "us-west"},
		{"unknown country (Tor)", streamBody("r5", "u5"), map[string]string{"CF-IPCountry": "T1"}, ""},
		{"no header", streamBody("r6", "u6"), nil, ""},
		{"another header is not believed", streamBody("r7", "u7"), map[string]string{"CloudFront-Viewer-Country": "DE"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := e.streamRegion(tc.name, tc.body, tc.headers); got != tc.want {
				t.Errorf("region = %q; want %q", got, tc.want)
			}
		})
	}

	e.api.geoMap = geo.Map{"DE": "eu-central"}
	if got := e.streamRegion("r8", streamBody("r8", "u8"), de); got != "eu-central" {
		t.Errorf("with a geo map, region = %q; want eu-central", got)
	}
}

func withRegion(body map[string]any, region string) map[string]any {
	body["region"] = region
	return body
}

// agentResultBody is a report of one result from region.
func agentResultBody(region string, res map[string]any) map[string]any {
	return map[string]any{"region": region, "results": []map[string]any{res}}
}

// regionalOf returns the regional health of provider name as the provider
// view shows it.
func (e *testEnv) regionalOf(name string) map[string]regionalView {
	e.t.Helper()
	var v struct {
		RegionalHealth map[string]regionalView `json:"regionalHealth"`
	}
	e.mustDo("GET", "/api/streaming/providers/"+name, e.tokens[sb.RoleAdmin], nil, 200, &v)
	return v.RegionalHealth
}

func TestAgentProviders(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	e.createProvider(e.zegoProvider("zego", 2))
	e.createProvider(map[string]any{"name": "off", "kind": "http", "priority": 3, "enabled": false,
		"config": map[string]any{"url": "https://status.example/health"}})

	var got struct{ Providers []agentProvider }
	e.mustDo("GET", "/api/agent/providers", e.tokens[sb.RoleAgent], nil, 200, &got)
	if len(got.Providers) != 2 || got.Providers[0].Name != "agora" || got.Providers[1].Name != "zego" {
		t.Fatalf("providers = %+v; want the enabled agora and zego", got.Providers)
	}
	creds := sb.CredentialsInput.Apply(got.Providers[0].Credentials, sb.Credentials{})
	if creds.CustomerID != secretCustomerID || creds.CustomerSecret != secretCustomer || creds.AppCertificate != secretCertificate {
		t.Errorf("agora's credentials did not come back whole")
	}
	if got.Providers[0].Config.BaseURL != e.agora.URL() || got.Providers[0].HealthCheck.Interval.D() <= 0 {
		t.Errorf("agora = %+v; want its config and health check", got.Providers[0])
	}

	// Each credential read is audited, naming the agent.
	for _, name := range []string{"agora", "zego"} {
		var audit struct{ Entries []sb.AuditEntry }
		e.mustDo("GET", "/api/audit?target="+name, e.tokens[sb.RoleAdmin], nil, 200, &audit)
		if len(audit.Entries) == 0 || audit.Entries[0].Action != "provider.credentials.read" ||
			audit.Entries[0].Actor.Role != sb.RoleAgent || audit.Entries[0].Actor.Name != "agent-token" {
			t.Errorf("audit of %s: %+v; want provider.credentials.read by agent-token first", name, audit.Entries)
		}
	}
	// The log never holds them.
	for _, s := range allSecrets {
		if strings.Contains(e.logs.String(), s) {
			t.Errorf("the log holds a secret")
		}
	}
}

func TestAgentResultsValidation(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	agent := e.tokens[sb.RoleAgent]
	now := e.clock.Now()
	ok := func(over map[string]any) map[string]any {
		res := map[string]any{"provider": "agora", "ok": true, "latencyMs": 20, "at": now.Format(time.RFC3339Nano)}
		for k, v := range over {
			if v == nil {
				delete(res, k)
			} else {
				res[k] = v
			}
		}
		return res
	}
	many := make([]map[string]any, maxAgentResults+1)
	for i := range many {
		many[i] = ok(nil)
	}
	for _, tc := range []struct {
		name  string
		body  any
		field string
	}{
		{"no region", map[string]any{"results": []map[string]any{ok(nil)}}, "region"},
		{"bad region", agentResultBody("EU West", ok(nil)), "region"},
		{"no results", map[string]any{"region": "eu-west", "results": []any{}}, "results"},
		{"too many results", map[string]any{"region": "eu-west", "results": many}, "results"},
		{"unknown provider", agentResultBody("eu-west", ok(map[string]any{"provider": "nope"})), "results[0].provider"},
		{"bad provider", agentResultBody("eu-west", ok(map[string]any{"provider": "../x"})), "results[0].provider"},
		{"no ok", agentResultBody("eu-west", ok(map[string]any{"ok": nil})), "results[0].ok"},
		{"no latency", agentResultBody("eu-west", ok(map[string]any{"latencyMs": nil})), "results[0].latencyMs"},
		{"negative latency", agentResultBody("eu-west", ok(map[string]any{"latencyMs": -1})), "results[0].latencyMs"},
		{"huge latency", agentResultBody("eu-west", ok(map[string]any{"latencyMs": 600001})), "results[0].latencyMs"},
		{"no at", agentResultBody("eu-west", ok(map[string]any{"at": nil})), "results[0].at"},
		{"old at", agentResultBody("eu-west", ok(map[string]any{"at": now.Add(-2 * time.Hour).Format(time.RFC3339)})), "results[0].at"},
		{"future at", agentResultBody("eu-west", ok(map[string]any{"at": now.Add(time.Hour).Format(time.RFC3339)})), "results[0].at"},
		{"stage on success", agentResultBody("eu-west", ok(map[string]any{"stage": "auth"})), "results[0].stage"},
		{"bad stage", agentResultBody("eu-west", ok(map[string]any{"ok": false, "stage": "dns"})), "results[0].stage"},
		{"long message", agentResultBody("eu-west", ok(map[string]any{"ok": false, "message": strings.Repeat("x", 513)})), "results[0].message"},
		{"second result wrong", map[string]any{"region": "eu-west", "results": []map[string]any{ok(nil), ok(map[string]any{"latencyMs": -5})}}, "results[1].latencyMs"},
		{"latency not a number", agentResultBody("eu-west", ok(map[string]any{"latencyMs": "slow"})), "results.latencyMs"},
		{"unknown field", `{"region":"eu-west","results":[],"agent":"x"}`, "agent"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, b := e.do("POST", "/api/agent/results", agent, tc.body)
			var eb errorBody
			_ = json.Unmarshal(b, &eb)
			if st != 400 || eb.Error.Field != tc.field {
				t.Fatalf("status %d, field %q: %s; want 400 naming %s", st, eb.Error.Field, b, tc.field)
			}
		})
	}
	// Nothing was recorded, not even the first result of a refused report.
	if rh := e.regionalOf("agora"); len(rh) != 0 {
		t.Errorf("after refused reports, regional health = %+v; want none", rh)
	}
}

func TestAgentRegionalHealth(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	agent := e.tokens[sb.RoleAgent]
	var whole providerView
	e.mustDo("GET", "/api/streaming/providers/agora", e.tokens[sb.RoleAdmin], nil, 200, &whole)
	checks := whole.Lifetime.TotalChecks
	report := func(region string, ok bool, msg string) {
		t.Helper()
		res := map[string]any{"provider": "agora", "ok": ok, "latencyMs": 30, "at": e.clock.Now().Format(time.RFC3339Nano)}
		if !ok {
			res["stage"], res["message"] = "connect", msg
		}
		e.mustDo("POST", "/api/agent/results", agent, agentResultBody(region, res), 200, nil)
	}
	for range 3 {
		report("eu-west", true, "")
		report("ap-east", false, "dial tcp: refused with "+secretCustomer)
		e.clock.Advance(time.Second)
	}
	rh := e.regionalOf("agora")
	eu, ap := rh["eu-west"], rh["ap-east"]
	if eu.Status != sb.StatusExcellent || !eu.Usable || eu.Stale || eu.Uptime != 100 || eu.Latency != 30 || eu.Source != "agent:agent-token" || eu.LastCheck == nil {
		t.Errorf("eu-west = %+v; want EXCELLENT from agent:agent-token", eu)
	}
	if ap.Status != sb.StatusCritical || ap.Usable || ap.Uptime != 0 {
		t.Errorf("ap-east = %+v; want CRITICAL after 3 failures", ap)
	}
	// The whole provider's health is that of the server's probes, untouched.
	e.mustDo("GET", "/api/streaming/providers/agora", e.tokens[sb.RoleAdmin], nil, 200, &whole)
	if whole.Lifetime.TotalChecks != checks {
		t.Errorf("the agent's results counted in the provider's own health: %d checks, want %d", whole.Lifetime.TotalChecks, checks)
	}
	// A secret in a message is redacted before it is stored.
	rows, err := e.store.ListRegionalHealth(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Health.LastError != nil && strings.Contains(r.Health.LastError.Message, secretCustomer) {
			t.Errorf("the stored message holds a secret: %q", r.Health.LastError.Message)
		}
	}

	// An agent that stops reporting is stale after 3 intervals (at least a
	// minute): UNKNOWN, never healthy.
	interval := whole.HealthCheck.Interval.D()
	e.clock.Advance(max(3*interval, time.Minute) + time.Second)
	eu = e.regionalOf("agora")["eu-west"]
	if eu.Status != sb.StatusUnknown || !eu.Stale || eu.Usable || !strings.HasPrefix(eu.Reason, "stale") {
		t.Errorf("after the agent stopped, eu-west = %+v; want stale and UNKNOWN", eu)
	}
	// And /metrics says so, for alerts.
	_, metrics := e.do("GET", "/metrics", "", nil)
	for _, want := range []string{
		`switchboard_provider_regional_stale{provider="agora",region="eu-west"} 1`,
		`switchboard_provider_regional_usable{provider="agora",region="eu-west"} 0`,
		`switchboard_provider_regional_usable{provider="agora",region="ap-east"} 0`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	report("eu-west", true, "")
	_, metrics = e.do("GET", "/metrics", "", nil)
	if want := `switchboard_provider_regional_usable{provider="agora",region="eu-west"} 1`; !strings.Contains(string(metrics), want) {
		t.Errorf("/metrics lacks %s once the agent came back", want)
	}
	if eu = e.regionalOf("agora")["eu-west"]; eu.Stale || !eu.Usable {
		t.Errorf("after the agent came back, eu-west = %+v; want fresh and usable", eu)
	}

	// A disabled provider is DISABLED in every region.
	e.mustDo("PUT", "/api/streaming/providers/agora", e.tokens[sb.RoleAdmin], map[string]any{"enabled": false}, 200, nil)
	if eu = e.regionalOf("agora")["eu-west"]; eu.Status != sb.StatusDisabled {
		t.Errorf("disabled provider in eu-west = %+v; want DISABLED", eu)
	}
}

// A provider failing in one region takes no new streams of that region, and
// still takes those of the others.
func TestRegionalRouting(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	e.createProvider(e.zegoProvider("zego", 2))
	for range 3 {
		res := map[string]any{"provider": "agora", "ok": false, "stage": "connect", "latencyMs": 5000, "at": e.clock.Now().Format(time.RFC3339Nano)}
		e.mustDo("POST", "/api/agent/results", e.tokens[sb.RoleAgent], agentResultBody("ap-east", res), 200, nil)
		res = map[string]any{"provider": "agora", "ok": true, "latencyMs": 20, "at": e.clock.Now().Format(time.RFC3339Nano)}
		e.mustDo("POST", "/api/agent/results", e.tokens[sb.RoleAgent], agentResultBody("eu-west", res), 200, nil)
		e.clock.Advance(time.Second)
	}
	e.clock.Advance(3 * time.Second) // past the cached snapshot of the regional health
	client := e.tokens[sb.RoleClient]
	if a := e.start(client, withRegion(streamBody("r1", "u1"), "ap-east")); a.Provider.Name != "zego" {
		t.Errorf("stream in ap-east went to %s; want zego (agora is CRITICAL there)", a.Provider.Name)
	}
	if a := e.start(client, withRegion(streamBody("r2", "u2"), "eu-west")); a.Provider.Name != "agora" {
		t.Errorf("stream in eu-west went to %s; want agora", a.Provider.Name)
	}
	if a := e.start(client, streamBody("r3", "u3")); a.Provider.Name != "agora" {
		t.Errorf("stream without a region went to %s; want agora", a.Provider.Name)
	}
}

// GET /api/streaming/config answers for the caller's region: ?region=, else
// the trusted edge's geo header.
func TestStreamingConfigRegion(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	for range 3 {
		res := map[string]any{"provider": "agora", "ok": false, "stage": "connect", "latencyMs": 5000, "at": e.clock.Now().Format(time.RFC3339Nano)}
		e.mustDo("POST", "/api/agent/results", e.tokens[sb.RoleAgent], agentResultBody("ap-east", res), 200, nil)
		e.clock.Advance(time.Second)
	}
	e.clock.Advance(3 * time.Second)
	type cfg struct {
		Region    string
		Providers []configProvider
	}
	get := func(path string, headers map[string]string) cfg {
		t.Helper()
		h := map[string]string{"Authorization": bearer(e.tokens[sb.RoleClient])}
		for k, v := range headers {
			h[k] = v
		}
		st, b := e.doHeaders("GET", path, nil, h)
		if st != 200 {
			t.Fatalf("GET %s: %d %s", path, st, b)
		}
		var c cfg
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	if c := get("/api/streaming/config", nil); c.Region != "" || !c.Providers[0].Usable || c.Providers[0].RegionalStatus != "" {
		t.Errorf("without a region: %+v; want agora usable", c)
	}
	if c := get("/api/streaming/config?region=ap-east", nil); c.Region != "ap-east" || c.Providers[0].Usable || c.Providers[0].RegionalStatus != sb.StatusCritical {
		t.Errorf("in ap-east: %+v; want agora CRITICAL there, not usable", c)
	}
	if c := get("/api/streaming/config?region=eu-west", nil); !c.Providers[0].Usable || c.Providers[0].RegionalStatus != "" {
		t.Errorf("in eu-west (no regional data): %+v; want agora usable", c)
	}
	sg := map[string]string{"CF-IPCountry": "SG"}
	if c := get("/api/streaming/config", sg); c.Region != "" {
		t.Errorf("geo header not configured: region %q; want none", c.Region)
	}
	e.api.geoHeader = "CF-IPCountry"
	if c := get("/api/streaming/config", sg); c.Region != "ap-east" || c.Providers[0].Usable {
		t.Errorf("from Singapore: %+v; want ap-east, agora not usable", c)
	}
	st, b := e.do("GET", "/api/streaming/config?region=Not%20A%20Region", e.tokens[sb.RoleClient], nil)
	var eb errorBody
	_ = json.Unmarshal(b, &eb)
	if st != 400 || eb.Error.Field != "region" {
		t.Errorf("bad region: %d %s; want 400 naming region", st, b)
	}
}

// The agent role is for tokens only: no user may hold it.
func TestAgentRoleNotForUsers(t *testing.T) {
	e := newTestEnv(t)
	st, b := e.do("POST", "/api/users", e.tokens[sb.RoleSuperadmin], map[string]any{"username": "probe", "role": "agent", "password": "a long enough password 123"})
	var eb errorBody
	_ = json.Unmarshal(b, &eb)
	if st != 400 || eb.Error.Field != "role" {
		t.Errorf("user with role agent: %d %s; want 400 naming role", st, b)
	}
}

// FuzzAgentReport feeds arbitrary bodies to the validation of agent
// reports: it never panics, and what it accepts is within the limits.
func FuzzAgentReport(f *testing.F) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	f.Add(`{"region":"eu-west","results":[{"provider":"agora","ok":true,"latencyMs":12,"at":"2026-01-01T11:59:00Z"}]}`)
	f.Add(`{"region":"eu-west","results":[{"provider":"agora","ok":false,"stage":"auth","message":"401","latencyMs":0,"at":"2026-01-01T12:00:30Z"}]}`)
	f.Add(`{"region":"","results":null}`)
	recs := map[string]sb.ProviderRecord{"agora": {Provider: sb.Provider{Name: "agora", Credentials: sb.Credentials{APISecret: "s3cret"}}}}
	f.Fuzz(func(t *testing.T, body string) {
		var rep agentReport
		if err := decodeJSON([]byte(body), &rep); err != nil {
			return
		}
		results, err := rep.validate(recs, now)
		if err != nil {
			return
		}
		for _, r := range results {
			if r.Latency < 0 || r.Latency > maxAgentLatency || len(r.Message) > maxAgentMessage || strings.Contains(r.Message, "s3cret") ||
				r.At.After(now.Add(agentSkew)) || r.At.Before(now.Add(-agentResultAge)) {
				t.Fatalf("accepted %+v", r)
			}
		}
	})
}
