package httpapi

import (
	"context"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// TestPublicHealthSnapshot checks that the public health served from memory
// follows every change: a probe, a change to the registry through the API,
// and a write the server hears of only through ProvidersChanged (another
// replica's event) or, without an event, once publicSnapshotMaxAge passed.
func TestPublicHealthSnapshot(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	admin := e.tokens[sb.RoleAdmin]
	get := func() (publicHealth, string) {
		t.Helper()
		var h publicHealth
		e.mustDo("GET", "/api/streaming/providers/agora/health", "", nil, 200, &h)
		return h, e.api.pub.docs["agora"].etag
	}
	before, _ := get()
	// A probe through the Checker shows at once.
	e.clock.Advance(time.Second)
	e.mustDo("POST", "/api/streaming/providers/agora/health-check", admin, nil, 200, nil)
	probed, tag := get()
	if probed.LastCheck == nil || !probed.Usable || (before.LastCheck != nil && !probed.LastCheck.After(*before.LastCheck)) {
		t.Fatalf("after a probe: %+v, before it %+v", probed, before)
	}
	if again, tag2 := get(); tag2 != tag || *again.LastCheck != *probed.LastCheck {
		t.Fatalf("unchanged health answered differently: %+v %s, then %+v %s", probed, tag, again, tag2)
	}

	// A write the Checker did not make (another replica's probe): the event
	// drops the snapshot.
	at := probed.LastCheck.Add(time.Minute)
	write := func(latency int64) {
		t.Helper()
		if _, _, err := e.store.RecordCheck(context.Background(), "agora", sb.ProbeResult{OK: true, At: at, Latency: time.Duration(latency) * time.Millisecond},
			func(h sb.Health) sb.Health {
				h.LastCheck, h.LatencyMs = &at, latency
				return h
			}); err != nil {
			t.Fatal(err)
		}
	}
	write(4321)
	if h, _ := get(); h.Latency == 4321 {
		t.Fatalf("served from the store, not the snapshot: %+v", h)
	}
	e.api.ProvidersChanged()
	if h, _ := get(); h.Latency != 4321 || !h.LastCheck.Equal(at) {
		t.Fatalf("after ProvidersChanged: %+v", h)
	}
	// Without an event, the document is read again once it is old enough.
	write(1234)
	d := e.api.pub.docs["agora"]
	d.read = d.read.Add(-publicSnapshotMaxAge)
	e.api.pub.docs["agora"] = d
	if h, _ := get(); h.Latency != 1234 {
		t.Fatalf("after publicSnapshotMaxAge: %+v", h)
	}

	// A change through the API: disabling and deleting show at once.
	e.mustDo("PUT", "/api/streaming/providers/agora", admin, map[string]any{"enabled": false}, 200, nil)
	if h, _ := get(); h.Status != sb.StatusDisabled {
		t.Fatalf("after disabling: %+v", h)
	}
	e.mustDo("DELETE", "/api/streaming/providers/agora", e.tokens[sb.RoleSuperadmin], nil, 204, nil)
	if st, b := e.do("GET", "/api/streaming/providers/agora/health", "", nil); st != 404 {
		t.Fatalf("after deleting: %d %s", st, b)
	}
}
