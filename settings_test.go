package switchboard

import (
	"encoding/json"
	"testing"
	"time"
)

func TestSettingsInputApplyTo(t *testing.T) {
	d := DefaultSettings()
	tests := []struct {
		body      string
		wantField string // "" = valid
	}{
		{`{"maxRetries":1}`, ""},
		{`{"maxRetries":10,"maxFailures":10}`, ""},
		{`{"maxRetries":0}`, "maxRetries"},
		{`{"maxRetries":11}`, "maxRetries"},
		{`{"maxFailures":0}`, "maxFailures"},
		{`{"maxFailures":11}`, "maxFailures"},
		{`{"healthCheckInterval":"5s"}`, ""},
		{`{"healthCheckInterval":"10m"}`, ""},
		{`{"healthCheckInterval":"4.999s"}`, "healthCheckInterval"},
		{`{"healthCheckInterval":"10m1s"}`, "healthCheckInterval"},
		{`{"healthCheckInterval":"0s"}`, "healthCheckInterval"},
		{`{"retryBackoff":"10ms"}`, ""},
		{`{"retryBackoff":"10s"}`, ""},
		{`{"retryBackoff":"9ms"}`, "retryBackoff"},
		{`{"retryBackoff":"11s"}`, "retryBackoff"},
		{`{"retryBudget":0.01}`, ""},
		{`{"retryBudget":1}`, ""},
		{`{"retryBudget":0}`, "retryBudget"},
		{`{"retryBudget":0.009}`, "retryBudget"},
		{`{"retryBudget":1.01}`, "retryBudget"},
		{`{"leaderLease":"3s"}`, ""},
		{`{"leaderLease":"2s"}`, "leaderLease"},
		{`{"leaderLease":"-1s"}`, "leaderLease"},
		{`{"maxRetries":5,"retryBudget":7}`, "retryBudget"},
		{`{"preemptive":"off"}`, ""},
		{`{"preemptive":"new-streams"}`, ""},
		{`{"preemptive":"migrate"}`, ""},
		{`{"preemptive":""}`, "preemptive"},
		{`{"preemptive":"Migrate"}`, "preemptive"},
		{`{"maxPreemptiveMigrationsPerMinute":1}`, ""},
		{`{"maxPreemptiveMigrationsPerMinute":600}`, ""},
		{`{"maxPreemptiveMigrationsPerMinute":0}`, "maxPreemptiveMigrationsPerMinute"},
		{`{"maxPreemptiveMigrationsPerMinute":601}`, "maxPreemptiveMigrationsPerMinute"},
	}
	for _, tt := range tests {
		t.Run(tt.body, func(t *testing.T) {
			var in SettingsInput
			if err := json.Unmarshal([]byte(tt.body), &in); err != nil {
				t.Fatal(err)
			}
			got, err := in.ApplyTo(d)
			if tt.wantField == "" {
				if err != nil {
					t.Fatalf("ApplyTo: %v", err)
				}
				return
			}
			e, ok := err.(*Error)
			if !ok || e.Code != EInvalid || e.Field != tt.wantField {
				t.Fatalf("ApplyTo = %+v, %v; want EInvalid naming %s", got, err, tt.wantField)
			}
		})
	}
}

func TestSettingsOrAndSet(t *testing.T) {
	d := DefaultSettings()
	set := Settings{MaxRetries: 5}
	eff := set.Or(d)
	if eff.MaxRetries != 5 || eff.MaxFailures != 3 || eff.LeaderLease.D() != 10*time.Second {
		t.Fatalf("Or = %+v", eff)
	}
	after := eff
	after.RetryBudget = 0.5
	got := set.Set(eff, after)
	if want := (Settings{MaxRetries: 5, RetryBudget: 0.5}); got != want {
		t.Fatalf("Set = %+v, want %+v", got, want)
	}
	if (SettingsInput{}).Empty() != true {
		t.Fatal("an empty input is not Empty")
	}
}

// Stored settings are checked again when read: a preemptive mode or rate out
// of range names its field; unset ones are valid and take the defaults.
func TestSettingsPreemptive(t *testing.T) {
	if err := (Settings{Preemptive: "sometimes"}).Validate(); err == nil || err.(*Error).Field != "preemptive" {
		t.Errorf("Validate of a bad mode = %v, want EInvalid naming preemptive", err)
	}
	if err := (Settings{MaxPreemptiveMigrationsPerMinute: -1}).Validate(); err == nil || err.(*Error).Field != "maxPreemptiveMigrationsPerMinute" {
		t.Errorf("Validate of a bad rate = %v", err)
	}
	got := Settings{}.Or(DefaultSettings())
	if got.Preemptive != PreemptiveNewStreams || got.MaxPreemptiveMigrationsPerMinute != 30 {
		t.Errorf("defaults: %s, %d; want new-streams, 30", got.Preemptive, got.MaxPreemptiveMigrationsPerMinute)
	}
	set := Settings{}.Set(DefaultSettings(), Settings{Preemptive: PreemptiveOff, MaxPreemptiveMigrationsPerMinute: 30}.Or(DefaultSettings()))
	if set.Preemptive != PreemptiveOff || set.MaxPreemptiveMigrationsPerMinute != 0 {
		t.Errorf("Set kept %+v, want only preemptive set", set)
	}
}
