package main

import (
	"encoding/csv"
	"strings"
	"testing"
	"time"
)

func TestReportsCLI(t *testing.T) {
	e := startServer(t)
	e.mustCLI("providers", "add", "--name", "web", "--kind", "http", "--url", "http://127.0.0.1:9/health", "--priority", "1")

	out := e.mustCLI("reports", "sla")
	for _, want := range []string{"PROVIDER", "UPTIME", "web", "MEDIAN LEAD"} {
		if !strings.Contains(out, want) {
			t.Errorf("sla lacks %q:\n%s", want, out)
		}
	}
	var sla struct {
		Month     string
		Providers []struct {
			Provider      string
			UptimePercent float64
		}
	}
	e.mustJSON(&sla, "reports", "sla", "--month", time.Now().UTC().Format("2006-01"))
	if sla.Month != time.Now().UTC().Format("2006-01") || len(sla.Providers) != 1 || sla.Providers[0].Provider != "web" {
		t.Errorf("sla -o json = %+v", sla)
	}
	out = e.mustCLI("reports", "cost", "--group-by", "day", "--from", time.Now().UTC().Add(-48*time.Hour).Format(time.DateOnly))
	if !strings.HasPrefix(out, "DAY") || !strings.Contains(out, "TOTAL") {
		t.Errorf("cost:\n%s", out)
	}
	out = e.mustCLI("reports", "quality", "--group-by", "region", "--csv")
	rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
	if err != nil || len(rows) != 2 || rows[0][0] != "region" || rows[0][4] != "mos" || rows[1][0] != "total" || rows[1][1] != "0" {
		t.Errorf("quality --csv = %v, %v", rows, err)
	}
	out = e.mustCLI("reports", "sla", "--csv")
	if rows, err := csv.NewReader(strings.NewReader(out)).ReadAll(); err != nil || rows[0][0] != "kind" || rows[len(rows)-1][1] != "web" {
		t.Errorf("sla --csv = %v, %v", rows, err)
	}

	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"bad month", []string{"reports", "sla", "--month", "2026-13"}, "month"},
		{"future month", []string{"reports", "sla", "--month", "2999-01"}, "month"},
		{"bad group", []string{"reports", "cost", "--group-by", "country"}, "groupBy"},
		{"quality by day", []string{"reports", "quality", "--group-by", "day"}, "groupBy"},
		{"bad from", []string{"reports", "cost", "--from", "yesterday"}, "from"},
		{"month on cost", []string{"reports", "cost", "--month", "2026-01"}, "--month"},
		{"csv and json", []string{"reports", "cost", "--csv", "-o", "json"}, "--csv and -o json"},
		{"argument", []string{"reports", "sla", "web"}, "takes no arguments"},
		{"unknown verb", []string{"reports", "usage"}, "unknown verb"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			_, errOut, err := e.cli(c.args...)
			if err == nil || !strings.Contains(err.Error()+errOut, c.want) {
				t.Errorf("err %v, stderr %q: want an error naming %q", err, errOut, c.want)
			}
		})
	}
	e.t = t
	var tok struct{ Token string }
	e.mustJSON(&tok, "tokens", "create", "--name", "app", "--role", "client")
	if _, _, err := e.cliAs(tok.Token, "reports", "cost"); err == nil || !strings.Contains(err.Error(), "403") && !strings.Contains(strings.ToLower(err.Error()), "forbidden") {
		t.Errorf("client token: %v, want forbidden", err)
	}
}
