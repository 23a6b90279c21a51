package httpapi

import (
	"net/http"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// BenchmarkReports reads each report through the API, over the history of
// benchEnv: with SWITCHBOARD_BENCH_ENDED=1000000, a year of 1,000,000 ended
// streams (about 14 % of them moved). For example:
//
//	SWITCHBOARD_BENCH_ENDED=1000000 go test -run x -bench Reports -benchtime 3x ./internal/httpapi
func BenchmarkReports(b *testing.B) {
	e, _ := benchEnv(b)
	admin := e.tokens[sb.RoleAdmin]
	now := e.clock.Now().UTC()
	year := "from=" + now.AddDate(-1, 0, 0).Format(time.DateOnly)
	month := "from=" + now.AddDate(0, -1, 0).Format(time.DateOnly)
	for _, bc := range []struct{ name, path string }{
		{"sla-month", "/api/reports/sla?month=" + now.AddDate(0, -1, 0).Format("2006-01")},
		{"cost-month-by-provider", "/api/reports/cost?groupBy=provider&" + month},
		{"cost-month-by-day", "/api/reports/cost?groupBy=day&" + month},
		{"cost-year-by-provider", "/api/reports/cost?groupBy=provider&" + year},
		{"cost-year-by-region", "/api/reports/cost?groupBy=region&" + year},
		{"cost-year-by-day-csv", "/api/reports/cost?groupBy=day&format=csv&" + year},
		{"quality-month-by-region", "/api/reports/quality?groupBy=region&" + month},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				if code, body := e.do("GET", bc.path, admin, nil); code != http.StatusOK {
					b.Fatalf("%s: %d %s", bc.path, code, body)
				}
			}
		})
	}
}
