package switchboard_test

import (
	"encoding/json"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

func mustProvider(t *testing.T, body string) sb.Provider {
	t.Helper()
	var in sb.ProviderInput
	if err := json.Unmarshal([]byte(body), &in); err != nil {
		t.Fatal(err)
	}
	p, err := in.NewProvider()
	if err != nil {
		t.Fatalf("NewProvider(%s): %v", body, err)
	}
	return p
}

// TestProviderInputRefusesDefaults: a present value that Normalize would take
// for unset and replace by its default is refused, on create and on update,
// with the message Validate gives for a value out of range.
func TestProviderInputRefusesDefaults(t *testing.T) {
	p := mustProvider(t, `{"name":"web","kind":"http","config":{"url":"https://example.com/health"}}`)
	tests := []struct {
		name, body, field, msg string
	}{
		{"priority 0", `{"priority":0}`, "priority", "must be an integer from 1 to 1000000"},
		{"priority out of range", `{"priority":1000001}`, "priority", "must be an integer from 1 to 1000000"},
		{"weight 0", `{"weight":0}`, "weight", "must be an integer from 1 to 1000000"},
		{"weight negative", `{"weight":-3}`, "weight", "must be an integer from 1 to 1000000"},
		{"interval 0", `{"healthCheck":{"interval":"0s"}}`, "healthCheck.interval", "must be from 1s to 24h"},
		{"interval too long", `{"healthCheck":{"interval":"25h"}}`, "healthCheck.interval", "must be from 1s to 24h"},
		{"timeout 0", `{"healthCheck":{"timeout":"0s"}}`, "healthCheck.timeout", "must be from 10ms to 5m"},
		{"window 0", `{"healthCheck":{"window":"0s"}}`, "healthCheck.window", "must be from 1s to 30d (720h)"},
		{"window too short", `{"healthCheck":{"window":"999ms"}}`, "healthCheck.window", "must be from 1s to 30d (720h)"},
		{"window too long", `{"healthCheck":{"window":"721h"}}`, "healthCheck.window", "must be from 1s to 30d (720h)"},
		{"window 31 days", `{"healthCheck":{"window":"31d"}}`, "healthCheck.window", "must be from 1s to 30d (720h)"},
		{"timeout and interval 0", `{"healthCheck":{"timeout":"0s","interval":"0s"}}`, "healthCheck.timeout", "must be from 10ms to 5m"},
		{"failure threshold 0", `{"healthCheck":{"failureThreshold":0}}`, "healthCheck.failureThreshold", "must be from 1 to 100"},
		{"success threshold 0", `{"healthCheck":{"successThreshold":0}}`, "healthCheck.successThreshold", "must be from 1 to 100"},
		{"success threshold too high", `{"healthCheck":{"successThreshold":101}}`, "healthCheck.successThreshold", "must be from 1 to 100"},
		{"pricing without prices", `{"pricing":{"currency":"USD"}}`, "pricing.perThousandMinutes", "is required"},
		{"unknown tier", `{"pricing":{"currency":"USD","perThousandMinutes":{"4k":1}}}`, "pricing.perThousandMinutes.4k", "must be audio, sd, hd or fullhd"},
		{"bad region", `{"regions":["us-east","EU"]}`, "regions[1]", "must be a lowercase region slug such as us-east"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var in sb.ProviderInput
			if err := json.Unmarshal([]byte(tt.body), &in); err != nil {
				t.Fatal(err)
			}
			_, err := in.ApplyTo(p)
			wantInvalid(t, err, tt.field, tt.msg)

			name, kind := "web", sb.KindHTTP
			in.Name, in.Kind, in.Config = &name, &kind, &sb.ProviderConfig{URL: "https://example.com/health"}
			_, err = in.NewProvider()
			wantInvalid(t, err, tt.field, tt.msg)
		})
	}
}

func TestProviderNameMessage(t *testing.T) {
	name, kind := "Not OK", sb.KindHTTP
	_, err := sb.ProviderInput{Name: &name, Kind: &kind}.NewProvider()
	wantInvalid(t, err, "name", "must match ^[a-z0-9][a-z0-9-]{0,62}$")
}

// The window of a provider defaults to a day and reads Go durations and whole
// days.
func TestHealthCheckWindow(t *testing.T) {
	p := mustProvider(t, `{"name":"web","kind":"http","config":{"url":"https://example.com/health"}}`)
	if p.HealthCheck.Window.D() != 24*time.Hour {
		t.Errorf("default window = %v, want 24h", p.HealthCheck.Window.D())
	}
	for body, want := range map[string]time.Duration{
		`{"healthCheck":{"window":"30d"}}`:  30 * 24 * time.Hour,
		`{"healthCheck":{"window":"1s"}}`:   time.Second,
		`{"healthCheck":{"window":"90m"}}`:  90 * time.Minute,
		`{"healthCheck":{"window":"720h"}}`: 720 * time.Hour,
	} {
		var in sb.ProviderInput
		if err := json.Unmarshal([]byte(body), &in); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		q, err := in.ApplyTo(p)
		if err != nil || q.HealthCheck.Window.D() != want {
			t.Errorf("%s: window %v, %v; want %v", body, q.HealthCheck.Window.D(), err, want)
		}
	}
	for _, bad := range []string{`"1.5d"`, `"-1d"`, `"d"`, `30`} {
		var in sb.ProviderInput
		if err := json.Unmarshal([]byte(`{"healthCheck":{"window":`+bad+`}}`), &in); err == nil {
			t.Errorf("window %s accepted", bad)
		}
	}
	// A policy stored before windows existed has the default.
	if got := (sb.HealthCheckPolicy{}).WindowOrDefault(); got != sb.DefaultHealthWindow {
		t.Errorf("WindowOrDefault of an unset window = %v", got)
	}
}
