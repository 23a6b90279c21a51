package web_test

import (
	"runtime"
	"testing"

	"github.com/chromedp/chromedp"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

// TestDashboardRouting views and edits the routing policy from the page: a
// commit policy with its shares, a refused change showing the field the API
// named, a region override added and removed, and a change made through the
// API arriving as a live event.
func TestDashboardRouting(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() { testutil.CheckGoroutines(t, before) })
	b := newBrowser(t)
	srv := newServer(t)
	srv.addProviders()
	p := b.open(t, srv)
	p.login("")
	p.waitFor("the routing", textOf(`#routing-current`)+`.startsWith('Policy priority')`)

	p.do("set commit with shares",
		chromedp.SetValue(chromedp.CSS(`#rf-policy`), "commit"),
		chromedp.SetValue(chromedp.CSS(`#rf-shares`), "agora:0.35, zego:0.65"),
		chromedp.Click(chromedp.CSS(`#routing-save`)))
	p.waitFor("the routing saved", textOf(`#routing-current`)+` === 'Policy commit holding agora:0.35, zego:0.65.'`)
	var got sb.RoutingConfig
	srv.call("GET", "/api/routing", nil, 200, &got)
	if got.Policy != sb.PolicyCommit || got.Shares["zego"] != 0.65 {
		t.Fatalf("after the form: %+v", got)
	}

	// Shares that do not sum to 1: the API's error shows beside the field,
	// and nothing changes.
	p.do("set bad shares",
		chromedp.SetValue(chromedp.CSS(`#rf-shares`), "agora:0.5"),
		chromedp.Click(chromedp.CSS(`#routing-save`)))
	p.waitFor("the field error", textOf(`#routing [data-error-for="shares"]`)+`.includes('sum to 1')`)
	got = sb.RoutingConfig{}
	srv.call("GET", "/api/routing", nil, 200, &got)
	if got.Shares["agora"] != 0.35 {
		t.Fatalf("a refused change changed the shares: %+v", got.Shares)
	}

	p.do("add an override",
		chromedp.SendKeys(chromedp.CSS(`#rrf-region`), "eu-west"),
		chromedp.SetValue(chromedp.CSS(`#rrf-policy`), "optimized"),
		chromedp.Click(chromedp.CSS(`#routing-region-save`)))
	p.waitFor("the override", textOf(`#routing-regions [data-region="eu-west"] [data-stat="policy"]`)+` === 'optimized'`)
	p.screenshot("routing-with-override")
	p.click("remove the override", `#routing-regions [data-region="eu-west"] button[data-action="remove-region"]`)
	p.waitFor("the override removed", `!document.querySelector('#routing-regions [data-region="eu-west"]')`)

	// A change made elsewhere arrives as routing.updated.
	srv.call("PUT", "/api/routing", map[string]any{"policy": "cost"}, 200, nil)
	p.waitFor("the change made elsewhere", textOf(`#routing-current`)+` === 'Policy cost.'`)
	p.failOnErrors()
}
