package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/health"
	"github.com/switchboardhq/switchboard/internal/jobs"
	"github.com/switchboardhq/switchboard/internal/maintenance"
	"github.com/switchboardhq/switchboard/internal/reports"
	"github.com/switchboardhq/switchboard/internal/streams"
)

// oaDoc is the part of an OpenAPI document the tests read.
type oaDoc struct {
	OpenAPI    string                                `json:"openapi"`
	Paths      map[string]map[string]json.RawMessage `json:"paths"`
	Components struct {
		Schemas    map[string]oaSchema        `json:"schemas"`
		Parameters map[string]oaParam         `json:"parameters"`
		Responses  map[string]json.RawMessage `json:"responses"`
	} `json:"components"`
}

type oaOperation struct {
	OperationID string                     `json:"operationId"`
	Summary     string                     `json:"summary"`
	Tags        []string                   `json:"tags"`
	Security    []map[string][]string      `json:"security"`
	Parameters  []oaParam                  `json:"parameters"`
	Responses   map[string]json.RawMessage `json:"responses"`
}

type oaParam struct {
	Ref  string `json:"$ref"`
	Name string `json:"name"`
	In   string `json:"in"`
}

type oaSchema struct {
	Ref        string              `json:"$ref"`
	Properties map[string]oaSchema `json:"properties"`
	AllOf      []oaSchema          `json:"allOf"`
	AnyOf      []oaSchema          `json:"anyOf"`
	WriteOnly  bool                `json:"writeOnly"`
}

func loadOpenAPI(t *testing.T) oaDoc {
	t.Helper()
	var d oaDoc
	if err := json.Unmarshal(openAPIDoc, &d); err != nil {
		t.Fatalf("openapi.json does not parse: %v", err)
	}
	return d
}

// openAPIPath converts a ServeMux pattern path to an OpenAPI path.
func openAPIPath(p string) string {
	p = strings.ReplaceAll(p, "{$}", "")
	return strings.ReplaceAll(p, "...}", "}")
}

var wildcardRE = regexp.MustCompile(`\{([^}]+)\}`)

func (d oaDoc) operation(t *testing.T, path, method string) (oaOperation, bool) {
	t.Helper()
	raw, ok := d.Paths[path][strings.ToLower(method)]
	if !ok {
		return oaOperation{}, false
	}
	var op oaOperation
	if err := json.Unmarshal(raw, &op); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return op, true
}

func (d oaDoc) param(p oaParam) oaParam {
	if name, ok := strings.CutPrefix(p.Ref, "#/components/parameters/"); ok {
		return d.Components.Parameters[name]
	}
	return p
}

func TestOpenAPIVersion(t *testing.T) {
	d := loadOpenAPI(t)
	if !regexp.MustCompile(`^3\.1\.\d+$`).MatchString(d.OpenAPI) {
		t.Errorf("openapi = %q, want 3.1.x", d.OpenAPI)
	}
}

// TestOpenAPIMatchesRoutes checks that the document describes exactly the
// routes of the server, with their roles.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	d := loadOpenAPI(t)
	s := New(Options{})
	routes := map[string]bool{}
	opIDs := map[string]string{}
	for _, rt := range s.routes() {
		if isDashboardPath(rt.Path) {
			continue // the dashboard's HTML and files are not part of the JSON API
		}
		path := openAPIPath(rt.Path)
		key := rt.Method + " " + path
		routes[key] = true
		op, ok := d.operation(t, path, rt.Method)
		if !ok {
			t.Errorf("route %s %s is not in openapi.json", rt.Method, rt.Path)
			continue
		}
		if op.OperationID == "" || op.Summary == "" || len(op.Tags) == 0 {
			t.Errorf("%s: operationId, summary and tags are required", key)
		}
		if prev, dup := opIDs[op.OperationID]; dup {
			t.Errorf("%s: operationId %s already used by %s", key, op.OperationID, prev)
		}
		opIDs[op.OperationID] = key

		// Path parameters are exactly the wildcards.
		var wild, params []string
		for _, m := range wildcardRE.FindAllStringSubmatch(path, -1) {
			wild = append(wild, m[1])
		}
		for _, p := range op.Parameters {
			if p := d.param(p); p.In == "path" {
				params = append(params, p.Name)
			}
		}
		sort.Strings(wild)
		sort.Strings(params)
		if !slices.Equal(wild, params) {
			t.Errorf("%s: path parameters %v, want %v", key, params, wild)
		}

		if rt.Role == sb.RoleAnonymous {
			if len(op.Security) > 0 && !slices.ContainsFunc(op.Security, func(m map[string][]string) bool { return len(m) == 0 }) {
				t.Errorf("%s: public route requires security %v", key, op.Security)
			}
			continue
		}
		for _, code := range []string{"401", "403"} {
			if _, ok := op.Responses[code]; !ok {
				t.Errorf("%s (role %s): no %s response", key, rt.Role, code)
			}
		}
		if len(op.Security) == 0 || slices.ContainsFunc(op.Security, func(m map[string][]string) bool { return len(m) == 0 }) {
			t.Errorf("%s (role %s): security %v, want bearerAuth or cookieAuth required", key, rt.Role, op.Security)
		}
		// Writes that can be made with the session cookie need the CSRF
		// header; the agent routes take tokens only.
		cookie := slices.ContainsFunc(op.Security, func(m map[string][]string) bool { _, ok := m["cookieAuth"]; return ok })
		if cookie != (rt.Role != sb.RoleAgent) {
			t.Errorf("%s (role %s): security %v; the session cookie is for every role but agent", key, rt.Role, op.Security)
		}
		if cookie && !safeMethod(rt.Method) && !slices.ContainsFunc(op.Parameters, func(p oaParam) bool { return d.param(p).Name == csrfHeader }) {
			t.Errorf("%s: write does not document the %s header", key, csrfHeader)
		}
	}
	for path, ops := range d.Paths {
		for method := range ops {
			if !routes[strings.ToUpper(method)+" "+path] {
				t.Errorf("openapi.json documents %s %s, which is not a route", strings.ToUpper(method), path)
			}
		}
	}
}

// TestOpenAPIRefs checks that every $ref points at a component that exists.
func TestOpenAPIRefs(t *testing.T) {
	var doc map[string]any
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if !resolves(doc, ref) {
					t.Errorf("$ref %s does not resolve", ref)
				}
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(doc)
}

func resolves(doc map[string]any, ref string) bool {
	p, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return false
	}
	var cur any = doc
	for _, part := range strings.Split(p, "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = m[strings.ReplaceAll(strings.ReplaceAll(part, "~1", "/"), "~0", "~")]; !ok {
			return false
		}
	}
	return true
}

// jsonFields lists the JSON names of a struct's fields.
func jsonFields(typ reflect.Type) []string {
	var out []string
	for f := range typ.Fields() {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if f.Anonymous && name == "" {
			out = append(out, jsonFields(f.Type)...)
			continue
		}
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// properties collects the property names of a schema, through $ref, allOf and anyOf.
func (d oaDoc) properties(s oaSchema) map[string]oaSchema {
	if name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/"); ok {
		return d.properties(d.Components.Schemas[name])
	}
	out := map[string]oaSchema{}
	for k, v := range s.Properties {
		out[k] = v
	}
	for _, sub := range append(slices.Clone(s.AllOf), s.AnyOf...) {
		for k, v := range d.properties(sub) {
			out[k] = v
		}
	}
	return out
}

func (d oaDoc) schema(name string) oaSchema { return oaSchema{Ref: "#/components/schemas/" + name} }

func keys(m map[string]oaSchema) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestOpenAPISchemasMatchTypes checks the request and response schemas against
// the Go types the server decodes and encodes, so that they do not drift.
func TestOpenAPISchemasMatchTypes(t *testing.T) {
	d := loadOpenAPI(t)
	tests := []struct {
		schema string
		typ    reflect.Type
	}{
		{"ProviderUpdate", reflect.TypeFor[sb.ProviderInput]()},
		{"AgoraProviderCreate", reflect.TypeFor[sb.ProviderInput]()},
		{"HTTPProviderCreate", reflect.TypeFor[sb.ProviderInput]()},
		{"Provider", reflect.TypeFor[providerView]()},
		{"ProviderConfigView", reflect.TypeFor[sb.ProviderConfig]()},
		{"HealthCheckPolicy", reflect.TypeFor[sb.HealthCheckPolicy]()},
		{"HealthCheckInput", reflect.TypeFor[sb.HealthCheckInput]()},
		{"Pricing", reflect.TypeFor[sb.Pricing]()},
		{"ProbeError", reflect.TypeFor[sb.ProbeError]()},
		{"LoginRequest", reflect.TypeFor[loginRequest]()},
		{"Identity", reflect.TypeFor[meResponse]()},
		{"TokenRequest", reflect.TypeFor[tokenRequest]()},
		{"CreatedToken", reflect.TypeFor[tokenCreated]()},
		{"ReorderRequest", reflect.TypeFor[reorderRequest]()},
		{"AuditEntry", reflect.TypeFor[sb.AuditEntry]()},
		{"Actor", reflect.TypeFor[sb.Actor]()},
		{"StreamingConfig", reflect.TypeFor[clientConfig]()},
		{"ConfigProvider", reflect.TypeFor[configProvider]()},
		{"ClientSettings", reflect.TypeFor[sb.ClientSettings]()},
		{"ProviderInfo", reflect.TypeFor[streams.ProviderInfo]()},
		{"StartRequest", reflect.TypeFor[streams.StartRequest]()},
		{"Assignment", reflect.TypeFor[streams.Assignment]()},
		{"FailureReport", reflect.TypeFor[streams.FailureReport]()},
		{"MigrateRequest", reflect.TypeFor[streams.MigrateRequest]()},
		{"Stream", reflect.TypeFor[sb.Stream]()},
		{"TrailEntry", reflect.TypeFor[sb.TrailEntry]()},
		// The body of GET /api/streams/{id}, as getStream writes it.
		{"StreamDetail", reflect.TypeFor[struct {
			sb.Stream
			Trail []sb.TrailEntry `json:"trail"`
		}]()},
		{"ProviderStats", reflect.TypeFor[streams.ProviderStats]()},
		{"MonthlyUsage", reflect.TypeFor[sb.MonthlyUsage]()},
		{"Event", reflect.TypeFor[sb.Event]()},
		{"PublicProvider", reflect.TypeFor[publicProvider]()},
		{"StatusChange", reflect.TypeFor[health.StatusChange]()},
		{"RegionalChange", reflect.TypeFor[streams.RegionalChange]()},
		{"BudgetAlert", reflect.TypeFor[jobs.BudgetAlert]()},
		{"MaintenanceCreate", reflect.TypeFor[sb.MaintenanceInput]()},
		{"MaintenanceWindow", reflect.TypeFor[maintenanceView]()},
		{"MaintenanceDrain", reflect.TypeFor[sb.MaintenanceDrain]()},
		{"MaintenanceEvent", reflect.TypeFor[maintenance.Event]()},
		// A drain's request, or the degradation detector's (streams.PreemptMigrateData).
		{"StreamMigrate", reflect.TypeFor[struct {
			maintenance.MigrateData
			Prediction sb.Degradation `json:"prediction"`
		}]()},
		{"Degradation", reflect.TypeFor[sb.Degradation]()},
		{"DegradationEvidence", reflect.TypeFor[sb.DegradationEvidence]()},
		{"QualityReport", reflect.TypeFor[streams.QualityReport]()},
		{"QualitySample", reflect.TypeFor[sb.QualitySample]()},
		{"QualityStats", reflect.TypeFor[sb.QualityStats]()},
		{"Percentiles", reflect.TypeFor[sb.Percentiles]()},
		{"QualityRegion", reflect.TypeFor[qualityView]()},
		{"SLAReport", reflect.TypeFor[reports.SLA]()},
		{"ProviderSLA", reflect.TypeFor[reports.ProviderSLA]()},
		{"SLAIncident", reflect.TypeFor[reports.Incident]()},
		{"SLAPrediction", reflect.TypeFor[reports.Prediction]()},
		{"CostReport", reflect.TypeFor[reports.Cost]()},
		{"CostFigures", reflect.TypeFor[reports.CostFigures]()},
		{"QualityPeriodReport", reflect.TypeFor[reports.QualityReport]()},
		{"RoutingConfig", reflect.TypeFor[sb.RoutingConfig]()},
		{"RoutingView", reflect.TypeFor[routingView]()},
		{"RoutingUpdate", reflect.TypeFor[sb.RoutingInput]()},
		{"RegionRouting", reflect.TypeFor[sb.RegionRouting]()},
		{"RoutingWeights", reflect.TypeFor[sb.RoutingWeights]()},
		{"AgentProvider", reflect.TypeFor[agentProvider]()},
		{"AgentProviderSecrets", reflect.TypeFor[sb.CredentialsInput]()},
		{"AgentReport", reflect.TypeFor[agentReport]()},
		{"AgentResult", reflect.TypeFor[agentResult]()},
		{"RegionalHealth", reflect.TypeFor[regionalView]()},
	}
	for _, tt := range tests {
		t.Run(tt.schema, func(t *testing.T) {
			if got, want := keys(d.properties(d.schema(tt.schema))), jsonFields(tt.typ); !slices.Equal(got, want) {
				t.Errorf("properties %v, want the fields of %s %v", got, tt.typ, want)
			}
		})
	}

	// The union of the per-kind configs and credentials is the whole input type.
	union := func(suffix string) []string {
		m := map[string]oaSchema{}
		for _, k := range []string{"Agora", "Zegocloud", "LiveKit", "HTTP"} {
			for name, s := range d.properties(d.schema(k + suffix)) {
				m[name] = s
			}
		}
		return keys(m)
	}
	if got, want := union("Config"), jsonFields(reflect.TypeFor[sb.ProviderConfig]()); !slices.Equal(got, want) {
		t.Errorf("per-kind config properties %v, want %v", got, want)
	}
	if got, want := union("Credentials"), jsonFields(reflect.TypeFor[sb.CredentialsInput]()); !slices.Equal(got, want) {
		t.Errorf("per-kind credentials properties %v, want %v", got, want)
	}
}

// TestOpenAPICredentialsWriteOnly checks that every credential property is
// marked writeOnly, and that no fixture secret is used as an example.
func TestOpenAPICredentialsWriteOnly(t *testing.T) {
	d := loadOpenAPI(t)
	n := 0
	for name, s := range d.Components.Schemas {
		if !strings.HasSuffix(name, "Credentials") {
			continue
		}
		if !s.WriteOnly {
			t.Errorf("schema %s is not writeOnly", name)
		}
		for prop, ps := range s.Properties {
			n++
			if !ps.WriteOnly {
				t.Errorf("%s.%s is not writeOnly", name, prop)
			}
		}
	}
	if n == 0 {
		t.Error("no credential properties found")
	}
	if p := d.properties(d.schema("LoginRequest"))["password"]; !p.WriteOnly {
		t.Error("LoginRequest.password is not writeOnly")
	}
	for _, s := range allSecrets {
		if strings.Contains(string(openAPIDoc), s) {
			t.Errorf("openapi.json holds a fixture secret")
		}
	}
}

// TestOpenAPIServed checks that the document is served as is.
func TestOpenAPIServed(t *testing.T) {
	srv := httptest.NewServer(New(Options{}))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/api/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		t.Fatalf("decode: %v", err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || v["openapi"] == nil {
		t.Errorf("GET /api/openapi.json: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}
