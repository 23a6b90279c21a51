package web_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchboardhq/switchboard/internal/testutil"
)

// TestDashboardReports shows the cost report of a stream that ran on the
// server, with its chart, its table and a CSV link that answers CSV; then
// the SLA report; then a bad period's error naming the field.
func TestDashboardReports(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() { testutil.CheckGoroutines(t, before) })
	b := newBrowser(t)
	srv := newServer(t)
	srv.addProviders()
	start := time.Now().UTC().Add(-time.Hour)
	srv.clock.Set(start)
	var a struct{ ID string }
	srv.call("POST", "/api/streams", map[string]any{"room": "r1", "userId": "u1", "role": "publisher", "region": "eu-west"}, 201, &a)
	srv.clock.Set(start.Add(45 * time.Minute))
	srv.call("POST", "/api/streams/"+a.ID+"/end", nil, 200, nil)
	srv.clock.Set(time.Time{})

	p := b.open(t, srv)
	p.login("")
	from := start.Add(-24 * time.Hour).Format(time.DateOnly)
	p.waitFor("the reports form", `!!document.querySelector('#report-form')`)
	eval[bool](p, `(() => { const k = document.querySelector('#report-kind'); k.value = 'cost'; k.dispatchEvent(new Event('change')); `+
		`document.querySelector('#report-from').value = '`+from+`'; document.querySelector('#report-group').value = 'region'; return true; })()`)
	p.click("Show", "#report-show")
	p.waitFor("the cost table", `(() => { const rows = [...document.querySelectorAll('#report-output tbody tr')]; `+
		`return rows.length === 2 && rows[0].textContent.includes('eu-west') && rows[0].children[1].textContent === '45' && rows[1].textContent.startsWith('Total'); })()`)
	if n := eval[int](p, `document.querySelectorAll('#report-output svg.chart rect.bar').length`); n != 2 {
		t.Errorf("%d bars, want 2 (this period and the previous one of eu-west)", n)
	}
	if desc := eval[string](p, `document.querySelector('#report-output svg desc').textContent`); desc == "" {
		t.Error("the chart has no text equivalent")
	}
	csv, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`(async () => { const a = document.querySelector('#report-csv'); if (a.hidden) return 'hidden'; `+
		`const r = await fetch(a.href); return r.headers.get('content-type') + '|' + (await r.text()).split('\n')[0]; })()`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	p.screenshot("reports-cost-by-region")
	if csv != "text/csv; charset=utf-8|region,minutes,streams,cost,currency,cost_per_stream,cost_per_stream_hour,previous_minutes,previous_streams,previous_cost,cost_change_percent" {
		t.Errorf("CSV link answers %q", csv)
	}

	eval[bool](p, `(() => { const k = document.querySelector('#report-kind'); k.value = 'sla'; k.dispatchEvent(new Event('change')); return true; })()`)
	p.click("Show", "#report-show")
	p.waitFor("the SLA table", `(() => { const rows = [...document.querySelectorAll('#report-output tbody tr')]; `+
		`return rows.length === 2 && rows[0].textContent.startsWith('agora') && rows[0].children[1].textContent === '100%'; })()`)

	eval[bool](p, `(() => { const k = document.querySelector('#report-kind'); k.value = 'quality'; k.dispatchEvent(new Event('change')); `+
		`document.querySelector('#report-from').value = '2999-01-01'; return true; })()`)
	p.click("Show", "#report-show")
	p.waitFor("the error naming the field", `(() => { const e = document.querySelector('#report-error'); return !e.hidden && (e.textContent.startsWith('from:') || e.textContent.startsWith('to:')); })()`)
}
