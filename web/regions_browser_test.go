package web_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/health"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

// TestDashboardRegionMatrix shows the provider × region matrix: a row per
// provider, a column per region with health, each cell the status there, a
// stale region as stale (never its old status), and an empty cell where no
// probe runs.
func TestDashboardRegionMatrix(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() { testutil.CheckGoroutines(t, before) })
	b := newBrowser(t)
	srv := newServer(t)
	srv.addProviders()

	ctx := context.Background()
	pol := sb.DefaultHealthCheck()
	record := func(provider, region string, ok bool, at time.Time) {
		t.Helper()
		r := sb.ProbeResult{OK: ok, Latency: 42 * time.Millisecond, At: at}
		if !ok {
			r.Stage, r.Message = sb.StageConnect, "connection refused"
		}
		if _, _, err := srv.store.RecordRegionalCheck(ctx, provider, region, "agent:fra-1", func(h sb.Health) sb.Health {
			return health.ObserveRegional(h, r, pol, true)
		}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().UTC()
	for i := range 3 {
		at := now.Add(time.Duration(i-3) * time.Second)
		record("agora", "eu-west", true, at)
		record("agora", "ap-east", false, at)
	}
	// zegocloud's agent in eu-west stopped long ago.
	record("zegocloud", "eu-west", true, now.Add(-3*health.StaleAfter(pol)))

	p := b.open(t, srv)
	p.login("")
	p.waitFor("the region matrix",
		`(() => { const s = document.querySelector('#regions-section'); return !!s && !s.hidden && document.querySelectorAll('#regions-matrix tbody tr').length === 2; })()`)
	cell := func(provider, region string) string {
		return eval[string](p, `(() => { const c = document.querySelector('#regions-matrix tr[data-provider="`+provider+`"] td[data-region="`+region+`"]'); return c ? c.textContent.trim() : 'none'; })()`)
	}
	if got := eval[string](p, `[...document.querySelectorAll('#regions-matrix thead th')].map((th) => th.textContent).join(',')`); got != "Provider,ap-east,eu-west" {
		t.Errorf("columns = %q; want Provider,ap-east,eu-west", got)
	}
	for _, tc := range []struct{ provider, region, want string }{
		{"agora", "eu-west", "EXCELLENT 42 ms"},
		{"agora", "ap-east", "CRITICAL 42 ms"},
		{"zegocloud", "eu-west", "stale"},
		{"zegocloud", "ap-east", "—"},
	} {
		if got := cell(tc.provider, tc.region); got != tc.want {
			t.Errorf("%s in %s = %q; want %q", tc.provider, tc.region, got, tc.want)
		}
	}
	p.screenshot("regions-matrix")
	if title := eval[string](p, `document.querySelector('#regions-matrix tr[data-provider="zegocloud"] td[data-region="eu-west"]').title`); title == "" {
		t.Error("the stale cell has no title saying why")
	}
}
