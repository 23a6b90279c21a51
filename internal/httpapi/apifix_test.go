package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	sb "github.com/switchboardhq/switchboard"
)

// apiError decodes an error envelope.
func apiError(t *testing.T, b []byte) errorDetail {
	t.Helper()
	var body struct {
		Error errorDetail `json:"error"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("not an error envelope: %s", b)
	}
	return body.Error
}

// wantInvalid checks a 400 answer naming field.
func wantInvalid(t *testing.T, what string, status int, b []byte, field string) errorDetail {
	t.Helper()
	if status != http.StatusBadRequest {
		t.Fatalf("%s: status %d, want 400: %s", what, status, b)
	}
	e := apiError(t, b)
	if e.Code != sb.EInvalid || e.Field != field {
		t.Fatalf("%s: %+v, want code invalid and field %q", what, e, field)
	}
	return e
}

// auditCount is how many audit entries name target.
func (e *testEnv) auditCount(target string) int {
	e.t.Helper()
	var out struct{ Entries []sb.AuditEntry }
	e.mustDo("GET", "/api/audit?target="+target, e.tokens[sb.RoleAdmin], nil, 200, &out)
	return len(out.Entries)
}

func TestSemicolonInQueryIsRefused(t *testing.T) {
	e := newTestEnv(t)
	admin := e.tokens[sb.RoleAdmin]
	tests := []struct {
		query, field string
	}{
		{"limit=5;status=ended", "limit"},
		{"status=active&limit=5;x", "limit"},
		{";", "query"},
		{"a;b=1", "a"},
	}
	for _, tt := range tests {
		st, b := e.do("GET", "/api/streams?"+tt.query, admin, nil)
		got := wantInvalid(t, tt.query, st, b, tt.field)
		if !strings.Contains(got.Message, "%3B") {
			t.Errorf("%s: message %q does not say how to send a semicolon", tt.query, got.Message)
		}
	}
	// Before authentication too: nothing behind the middleware runs.
	st, b := e.do("GET", "/api/streams?limit=1;x", "", nil)
	wantInvalid(t, "anonymous", st, b, "limit")
	// An encoded semicolon is an ordinary character of a value.
	if st, b := e.do("GET", "/api/audit?target=a%3Bb", admin, nil); st != http.StatusOK {
		t.Fatalf("encoded semicolon: %d %s", st, b)
	}
}

func TestEmptyJSONKeyIsNamed(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	su := e.tokens[sb.RoleSuperadmin]
	tests := []struct {
		method, path string
		body         string
		field        string
	}{
		{"POST", "/api/streaming/providers", `{"": 1}`, `""`},
		{"PUT", "/api/streaming/providers/agora", `{"": 1}`, `""`},
		{"PUT", "/api/streaming/providers/agora", `{"healthCheck": {"": "5s"}}`, `healthCheck.""`},
		{"POST", "/api/auth/tokens", `{"name": "x", "role": "client", "": true}`, `""`},
	}
	for _, tt := range tests {
		before := e.snapshot()
		st, b := e.do(tt.method, tt.path, su, tt.body)
		got := wantInvalid(t, tt.method+" "+tt.body, st, b, tt.field)
		if !strings.Contains(got.Message, `field `+tt.field) {
			t.Errorf("%s %s: message %q does not show the field %s", tt.method, tt.body, got.Message, tt.field)
		}
		if after := e.snapshot(); after != before {
			t.Errorf("%s %s changed the registry", tt.method, tt.body)
		}
	}
	// An unknown key that is not empty keeps its plain name.
	st, b := e.do("PUT", "/api/streaming/providers/agora", su, `{"colour": 1}`)
	wantInvalid(t, "colour", st, b, "colour")
}

func TestEmptyProviderUpdateIsRefused(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	admin := e.tokens[sb.RoleAdmin]
	audits := e.auditCount("agora")
	before := e.snapshot()
	e.events.Take()
	st, b := e.do("PUT", "/api/streaming/providers/agora", admin, `{}`)
	wantInvalid(t, "PUT {}", st, b, "body")
	if got := e.auditCount("agora"); got != audits {
		t.Errorf("audit entries %d → %d after a refused update", audits, got)
	}
	if evs := e.events.Take(); len(evs) != 0 {
		t.Errorf("a refused update published %d events: %+v", len(evs), evs)
	}
	if e.snapshot() != before {
		t.Error("a refused update changed the registry")
	}
	// A real change still goes through.
	e.mustDo("PUT", "/api/streaming/providers/agora", admin, map[string]any{"priority": 3}, 200, nil)
	if got := e.auditCount("agora"); got != audits+1 {
		t.Errorf("audit entries %d → %d after an update", audits, got)
	}
}

func TestStatsMonth(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	admin := e.tokens[sb.RoleAdmin]
	now := e.clock.Now().UTC()
	current := now.Format("2006-01")

	var plain, withMonth struct {
		Month     string           `json:"month"`
		Providers []map[string]any `json:"providers"`
	}
	e.mustDo("GET", "/api/streaming/stats", admin, nil, 200, &plain)
	e.mustDo("GET", "/api/streaming/stats?month="+current, admin, nil, 200, &withMonth)
	if plain.Month != current || withMonth.Month != current {
		t.Fatalf("months %q and %q, want %q", plain.Month, withMonth.Month, current)
	}
	if len(withMonth.Providers) != 1 || withMonth.Providers[0]["name"] != "agora" || withMonth.Providers[0]["status"] == nil {
		t.Fatalf("?month=%s answered %+v, want the current stats of agora", current, withMonth.Providers)
	}
	pb, _ := json.Marshal(plain)
	mb, _ := json.Marshal(withMonth)
	if !bytes.Equal(pb, mb) {
		t.Errorf("?month=%s answered %s, want the current stats %s", current, mb, pb)
	}

	next := time.Date(now.Year(), now.Month()+1, 1, 0, 0, 0, 0, time.UTC).Format("2006-01")
	for _, m := range []string{next, "9999-12"} {
		st, b := e.do("GET", "/api/streaming/stats?month="+m, admin, nil)
		wantInvalid(t, "month "+m, st, b, "month")
	}
	prev := time.Date(now.Year(), now.Month()-1, 1, 0, 0, 0, 0, time.UTC).Format("2006-01")
	var past struct {
		Month     string            `json:"month"`
		Providers []json.RawMessage `json:"providers"`
	}
	e.mustDo("GET", "/api/streaming/stats?month="+prev, admin, nil, 200, &past)
	if past.Month != prev || past.Providers == nil {
		t.Errorf("past month: %+v", past)
	}
	st, b := e.do("GET", "/api/streaming/stats?month=2026-13", admin, nil)
	wantInvalid(t, "month 2026-13", st, b, "month")
}

func TestURLPortsOutOfRange(t *testing.T) {
	e := newTestEnv(t)
	su := e.tokens[sb.RoleSuperadmin]
	e.createProvider(e.agoraProvider("agora", 1))
	bad := []string{"http://127.0.0.1:0", "http://127.0.0.1:65536", "https://example.com:99999/x", "http://[::1]:70000", "http://example.com:/"}
	for _, u := range bad {
		p := e.agoraProvider("a2", 2)
		p["config"].(map[string]any)["baseUrl"] = u
		st, b := e.do("POST", "/api/streaming/providers", su, p)
		wantInvalid(t, "agora baseUrl "+u, st, b, "config.baseUrl")

		st, b = e.do("PUT", "/api/streaming/providers/agora", su, map[string]any{"config": map[string]any{"appId": agoraAppID, "baseUrl": u}})
		wantInvalid(t, "update baseUrl "+u, st, b, "config.baseUrl")

		lk := map[string]any{"name": "lk", "kind": "livekit", "config": map[string]any{"url": u}}
		st, b = e.do("POST", "/api/streaming/providers", su, lk)
		wantInvalid(t, "livekit url "+u, st, b, "config.url")

		hc := map[string]any{"name": "hc", "kind": "http", "config": map[string]any{"url": u}}
		st, b = e.do("POST", "/api/streaming/providers", su, hc)
		wantInvalid(t, "http url "+u, st, b, "config.url")
	}
	for _, u := range []string{"http://127.0.0.1:1/health", "https://example.com:65535", "https://example.com/health"} {
		hc := map[string]any{"name": "hc", "kind": "http", "config": map[string]any{"url": u}}
		e.mustDo("POST", "/api/streaming/providers", su, hc, 201, nil)
		e.mustDo("DELETE", "/api/streaming/providers/hc", su, nil, 204, nil)
	}
}

// literalProviderSegments lists, from the route table, every literal path
// segment directly under /api/streaming/providers/.
func literalProviderSegments(s *Server) []string {
	var out []string
	for _, rt := range s.routes() {
		rest, ok := strings.CutPrefix(rt.Path, "/api/streaming/providers/")
		if !ok {
			continue
		}
		seg, _, _ := strings.Cut(rest, "/")
		if seg != "" && !strings.HasPrefix(seg, "{") && !slices.Contains(out, seg) {
			out = append(out, seg)
		}
	}
	return out
}

func TestReservedProviderNames(t *testing.T) {
	e := newTestEnv(t)
	su := e.tokens[sb.RoleSuperadmin]
	segs := literalProviderSegments(e.api)
	for _, want := range []string{"priorities", "health-check-all"} {
		if !slices.Contains(segs, want) {
			t.Fatalf("the route table has no literal %q under the providers: %v", want, segs)
		}
	}
	for _, name := range segs {
		p := e.agoraProvider(name, 1)
		st, b := e.do("POST", "/api/streaming/providers", su, p)
		got := wantInvalid(t, "name "+name, st, b, "name")
		if !strings.Contains(got.Message, "reserved") {
			t.Errorf("name %s: message %q does not say it is reserved", name, got.Message)
		}
	}
	if got := e.snapshot(); !strings.Contains(got, `"providers":[]`) {
		t.Errorf("a reserved name was created: %s", got)
	}
	// A name that merely contains a reserved one is fine.
	e.createProvider(e.agoraProvider("priorities-eu", 1))

	// A literal route added later is covered without a list to update.
	extra := append(e.api.routes(), route{"GET", "/api/streaming/providers/summary", sb.RoleAdmin, nil},
		route{"POST", "/api/streaming/providers/{name}/pause", sb.RoleAdmin, nil})
	got := reservedNames(extra)
	if !slices.Contains(got, "summary") || slices.Contains(got, "pause") {
		t.Errorf("reserved names %v, want summary and not pause", got)
	}
}

func TestMigrateUnavailableSaysWhy(t *testing.T) {
	e := newTestEnv(t)
	client, admin := e.tokens[sb.RoleClient], e.tokens[sb.RoleAdmin]
	e.createProvider(e.agoraProvider("agora", 1))
	e.mustDo("POST", "/api/streaming/providers/agora/health-check", admin, nil, 200, nil)
	a := e.start(client, streamBody("room", "u1"))
	if a.Provider.Name != "agora" {
		t.Fatalf("stream on %s", a.Provider.Name)
	}

	st, b := e.do("POST", "/api/streams/"+a.ID+"/migrate", client, map[string]any{"reason": "media error"})
	if st != http.StatusServiceUnavailable {
		t.Fatalf("migrate with one provider: %d %s", st, b)
	}
	msg := apiError(t, b).Message
	if strings.Contains(msg, "excluded by the client") || !strings.Contains(msg, "it is on agora") || !strings.Contains(msg, "no other provider is registered") {
		t.Errorf("migrate with one provider: %q", msg)
	}

	e.createProvider(e.zegoProvider("zegocloud", 2))
	e.mustDo("PUT", "/api/streaming/providers/zegocloud", admin, map[string]any{"enabled": false}, 200, nil)
	st, b = e.do("POST", "/api/streams/"+a.ID+"/migrate", client, map[string]any{"reason": "media error"})
	if st != http.StatusServiceUnavailable {
		t.Fatalf("migrate with the other disabled: %d %s", st, b)
	}
	msg = apiError(t, b).Message
	if strings.Contains(msg, "agora:") || !strings.Contains(msg, "zegocloud: disabled") {
		t.Errorf("migrate with the other disabled: %q", msg)
	}

	// A provider the client itself excluded is reported as such.
	e.mustDo("PUT", "/api/streaming/providers/zegocloud", admin, map[string]any{"enabled": true}, 200, nil)
	e.mustDo("POST", "/api/streaming/providers/zegocloud/health-check", admin, nil, 200, nil)
	st, b = e.do("POST", "/api/streams/"+a.ID+"/migrate", client, map[string]any{"reason": "media error", "exclude": []string{"zegocloud"}})
	if st != http.StatusServiceUnavailable {
		t.Fatalf("migrate with the other excluded: %d %s", st, b)
	}
	if msg = apiError(t, b).Message; !strings.Contains(msg, "zegocloud: excluded by the client") || strings.Contains(msg, "agora:") {
		t.Errorf("migrate with the other excluded: %q", msg)
	}
}

// scrape reads /metrics.
func (e *testEnv) scrape() []byte {
	e.t.Helper()
	resp, err := e.srv.Client().Get(e.srv.URL + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		e.t.Fatal(err)
	}
	return buf.Bytes()
}

func TestMetricsRatiosAndStatusSeries(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	e.createProvider(e.zegoProvider("zegocloud", 2))
	admin := e.tokens[sb.RoleAdmin]
	e.mustDo("POST", "/api/streaming/providers/agora/health-check", admin, nil, 200, nil)
	e.mustDo("PUT", "/api/streaming/providers/zegocloud", admin, map[string]any{"enabled": false}, 200, nil)
	body := e.scrape()

	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	for _, old := range []string{"switchboard_provider_uptime_percent", "switchboard_provider_error_rate_percent"} {
		if _, ok := families[old]; ok {
			t.Errorf("%s is still exported", old)
		}
	}
	for _, name := range []string{"switchboard_provider_uptime_ratio", "switchboard_provider_error_ratio"} {
		f, ok := families[name]
		if !ok || len(f.GetMetric()) != 2 {
			t.Fatalf("%s: %v", name, f)
		}
		for _, m := range f.GetMetric() {
			if v := m.GetGauge().GetValue(); v < 0 || v > 1 {
				t.Errorf("%s %v = %v, want a ratio from 0 to 1", name, m.GetLabel(), v)
			}
		}
	}
	if f := families["switchboard_provider_uptime_ratio"]; f != nil {
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() == "agora" && m.GetGauge().GetValue() != 1 {
				t.Errorf("agora uptime ratio %v after one passed check, want 1", m.GetGauge().GetValue())
			}
		}
	}

	// Every provider has all six status series, exactly one of them 1.
	status := families["switchboard_provider_status"]
	if status == nil {
		t.Fatal("no switchboard_provider_status")
	}
	series := map[string]map[string]float64{}
	for _, m := range status.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if series[labels["provider"]] == nil {
			series[labels["provider"]] = map[string]float64{}
		}
		series[labels["provider"]][labels["status"]] = m.GetGauge().GetValue()
	}
	for _, p := range []string{"agora", "zegocloud"} {
		var ones int
		for _, b := range badges {
			v, ok := series[p][string(b)]
			if !ok {
				t.Errorf("%s has no %s series", p, b)
			}
			if v != 0 && v != 1 {
				t.Errorf("%s %s = %v, want 0 or 1", p, b, v)
			}
			if v == 1 {
				ones++
			}
		}
		if ones != 1 || len(series[p]) != 6 {
			t.Errorf("%s status series %v, want six with exactly one 1", p, series[p])
		}
	}
	if series["zegocloud"][string(sb.StatusDisabled)] != 1 {
		t.Errorf("zegocloud status series %v, want DISABLED 1", series["zegocloud"])
	}

	// The store's deadlock retries (none on SQLite, which has one writer).
	if !bytes.Contains(body, []byte("\nswitchboard_store_write_retries_total 0\n")) {
		t.Error("no switchboard_store_write_retries_total 0 in the exposition")
	}

	// Prometheus' own lint of the exposition: names, units, help. Problems
	// in the Go and process collectors are theirs, not ours.
	problems, err := promlint.New(bytes.NewReader(body)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "switchboard_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}

	// promtool, where it is installed, checks the same exposition.
	if path, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(path, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		out, err := cmd.CombinedOutput()
		t.Logf("promtool check metrics: %v\n%s", err, out)
		if err != nil {
			for _, line := range strings.Split(string(out), "\n") {
				if strings.HasPrefix(line, "switchboard_") {
					t.Errorf("promtool: %s", line)
				}
			}
		}
	} else {
		t.Log("promtool is not installed: checked with promlint only")
	}
}

// rawSchema reads one component schema of the OpenAPI document as JSON.
func rawSchema(t *testing.T, name string) map[string]any {
	t.Helper()
	var doc struct {
		Components struct {
			Schemas map[string]map[string]any `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	s, ok := doc.Components.Schemas[name]
	if !ok {
		t.Fatalf("no schema %s", name)
	}
	return s
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestOpenAPIReservedNames checks that the create schemas refuse exactly the
// names the server reserves.
func TestOpenAPIReservedNames(t *testing.T) {
	want := reservedNames(New(Options{}).routes())
	for _, kind := range []string{"Agora", "Zegocloud", "LiveKit", "HTTP"} {
		name := rawSchema(t, kind+"ProviderCreate")["properties"].(map[string]any)["name"].(map[string]any)
		var got []string
		if not, ok := name["not"].(map[string]any); ok {
			for _, v := range not["enum"].([]any) {
				got = append(got, v.(string))
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%sProviderCreate.name refuses %v, the server %v", kind, got, want)
		}
	}
}

// TestOpenAPIReorderedEvent checks the providers.reordered event the server
// publishes against its schema: objects with a name and a priority.
func TestOpenAPIReorderedEvent(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	e.createProvider(e.zegoProvider("zegocloud", 2))
	e.mustDo("PUT", "/api/streaming/providers/priorities", e.tokens[sb.RoleAdmin], map[string]any{"order": []string{"zegocloud", "agora"}}, 200, nil)
	ev, err := e.events.Next(t.Context(), sb.EventProvidersReorder)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(ev.Data)
	var data struct {
		Order []map[string]any `json:"order"`
	}
	if err := json.Unmarshal(b, &data); err != nil {
		t.Fatalf("event data %s: %v", b, err)
	}
	if len(data.Order) != 2 || data.Order[0]["name"] != "zegocloud" || data.Order[0]["priority"] != float64(1) {
		t.Fatalf("event data %s", b)
	}
	items := rawSchema(t, "ProvidersReordered")["properties"].(map[string]any)["order"].(map[string]any)["items"].(map[string]any)
	props, _ := items["properties"].(map[string]any)
	if items["type"] != "object" || !slices.Equal(sortedKeys(props), []string{"name", "priority"}) {
		t.Fatalf("ProvidersReordered.order items %v, want objects {name, priority}", items)
	}
	for _, o := range data.Order {
		if !slices.Equal(sortedKeys(o), sortedKeys(props)) {
			t.Errorf("order item %v does not match its schema %v", o, sortedKeys(props))
		}
	}
}

// TestOpenAPIResyncFrame reads a real resync frame and checks its data line
// against the Resync schema, which the Event schema admits.
func TestOpenAPIResyncFrame(t *testing.T) {
	e := newTestEnv(t)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", e.srv.URL+"/api/events", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", bearer(e.tokens[sb.RoleClient]))
	req.Header.Set("Last-Event-ID", "not-a-number")
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	var typ, data string
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			typ = v
		}
		if v, ok := strings.CutPrefix(line, "data: "); ok {
			data = v
		}
		if line == "" && typ != "" {
			break
		}
	}
	if typ != "resync" {
		t.Fatalf("first frame %q, want resync", typ)
	}
	var body map[string]any
	if err := json.Unmarshal([]byte(data), &body); err != nil {
		t.Fatalf("resync data %q: %v", data, err)
	}
	resync := rawSchema(t, "Resync")
	if got, want := sortedKeys(body), sortedKeys(resync["properties"].(map[string]any)); !slices.Equal(got, want) {
		t.Errorf("resync data keys %v, schema %v", got, want)
	}
	if r, _ := body["reason"].(string); r == "" {
		t.Errorf("resync without a reason: %s", data)
	}
	found := false
	for _, alt := range rawSchema(t, "Event")["oneOf"].([]any) {
		if alt.(map[string]any)["$ref"] == "#/components/schemas/Resync" {
			found = true
		}
	}
	if !found {
		t.Error("the Event schema does not admit a Resync")
	}
}
