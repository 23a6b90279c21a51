package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/pgtest"
)

var seq atomic.Int64

func uniq(prefix string) string { return fmt.Sprintf("%s-%d", prefix, seq.Add(1)) }

// matrixCase instantiates one route for one call: setup returns the path and
// body, and ok is the status an allowed caller gets.
type matrixCase struct {
	setup  func(e *testEnv) (path string, body any)
	ok     int
	stream bool // a never-ending response (SSE): only the status is read
}

func TestAuthMatrix(t *testing.T) {
	e := newTestEnv(t)
	fixed := func(path string, body any) func(*testEnv) (string, any) {
		return func(*testEnv) (string, any) { return path, body }
	}
	withProvider := func(suffix string, body any) func(*testEnv) (string, any) {
		return func(e *testEnv) (string, any) {
			name := uniq("p")
			e.createProvider(e.agoraProvider(name, 50))
			return "/api/streaming/providers/" + name + suffix, body
		}
	}
	withStream := func(suffix string, body any) func(*testEnv) (string, any) {
		return func(e *testEnv) (string, any) {
			a := e.start(e.tokens[sb.RoleClient], streamBody(uniq("room"), "u"))
			return "/api/streams/" + a.ID + suffix, body
		}
	}
	// Windows of the matrix start in an hour: streams keep their providers.
	windowBody := func() map[string]any {
		now := e.clock.Now()
		return map[string]any{"provider": "seed", "start": now.Add(time.Hour).Format(time.RFC3339), "end": now.Add(2 * time.Hour).Format(time.RFC3339), "reason": "matrix"}
	}
	withWindow := func(suffix string) func(*testEnv) (string, any) {
		return func(e *testEnv) (string, any) {
			var out struct{ ID string }
			e.mustDo("POST", "/api/maintenance", bootstrapToken, windowBody(), 201, &out)
			return "/api/maintenance/" + out.ID + suffix, nil
		}
	}
	cases := map[string]matrixCase{
		"POST /api/maintenance":            {setup: func(*testEnv) (string, any) { return "/api/maintenance", windowBody() }, ok: 201},
		"GET /api/maintenance":             {setup: fixed("/api/maintenance?state=upcoming", nil), ok: 200},
		"GET /api/maintenance/{id}":        {setup: withWindow(""), ok: 200},
		"POST /api/maintenance/{id}/end":   {setup: withWindow("/end"), ok: 200},
		"GET /api/streaming/config":        {setup: fixed("/api/streaming/config", nil), ok: 200},
		"POST /api/streams":                {setup: fixed("/api/streams", streamBody("matrix", "u")), ok: 201},
		"POST /api/streams/{id}/heartbeat": {setup: withStream("/heartbeat", nil), ok: 200},
		"POST /api/streams/{id}/failures":  {setup: withStream("/failures", map[string]any{"provider": "seed", "stage": "connect"}), ok: 202},
		"POST /api/streams/{id}/migrate":   {setup: withStream("/migrate", map[string]any{"reason": "test"}), ok: 200},
		"POST /api/streams/{id}/end":       {setup: withStream("/end", nil), ok: 200},
		"POST /api/streams/{id}/quality":   {setup: withStream("/quality", qualityBody(e.clock.Now(), 3)), ok: 202},
		"GET /api/streaming/quality":       {setup: fixed("/api/streaming/quality", nil), ok: 200},
		"GET /api/streams":                 {setup: fixed("/api/streams?status=active", nil), ok: 200},
		"GET /api/streams/{id}":            {setup: withStream("", nil), ok: 200},
		"GET /api/streaming/stats":         {setup: fixed("/api/streaming/stats", nil), ok: 200},
		"GET /api/events":                  {setup: fixed("/api/events", nil), ok: 200, stream: true},
		"GET /healthz":                     {setup: fixed("/healthz", nil), ok: 200},
		"GET /readyz":                      {setup: fixed("/readyz", nil), ok: 200},
		"GET /metrics":                     {setup: fixed("/metrics", nil), ok: 200},
		"GET /api/openapi.json":            {setup: fixed("/api/openapi.json", nil), ok: 200},
		"POST /api/auth/login":             {setup: fixed("/api/auth/login", map[string]string{"username": "admin", "password": adminPassword}), ok: 200},
		"POST /api/auth/logout":            {setup: fixed("/api/auth/logout", nil), ok: 204},
		"GET /api/auth/me":                 {setup: fixed("/api/auth/me", nil), ok: 200},
		"POST /api/auth/tokens":            {setup: fixed("/api/auth/tokens", map[string]string{"name": "x", "role": "client"}), ok: 201},
		"GET /api/auth/tokens":             {setup: fixed("/api/auth/tokens", nil), ok: 200},
		"DELETE /api/auth/tokens/{id}": {setup: func(e *testEnv) (string, any) {
			var out struct{ ID string }
			e.mustDo("POST", "/api/auth/tokens", bootstrapToken, map[string]string{"name": "victim", "role": "client"}, 201, &out)
			return "/api/auth/tokens/" + out.ID, nil
		}, ok: 204},
		// Tokens belong to no user: even an allowed role gets 403 (the
		// session case is in TestTemporaryPasswordFlow).
		"PUT /api/auth/password":       {setup: fixed("/api/auth/password", map[string]string{"currentPassword": "x", "newPassword": newPassword}), ok: 403},
		"GET /api/auth/methods":        {setup: fixed("/api/auth/methods", nil), ok: 200},
		"GET /api/auth/oidc/login":     {setup: fixed("/api/auth/oidc/login", nil), ok: 404}, // single sign-on is off here
		"GET /api/auth/oidc/callback":  {setup: fixed("/api/auth/oidc/callback?state=x&code=y", nil), ok: 404},
		"GET /api/users":               {setup: fixed("/api/users", nil), ok: 200},
		"POST /api/users":              {setup: func(e *testEnv) (string, any) { return "/api/users", newUserBody(uniq("u")) }, ok: 201},
		"GET /api/users/{username}":    {setup: fixed("/api/users/admin", nil), ok: 200},
		"PUT /api/users/{username}":    {setup: withUser(map[string]any{"enabled": false}), ok: 200},
		"DELETE /api/users/{username}": {setup: withUser(nil), ok: 204},
		"GET /api/streaming/providers": {setup: fixed("/api/streaming/providers", nil), ok: 200},
		"POST /api/streaming/providers": {setup: func(e *testEnv) (string, any) {
			return "/api/streaming/providers", e.agoraProvider(uniq("new"), 60)
		}, ok: 201},
		"PUT /api/streaming/providers/priorities": {setup: func(e *testEnv) (string, any) {
			recs, err := e.store.ListProviders(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			order := make([]string, len(recs))
			for i, r := range recs {
				order[len(recs)-1-i] = r.Name
			}
			return "/api/streaming/providers/priorities", map[string]any{"order": order}
		}, ok: 200},
		"GET /api/streaming/providers/{name}":               {setup: withProvider("", nil), ok: 200},
		"PUT /api/streaming/providers/{name}":               {setup: withProvider("", map[string]any{"enabled": false}), ok: 200},
		"DELETE /api/streaming/providers/{name}":            {setup: withProvider("", nil), ok: 204},
		"GET /api/audit":                                    {setup: fixed("/api/audit", nil), ok: 200},
		"GET /api/settings":                                 {setup: fixed("/api/settings", nil), ok: 200},
		"PUT /api/settings":                                 {setup: fixed("/api/settings", map[string]any{"maxFailures": 4}), ok: 200},
		"GET /api/routing":                                  {setup: fixed("/api/routing", nil), ok: 200},
		"PUT /api/routing":                                  {setup: fixed("/api/routing", map[string]any{"margin": 6}), ok: 200},
		"GET /api/streaming/providers/{name}/health":        {setup: withProvider("/health", nil), ok: 200},
		"GET /api/streaming/providers/health-check-all":     {setup: fixed("/api/streaming/providers/health-check-all", nil), ok: 200},
		"POST /api/streaming/providers/health-check-all":    {setup: fixed("/api/streaming/providers/health-check-all", nil), ok: 200},
		"POST /api/streaming/providers/{name}/health-check": {setup: withProvider("/health-check", nil), ok: 200},
		"GET /api/streaming/providers/{name}/history":       {setup: withProvider("/history?window=7d", nil), ok: 200},
		"GET /api/alerts/channels":                          {setup: fixed("/api/alerts/channels", nil), ok: 200},
		"POST /api/alerts/channels":                         {setup: func(e *testEnv) (string, any) { return "/api/alerts/channels", e.webhookChannel(uniq("ch")) }, ok: 201},
		"GET /api/alerts/channels/{name}":                   {setup: withChannel("", nil), ok: 200},
		"PUT /api/alerts/channels/{name}":                   {setup: withChannel("", map[string]any{"kind": "webhook", "config": map[string]any{"url": "https://example.com/x"}}), ok: 200},
		"DELETE /api/alerts/channels/{name}":                {setup: withChannel("", nil), ok: 204},
		"POST /api/alerts/channels/{name}/test":             {setup: withChannel("/test", nil), ok: 200},
		"GET /api/alerts/rules":                             {setup: fixed("/api/alerts/rules", nil), ok: 200},
		"POST /api/alerts/rules": {setup: func(e *testEnv) (string, any) {
			return "/api/alerts/rules", map[string]any{"name": uniq("r"), "events": []string{"provider.critical"}, "channels": []string{e.channel()}}
		}, ok: 201},
		"GET /api/alerts/rules/{name}":    {setup: withRule(nil), ok: 200},
		"PUT /api/alerts/rules/{name}":    {setup: withRule(map[string]any{"events": []string{"no_usable_provider"}, "channels": []string{"matrix-ch"}}), ok: 200},
		"DELETE /api/alerts/rules/{name}": {setup: withRule(nil), ok: 204},
		"GET /api/alerts/deliveries":      {setup: fixed("/api/alerts/deliveries", nil), ok: 200},
		"GET /api/reports/sla":            {setup: fixed("/api/reports/sla", nil), ok: 200},
		"GET /api/reports/cost":           {setup: fixed("/api/reports/cost", nil), ok: 200},
		"GET /api/reports/quality":        {setup: fixed("/api/reports/quality", nil), ok: 200},
		"GET /api/agent/providers":        {setup: fixed("/api/agent/providers", nil), ok: 200},
		"POST /api/agent/results": {setup: func(e *testEnv) (string, any) {
			return "/api/agent/results", map[string]any{"region": "eu-west", "results": []map[string]any{
				{"provider": "seed", "ok": true, "latencyMs": 12, "at": e.clock.Now().Format(time.RFC3339Nano)}}}
		}, ok: 200},
		"GET /{$}":              {setup: fixed("/", nil), ok: 200},
		"GET /assets/{path...}": {setup: fixed("/assets/app.js", nil), ok: 200},
	}
	e.createProvider(e.agoraProvider("seed", 1))
	e.createProvider(e.agoraProvider("seed-backup", 2))
	for _, rt := range e.api.routes() {
		key := rt.Method + " " + rt.Path
		c, ok := cases[key]
		if !ok {
			t.Errorf("route %s has no auth matrix case", key)
			continue
		}
		delete(cases, key)
		callers := []struct {
			name  string
			token string
			role  sb.Role
		}{
			{"anonymous", "", sb.RoleAnonymous},
			{"bad token", "sbt_not-a-real-token", sb.RoleAnonymous},
			{"client", e.tokens[sb.RoleClient], sb.RoleClient},
			{"admin", e.tokens[sb.RoleAdmin], sb.RoleAdmin},
			{"superadmin", e.tokens[sb.RoleSuperadmin], sb.RoleSuperadmin},
			{"agent", e.tokens[sb.RoleAgent], sb.RoleAgent},
		}
		for _, cl := range callers {
			t.Run(key+"/"+cl.name, func(t *testing.T) {
				e.t = t
				path, body := c.setup(e)
				want := c.ok
				switch {
				case rt.Role == sb.RoleAnonymous:
				case cl.role == sb.RoleAnonymous:
					want = http.StatusUnauthorized
				case cl.role == sb.RoleAgent || rt.Role == sb.RoleAgent:
					// An agent may call the agent routes and nothing else;
					// nobody else may call them.
					if cl.role != rt.Role {
						want = http.StatusForbidden
					}
				case cl.role < rt.Role:
					want = http.StatusForbidden
				}
				method := rt.Method
				var st int
				var b []byte
				if c.stream {
					st = e.statusOnly(method, path, cl.token)
				} else {
					st, b = e.do(method, path, cl.token, body)
				}
				if st != want {
					t.Fatalf("status %d, want %d: %s", st, want, b)
				}
				if st >= 400 && !c.stream {
					var eb errorBody
					if err := json.Unmarshal(b, &eb); err != nil || eb.Error.Code == "" || eb.Error.Message == "" {
						t.Fatalf("error body is not the JSON envelope: %s", b)
					}
				}
			})
		}
	}
	for k := range cases {
		t.Errorf("auth matrix case %s matches no route", k)
	}
}

func TestProviderCRUD(t *testing.T) {
	e := newTestEnv(t)
	su, admin := e.tokens[sb.RoleSuperadmin], e.tokens[sb.RoleAdmin]
	var created providerView
	e.mustDo("POST", "/api/streaming/providers", su, e.agoraProvider("agora", 1), 201, &created)
	// Created, then checked at once (against the loopback fake): verified.
	if !created.CredentialsSet || created.Status != sb.StatusExcellent || !created.Usable || created.State != sb.StateActive ||
		created.TotalChecks != 1 || created.Priority != 1 || !created.Enabled {
		t.Fatalf("created: %+v", created)
	}
	if created.HealthCheck.Interval.D().String() != "5m0s" || created.HealthCheck.FailureThreshold != 3 || created.HealthCheck.SuccessThreshold != 2 {
		t.Fatalf("health check defaults: %+v", created.HealthCheck)
	}
	e.createProvider(e.zegoProvider("zegocloud", 2))
	st, b := e.do("POST", "/api/streaming/providers", su, e.agoraProvider("agora", 3))
	if st != 409 || !strings.Contains(string(b), `"conflict"`) {
		t.Fatalf("duplicate: %d %s", st, b)
	}

	var list struct{ Providers []providerView }
	e.mustDo("GET", "/api/streaming/providers", admin, nil, 200, &list)
	if len(list.Providers) != 2 || list.Providers[0].Name != "agora" || list.Providers[1].Name != "zegocloud" {
		t.Fatalf("list order: %+v", list.Providers)
	}

	// Partial update: only the fields sent change; credentials stay set.
	var upd providerView
	e.mustDo("PUT", "/api/streaming/providers/agora", admin, map[string]any{"enabled": false, "weight": 5, "healthCheck": map[string]any{"interval": "1m"}}, 200, &upd)
	if upd.Enabled || upd.Weight != 5 || upd.HealthCheck.Interval.D().String() != "1m0s" || upd.HealthCheck.Timeout.D().String() != "5s" || !upd.CredentialsSet || upd.Config.AppID != agoraAppID {
		t.Fatalf("update: %+v", upd)
	}
	rec, err := e.store.GetProvider(t.Context(), "agora")
	if err != nil || rec.Credentials.CustomerSecret != secretCustomer {
		t.Fatalf("credentials lost on update: %v", err)
	}
	// Credentials can be rotated without being read back.
	e.mustDo("PUT", "/api/streaming/providers/agora", admin, map[string]any{"credentials": map[string]any{"customerSecret": "rotated-secret"}}, 200, nil)
	rec, _ = e.store.GetProvider(t.Context(), "agora")
	if rec.Credentials.CustomerSecret != "rotated-secret" || rec.Credentials.CustomerID != secretCustomerID {
		t.Fatalf("rotation: %v", rec.Credentials.Values())
	}

	// Atomic reorder.
	e.mustDo("PUT", "/api/streaming/providers/priorities", admin, map[string]any{"order": []string{"zegocloud", "agora"}}, 200, &list)
	if list.Providers[0].Name != "zegocloud" || list.Providers[0].Priority != 1 || list.Providers[1].Priority != 2 {
		t.Fatalf("reorder: %+v", list.Providers)
	}
	var reorders int
	for _, ev := range e.events.Events() {
		if ev.Type == sb.EventProvidersReorder {
			reorders++
		}
	}
	if reorders != 1 {
		t.Fatalf("reorder published %d events, want 1", reorders)
	}

	// Audit trail with before/after.
	var audit struct{ Entries []sb.AuditEntry }
	e.mustDo("GET", "/api/audit?target=agora", admin, nil, 200, &audit)
	if len(audit.Entries) < 3 || audit.Entries[0].Action != "provider.update" || audit.Entries[0].Before == nil || audit.Entries[0].After == nil {
		t.Fatalf("audit: %+v", audit.Entries)
	}

	e.mustDo("DELETE", "/api/streaming/providers/agora", su, nil, 204, nil)
	st, _ = e.do("GET", "/api/streaming/providers/agora", admin, nil)
	if st != 404 {
		t.Fatalf("deleted provider: %d", st)
	}
	st, _ = e.do("DELETE", "/api/streaming/providers/agora", su, nil)
	if st != 404 {
		t.Fatalf("delete twice: %d", st)
	}
}

// TestBadInput sends malformed and out-of-range requests: each gets its 4xx
// naming the field, and the registry is unchanged afterwards.
func TestBadInput(t *testing.T) {
	e := newTestEnv(t)
	su := e.tokens[sb.RoleSuperadmin]
	e.createProvider(e.agoraProvider("agora", 1))
	e.createProvider(e.zegoProvider("zegocloud", 2))
	before := e.snapshot()

	with := func(base map[string]any, kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	newAgora := e.agoraProvider("fresh", 3)
	type bad struct {
		name, method, path string
		body               any
		status             int
		field              string
	}
	const P = "/api/streaming/providers"
	inAnHour, inTwoHours := e.clock.Now().Add(time.Hour).Format(time.RFC3339), e.clock.Now().Add(2*time.Hour).Format(time.RFC3339)
	cases := []bad{
		{"malformed json", "POST", P, `{"name":`, 400, "body"},
		{"not an object", "POST", P, `[1,2]`, 400, "body"},
		{"empty body", "POST", P, ``, 400, "body"},
		{"trailing data", "POST", P, `{"name":"x","kind":"agora"} {}`, 400, "body"},
		{"unknown field", "POST", P, with(newAgora, "colour", "red"), 400, "colour"},
		{"unknown nested field", "POST", P, with(newAgora, "config", map[string]any{"appId": agoraAppID, "region": "x"}), 400, "config.region"},
		{"missing name", "POST", P, map[string]any{"kind": "agora"}, 400, "name"},
		{"missing kind", "POST", P, map[string]any{"name": "x"}, 400, "kind"},
		{"bad slug upper", "POST", P, with(newAgora, "name", "Agora"), 400, "name"},
		{"bad slug dash", "POST", P, with(newAgora, "name", "-agora"), 400, "name"},
		{"bad slug long", "POST", P, with(newAgora, "name", strings.Repeat("a", 64)), 400, "name"},
		{"bad slug chars", "POST", P, with(newAgora, "name", "a_b"), 400, "name"},
		{"name wrong type", "POST", P, with(newAgora, "name", 12), 400, "name"},
		{"unknown kind", "POST", P, with(newAgora, "kind", "twilio"), 400, "kind"},
		{"priority zero", "POST", P, with(newAgora, "priority", 0), 400, "priority"},
		{"priority negative", "POST", P, with(newAgora, "priority", -3), 400, "priority"},
		{"priority string", "POST", P, with(newAgora, "priority", "1"), 400, "priority"},
		{"priority float", "POST", P, with(newAgora, "priority", 1.5), 400, "priority"},
		{"priority huge", "POST", P, with(newAgora, "priority", 1e30), 400, "priority"},
		{"weight negative", "POST", P, with(newAgora, "weight", -1), 400, "weight"},
		{"max streams negative", "POST", P, with(newAgora, "maxActiveStreams", -1), 400, "maxActiveStreams"},
		{"enabled string", "POST", P, with(newAgora, "enabled", "yes"), 400, "enabled"},
		{"regions not array", "POST", P, with(newAgora, "regions", "us"), 400, "regions"},
		{"region bad", "POST", P, with(newAgora, "regions", []string{"US East"}), 400, "regions[0]"},
		{"agora appId short", "POST", P, with(newAgora, "config", map[string]any{"appId": "abc"}), 400, "config.appId"},
		{"agora url field", "POST", P, with(newAgora, "config", map[string]any{"appId": agoraAppID, "url": "http://x"}), 400, "config.url"},
		{"agora baseUrl bad", "POST", P, with(newAgora, "config", map[string]any{"appId": agoraAppID, "baseUrl": "ftp://x"}), 400, "config.baseUrl"},
		{"zego appId letters", "POST", P, with(e.zegoProvider("z2", 3), "config", map[string]any{"appId": "abc"}), 400, "config.appId"},
		{"zego secret short", "POST", P, with(e.zegoProvider("z2", 3), "credentials", map[string]any{"serverSecret": "short"}), 400, "credentials.serverSecret"},
		{"livekit no url", "POST", P, map[string]any{"name": "lk", "kind": "livekit"}, 400, "config.url"},
		{"http bad method", "POST", P, map[string]any{"name": "h", "kind": "http", "config": map[string]any{"url": "http://127.0.0.1:1/", "method": "DELETE"}}, 400, "config.method"},
		{"http bad status", "POST", P, map[string]any{"name": "h", "kind": "http", "config": map[string]any{"url": "http://127.0.0.1:1/", "expectStatus": []int{700}}}, 400, "config.expectStatus[0]"},
		{"credential of other kind", "POST", P, with(newAgora, "credentials", map[string]any{"apiKey": "k"}), 400, "credentials.apiKey"},
		{"credential unknown", "POST", P, with(newAgora, "credentials", map[string]any{"password": "p"}), 400, "credentials.password"},
		{"certificate not hex", "POST", P, with(newAgora, "credentials", map[string]any{"appCertificate": "zz"}), 400, "credentials.appCertificate"},
		{"currency bad", "POST", P, with(newAgora, "pricing", map[string]any{"currency": "dollars", "perThousandMinutes": map[string]any{"hd": 1}}), 400, "pricing.currency"},
		{"price tier unknown", "POST", P, with(newAgora, "pricing", map[string]any{"currency": "USD", "perThousandMinutes": map[string]any{"4k": 1}}), 400, "pricing.perThousandMinutes.4k"},
		{"price negative", "POST", P, with(newAgora, "pricing", map[string]any{"currency": "USD", "perThousandMinutes": map[string]any{"hd": -1}}), 400, "pricing.perThousandMinutes.hd"},
		{"budget negative", "POST", P, with(newAgora, "monthlyBudget", -5), 400, "monthlyBudget"},
		{"interval not duration", "POST", P, with(newAgora, "healthCheck", map[string]any{"interval": "often"}), 400, "healthCheck.interval"},
		{"interval number", "POST", P, with(newAgora, "healthCheck", map[string]any{"interval": 300}), 400, "healthCheck.interval"},
		{"interval too short", "POST", P, with(newAgora, "healthCheck", map[string]any{"interval": "10ms"}), 400, "healthCheck.interval"},
		{"timeout above interval", "POST", P, with(newAgora, "healthCheck", map[string]any{"interval": "2s", "timeout": "5s"}), 400, "healthCheck.timeout"},
		{"window too long", "POST", P, with(newAgora, "healthCheck", map[string]any{"window": "721h"}), 400, "healthCheck.window"},
		{"window too short", "POST", P, with(newAgora, "healthCheck", map[string]any{"window": "500ms"}), 400, "healthCheck.window"},
		{"window not duration", "POST", P, with(newAgora, "healthCheck", map[string]any{"window": "a day"}), 400, "healthCheck.window"},
		{"failure threshold zero", "POST", P, with(newAgora, "healthCheck", map[string]any{"failureThreshold": 0}), 400, "healthCheck.failureThreshold"},
		{"success threshold big", "POST", P, with(newAgora, "healthCheck", map[string]any{"successThreshold": 1000}), 400, "healthCheck.successThreshold"},
		{"display name newline", "POST", P, with(newAgora, "displayName", "a\nb"), 400, "displayName"},
		{"update name", "PUT", P + "/agora", map[string]any{"name": "other"}, 400, "name"},
		{"update kind", "PUT", P + "/agora", map[string]any{"kind": "livekit"}, 400, "kind"},
		{"update bad priority", "PUT", P + "/agora", map[string]any{"priority": 0}, 400, "priority"},
		{"update unknown field", "PUT", P + "/agora", map[string]any{"enabld": true}, 400, "enabld"},
		{"update wrong type", "PUT", P + "/agora", map[string]any{"weight": "heavy"}, 400, "weight"},
		{"update unknown provider", "PUT", P + "/nope", map[string]any{"enabled": true}, 404, ""},
		{"get unknown provider", "GET", P + "/nope", nil, 404, ""},
		{"reorder missing one", "PUT", P + "/priorities", map[string]any{"order": []string{"agora"}}, 400, "order"},
		{"reorder duplicate", "PUT", P + "/priorities", map[string]any{"order": []string{"agora", "agora"}}, 400, "order"},
		{"reorder unknown", "PUT", P + "/priorities", map[string]any{"order": []string{"agora", "zegocloud", "ghost"}}, 400, "order"},
		{"reorder empty", "PUT", P + "/priorities", map[string]any{"order": []string{}}, 400, "order"},
		{"reorder bad slug", "PUT", P + "/priorities", map[string]any{"order": []string{"Agora", "zegocloud"}}, 400, "order[0]"},
		{"reorder not list", "PUT", P + "/priorities", map[string]any{"order": "agora"}, 400, "order"},
		{"token bad role", "POST", "/api/auth/tokens", map[string]any{"name": "x", "role": "root"}, 400, "role"},
		{"token no name", "POST", "/api/auth/tokens", map[string]any{"role": "client"}, 400, "name"},
		{"audit bad limit", "GET", "/api/audit?limit=0", nil, 400, "limit"},
		{"alert channel unknown kind", "POST", "/api/alerts/channels", map[string]any{"name": "x", "kind": "fax"}, 400, "kind"},
		{"alert channel bad url", "POST", "/api/alerts/channels", map[string]any{"name": "x", "kind": "webhook", "config": map[string]any{"url": "nope"}}, 400, "config.url"},
		{"alert rule short repeat", "POST", "/api/alerts/rules", map[string]any{"name": "x", "events": []string{"provider.critical"}, "channels": []string{"x"}, "repeatInterval": "59s"}, 400, "repeatInterval"},
		{"alert deliveries bad limit", "GET", "/api/alerts/deliveries?limit=5000", nil, 400, "limit"},
		{"maintenance unknown provider", "POST", "/api/maintenance", map[string]any{"provider": "ghost", "end": inAnHour, "reason": "x"}, 400, "provider"},
		{"maintenance end before start", "POST", "/api/maintenance", map[string]any{"provider": "agora", "start": inTwoHours, "end": inAnHour, "reason": "x"}, 400, "end"},
		{"maintenance bad state", "GET", "/api/maintenance?state=soon", nil, 400, "state"},
	}
	if len(cases) < 40 {
		t.Fatalf("only %d bad inputs", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			st, b := e.do(c.method, c.path, su, c.body)
			if st != c.status {
				t.Fatalf("status %d, want %d: %s", st, c.status, b)
			}
			var eb errorBody
			if err := json.Unmarshal(b, &eb); err != nil {
				t.Fatalf("not a JSON error: %s", b)
			}
			if eb.Error.Field != c.field {
				t.Fatalf("field %q, want %q (%s)", eb.Error.Field, c.field, b)
			}
			if after := e.snapshot(); after != before {
				t.Fatalf("registry changed by a rejected write")
			}
		})
	}
	// Content type and size.
	e.t = t
	st, _ := e.doHeaders("POST", P, `{"name":"x","kind":"agora"}`, map[string]string{"Authorization": bearer(su), "Content-Type": "text/plain"})
	if st != 415 {
		t.Fatalf("text/plain: %d", st)
	}
	big := `{"displayName":"` + strings.Repeat("a", 2<<20) + `"}`
	st, _ = e.do("PUT", P+"/agora", su, big)
	if st != 413 {
		t.Fatalf("2 MiB body: %d", st)
	}
	if e.snapshot() != before {
		t.Fatal("registry changed")
	}
}

// TestNoSecretLeaks creates providers with credentials, exercises the API and
// looks for every secret in every response, the audit log, the logs, the
// events and the OpenAPI document.
func TestNoSecretLeaks(t *testing.T) {
	e := newTestEnv(t)
	su := e.tokens[sb.RoleSuperadmin]
	var bodies []string
	record := func(method, path string, body any) {
		_, b := e.do(method, path, su, body)
		bodies = append(bodies, string(b))
	}
	record("POST", "/api/streaming/providers", e.agoraProvider("agora", 1))
	record("POST", "/api/streaming/providers", e.zegoProvider("zegocloud", 2))
	record("POST", "/api/streaming/providers", map[string]any{"name": "lk", "kind": "livekit", "config": map[string]any{"url": "http://127.0.0.1:7880"}, "credentials": map[string]any{"apiKey": "devkey", "apiSecret": secretLiveKit}})
	record("POST", "/api/streaming/providers", map[string]any{"name": "cdn", "kind": "http", "config": map[string]any{"url": "http://127.0.0.1:9/"}, "credentials": map[string]any{"headers": map[string]string{"Authorization": secretHeader}}})
	record("PUT", "/api/streaming/providers/agora", map[string]any{"credentials": map[string]any{"customerSecret": secretCustomer}})
	// A rejected write that carries a secret must not echo it.
	record("PUT", "/api/streaming/providers/zegocloud", map[string]any{"credentials": map[string]any{"serverSecret": secretZego + "x"}})
	record("POST", "/api/streaming/providers", map[string]any{"name": "bad", "kind": "agora", "config": map[string]any{"appId": agoraAppID}, "credentials": map[string]any{"appCertificate": secretCustomer}})
	for _, p := range []string{"/api/streaming/providers", "/api/streaming/providers/agora", "/api/streaming/providers/cdn", "/api/audit", "/api/openapi.json", "/metrics", "/api/auth/tokens"} {
		record("GET", p, nil)
	}
	evs, _ := json.Marshal(e.events.Events())
	haystacks := map[string]string{"responses": strings.Join(bodies, "\n"), "logs": e.logs.String(), "events": string(evs)}
	for where, text := range haystacks {
		for _, s := range allSecrets {
			if strings.Contains(text, s) {
				t.Errorf("secret %q… found in %s", s[:6], where)
			}
		}
	}
	if !strings.Contains(haystacks["responses"], `"credentialsSet":true`) {
		t.Error("responses do not show credentialsSet")
	}
}

func TestLoginSessionAndCSRF(t *testing.T) {
	e := newTestEnv(t)
	jar := e.srv.Client()
	_ = jar
	login := func(pw string) (int, []byte, []*http.Cookie) {
		req, _ := http.NewRequest("POST", e.srv.URL+"/api/auth/login", strings.NewReader(fmt.Sprintf(`{"username":"admin","password":%q}`, pw)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var buf strings.Builder
		_, _ = fmt.Fprint(&buf, "")
		b := make([]byte, 4096)
		n, _ := resp.Body.Read(b)
		return resp.StatusCode, b[:n], resp.Cookies()
	}
	st, _, _ := login("wrong")
	if st != 401 {
		t.Fatalf("wrong password: %d", st)
	}
	st, body, cookies := login(adminPassword)
	if st != 200 || len(cookies) != 1 {
		t.Fatalf("login: %d %s", st, body)
	}
	c := cookies[0]
	if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie flags: %+v", c)
	}
	var me meResponse
	if err := json.Unmarshal(body, &me); err != nil || me.CSRFToken == "" || me.Role != sb.RoleSuperadmin {
		t.Fatalf("login body: %s", body)
	}
	cookie := c.Name + "=" + c.Value
	st, _ = e.doHeaders("GET", "/api/streaming/providers", nil, map[string]string{"Cookie": cookie})
	if st != 200 {
		t.Fatalf("cookie read: %d", st)
	}
	// A cookie-authenticated write without the CSRF header is refused.
	st, _ = e.doHeaders("POST", "/api/streaming/providers", e.agoraProvider("agora", 1), map[string]string{"Cookie": cookie})
	if st != 403 {
		t.Fatalf("write without CSRF token: %d", st)
	}
	st, _ = e.doHeaders("POST", "/api/streaming/providers", e.agoraProvider("agora", 1), map[string]string{"Cookie": cookie, csrfHeader: "forged"})
	if st != 403 {
		t.Fatalf("write with a forged CSRF token: %d", st)
	}
	st, b := e.doHeaders("POST", "/api/streaming/providers", e.agoraProvider("agora", 1), map[string]string{"Cookie": cookie, csrfHeader: me.CSRFToken})
	if st != 201 {
		t.Fatalf("write with CSRF token: %d %s", st, b)
	}
	st, _ = e.doHeaders("POST", "/api/auth/logout", nil, map[string]string{"Cookie": cookie, csrfHeader: me.CSRFToken})
	if st != 204 {
		t.Fatalf("logout: %d", st)
	}
	st, _ = e.doHeaders("GET", "/api/streaming/providers", nil, map[string]string{"Cookie": cookie})
	if st != 401 {
		t.Fatalf("after logout: %d", st)
	}
}

func TestLoginThrottled(t *testing.T) {
	e := newTestEnv(t)
	e.api.logins = newLimiterSet(time.Hour, 3)
	var last int
	for i := 0; i < 5; i++ {
		last, _ = e.do("POST", "/api/auth/login", "", map[string]string{"username": "admin", "password": "guess"})
	}
	if last != 429 {
		t.Fatalf("5th failed login: %d, want 429", last)
	}
}

func TestRevokedTokenRejected(t *testing.T) {
	e := newTestEnv(t)
	var tok struct{ ID, Token string }
	e.mustDo("POST", "/api/auth/tokens", bootstrapToken, map[string]string{"name": "ci", "role": "admin"}, 201, &tok)
	e.mustDo("GET", "/api/streaming/providers", tok.Token, nil, 200, nil)
	e.mustDo("DELETE", "/api/auth/tokens/"+tok.ID, bootstrapToken, nil, 204, nil)
	e.mustDo("GET", "/api/streaming/providers", tok.Token, nil, 401, nil)
	var list struct{ Tokens []map[string]any }
	e.mustDo("GET", "/api/auth/tokens", bootstrapToken, nil, 200, &list)
	for _, tk := range list.Tokens {
		if _, ok := tk["hash"]; ok {
			t.Fatal("token hash in listing")
		}
	}
}

// TestTextInputsOnEveryStore sends strings that PostgreSQL cannot store as
// text (a NUL, invalid UTF-8) in every place where client text reaches the
// store unchecked by a pattern, and wants a 4xx naming the field, never a 5xx.
func TestTextInputsOnEveryStore(t *testing.T) {
	stores := []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"postgres", func(t *testing.T) string { return pgtest.DSN(t) }},
	}
	for _, store := range stores {
		t.Run(store.name, func(t *testing.T) {
			e := newTestEnvOn(t, store.dsn(t))
			e.createProvider(e.agoraProvider("agora", 1))
			e.createProvider(e.zegoProvider("zegocloud", 2))
			client := e.tokens[sb.RoleClient]
			var a struct{ ID string }
			e.mustDo("POST", "/api/streams", client, map[string]any{"room": "r", "userId": "u", "role": "publisher"}, 201, &a)
			s := "/api/streams/" + a.ID
			cases := []struct {
				name, method, path, token string
				body                      any
				status                    int
				field                     string
			}{
				{"audit target NUL", "GET", "/api/audit?target=%00", e.tokens[sb.RoleAdmin], nil, 400, "target"},
				{"audit target not UTF-8", "GET", "/api/audit?target=%ff", e.tokens[sb.RoleAdmin], nil, 400, "target"},
				{"revoke id NUL", "DELETE", "/api/auth/tokens/%00", e.tokens[sb.RoleSuperadmin], nil, 400, "id"},
				{"revoke id not UTF-8", "DELETE", "/api/auth/tokens/%ff", e.tokens[sb.RoleSuperadmin], nil, 400, "id"},
				{"login username NUL", "POST", "/api/auth/login", "", `{"username":"ad\u0000min","password":"x"}`, 400, "username"},
				{"failure code NUL", "POST", s + "/failures", client, `{"provider":"agora","stage":"connect","code":"a\u0000"}`, 400, "code"},
				{"failure message NUL", "POST", s + "/failures", client, `{"provider":"agora","stage":"connect","message":"a\u0000"}`, 400, "message"},
				{"migrate reason NUL", "POST", s + "/migrate", client, `{"to":"zegocloud","reason":"a\u0000"}`, 400, "reason"},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					e.t = t
					st, b := e.do(c.method, c.path, c.token, c.body)
					var eb errorBody
					if err := json.Unmarshal(b, &eb); err != nil {
						t.Fatalf("status %d, not a JSON error: %s", st, b)
					}
					if st != c.status || eb.Error.Field != c.field {
						t.Fatalf("got %d field %q, want %d field %q: %s", st, eb.Error.Field, c.status, c.field, b)
					}
				})
			}
		})
	}
}

func TestWrongMethodIs405(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	req, _ := http.NewRequest("PATCH", e.srv.URL+"/api/streaming/providers/agora", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, PUT, DELETE" {
		t.Fatalf("PATCH: %d Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	if st, _ := e.do("GET", "/api/nothing-here", "", nil); st != 404 {
		t.Fatalf("unknown path: %d", st)
	}
}
