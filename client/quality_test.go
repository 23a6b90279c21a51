package client_test

import (
	"context"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/client"
	"github.com/switchboardhq/switchboard/client/clienttest"
)

// TestQualitySamples: a stream sends the quality its connection measures to
// the control plane in batches, counted under the provider it was measured
// on across a failover, and its last samples before it ends.
func TestQualitySamples(t *testing.T) {
	e := newEnv(t, settings())
	e.eng.SetQuality(backup, client.QualitySample{RTTMs: 120, PacketLoss: 0.02, JitterMs: 15, BitrateKbps: 600, FPS: 24, FreezeCount: 1, FreezeMs: 500})
	c := e.newClient(client.WithQualityInterval(20 * time.Millisecond))
	s := mustStart(t, c, "room-q")
	nextState[client.Live](t, s)

	totals := func() map[sb.QualityKey]sb.QualityTotals {
		got, err := e.store.QualityTotals(context.Background(), time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	on := func(p string) sb.QualityTotals { return totals()[sb.QualityKey{Provider: p}] }
	waitFor(t, "six samples on the primary", func() bool { return on(primary).Samples >= 6 })

	e.eng.Down(primary, true)
	e.eng.Fail(primary)
	nextState[client.Migrated](t, s)
	waitFor(t, "samples on the backup", func() bool { return on(backup).Samples >= 3 })
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	p, b := on(primary).Stats(), on(backup).Stats()
	if p.RTTMs.P50 != clienttest.DefaultQuality.RTTMs || p.FPS != clienttest.DefaultQuality.FPS || p.Streams != 1 {
		t.Errorf("primary: %+v, want the default synthetic quality from one stream", p)
	}
	if b.RTTMs.P50 != 120 || b.JitterMs.P50 != 15 || b.PacketLoss.P50 != 0.02 || b.FreezeCount != b.Samples || b.Streams != 1 {
		t.Errorf("backup: %+v, want the backup's synthetic quality", b)
	}
	if *b.Score >= *p.Score {
		t.Errorf("backup score %v not below the primary's %v", *b.Score, *p.Score)
	}
	t.Logf("scores: primary %v, backup %v", *p.Score, *b.Score)
}

// TestQualityOff: a negative interval sends nothing.
func TestQualityOff(t *testing.T) {
	e := newEnv(t, settings())
	c := e.newClient(client.WithQualityInterval(-1))
	s := mustStart(t, c, "room-off")
	nextState[client.Live](t, s)
	e.waitRequests(t, 2, heartbeatKey(s))
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := e.counter("POST /api/streams/" + s.ID() + "/quality").Load(); got != 0 {
		t.Errorf("%d quality requests with telemetry off", got)
	}
}
