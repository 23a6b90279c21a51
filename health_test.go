package switchboard_test

import (
	"testing"

	sb "github.com/switchboardhq/switchboard"
)

// TestHealthRatios: percentages and means are 0, not NaN, before any check.
func TestHealthRatios(t *testing.T) {
	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"uptime", sb.Health{TotalChecks: 8, SuccessfulChecks: 6}.Uptime(), 75},
		{"uptime without checks", sb.Health{}.Uptime(), 0},
		{"error rate", sb.Health{TotalRequests: 40, FailedRequests: 1}.ErrorRate(), 2.5},
		{"error rate without requests", sb.Health{FailedRequests: 3}.ErrorRate(), 0},
		{"average latency", sb.Health{TotalChecks: 4, LatencySumMs: 250}.AverageLatencyMs(), 62.5},
		{"average latency without checks", sb.Health{LatencySumMs: 250}.AverageLatencyMs(), 0},
		{"rollup uptime", sb.Rollup{Checks: 3, Successes: 3}.Uptime(), 100},
		{"rollup uptime without checks", sb.Rollup{}.Uptime(), 0},
		{"rollup average latency", sb.Rollup{Checks: 2, LatencySumMs: 31}.AverageLatencyMs(), 15.5},
		{"rollup average latency without checks", sb.Rollup{}.AverageLatencyMs(), 0},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

func TestStatusUsable(t *testing.T) {
	want := map[sb.Status]bool{
		sb.StatusExcellent: true, sb.StatusHealthy: true, sb.StatusWarning: true,
		sb.StatusCritical: false, sb.StatusDisabled: false, sb.StatusUnknown: false,
		sb.Status(""): false, sb.Status("BOGUS"): false,
	}
	for s, ok := range want {
		if got := s.Usable(); got != ok {
			t.Errorf("%q.Usable() = %v, want %v", s, got, ok)
		}
	}
}
