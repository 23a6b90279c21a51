package web_test

import (
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/internal/testutil"
)

// TestDashboardMaintenance schedules a maintenance window from the dashboard:
// a bad end is shown next to its field, a good window appears in the list and
// on the provider's card, and ending it takes both away.
func TestDashboardMaintenance(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() { testutil.CheckGoroutines(t, before) })
	b := newBrowser(t)
	srv := newServer(t)
	srv.addProviders()
	p := b.open(t, srv)
	p.login("")
	p.waitFor("the provider choices", `document.querySelectorAll('#mf-provider option').length === 2`)

	// datetime-local values are in the browser's time zone.
	local := func(d time.Duration) string {
		return `(() => { const t = new Date(Date.now() + ` + itoa(d.Milliseconds()) + `); t.setMinutes(t.getMinutes() - t.getTimezoneOffset()); return t.toISOString().slice(0, 16); })()`
	}
	p.idle()
	eval[bool](p, `(() => { const f = document.querySelector('#maintenance-form');
		f.elements.provider.value = 'agora'; f.elements.reason.value = 'vendor upgrade';
		f.elements.start.value = `+local(2*time.Hour)+`; f.elements.end.value = `+local(time.Hour)+`; return true; })()`)
	p.click("schedule", `#maintenance-form button[type="submit"]`)
	p.waitFor("the error next to End", `!document.querySelector('[data-error-for="end"]').hidden && `+textOf(`[data-error-for="end"]`)+`.includes('after start')`)
	if n := eval[int](p, `document.querySelectorAll('#maintenance tbody tr[data-window]').length`); n != 0 {
		t.Fatalf("%d windows listed after a refused one", n)
	}

	eval[bool](p, `(() => { const f = document.querySelector('#maintenance-form');
		f.elements.start.value = ''; f.elements.end.value = `+local(2*time.Hour)+`; return true; })()`)
	p.click("schedule", `#maintenance-form button[type="submit"]`)
	p.waitFor("the window in the list", `document.querySelector('#maintenance tbody tr[data-state="active"]') !== null && `+
		textOf(`#maintenance tbody tr[data-state="active"]`)+`.includes('vendor upgrade')`)
	p.waitFor("the card's maintenance note", textOf(card("agora", `[data-stat="maintenance"]`))+`.includes('vendor upgrade')`)
	if got := srv.startStream("during"); got != "zegocloud" {
		t.Errorf("stream during the window on %s, want zegocloud", got)
	}
	p.screenshot("7-maintenance")

	p.click("end it", `#maintenance tbody button[data-action="end-window"]`)
	p.waitFor("the window over", `document.querySelector('#maintenance tbody tr[data-state="past"]') !== null && `+
		`document.querySelector('#maintenance tbody tr[data-state="active"]') === null`)
	p.waitFor("the card without the note", `document.querySelector('[data-provider="agora"] [data-stat="maintenance"]') === null`)
	if got := srv.startStream("after"); got != "agora" {
		t.Errorf("stream after the window on %s, want agora", got)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
