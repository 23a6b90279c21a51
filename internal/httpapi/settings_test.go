package httpapi

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

func TestSettingsGetPut(t *testing.T) {
	e := newTestEnv(t)
	var got map[string]any
	e.mustDo("GET", "/api/settings", e.tokens[sb.RoleAdmin], nil, 200, &got)
	want := map[string]any{"maxRetries": 3.0, "maxFailures": 3.0, "healthCheckInterval": "30s", "retryBackoff": "100ms", "retryBudget": 0.2, "leaderLease": "10s",
		"preemptive": "new-streams", "maxPreemptiveMigrationsPerMinute": 30.0}
	if !jsonSame(got, want) {
		t.Fatalf("GET /api/settings = %v, want %v", got, want)
	}

	// Access: admins read, only superadmins write.
	if st, _ := e.do("GET", "/api/settings", e.tokens[sb.RoleClient], nil); st != 403 {
		t.Errorf("GET as client: %d, want 403", st)
	}
	if st, _ := e.do("PUT", "/api/settings", e.tokens[sb.RoleAdmin], map[string]any{"maxRetries": 5}); st != 403 {
		t.Errorf("PUT as admin: %d, want 403", st)
	}

	// A partial update changes what it names and keeps the rest.
	e.events.Take()
	e.mustDo("PUT", "/api/settings", e.tokens[sb.RoleSuperadmin], map[string]any{"maxRetries": 5, "retryBackoff": "250ms"}, 200, &got)
	want["maxRetries"], want["retryBackoff"] = 5.0, "250ms"
	if !jsonSame(got, want) {
		t.Fatalf("PUT answer = %v, want %v", got, want)
	}
	evs := e.events.Take()
	if len(evs) != 1 || evs[0].Type != sb.EventSettingsUpdated || evs[0].Audience != sb.RoleClient {
		t.Fatalf("events = %+v, want one settings.updated for clients", evs)
	}
	if s, ok := evs[0].Data.(sb.Settings); !ok || s.MaxRetries != 5 || s.RetryBackoff.D() != 250*time.Millisecond {
		t.Errorf("event data = %#v", evs[0].Data)
	}

	// The SDK configuration serves them at once, in its format.
	var cfg map[string]any
	e.mustDo("GET", "/api/streaming/config", e.tokens[sb.RoleClient], nil, 200, &cfg)
	if cfg["maxRetries"] != 5.0 || cfg["retryBackoff"] != "250ms" || cfg["healthCheckInterval"] != "30s" || cfg["retryBudget"] != 0.2 {
		t.Errorf("config = %v", cfg)
	}
	if _, ok := cfg["leaderLease"]; ok {
		t.Errorf("config serves the leader lease: %v", cfg)
	}

	// Audited with the values before and after.
	audit, err := e.store.ListAudit(context.Background(), sb.AuditFilter{Target: "settings"})
	if err != nil || len(audit) != 1 {
		t.Fatalf("audit = %+v, %v", audit, err)
	}
	a := audit[0]
	if a.Action != "settings.update" || a.Actor.Role != sb.RoleSuperadmin ||
		!strings.Contains(string(a.Before), `"maxRetries":3`) || !strings.Contains(string(a.After), `"maxRetries":5`) ||
		!strings.Contains(string(a.Before), `"retryBackoff":"100ms"`) || !strings.Contains(string(a.After), `"retryBackoff":"250ms"`) {
		t.Errorf("audit entry = %+v before %s after %s", a, a.Before, a.After)
	}

	// A body that changes nothing: no audit entry, no event.
	e.mustDo("PUT", "/api/settings", e.tokens[sb.RoleSuperadmin], map[string]any{"maxRetries": 5}, 200, &got)
	if evs := e.events.Take(); len(evs) != 0 {
		t.Errorf("a no-op PUT published %+v", evs)
	}
	if audit, _ := e.store.ListAudit(context.Background(), sb.AuditFilter{Target: "settings"}); len(audit) != 1 {
		t.Errorf("a no-op PUT was audited: %d entries", len(audit))
	}
}

func TestSettingsPutInvalid(t *testing.T) {
	e := newTestEnv(t)
	tests := []struct {
		body  string
		field string
	}{
		{`{"maxRetries":0}`, "maxRetries"},
		{`{"maxRetries":11}`, "maxRetries"},
		{`{"maxRetries":2.5}`, "maxRetries"},
		{`{"maxFailures":11}`, "maxFailures"},
		{`{"healthCheckInterval":"4s"}`, "healthCheckInterval"},
		{`{"healthCheckInterval":"11m"}`, "healthCheckInterval"},
		{`{"healthCheckInterval":30}`, "healthCheckInterval"},
		{`{"retryBackoff":"5ms"}`, "retryBackoff"},
		{`{"retryBackoff":"11s"}`, "retryBackoff"},
		{`{"retryBudget":0}`, "retryBudget"},
		{`{"retryBudget":1.5}`, "retryBudget"},
		{`{"leaderLease":"1s"}`, "leaderLease"},
		{`{"maxRetries":4,"bogus":1}`, "bogus"},
		{`{"maxRetries":4,"retryBudget":-1}`, "retryBudget"},
		{`{}`, "body"},
	}
	e.events.Take()
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			st, body := e.do("PUT", "/api/settings", e.tokens[sb.RoleSuperadmin], tt.body)
			var eb struct {
				Error struct{ Code, Field, Message string }
			}
			_ = json.Unmarshal(body, &eb)
			if st != 400 || eb.Error.Field != tt.field {
				t.Errorf("PUT %s: %d %s, want 400 naming %s", tt.body, st, body, tt.field)
			}
		})
	}
	var got sb.Settings
	e.mustDo("GET", "/api/settings", e.tokens[sb.RoleAdmin], nil, 200, &got)
	if got != sb.DefaultSettings() {
		t.Errorf("settings after refused changes = %+v", got)
	}
	if evs := e.events.Take(); len(evs) != 0 {
		t.Errorf("refused changes published %+v", evs)
	}
	if audit, _ := e.store.ListAudit(context.Background(), sb.AuditFilter{Target: "settings"}); len(audit) != 0 {
		t.Errorf("refused changes were audited: %+v", audit)
	}
}

// TestSettingsChangedElsewhere: a change another replica made (here: written
// to the store directly) is served once SettingsChanged is called, as the
// replica's event relay does on settings.updated.
func TestSettingsChangedElsewhere(t *testing.T) {
	e := newTestEnv(t)
	var cfg struct{ MaxRetries int }
	e.mustDo("GET", "/api/streaming/config", e.tokens[sb.RoleClient], nil, 200, &cfg)
	if cfg.MaxRetries != 3 {
		t.Fatalf("maxRetries = %d", cfg.MaxRetries)
	}
	if _, _, err := e.store.UpdateSettings(context.Background(), sb.DefaultSettings(), func(s sb.Settings) (sb.Settings, error) {
		s.MaxRetries = 9
		return s, nil
	}, sb.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
	e.api.SettingsChanged()
	e.mustDo("GET", "/api/streaming/config", e.tokens[sb.RoleClient], nil, 200, &cfg)
	if cfg.MaxRetries != 9 {
		t.Errorf("maxRetries after another replica's change = %d, want 9", cfg.MaxRetries)
	}
}

func jsonSame(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
