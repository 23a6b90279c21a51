package httpapi

import (
	"testing"

	sb "github.com/switchboardhq/switchboard"
)

// TestStreamingConfigCache: the config body is built once while nothing it
// is made of changes, and again after a settings change and a provider change.
func TestStreamingConfigCache(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	client := e.tokens[sb.RoleClient]
	var first struct {
		sb.ClientSettings
		Providers []struct{ Name string }
	}
	e.mustDo("GET", "/api/streaming/config", client, nil, 200, &first)
	body := e.api.config.last.Load().body
	e.mustDo("GET", "/api/streaming/config", client, nil, 200, nil)
	if &e.api.config.last.Load().body[0] != &body[0] {
		t.Fatal("the unchanged config was built again")
	}
	e.mustDo("PUT", "/api/settings", e.tokens[sb.RoleSuperadmin], map[string]any{"maxRetries": first.ClientSettings.MaxRetries + 1}, 200, nil)
	var second struct{ sb.ClientSettings }
	e.mustDo("GET", "/api/streaming/config", client, nil, 200, &second)
	if second.ClientSettings.MaxRetries != first.ClientSettings.MaxRetries+1 {
		t.Fatalf("after a settings change: %+v, before %+v", second.ClientSettings, first.ClientSettings)
	}
	e.mustDo("PUT", "/api/streaming/providers/agora", e.tokens[sb.RoleAdmin], map[string]any{"enabled": false}, 200, nil)
	var third struct{ Providers []struct{ Name string } }
	e.mustDo("GET", "/api/streaming/config", client, nil, 200, &third)
	if len(first.Providers) != 1 || len(third.Providers) != 0 {
		t.Fatalf("providers before %v, after disabling %v", first.Providers, third.Providers)
	}
}
