package web_test

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/health"
	"github.com/switchboardhq/switchboard/internal/streams"
	"github.com/switchboardhq/switchboard/internal/testutil"
)

// TestDashboardRegionalEvent shows a provider's status changing in one
// region in the live event list, as the leader's watch publishes it.
func TestDashboardRegionalEvent(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() { testutil.CheckGoroutines(t, before) })
	b := newBrowser(t)
	srv := newServer(t)
	srv.addProviders()

	ctx := context.Background()
	pol := sb.DefaultHealthCheck()
	record := func(ok bool) {
		t.Helper()
		r := sb.ProbeResult{OK: ok, Latency: 42 * time.Millisecond, At: time.Now().UTC()}
		if !ok {
			r.Stage, r.Message = sb.StageConnect, "connection refused"
		}
		if _, _, err := srv.store.RecordRegionalCheck(ctx, "agora", "ap-south", "agent:sin-1", func(h sb.Health) sb.Health {
			return health.ObserveRegional(h, r, pol, true)
		}); err != nil {
			t.Fatal(err)
		}
	}
	record(true)
	watch := streams.New(streams.Config{Store: srv.store, Checker: srv.checker, Bus: srv.hub, Regional: srv.store})
	runCtx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = watch.RunRegionalEvents(runCtx) })
	t.Cleanup(func() { cancel(); wg.Wait() })

	p := b.open(t, srv)
	p.login("")
	p.waitFor("the live connection", `document.querySelector('#live-status').textContent === 'live'`)
	for range pol.FailureThreshold + 1 {
		record(false)
	}
	p.waitFor("the regional change in recent events",
		`[...document.querySelectorAll('#events li.regional')].some(li => li.textContent.includes('agora in ap-south') && li.textContent.includes('→ CRITICAL') && li.textContent.includes('agent:sin-1'))`)
	if n := eval[int](p, `document.querySelectorAll('#events li.regional').length`); n != 1 {
		t.Errorf("%d regional events listed, want 1", n)
	}
}
