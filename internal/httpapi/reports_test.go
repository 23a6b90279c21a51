package httpapi

import (
	"encoding/csv"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/pgtest"
	"github.com/switchboardhq/switchboard/internal/reports"
)

// TestReports reads the three reports of a server that ran a stream, as
// JSON and CSV, on each store, and checks that bad parameters are 400
// naming the field and that the reports are for admins.
func TestReports(t *testing.T) {
	for _, store := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"postgres", func(t *testing.T) string { return pgtest.DSN(t) }},
	} {
		t.Run(store.name, func(t *testing.T) { testReports(t, newTestEnvOn(t, store.dsn(t))) })
	}
}

func testReports(t *testing.T, e *testEnv) {
	e.createProvider(e.agoraProvider("agora", 1))
	e.createProvider(e.zegoProvider("zegocloud", 2))
	client, admin := e.tokens[sb.RoleClient], e.tokens[sb.RoleAdmin]
	body := streamBody("room", "u")
	body["region"] = "eu-west"
	a := e.start(client, body)
	e.mustDo("POST", "/api/streams/"+a.ID+"/quality", client, qualityBody(e.clock.Now(), 6), 202, nil)
	e.clock.Advance(30 * time.Minute)
	e.mustDo("POST", "/api/streams/"+a.ID+"/end", client, nil, 200, nil)
	e.clock.Advance(time.Minute)
	from := e.clock.Now().Add(-2 * time.Hour).Format(time.RFC3339)
	to := e.clock.Now().Format(time.RFC3339)

	var cost reports.Cost
	e.mustDo("GET", "/api/reports/cost?groupBy=region&from="+from+"&to="+to, admin, nil, 200, &cost)
	if len(cost.Groups) != 1 || cost.Groups[0].Key != "eu-west" || cost.Total.Streams != 1 || cost.Total.Minutes != 30 {
		t.Fatalf("cost = %+v", cost)
	}
	if cost.Total.Cost <= 0 || cost.Groups[0].Cost != cost.Total.Cost || cost.Previous.Total.Streams != 0 {
		t.Errorf("cost total = %+v, previous %+v", cost.Total, cost.Previous)
	}
	var quality reports.QualityReport
	e.mustDo("GET", "/api/reports/quality?from="+from+"&to="+to, admin, nil, 200, &quality)
	if len(quality.Groups) != 1 || quality.Groups[0].Key != "agora" || quality.Total.Samples != 6 || quality.Total.MOS == nil ||
		*quality.Total.MOS < 4 || *quality.Total.MOS > 4.5 {
		t.Fatalf("quality = %+v", quality)
	}
	var sla reports.SLA
	e.mustDo("GET", "/api/reports/sla", admin, nil, 200, &sla)
	if sla.Month != e.clock.Now().UTC().Format("2006-01") || len(sla.Providers) != 2 || sla.Providers[0].UptimePercent != 100 {
		t.Fatalf("sla = %+v", sla)
	}

	// CSV.
	req, _ := http.NewRequest("GET", e.srv.URL+"/api/reports/cost?format=csv&groupBy=day&from="+from+"&to="+to, nil)
	req.Header.Set("Authorization", bearer(admin))
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(resp.Body).ReadAll()
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="cost-day-`) || !strings.HasSuffix(cd, `.csv"`) {
		t.Errorf("Content-Disposition = %q", cd)
	}
	if len(rows) < 3 || rows[0][0] != "day" || rows[len(rows)-1][0] != "total" || rows[len(rows)-1][2] != "1" {
		t.Errorf("csv = %v", rows)
	}

	// Bad parameters.
	for _, tt := range []struct{ path, field string }{
		{"/api/reports/sla?month=2026-13", "month"},
		{"/api/reports/sla?month=2999-01", "month"},
		{"/api/reports/sla?format=xml", "format"},
		{"/api/reports/cost?groupBy=country", "groupBy"},
		{"/api/reports/cost?from=yesterday", "from"},
		{"/api/reports/cost?from=2026-11-02&to=2026-11-01", "from"},
		{"/api/reports/cost?to=2999-01-01", "to"},
		{"/api/reports/quality?groupBy=quality", "groupBy"},
		{"/api/reports/quality?from=2020-01-01&to=2026-01-01", "to"},
	} {
		before := e.snapshot()
		code, b := e.do("GET", tt.path, admin, nil)
		var env errorBody
		if code != 400 || json.Unmarshal(b, &env) != nil || env.Error.Field != tt.field {
			t.Errorf("%s: %d %s, want 400 naming %s", tt.path, code, b, tt.field)
		}
		if e.snapshot() != before {
			t.Errorf("%s changed the store", tt.path)
		}
	}
	for _, path := range []string{"/api/reports/sla", "/api/reports/cost", "/api/reports/quality"} {
		if code, _ := e.do("GET", path, client, nil); code != 403 {
			t.Errorf("%s as a client: %d, want 403", path, code)
		}
		if code, _ := e.do("GET", path, "", nil); code != 401 {
			t.Errorf("%s anonymous: %d, want 401", path, code)
		}
	}
}
