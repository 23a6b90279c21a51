package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/health"
)

// Run runs the conformance suite, providers, credentials, health and streams,
// against the stores that open returns. open is called once per subtest and
// must return a new, empty store, closed by a t.Cleanup it registers.
func Run(t *testing.T, open func(t *testing.T) switchboard.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s switchboard.Store)
	}{
		{"Ping", testPing},
		{"CreateGetProvider", testCreateGetProvider},
		{"CreateProviderDisabled", testCreateProviderDisabled},
		{"CreateProviderConflict", testCreateProviderConflict},
		{"CreateProviderInvalid", testCreateProviderInvalid},
		{"GetProviderNotFound", testGetProviderNotFound},
		{"ListProvidersOrder", testListProvidersOrder},
		{"UpdateProvider", testUpdateProvider},
		{"UpdateProviderErrors", testUpdateProviderErrors},
		{"ReorderProviders", testReorderProviders},
		{"ReorderProvidersInvalid", testReorderProvidersInvalid},
		{"DeleteProvider", testDeleteProvider},
		{"DeleteProviderCascades", testDeleteProviderCascades},
		{"Audit", testAudit},
		{"AuditNeverHoldsCredentials", testAuditNeverHoldsCredentials},
		{"APITokens", testAPITokens},
		{"Users", testUsers},
		{"Sessions", testSessions},
		{"UserAccounts", testUserAccounts},
		{"LastSuperadmin", testLastSuperadmin},
		{"SessionsFollowUser", testSessionsFollowUser},
		{"SSOUsers", testSSOUsers},
		{"ConcurrentLastSuperadmin", testConcurrentLastSuperadmin},
		{"RecordCheck", testRecordCheck},
		{"UpdateHealth", testUpdateHealth},
		{"HealthRoundTrip", testHealthRoundTrip},
		{"HealthNotFound", testHealthNotFound},
		{"Transitions", testTransitions},
		{"HourlyRollups", testHourlyRollups},
		{"DailyRollupsAndCompaction", testDailyRollupsAndCompaction},
		{"ConcurrentHealth", testConcurrentHealth},
		{"ConcurrentUpdateProvider", testConcurrentUpdateProvider},
		{"RegistryVersion", testRegistryVersion},
		{"HealthWindow", testHealthWindow},
		{"HealthWindowStatus", testHealthWindowStatus},
		{"HealthWindowCompacted", testHealthWindowCompacted},
		{"Activity", testActivity},
		{"Settings", testSettings},
		{"ConcurrentSettings", testConcurrentSettings},
		{"Routing", testRouting},
		{"RoutingStarts", testRoutingStarts},
		{"AlertChannels", testAlertChannels},
		{"AlertRules", testAlertRules},
		{"AlertLedger", testAlertLedger},
		{"Degradations", testDegradations},
		{"StatusHistory", testStatusHistory},
		{"UsageBreakdown", testUsageBreakdown},
		{"ReportsAgree", testReportsAgree},

		// Streams.
		{"StartGetStream", testStartGetStream},
		{"StartStreamInvalid", testStartStreamInvalid},
		{"StartStreamIdempotent", testStartStreamIdempotent},
		{"StartStreamCapacity", testStartStreamCapacity},
		{"StreamsNotFound", testStreamsNotFound},
		{"Heartbeat", testHeartbeat},
		{"AppendTrail", testAppendTrail},
		{"MigrateStream", testMigrateStream},
		{"EndStream", testEndStream},
		{"AbandonStale", testAbandonStale},
		{"ListStreams", testListStreams},
		{"ListStreamsLimits", testListStreamsLimits},
		{"Usage", testUsage},
		{"UsageOfDeletedProvider", testUsageOfDeletedProvider},
		{"MonthlyUsage", testMonthlyUsage},
		{"JobRuns", testJobRuns},
		{"ConcurrentStart", testConcurrentStart},
		{"ConcurrentIdempotentStart", testConcurrentIdempotentStart},
		{"ConcurrentMigrateEnd", testConcurrentMigrateEnd},
		{"ConcurrentEnd", testConcurrentEnd},
		{"ConcurrentMigrateCapacity", testConcurrentMigrateCapacity},
		{"ImportStreams", testImportStreams},
		{"StreamWasOn", testStreamWasOn},
		{"CountsFollowStreams", testCountsFollowStreams},

		// Maintenance windows.
		{"Maintenance", testMaintenance},
		{"MaintenanceStates", testMaintenanceStates},
		{"MaintenanceAnnounceAndDrain", testMaintenanceAnnounceAndDrain},

		// Quality telemetry.
		{"QualityAggregates", testQualityAggregates},
		{"ConcurrentQuality", testConcurrentQuality},
		{"QualityReportsBatched", testQualityReportsBatched},

		// Regional health.
		{"RegionalHealth", testRegionalHealth},
		{"ConcurrentRegionalHealth", testConcurrentRegionalHealth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.fn(t, open(t))
		})
	}
}

// waitErrs waits for wg, whose goroutines send on errs, and returns the
// errors they sent that are not nil.
func waitErrs(wg *sync.WaitGroup, errs chan error) []error {
	wg.Wait()
	close(errs)
	var failed []error
	for err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	return failed
}

// t0 is the start of a UTC day that the history tests work around.
var t0 = time.Date(2025, 3, 10, 0, 0, 0, 0, time.UTC)

var actor = switchboard.Actor{Kind: "user", Name: "alice", Role: switchboard.RoleAdmin}

func audit(action string) switchboard.AuditEntry {
	return switchboard.AuditEntry{Actor: actor, Action: action}
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := switchboard.ErrorCode(err); got != code {
		t.Fatalf("error = %v (code %q), want code %q", err, got, code)
	}
}

func mustCreate(t *testing.T, s switchboard.Store, p switchboard.Provider) {
	t.Helper()
	if err := s.CreateProvider(context.Background(), p, audit("provider.create")); err != nil {
		t.Fatalf("CreateProvider(%s): %v", p.Name, err)
	}
}

func mustGet(t *testing.T, s switchboard.Store, name string) switchboard.ProviderRecord {
	t.Helper()
	rec, err := s.GetProvider(context.Background(), name)
	if err != nil {
		t.Fatalf("GetProvider(%s): %v", name, err)
	}
	return rec
}

func mustAudit(t *testing.T, s switchboard.Store) []switchboard.AuditEntry {
	t.Helper()
	es, err := s.ListAudit(context.Background(), switchboard.AuditFilter{Limit: 1000})
	if err != nil {
		t.Fatalf("ListAudit: %v", err)
	}
	return es
}

// equalProvider compares providers, their times with Equal.
func equalProvider(t *testing.T, got, want switchboard.Provider) {
	t.Helper()
	for _, tm := range []time.Time{got.CreatedAt, got.UpdatedAt} {
		if tm.IsZero() || tm.Location() != time.UTC {
			t.Errorf("provider %s has time %v, want a non-zero UTC time", got.Name, tm)
		}
	}
	if !want.CreatedAt.IsZero() && !got.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("CreatedAt = %v, want %v", got.CreatedAt, want.CreatedAt)
	}
	if !want.UpdatedAt.IsZero() && !got.UpdatedAt.Equal(want.UpdatedAt) {
		t.Errorf("UpdatedAt = %v, want %v", got.UpdatedAt, want.UpdatedAt)
	}
	got.CreatedAt, got.UpdatedAt, want.CreatedAt, want.UpdatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		// %+v of Credentials prints [REDACTED]: compare them apart.
		if !reflect.DeepEqual(got.Credentials, want.Credentials) {
			t.Errorf("provider %s: credentials differ", got.Name)
		}
		got.Credentials, want.Credentials = switchboard.Credentials{}, switchboard.Credentials{}
		t.Errorf("provider differs:\n got %+v\nwant %+v", got, want)
	}
}

func names(recs []switchboard.ProviderRecord) []string {
	var ns []string
	for _, r := range recs {
		ns = append(ns, r.Name)
	}
	return ns
}

func testPing(t *testing.T, s switchboard.Store) {
	if err := s.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

func testCreateGetProvider(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	start := time.Now()
	for _, p := range []switchboard.Provider{AgoraProvider(t, "agora-1"), HTTPProvider(t, "http-1", "https://status.example/health")} {
		mustCreate(t, s, p)
		rec := mustGet(t, s, p.Name)
		equalProvider(t, rec.Provider, p)
		if rec.CreatedAt.Before(start.Add(-time.Minute)) || !rec.UpdatedAt.Equal(rec.CreatedAt) {
			t.Errorf("CreatedAt %v, UpdatedAt %v: want both the time of creation", rec.CreatedAt, rec.UpdatedAt)
		}
		if rec.Health.Status != switchboard.StatusUnknown {
			t.Errorf("initial status = %s, want UNKNOWN", rec.Health.Status)
		}
		if rec.Health.TotalChecks != 0 || rec.Health.LastCheck != nil || rec.Health.LastError != nil {
			t.Errorf("initial health = %+v, want empty", rec.Health)
		}
	}
	recs, err := s.ListProviders(ctx)
	if err != nil {
		t.Fatalf("ListProviders: %v", err)
	}
	if len(recs) != 2 {
		t.Fatalf("ListProviders returned %d providers, want 2", len(recs))
	}
	equalProvider(t, recs[0].Provider, AgoraProvider(t, "agora-1"))

	es := mustAudit(t, s)
	if len(es) != 2 {
		t.Fatalf("%d audit entries, want 2", len(es))
	}
	e := es[1] // the oldest: agora-1
	if e.Action != "provider.create" || e.Target != "agora-1" || e.Actor != actor || e.At.IsZero() || e.Before != nil {
		t.Errorf("audit entry = %+v", e)
	}
	var after map[string]any
	if err := json.Unmarshal(e.After, &after); err != nil {
		t.Fatalf("audit After is not JSON: %v", err)
	}
	if after["name"] != "agora-1" || after["credentialsSet"] != true || after["kind"] != "agora" {
		t.Errorf("audit After = %s, want the provider with credentialsSet true", e.After)
	}
}

func testCreateProviderDisabled(t *testing.T, s switchboard.Store) {
	p := AgoraProvider(t, "off")
	p.Enabled = false
	mustCreate(t, s, p)
	if got := mustGet(t, s, "off").Health.Status; got != switchboard.StatusDisabled {
		t.Errorf("status = %s, want DISABLED", got)
	}
	// Without credentials.
	q := AgoraProvider(t, "bare")
	q.Credentials = switchboard.Credentials{}
	mustCreate(t, s, q)
	rec := mustGet(t, s, "bare")
	if rec.CredentialsSet() {
		t.Error("provider created without credentials has credentials")
	}
}

func testCreateProviderConflict(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustCreate(t, s, AgoraProvider(t, "dup"))
	other := AgoraProvider(t, "dup")
	other.DisplayName = "Another"
	wantCode(t, s.CreateProvider(ctx, other, audit("provider.create")), switchboard.EConflict)
	if got := mustGet(t, s, "dup").DisplayName; got != "dup" {
		t.Errorf("DisplayName = %q after a conflicting create", got)
	}
	if n := len(mustAudit(t, s)); n != 1 {
		t.Errorf("%d audit entries, want 1: a failed create writes none", n)
	}
}

func testCreateProviderInvalid(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	p := AgoraProvider(t, "bad")
	p.Config.AppID = "nope"
	wantCode(t, s.CreateProvider(ctx, p, audit("provider.create")), switchboard.EInvalid)
	_, err := s.GetProvider(ctx, "bad")
	wantCode(t, err, switchboard.ENotFound)
	if n := len(mustAudit(t, s)); n != 0 {
		t.Errorf("%d audit entries, want 0", n)
	}
}

func testGetProviderNotFound(t *testing.T, s switchboard.Store) {
	_, err := s.GetProvider(context.Background(), "missing")
	wantCode(t, err, switchboard.ENotFound)
	recs, err := s.ListProviders(context.Background())
	if err != nil || len(recs) != 0 {
		t.Fatalf("ListProviders on an empty store = %v, %v", recs, err)
	}
}

func testListProvidersOrder(t *testing.T, s switchboard.Store) {
	for _, x := range []struct {
		name     string
		priority int
	}{{"c", 2}, {"b", 1}, {"d", 1}, {"a", 3}, {"e", 2}} {
		p := AgoraProvider(t, x.name)
		p.Priority = x.priority
		mustCreate(t, s, p)
	}
	recs, err := s.ListProviders(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(recs), []string{"b", "d", "c", "e", "a"}; !slices.Equal(got, want) {
		t.Errorf("order = %v, want %v", got, want)
	}
	for _, r := range recs {
		if want := AgoraProvider(t, r.Name).Credentials; !reflect.DeepEqual(r.Credentials, want) {
			t.Errorf("provider %s: credentials did not round-trip", r.Name)
		}
	}
}

func testUpdateProvider(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	orig := AgoraProvider(t, "up")
	mustCreate(t, s, orig)
	created := mustGet(t, s, "up")
	time.Sleep(2 * time.Millisecond) // so that UpdatedAt can move on a coarse clock

	before, after, err := s.UpdateProvider(ctx, "up", func(p switchboard.Provider) (switchboard.Provider, error) {
		p.DisplayName = "Updated"
		p.Regions = append(p.Regions, "ap-south")
		p.Credentials.CustomerSecret = "rotated-secret-Qx9"
		p.Pricing.PerThousandMinutes[switchboard.QualityHD] = 4.5
		return p, nil
	}, audit("provider.update"))
	if err != nil {
		t.Fatalf("UpdateProvider: %v", err)
	}
	equalProvider(t, before, created.Provider)
	if after.DisplayName != "Updated" || after.Credentials.CustomerSecret != "rotated-secret-Qx9" {
		t.Errorf("after = %+v", after)
	}
	if !after.CreatedAt.Equal(created.CreatedAt) {
		t.Errorf("CreatedAt changed: %v -> %v", created.CreatedAt, after.CreatedAt)
	}
	if after.UpdatedAt.Before(created.UpdatedAt) {
		t.Errorf("UpdatedAt went back: %v -> %v", created.UpdatedAt, after.UpdatedAt)
	}
	if len(before.Regions) != 2 || before.Pricing.PerThousandMinutes[switchboard.QualityHD] != 3.99 {
		t.Errorf("fn's changes leaked into before: %+v", before)
	}
	got := mustGet(t, s, "up")
	equalProvider(t, got.Provider, after)
	if got.Credentials.CustomerSecret != "rotated-secret-Qx9" {
		t.Error("rotated credential not stored")
	}

	es := mustAudit(t, s)
	if len(es) != 2 {
		t.Fatalf("%d audit entries, want 2", len(es))
	}
	e := es[0]
	if e.Action != "provider.update" || e.Target != "up" || e.Actor != actor {
		t.Errorf("audit entry = %+v", e)
	}
	var b, a map[string]any
	if err := json.Unmarshal(e.Before, &b); err != nil {
		t.Fatalf("audit Before: %v", err)
	}
	if err := json.Unmarshal(e.After, &a); err != nil {
		t.Fatalf("audit After: %v", err)
	}
	if b["displayName"] != "up" || a["displayName"] != "Updated" || a["credentialsSet"] != true {
		t.Errorf("audit Before = %s, After = %s", e.Before, e.After)
	}
}

func testUpdateProviderErrors(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustCreate(t, s, AgoraProvider(t, "keep"))
	orig := mustGet(t, s, "keep")

	_, _, err := s.UpdateProvider(ctx, "missing", func(p switchboard.Provider) (switchboard.Provider, error) { return p, nil }, audit("provider.update"))
	wantCode(t, err, switchboard.ENotFound)

	sentinel := errors.New("fn refused")
	called := false
	_, _, err = s.UpdateProvider(ctx, "keep", func(p switchboard.Provider) (switchboard.Provider, error) {
		called = true
		p.DisplayName = "Changed"
		return p, sentinel
	}, audit("provider.update"))
	if err != sentinel {
		t.Fatalf("UpdateProvider returned %v, want fn's error as is", err)
	}
	if !called {
		t.Fatal("fn was not called")
	}
	domainErr := switchboard.Invalid("weight", "too heavy")
	_, _, err = s.UpdateProvider(ctx, "keep", func(p switchboard.Provider) (switchboard.Provider, error) {
		return p, domainErr
	}, audit("provider.update"))
	if err != error(domainErr) {
		t.Fatalf("UpdateProvider returned %v, want fn's error as is", err)
	}

	const badSecret = "definitely-not-hex-secret"
	invalid := []struct {
		name string
		fn   func(p switchboard.Provider) switchboard.Provider
	}{
		{"rename", func(p switchboard.Provider) switchboard.Provider { p.Name = "renamed"; return p }},
		{"bad weight", func(p switchboard.Provider) switchboard.Provider { p.Weight = -1; return p }},
		{"bad credential", func(p switchboard.Provider) switchboard.Provider { p.Credentials.AppCertificate = badSecret; return p }},
	}
	for _, tt := range invalid {
		_, _, err := s.UpdateProvider(ctx, "keep", func(p switchboard.Provider) (switchboard.Provider, error) {
			return tt.fn(p), nil
		}, audit("provider.update"))
		wantCode(t, err, switchboard.EInvalid)
		if strings.Contains(err.Error(), badSecret) {
			t.Errorf("%s: error quotes a credential: %v", tt.name, err)
		}
	}
	equalProvider(t, mustGet(t, s, "keep").Provider, orig.Provider)
	if _, err := s.GetProvider(ctx, "renamed"); switchboard.ErrorCode(err) != switchboard.ENotFound {
		t.Errorf("GetProvider(renamed) = %v, want ENotFound", err)
	}
	if n := len(mustAudit(t, s)); n != 1 {
		t.Errorf("%d audit entries, want 1: failed updates write none", n)
	}
}

func testReorderProviders(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	for i, n := range []string{"a", "b", "c"} {
		p := AgoraProvider(t, n)
		p.Priority = 10 * (i + 1)
		mustCreate(t, s, p)
	}
	if err := s.ReorderProviders(ctx, []string{"c", "a", "b"}, audit("provider.reorder")); err != nil {
		t.Fatalf("ReorderProviders: %v", err)
	}
	recs, err := s.ListProviders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := names(recs), []string{"c", "a", "b"}; !slices.Equal(got, want) {
		t.Fatalf("order = %v, want %v", got, want)
	}
	for i, r := range recs {
		if r.Priority != i+1 {
			t.Errorf("%s has priority %d, want %d", r.Name, r.Priority, i+1)
		}
		if !reflect.DeepEqual(r.Credentials, AgoraProvider(t, r.Name).Credentials) {
			t.Errorf("%s: credentials changed by a reorder", r.Name)
		}
	}
	es := mustAudit(t, s)
	if len(es) != 4 {
		t.Fatalf("%d audit entries, want 4 (3 creates, 1 reorder)", len(es))
	}
	if e := es[0]; e.Action != "provider.reorder" || !jsonEqual(e.After, `["c","a","b"]`) || !jsonEqual(e.Before, `["a","b","c"]`) {
		t.Errorf("reorder audit = %+v (before %s, after %s)", e, e.Before, e.After)
	}
}

func jsonEqual(raw json.RawMessage, want string) bool {
	var a, b any
	if json.Unmarshal(raw, &a) != nil || json.Unmarshal([]byte(want), &b) != nil {
		return false
	}
	return reflect.DeepEqual(a, b)
}

func testReorderProvidersInvalid(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	for _, n := range []string{"a", "b", "c"} {
		mustCreate(t, s, AgoraProvider(t, n))
	}
	tests := []struct {
		name  string
		order []string
		want  string // a name the message must mention
	}{
		{"unknown", []string{"a", "b", "c", "zz"}, "zz"},
		{"unknown instead", []string{"a", "b", "zz"}, "zz"},
		{"duplicate", []string{"a", "b", "b", "c"}, "b"},
		{"missing", []string{"a", "c"}, "b"},
		{"empty", nil, "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.ReorderProviders(ctx, tt.order, audit("provider.reorder"))
			wantCode(t, err, switchboard.EInvalid)
			var e *switchboard.Error
			if !errors.As(err, &e) || e.Field != "order" || !strings.Contains(e.Message, `"`+tt.want+`"`) {
				t.Errorf("error = %#v, want field order and a message naming %q", e, tt.want)
			}
		})
	}
	recs, _ := s.ListProviders(ctx)
	for _, r := range recs {
		if r.Priority != 1 {
			t.Errorf("%s has priority %d after failed reorders, want 1", r.Name, r.Priority)
		}
	}
	if n := len(mustAudit(t, s)); n != 3 {
		t.Errorf("%d audit entries, want 3: failed reorders write none", n)
	}
}

func testDeleteProvider(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustCreate(t, s, AgoraProvider(t, "gone"))
	mustCreate(t, s, AgoraProvider(t, "stays"))
	wantCode(t, s.DeleteProvider(ctx, "missing", audit("provider.delete")), switchboard.ENotFound)
	if err := s.DeleteProvider(ctx, "gone", audit("provider.delete")); err != nil {
		t.Fatalf("DeleteProvider: %v", err)
	}
	_, err := s.GetProvider(ctx, "gone")
	wantCode(t, err, switchboard.ENotFound)
	wantCode(t, s.DeleteProvider(ctx, "gone", audit("provider.delete")), switchboard.ENotFound)
	recs, _ := s.ListProviders(ctx)
	if got := names(recs); !slices.Equal(got, []string{"stays"}) {
		t.Errorf("providers = %v, want [stays]", got)
	}
	es := mustAudit(t, s)
	if len(es) != 3 {
		t.Fatalf("%d audit entries, want 3", len(es))
	}
	if e := es[0]; e.Action != "provider.delete" || e.Target != "gone" || e.After != nil || !strings.Contains(string(e.Before), `"name":"gone"`) {
		t.Errorf("delete audit = %+v (before %s)", e, e.Before)
	}
}

func testDeleteProviderCascades(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustCreate(t, s, AgoraProvider(t, "p"))
	mustCreate(t, s, AgoraProvider(t, "q"))
	for _, n := range []string{"p", "q"} {
		for i := range 3 {
			record(t, s, n, t0.Add(time.Duration(i)*time.Hour), i != 1, 10)
		}
	}
	if err := s.CompactHistory(ctx, t0.Add(48*time.Hour), t0); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteProvider(ctx, "p", audit("provider.delete")); err != nil {
		t.Fatal(err)
	}
	ts, err := s.Transitions(ctx, "", time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range ts {
		if tr.Provider == "p" {
			t.Errorf("transition of deleted provider still listed: %+v", tr)
		}
	}
	if len(ts) == 0 {
		t.Error("transitions of the other provider are gone too")
	}
	// A new provider of the same name starts with no health and no history.
	mustCreate(t, s, AgoraProvider(t, "p"))
	if h := mustGet(t, s, "p").Health; h.TotalChecks != 0 || h.Status != switchboard.StatusUnknown {
		t.Errorf("recreated provider has health %+v", h)
	}
	for _, f := range []func(context.Context, string, time.Time, time.Time) ([]switchboard.Rollup, error){s.HourlyRollups, s.DailyRollups} {
		rs, err := f(ctx, "p", t0.Add(-72*time.Hour), t0.Add(72*time.Hour))
		if err != nil || len(rs) != 0 {
			t.Errorf("rollups of recreated provider = %v, %v; want none", rs, err)
		}
	}
	ls, err := s.RecentLatencies(ctx, "p", time.Time{})
	if err != nil || len(ls) != 0 {
		t.Errorf("latencies of recreated provider = %v, %v; want none", ls, err)
	}
	ts, err = s.Transitions(ctx, "p", time.Time{}, 0)
	if err != nil || len(ts) != 0 {
		t.Errorf("transitions of recreated provider = %v, %v; want none", ts, err)
	}
	rs, err := s.HourlyRollups(ctx, "q", t0, t0.Add(24*time.Hour))
	if err != nil || len(rs) != 3 {
		t.Errorf("rollups of the other provider = %v, %v; want 3", rs, err)
	}
}

func testAudit(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	at := time.Date(2025, 1, 2, 3, 4, 5, 678901234, time.UTC)
	for i := range 5 {
		target := "x"
		if i%2 == 1 {
			target = "y"
		}
		e := switchboard.AuditEntry{
			At: at.Add(time.Duration(i) * time.Second), Actor: actor, Action: "user.login", Target: target,
			Before: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i)),
		}
		if err := s.AppendAudit(ctx, e); err != nil {
			t.Fatalf("AppendAudit: %v", err)
		}
	}
	all := mustAudit(t, s)
	if len(all) != 5 {
		t.Fatalf("%d entries, want 5", len(all))
	}
	for i, e := range all {
		want := 4 - i
		if !jsonEqual(e.Before, fmt.Sprintf(`{"i":%d}`, want)) || e.After != nil {
			t.Errorf("entry %d: before %s after %s, want newest first", i, e.Before, e.After)
		}
		if !e.At.Equal(at.Add(time.Duration(want)*time.Second)) || e.At.Location() != time.UTC {
			t.Errorf("entry %d: At = %v", i, e.At)
		}
		if e.Actor != actor || e.Action != "user.login" || e.ID == 0 {
			t.Errorf("entry %d = %+v", i, e)
		}
		if i > 0 && e.ID >= all[i-1].ID {
			t.Errorf("ids not decreasing: %d then %d", all[i-1].ID, e.ID)
		}
	}
	tests := []struct {
		name string
		f    switchboard.AuditFilter
		want []int64
	}{
		{"target", switchboard.AuditFilter{Target: "y"}, []int64{all[1].ID, all[3].ID}},
		{"limit", switchboard.AuditFilter{Limit: 2}, []int64{all[0].ID, all[1].ID}},
		{"before id", switchboard.AuditFilter{BeforeID: all[1].ID, Limit: 2}, []int64{all[2].ID, all[3].ID}},
		{"target and before id", switchboard.AuditFilter{Target: "x", BeforeID: all[0].ID}, []int64{all[2].ID, all[4].ID}},
		{"no match", switchboard.AuditFilter{Target: "z"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, err := s.ListAudit(ctx, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []int64
			for _, e := range es {
				got = append(got, e.ID)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("ids = %v, want %v", got, tt.want)
			}
		})
	}
	// Defaults: a zero At and a zero Actor are filled in.
	if err := s.AppendAudit(switchboard.WithActor(ctx, actor), switchboard.AuditEntry{Action: "system.start"}); err != nil {
		t.Fatal(err)
	}
	if e := mustAudit(t, s)[0]; e.At.IsZero() || e.Actor != actor {
		t.Errorf("defaults not filled: %+v", e)
	}
	err := s.AppendAudit(ctx, switchboard.AuditEntry{Action: "x", After: json.RawMessage(`{not json`)})
	wantCode(t, err, switchboard.EInvalid)
}

func testAuditNeverHoldsCredentials(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	a, h := AgoraProvider(t, "a"), HTTPProvider(t, "h", "https://h.example/")
	mustCreate(t, s, a)
	mustCreate(t, s, h)
	secrets := append(a.Credentials.Values(), h.Credentials.Values()...)
	_, _, err := s.UpdateProvider(ctx, "a", func(p switchboard.Provider) (switchboard.Provider, error) {
		p.Credentials.CustomerSecret = "new-secret-after-rotation"
		return p, nil
	}, audit("provider.update"))
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, "new-secret-after-rotation")
	if err := s.ReorderProviders(ctx, []string{"h", "a"}, audit("provider.reorder")); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteProvider(ctx, "h", audit("provider.delete")); err != nil {
		t.Fatal(err)
	}
	es := mustAudit(t, s)
	if len(es) != 5 {
		t.Fatalf("%d audit entries, want 5", len(es))
	}
	for _, e := range es {
		b, _ := json.Marshal(e)
		for _, v := range secrets {
			if bytes.Contains(b, []byte(v)) {
				t.Errorf("audit entry %s holds a credential", e.Action)
			}
		}
	}
}

func testAPITokens(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	base := time.Date(2025, 2, 1, 12, 0, 0, 123456789, time.UTC)
	mk := func(id string, i int) switchboard.APIToken {
		return switchboard.APIToken{ID: id, Name: "token " + id, Role: switchboard.RoleClient,
			Hash: []byte("hash-" + id), CreatedAt: base.Add(time.Duration(i) * time.Minute)}
	}
	for i, id := range []string{"t1", "t2", "t3"} {
		if err := s.CreateAPIToken(ctx, mk(id, i), audit("token.create")); err != nil {
			t.Fatalf("CreateAPIToken(%s): %v", id, err)
		}
	}
	dupID := mk("t1", 9)
	dupID.Hash = []byte("other-hash")
	wantCode(t, s.CreateAPIToken(ctx, dupID, audit("token.create")), switchboard.EConflict)
	dupHash := mk("t9", 9)
	dupHash.Hash = []byte("hash-t2")
	wantCode(t, s.CreateAPIToken(ctx, dupHash, audit("token.create")), switchboard.EConflict)

	ts, err := s.ListAPITokens(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tok := range ts {
		ids = append(ids, tok.ID)
	}
	if !slices.Equal(ids, []string{"t3", "t2", "t1"}) {
		t.Fatalf("tokens = %v, want newest first [t3 t2 t1]", ids)
	}
	if got := ts[2]; got.Name != "token t1" || got.Role != switchboard.RoleClient || !got.CreatedAt.Equal(base) ||
		!bytes.Equal(got.Hash, []byte("hash-t1")) || got.LastUsedAt != nil || got.RevokedAt != nil {
		t.Errorf("token = %+v", got)
	}

	got, err := s.APITokenByHash(ctx, []byte("hash-t2"))
	if err != nil || got.ID != "t2" {
		t.Fatalf("APITokenByHash = %+v, %v", got, err)
	}
	_, err = s.APITokenByHash(ctx, []byte("no-such-hash"))
	wantCode(t, err, switchboard.ENotFound)

	used := base.Add(time.Hour + 5*time.Nanosecond)
	if err := s.TouchAPIToken(ctx, "t2", used); err != nil {
		t.Fatalf("TouchAPIToken: %v", err)
	}
	wantCode(t, s.TouchAPIToken(ctx, "nope", used), switchboard.ENotFound)
	if got, _ := s.APITokenByHash(ctx, []byte("hash-t2")); got.LastUsedAt == nil || !got.LastUsedAt.Equal(used) {
		t.Errorf("LastUsedAt = %v, want %v", got.LastUsedAt, used)
	}

	revokedAt := base.Add(2 * time.Hour)
	if err := s.RevokeAPIToken(ctx, "t2", revokedAt, audit("token.revoke")); err != nil {
		t.Fatalf("RevokeAPIToken: %v", err)
	}
	_, err = s.APITokenByHash(ctx, []byte("hash-t2"))
	wantCode(t, err, switchboard.ENotFound)
	wantCode(t, s.RevokeAPIToken(ctx, "t2", revokedAt, audit("token.revoke")), switchboard.ENotFound)
	wantCode(t, s.RevokeAPIToken(ctx, "nope", revokedAt, audit("token.revoke")), switchboard.ENotFound)
	ts, _ = s.ListAPITokens(ctx)
	if len(ts) != 3 || ts[1].ID != "t2" || ts[1].RevokedAt == nil || !ts[1].RevokedAt.Equal(revokedAt) {
		t.Errorf("after revoke, tokens = %+v", ts)
	}

	es := mustAudit(t, s)
	if len(es) != 4 {
		t.Fatalf("%d audit entries, want 4 (3 creates, 1 revoke)", len(es))
	}
	if es[0].Action != "token.revoke" || es[0].Target != "t2" || es[3].Action != "token.create" || es[3].Target != "t1" {
		t.Errorf("audit = %+v", es)
	}
	for _, e := range es {
		if bytes.Contains(e.After, []byte("hash-")) || bytes.Contains(e.Before, []byte("hash-")) {
			t.Errorf("audit entry holds a token hash: %s %s", e.Before, e.After)
		}
	}
}

func testUsers(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	if n, err := s.CountUsers(ctx); err != nil || n != 0 {
		t.Fatalf("CountUsers = %d, %v", n, err)
	}
	created := time.Date(2025, 4, 5, 6, 7, 8, 9, time.UTC)
	u := switchboard.User{Username: "root", Role: switchboard.RoleSuperadmin, PasswordHash: "$argon2id$v=19$...", CreatedAt: created}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	wantCode(t, s.CreateUser(ctx, u), switchboard.EConflict)
	if err := s.CreateUser(ctx, switchboard.User{Username: "viewer", Role: switchboard.RoleClient, PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetUser(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	if got.Username != u.Username || got.Role != u.Role || got.PasswordHash != u.PasswordHash || !got.CreatedAt.Equal(created) {
		t.Errorf("GetUser = %+v, want %+v", got, u)
	}
	if v, _ := s.GetUser(ctx, "viewer"); v.CreatedAt.IsZero() {
		t.Error("zero CreatedAt was not filled in")
	}
	_, err = s.GetUser(ctx, "nobody")
	wantCode(t, err, switchboard.ENotFound)
	if n, err := s.CountUsers(ctx); err != nil || n != 2 {
		t.Fatalf("CountUsers = %d, %v; want 2", n, err)
	}
}

func testSessions(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	if err := s.CreateUser(ctx, switchboard.User{Username: "alice", Role: switchboard.RoleAdmin, PasswordHash: "h"}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 5, 1, 10, 0, 0, 1, time.UTC)
	sess := switchboard.Session{Hash: []byte("session-hash"), Username: "alice", Role: switchboard.RoleAdmin,
		CSRFToken: "csrf", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateSession(ctx, sess, audit("")); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	wantCode(t, s.CreateSession(ctx, sess, audit("")), switchboard.EConflict)
	orphan := sess
	orphan.Hash, orphan.Username = []byte("orphan"), "ghost"
	wantCode(t, s.CreateSession(ctx, orphan, audit("")), switchboard.ENotFound)

	got, err := s.SessionByHash(ctx, sess.Hash, now.Add(59*time.Minute))
	if err != nil {
		t.Fatalf("SessionByHash: %v", err)
	}
	if !bytes.Equal(got.Hash, sess.Hash) || got.Username != "alice" || got.Role != switchboard.RoleAdmin ||
		got.CSRFToken != "csrf" || !got.CreatedAt.Equal(sess.CreatedAt) || !got.ExpiresAt.Equal(sess.ExpiresAt) {
		t.Errorf("SessionByHash = %+v, want %+v", got, sess)
	}
	for _, at := range []time.Time{sess.ExpiresAt, sess.ExpiresAt.Add(time.Nanosecond)} {
		_, err = s.SessionByHash(ctx, sess.Hash, at)
		wantCode(t, err, switchboard.ENotFound)
	}
	_, err = s.SessionByHash(ctx, []byte("nope"), now)
	wantCode(t, err, switchboard.ENotFound)

	if err := s.DeleteSession(ctx, sess.Hash, audit("")); err != nil {
		t.Fatalf("DeleteSession: %v", err)
	}
	_, err = s.SessionByHash(ctx, sess.Hash, now)
	wantCode(t, err, switchboard.ENotFound)
	if err := s.DeleteSession(ctx, sess.Hash, audit("")); err != nil {
		t.Fatalf("second DeleteSession: %v", err)
	}
}

// policy is the health-check policy of the history tests: two failures in a
// row make a provider CRITICAL, so that tests can see transitions.
var policy = switchboard.HealthCheckPolicy{FailureThreshold: 2, SuccessThreshold: 1}

// observe is the fold of the health checker for one probe result.
func observe(r switchboard.ProbeResult) func(switchboard.Health) switchboard.Health {
	return func(h switchboard.Health) switchboard.Health { return health.Observe(h, r, policy, true) }
}

func record(t *testing.T, s switchboard.Store, name string, at time.Time, ok bool, latencyMs int64) (before, after switchboard.Health) {
	t.Helper()
	r := switchboard.ProbeResult{OK: ok, Latency: time.Duration(latencyMs) * time.Millisecond, At: at}
	if !ok {
		r.Stage, r.Message = switchboard.StageConnect, "connection refused"
	}
	before, after, err := s.RecordCheck(context.Background(), name, r, observe(r))
	if err != nil {
		t.Fatalf("RecordCheck(%s, %v): %v", name, at, err)
	}
	return before, after
}

func testRecordCheck(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustCreate(t, s, AgoraProvider(t, "p"))
	at := t0.Add(90*time.Minute + 123456789)
	before, after := record(t, s, "p", at, true, 42)
	if before.Status != switchboard.StatusUnknown || before.TotalChecks != 0 {
		t.Errorf("before = %+v", before)
	}
	if after.Status != switchboard.StatusExcellent || after.TotalChecks != 1 || after.LastCheck == nil || !after.LastCheck.Equal(at) ||
		after.StatusReason == "" {
		t.Errorf("after = %+v", after)
	}
	h := mustGet(t, s, "p").Health
	if h.TotalChecks != 1 || h.SuccessfulChecks != 1 || h.LatencyMs != 42 || h.Status != switchboard.StatusExcellent ||
		h.LastSuccess == nil || !h.LastSuccess.Equal(at) || h.StatusReason != after.StatusReason {
		t.Errorf("stored health = %+v", h)
	}
	// GetHealth reads the same record, alone.
	if got, err := s.GetHealth(ctx, "p"); err != nil || !reflect.DeepEqual(got, h) {
		t.Errorf("GetHealth = %+v, %v; want %+v", got, err, h)
	}
	if _, err := s.GetHealth(ctx, "nope"); !switchboard.IsCode(err, switchboard.ENotFound) {
		t.Errorf("GetHealth of an unknown provider: %v, want not found", err)
	}
	// A failure halves the uptime (WARNING); a second in a row makes the
	// provider CRITICAL; a third changes no status.
	_, warned := record(t, s, "p", at.Add(time.Minute), false, 5000)
	_, after = record(t, s, "p", at.Add(2*time.Minute), false, 7000)
	if warned.Status != switchboard.StatusWarning || after.Status != switchboard.StatusCritical {
		t.Fatalf("statuses = %s then %s, want WARNING then CRITICAL", warned.Status, after.Status)
	}
	record(t, s, "p", at.Add(3*time.Minute), false, 10)
	ls, err := s.RecentLatencies(ctx, "p", at.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ls, []int64{5000, 7000, 10}) {
		t.Errorf("RecentLatencies = %v, want [5000 7000 10]", ls)
	}
	ts, err := s.Transitions(ctx, "p", time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 3 {
		t.Fatalf("%d transitions, want 3: %+v", len(ts), ts)
	}
	crit, warn, first := ts[0], ts[1], ts[2]
	if first.From != switchboard.StatusUnknown || first.To != switchboard.StatusExcellent || !first.At.Equal(at) || first.Provider != "p" {
		t.Errorf("first transition = %+v", first)
	}
	if warn.From != switchboard.StatusExcellent || warn.To != switchboard.StatusWarning ||
		warn.Reason != warned.StatusReason || !warn.At.Equal(at.Add(time.Minute)) {
		t.Errorf("second transition = %+v", warn)
	}
	if crit.From != switchboard.StatusWarning || crit.To != switchboard.StatusCritical || crit.Reason == "" ||
		crit.Reason != after.StatusReason || !crit.At.Equal(at.Add(2*time.Minute)) || crit.ID == 0 {
		t.Errorf("third transition = %+v, want the reason %q", crit, after.StatusReason)
	}
	rs, err := s.HourlyRollups(ctx, "p", t0, t0.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []switchboard.Rollup{{Bucket: t0.Add(time.Hour), Checks: 4, Successes: 1, LatencySumMs: 12052, LatencyMaxMs: 7000}}
	if !equalRollups(rs, want) {
		t.Errorf("hourly = %+v, want %+v", rs, want)
	}
	// A zero At is the store's time.
	r := switchboard.ProbeResult{OK: true}
	_, after, err = s.RecordCheck(ctx, "p", r, func(h switchboard.Health) switchboard.Health { h.TotalChecks++; return h })
	if err != nil || after.TotalChecks != 5 {
		t.Fatalf("RecordCheck with zero At = %+v, %v", after, err)
	}
	if ls, _ := s.RecentLatencies(ctx, "p", time.Now().Add(-24*time.Hour)); len(ls) != 1 {
		t.Errorf("a result with zero At was not stored at the current time: %v", ls)
	}
}

func equalRollups(got, want []switchboard.Rollup) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g, w := got[i], want[i]
		if !g.Bucket.Equal(w.Bucket) || g.Bucket.Location() != time.UTC {
			return false
		}
		g.Bucket, w.Bucket = time.Time{}, time.Time{}
		if g != w {
			return false
		}
	}
	return true
}

func testUpdateHealth(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustCreate(t, s, AgoraProvider(t, "p"))
	at := t0.Add(5 * time.Second)
	before, after, err := s.UpdateHealth(ctx, "p", at, func(h switchboard.Health) switchboard.Health {
		h.FailedRequests++
		h.TotalRequests++
		return h
	})
	if err != nil {
		t.Fatal(err)
	}
	if before.FailedRequests != 0 || after.FailedRequests != 1 || after.Status != switchboard.StatusUnknown {
		t.Errorf("before %+v, after %+v", before, after)
	}
	if ts, _ := s.Transitions(ctx, "p", time.Time{}, 0); len(ts) != 0 {
		t.Errorf("transition recorded without a status change: %+v", ts)
	}
	_, _, err = s.UpdateHealth(ctx, "p", at, func(h switchboard.Health) switchboard.Health {
		h.Status, h.StatusReason = switchboard.StatusDisabled, "disabled by alice"
		return h
	})
	if err != nil {
		t.Fatal(err)
	}
	ts, _ := s.Transitions(ctx, "p", time.Time{}, 0)
	if len(ts) != 1 || ts[0].From != switchboard.StatusUnknown || ts[0].To != switchboard.StatusDisabled ||
		ts[0].Reason != "disabled by alice" || !ts[0].At.Equal(at) {
		t.Errorf("transitions = %+v", ts)
	}
	// UpdateHealth writes no raw result and no rollup.
	if ls, _ := s.RecentLatencies(ctx, "p", time.Time{}); len(ls) != 0 {
		t.Errorf("UpdateHealth stored raw results: %v", ls)
	}
	if rs, _ := s.HourlyRollups(ctx, "p", t0.Add(-time.Hour), t0.Add(time.Hour)); len(rs) != 0 {
		t.Errorf("UpdateHealth stored rollups: %v", rs)
	}
	if h := mustGet(t, s, "p").Health; h.FailedRequests != 1 || h.Status != switchboard.StatusDisabled {
		t.Errorf("stored health = %+v", h)
	}
}

func testHealthRoundTrip(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustCreate(t, s, AgoraProvider(t, "p"))
	tm := func(d time.Duration) *time.Time { x := t0.Add(d); return &x }
	want := switchboard.Health{
		Status: switchboard.StatusWarning, TotalChecks: 100, SuccessfulChecks: 97, ConsecutiveFailures: 1,
		ConsecutiveSuccesses: 0, Down: true, LastCheck: tm(3*time.Hour + 999), LastSuccess: tm(2 * time.Hour),
		LatencyMs: 250, LatencySumMs: 25000, TotalRequests: 150, FailedRequests: 7,
		LastError:    &switchboard.ProbeError{Stage: switchboard.StageAuth, Message: "HTTP 401 from provider", At: *tm(3*time.Hour + 999)},
		StatusReason: "p95 latency above 1s", StatusSince: tm(time.Hour),
	}
	if _, _, err := s.UpdateHealth(ctx, "p", t0, func(switchboard.Health) switchboard.Health { return want }); err != nil {
		t.Fatal(err)
	}
	got := mustGet(t, s, "p").Health
	if !equalHealth(got, want) {
		t.Errorf("health did not round-trip:\n got %s\nwant %s", healthString(got), healthString(want))
	}
	// Clearing pointers clears them.
	if _, _, err := s.UpdateHealth(ctx, "p", t0, func(h switchboard.Health) switchboard.Health {
		h.LastError, h.LastSuccess = nil, nil
		return h
	}); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "p").Health; got.LastError != nil || got.LastSuccess != nil {
		t.Errorf("cleared fields came back: %s", healthString(got))
	}
}

func equalHealth(a, b switchboard.Health) bool {
	eqT := func(x, y *time.Time) bool {
		return (x == nil) == (y == nil) && (x == nil || (x.Equal(*y) && x.Location() == time.UTC))
	}
	if !eqT(a.LastCheck, b.LastCheck) || !eqT(a.LastSuccess, b.LastSuccess) || !eqT(a.StatusSince, b.StatusSince) {
		return false
	}
	if (a.LastError == nil) != (b.LastError == nil) {
		return false
	}
	if a.LastError != nil {
		x, y := *a.LastError, *b.LastError
		if !x.At.Equal(y.At) || x.Stage != y.Stage || x.Message != y.Message {
			return false
		}
	}
	a.LastCheck, a.LastSuccess, a.StatusSince, a.LastError = nil, nil, nil, nil
	b.LastCheck, b.LastSuccess, b.StatusSince, b.LastError = nil, nil, nil, nil
	return a == b
}

func healthString(h switchboard.Health) string {
	b, _ := json.Marshal(h)
	return fmt.Sprintf("%s down=%v sum=%d reason=%q", b, h.Down, h.LatencySumMs, h.StatusReason)
}

func testHealthNotFound(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	id := func(h switchboard.Health) switchboard.Health { return h }
	_, _, err := s.RecordCheck(ctx, "missing", switchboard.ProbeResult{OK: true, At: t0}, id)
	wantCode(t, err, switchboard.ENotFound)
	_, _, err = s.UpdateHealth(ctx, "missing", t0, id)
	wantCode(t, err, switchboard.ENotFound)
	_, err = s.Transitions(ctx, "missing", time.Time{}, 0)
	wantCode(t, err, switchboard.ENotFound)
	_, err = s.HourlyRollups(ctx, "missing", t0, t0.Add(time.Hour))
	wantCode(t, err, switchboard.ENotFound)
	_, err = s.DailyRollups(ctx, "missing", t0, t0.Add(time.Hour))
	wantCode(t, err, switchboard.ENotFound)
	_, err = s.RecentLatencies(ctx, "missing", t0)
	wantCode(t, err, switchboard.ENotFound)
	ts, err := s.Transitions(ctx, "", time.Time{}, 0)
	if err != nil || len(ts) != 0 {
		t.Errorf("Transitions of all on an empty store = %v, %v", ts, err)
	}
}

func testTransitions(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustCreate(t, s, AgoraProvider(t, "a"))
	mustCreate(t, s, AgoraProvider(t, "b"))
	statuses := []switchboard.Status{switchboard.StatusHealthy, switchboard.StatusHealthy, switchboard.StatusWarning,
		switchboard.StatusCritical, switchboard.StatusCritical, switchboard.StatusHealthy}
	for i, st := range statuses {
		for _, n := range []string{"a", "b"} {
			at := t0.Add(time.Duration(i)*time.Minute + map[string]time.Duration{"a": 0, "b": time.Second}[n])
			_, _, err := s.UpdateHealth(ctx, n, at, func(h switchboard.Health) switchboard.Health {
				h.Status, h.StatusReason = st, fmt.Sprintf("step %d", i)
				return h
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	// a: UNKNOWN->HEALTHY (0), ->WARNING (2), ->CRITICAL (3), ->HEALTHY (5).
	ts, err := s.Transitions(ctx, "a", time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, tr := range ts {
		got = append(got, fmt.Sprintf("%s>%s@%s", tr.From, tr.To, tr.Reason))
	}
	want := []string{"CRITICAL>HEALTHY@step 5", "WARNING>CRITICAL@step 3", "HEALTHY>WARNING@step 2", "UNKNOWN>HEALTHY@step 0"}
	if !slices.Equal(got, want) {
		t.Errorf("transitions = %v, want %v", got, want)
	}
	tests := []struct {
		name  string
		pname string
		since time.Time
		limit int
		want  int
	}{
		{"all providers", "", time.Time{}, 0, 8},
		{"since inclusive", "a", t0.Add(3 * time.Minute), 0, 2},
		{"limit", "", time.Time{}, 3, 3},
		{"future", "a", t0.Add(time.Hour), 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, err := s.Transitions(ctx, tt.pname, tt.since, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if len(ts) != tt.want {
				t.Fatalf("%d transitions, want %d", len(ts), tt.want)
			}
			for i := 1; i < len(ts); i++ {
				if ts[i].At.After(ts[i-1].At) {
					t.Errorf("not newest first: %v then %v", ts[i-1].At, ts[i].At)
				}
			}
		})
	}
	ts, _ = s.Transitions(ctx, "", time.Time{}, 1)
	if len(ts) != 1 || ts[0].Provider != "b" || !ts[0].At.Equal(t0.Add(5*time.Minute+time.Second)) {
		t.Errorf("newest transition = %+v", ts)
	}
}

func testHourlyRollups(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustCreate(t, s, AgoraProvider(t, "p"))
	mustCreate(t, s, AgoraProvider(t, "other"))
	// Hour 0: 3 checks, hour 1: 1 check, hour 5: 2 checks; the other provider's checks stay apart.
	checks := []struct {
		at time.Duration
		ok bool
		ms int64
	}{
		{0, true, 10}, {59*time.Minute + 59*time.Second + 999999999, false, 300}, {30 * time.Minute, true, 20},
		{time.Hour, true, 5},
		{5*time.Hour + time.Minute, true, 1}, {5*time.Hour + 2*time.Minute, false, 2},
	}
	for _, c := range checks {
		record(t, s, "p", t0.Add(c.at), c.ok, c.ms)
	}
	record(t, s, "other", t0, true, 1000)
	all := []switchboard.Rollup{
		{Bucket: t0, Checks: 3, Successes: 2, LatencySumMs: 330, LatencyMaxMs: 300},
		{Bucket: t0.Add(time.Hour), Checks: 1, Successes: 1, LatencySumMs: 5, LatencyMaxMs: 5},
		{Bucket: t0.Add(5 * time.Hour), Checks: 2, Successes: 1, LatencySumMs: 3, LatencyMaxMs: 2},
	}
	tests := []struct {
		name     string
		from, to time.Time
		want     []switchboard.Rollup
	}{
		{"all", t0.Add(-time.Hour), t0.Add(24 * time.Hour), all},
		{"from inclusive, to exclusive", t0, t0.Add(5 * time.Hour), all[:2]},
		{"to at a bucket start excludes it", t0.Add(time.Hour), t0.Add(5 * time.Hour), all[1:2]},
		{"from inside a bucket excludes it", t0.Add(time.Minute), t0.Add(6 * time.Hour), all[1:]},
		{"empty", t0.Add(10 * time.Hour), t0.Add(20 * time.Hour), nil},
		{"non-UTC bounds", t0.In(time.FixedZone("X", 3600)), t0.Add(2 * time.Hour).In(time.FixedZone("Y", -7200)), all[:2]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs, err := s.HourlyRollups(ctx, "p", tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if !equalRollups(rs, tt.want) {
				t.Errorf("rollups = %+v, want %+v", rs, tt.want)
			}
		})
	}
}

func testDailyRollupsAndCompaction(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustCreate(t, s, AgoraProvider(t, "p"))
	old := t0.Add(-40 * 24 * time.Hour) // older than the hourly retention
	// old: 1 check; day 0: 3 checks over 2 hours; day 1: 2 checks; day 2 (today): 1 check.
	record(t, s, "p", old.Add(3*time.Hour), true, 7)
	record(t, s, "p", t0.Add(time.Hour), true, 10)
	record(t, s, "p", t0.Add(time.Hour+time.Minute), false, 400)
	record(t, s, "p", t0.Add(23*time.Hour), true, 30)
	record(t, s, "p", t0.Add(24*time.Hour), true, 1)
	record(t, s, "p", t0.Add(47*time.Hour), true, 2)
	record(t, s, "p", t0.Add(50*time.Hour), true, 5)
	today := t0.Add(50 * time.Hour)

	want := []switchboard.Rollup{
		{Bucket: old, Checks: 1, Successes: 1, LatencySumMs: 7, LatencyMaxMs: 7},
		{Bucket: t0, Checks: 3, Successes: 2, LatencySumMs: 440, LatencyMaxMs: 400},
		{Bucket: t0.Add(24 * time.Hour), Checks: 2, Successes: 2, LatencySumMs: 3, LatencyMaxMs: 2},
		{Bucket: t0.Add(48 * time.Hour), Checks: 1, Successes: 1, LatencySumMs: 5, LatencyMaxMs: 5},
	}
	daily := func(from, to time.Time) []switchboard.Rollup {
		t.Helper()
		rs, err := s.DailyRollups(ctx, "p", from, to)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	wide := func() []switchboard.Rollup { return daily(old.Add(-24*time.Hour), today.Add(24*time.Hour)) }
	// Before any compaction, days are summed from their hours.
	if rs := wide(); !equalRollups(rs, want) {
		t.Fatalf("daily before compaction = %+v, want %+v", rs, want)
	}

	keepRaw := t0.Add(24 * time.Hour)
	for i := range 2 { // compaction is idempotent
		if err := s.CompactHistory(ctx, today, keepRaw); err != nil {
			t.Fatalf("CompactHistory #%d: %v", i+1, err)
		}
		if rs := wide(); !equalRollups(rs, want) {
			t.Fatalf("daily after compaction #%d = %+v, want %+v", i+1, rs, want)
		}
	}
	// Range bounds are on bucket starts.
	if rs := daily(t0, t0.Add(48*time.Hour)); !equalRollups(rs, want[1:3]) {
		t.Errorf("daily [day0, day2) = %+v", rs)
	}
	if rs := daily(t0.Add(time.Hour), t0.Add(48*time.Hour+time.Hour)); !equalRollups(rs, want[2:4]) {
		t.Errorf("daily [day0+1h, day2+1h) = %+v", rs)
	}
	// The old day's hours are gone; its day stays. Recent hours stay.
	if rs, _ := s.HourlyRollups(ctx, "p", old.Add(-time.Hour), old.Add(24*time.Hour)); len(rs) != 0 {
		t.Errorf("hourly rollups older than the retention remain: %+v", rs)
	}
	if rs, _ := s.HourlyRollups(ctx, "p", t0, today.Add(time.Hour)); len(rs) != 5 {
		t.Errorf("%d recent hourly rollups, want 5", len(rs))
	}
	// Raw results before keepRaw are gone.
	ls, err := s.RecentLatencies(ctx, "p", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ls, []int64{1, 2, 5}) {
		t.Errorf("raw latencies after compaction = %v, want [1 2 5]", ls)
	}
	// A late result for a compacted day is counted once by the next compaction.
	record(t, s, "p", t0.Add(2*time.Hour), true, 1000)
	if err := s.CompactHistory(ctx, today, keepRaw); err != nil {
		t.Fatal(err)
	}
	want[1] = switchboard.Rollup{Bucket: t0, Checks: 4, Successes: 3, LatencySumMs: 1440, LatencyMaxMs: 1000}
	if rs := wide(); !equalRollups(rs, want) {
		t.Fatalf("daily after a late result = %+v, want %+v", rs, want)
	}
	// Compacting a later day folds the day that was today.
	if err := s.CompactHistory(ctx, today.Add(24*time.Hour), keepRaw); err != nil {
		t.Fatal(err)
	}
	if rs := wide(); !equalRollups(rs, want) {
		t.Fatalf("daily after compacting the next day = %+v, want %+v", rs, want)
	}
}

func testConcurrentHealth(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustCreate(t, s, AgoraProvider(t, "p"))
	mustCreate(t, s, AgoraProvider(t, "q"))
	const n = 50
	var wg sync.WaitGroup
	errs := make(chan error, 3*n)
	for i := range n {
		wg.Go(func() {
			r := switchboard.ProbeResult{OK: i%5 != 0, Latency: time.Duration(i) * time.Millisecond, At: t0.Add(time.Duration(i) * time.Second)}
			_, _, err := s.RecordCheck(ctx, "p", r, func(h switchboard.Health) switchboard.Health {
				h.TotalChecks++
				if r.OK {
					h.SuccessfulChecks++
				}
				h.LatencySumMs += r.Latency.Milliseconds()
				return h
			})
			errs <- err
		})
		wg.Go(func() {
			_, _, err := s.UpdateHealth(ctx, "p", t0, func(h switchboard.Health) switchboard.Health {
				h.TotalRequests++
				h.FailedRequests++
				return h
			})
			errs <- err
		})
		wg.Go(func() {
			_, err := s.ListProviders(ctx)
			errs <- err
		})
	}
	for _, err := range waitErrs(&wg, errs) {
		t.Fatalf("concurrent call: %v", err)
	}
	h := mustGet(t, s, "p").Health
	if h.TotalChecks != n || h.SuccessfulChecks != n-n/5 || h.TotalRequests != n || h.FailedRequests != n || h.LatencySumMs != n*(n-1)/2 {
		t.Errorf("health after %d concurrent updates = %s", n, healthString(h))
	}
	rs, err := s.HourlyRollups(ctx, "p", t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := []switchboard.Rollup{{Bucket: t0, Checks: n, Successes: n - n/5, LatencySumMs: n * (n - 1) / 2, LatencyMaxMs: n - 1}}
	if !equalRollups(rs, want) {
		t.Errorf("rollups = %+v, want %+v", rs, want)
	}
	if ls, _ := s.RecentLatencies(ctx, "p", t0); len(ls) != n {
		t.Errorf("%d raw results, want %d", len(ls), n)
	}
	if hq := mustGet(t, s, "q").Health; hq.TotalChecks != 0 || hq.TotalRequests != 0 {
		t.Errorf("the other provider's health changed: %s", healthString(hq))
	}
}

func testConcurrentUpdateProvider(t *testing.T, s switchboard.Store) {
	ctx := context.Background()
	mustCreate(t, s, AgoraProvider(t, "p"))
	const n = 30
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			_, _, err := s.UpdateProvider(ctx, "p", func(p switchboard.Provider) (switchboard.Provider, error) {
				p.Weight++
				return p, nil
			}, audit("provider.update"))
			errs <- err
		})
	}
	for _, err := range waitErrs(&wg, errs) {
		t.Fatalf("UpdateProvider: %v", err)
	}
	if w := mustGet(t, s, "p").Weight; w != 1+n {
		t.Errorf("weight = %d after %d concurrent increments, want %d", w, n, 1+n)
	}
	if got := len(mustAudit(t, s)); got != 1+n {
		t.Errorf("%d audit entries, want %d", got, 1+n)
	}
}
