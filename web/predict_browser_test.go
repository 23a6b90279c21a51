package web_test

import (
	"runtime"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/httpapi"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

// flagged is the degradation detector's verdict on one provider, as the
// server's Tracker would answer it.
type flagged struct{ v sb.Degradation }

func (f flagged) Get(name string) sb.Degradation {
	if name == f.v.Provider {
		return f.v
	}
	return sb.Degradation{Provider: name}
}

// TestDashboardDegrading shows the server's prediction on the provider's
// card, with its evidence, and nothing on the others.
func TestDashboardDegrading(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() { testutil.CheckGoroutines(t, before) })
	since := time.Date(2026, 5, 1, 12, 1, 10, 0, time.UTC)
	v := sb.Degradation{Provider: "agora", Degrading: true, Since: &since, At: since,
		Evidence: []sb.DegradationEvidence{{Signal: "errors", Baseline: 0.002, Current: 0.3, Distance: 150, Since: since,
			Summary: "errors 30.0% vs 0.2% (150.0×) since 2026-05-01T12:01:10Z"}}}
	b := newBrowser(t)
	srv := newServerWith(t, func(o *httpapi.Options) { o.Predictions = flagged{v} })
	srv.addProviders()
	p := b.open(t, srv)
	p.login("")
	p.waitFor("the degrading note on agora's card",
		`(() => { const n = document.querySelector('[data-provider="agora"] [data-stat="degrading"]'); return !!n && n.textContent.includes('errors 30.0% vs 0.2%') && n.textContent.includes('degrading'); })()`)
	if n := eval[int](p, `document.querySelectorAll('[data-stat="degrading"]').length`); n != 1 {
		t.Errorf("%d degrading notes, want 1 (agora's)", n)
	}
}
