package main

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

func TestSettingsCLI(t *testing.T) {
	e := startServer(t)
	out := e.mustCLI("settings", "get")
	for _, want := range [][2]string{{"SETTING", "VALUE"}, {"maxRetries", "3"}, {"healthCheckInterval", "30s"}, {"retryBackoff", "100ms"}, {"retryBudget", "0.2"},
		{"leaderLease", "10s"}, {"preemptive", "new-streams"}, {"maxPreemptiveMigrationsPerMinute", "30"}} {
		if !hasRow(out, want[0], want[1]) {
			t.Errorf("settings get lacks %s %s:\n%s", want[0], want[1], out)
		}
	}
	out = e.mustCLI("settings", "set", "maxRetries=5", "retryBackoff=250ms", "retryBudget=0.5", "preemptive=migrate", "maxPreemptiveMigrationsPerMinute=12")
	if !hasRow(out, "maxRetries", "5") || !hasRow(out, "retryBackoff", "250ms") || !hasRow(out, "retryBudget", "0.5") ||
		!hasRow(out, "preemptive", "migrate") || !hasRow(out, "maxPreemptiveMigrationsPerMinute", "12") {
		t.Errorf("settings set:\n%s", out)
	}
	var got struct {
		MaxRetries   int     `json:"maxRetries"`
		MaxFailures  int     `json:"maxFailures"`
		RetryBackoff string  `json:"retryBackoff"`
		RetryBudget  float64 `json:"retryBudget"`
		LeaderLease  string  `json:"leaderLease"`
	}
	e.mustJSON(&got, "settings", "get")
	if got.MaxRetries != 5 || got.MaxFailures != 3 || got.RetryBackoff != "250ms" || got.RetryBudget != 0.5 || got.LeaderLease != "10s" {
		t.Errorf("settings get -o json = %+v", got)
	}
	e.mustJSON(&got, "settings", "set", "leaderLease=30s")
	if got.LeaderLease != "30s" || got.MaxRetries != 5 {
		t.Errorf("settings set -o json = %+v", got)
	}

	tests := []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"nothing", []string{"settings", "set"}, true, "usage: switchboard settings set KEY=VALUE"},
		{"no equals", []string{"settings", "set", "maxRetries"}, true, `settings set: "maxRetries": want KEY=VALUE`},
		{"unknown", []string{"settings", "set", "maxRetriez=3"}, true, `settings set: unknown setting "maxRetriez"`},
		{"not a number", []string{"settings", "set", "maxRetries=many"}, true, "settings set: maxRetries=many: must be an integer"},
		{"not a duration", []string{"settings", "set", "retryBackoff=soon"}, true, "settings set: retryBackoff=soon: must be a duration"},
		{"twice", []string{"settings", "set", "maxRetries=3", "maxRetries=4"}, true, "settings set: maxRetries given twice"},
		{"out of range", []string{"settings", "set", "maxRetries=11"}, false, "400 invalid: must be an integer from 1 to 10 (field maxRetries)"},
		{"preemptive", []string{"settings", "set", "preemptive=always"}, false, "400 invalid: must be off, new-streams or migrate (field preemptive)"},
		{"preemptive not a word", []string{"settings", "set", "preemptive=3"}, true, "settings set: preemptive=3: must be off, new-streams or migrate"},
		{"get with args", []string{"settings", "get", "x"}, true, "settings get takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := e.cli(tt.args...)
			if err == nil {
				t.Fatal("no error")
			}
			var ue usageError
			if isUsage := errors.As(err, &ue); isUsage != tt.usage {
				t.Errorf("usage error %v, want %v (%v)", isUsage, tt.usage, err)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %q, want prefix %q", err, tt.want)
			}
		})
	}
	e.mustJSON(&got, "settings", "get")
	if got.MaxRetries != 5 {
		t.Errorf("a refused change changed maxRetries to %d", got.MaxRetries)
	}
}

// hasRow reports whether the table out has a row of name and value.
func hasRow(out, name, value string) bool {
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\s+` + regexp.QuoteMeta(value) + `$`).MatchString(out)
}
