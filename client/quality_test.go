package client_test

import (
	"context"
	"net/http"
	"strings"
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

// TestQualityWaitsForTheMoveReport: after a move to the standby, made
// without the control plane, the samples measured on the standby's provider
// wait until the server has the move: before, it would refuse them (the
// stream was never on that provider as far as it knows) and they would be
// lost, with a warning for every stream of a mass failover.
func TestQualityWaitsForTheMoveReport(t *testing.T) {
	e := newEnv(t, settings())
	c := e.newClient(client.WithQualityInterval(10 * time.Millisecond))
	s := mustStart(t, c, "room-qr")
	nextState[client.Live](t, s)
	on := func(p string) int64 {
		got, err := e.store.QualityTotals(context.Background(), time.Now(), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return got[sb.QualityKey{Provider: p}].Samples
	}
	waitFor(t, "samples on the primary", func() bool { return on(primary) >= 3 })

	// The move report is held at the server's door until released.
	release := make(chan struct{})
	held := func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/migrate") {
			<-release
		}
		return false
	}
	e.intercept.Store(&held)
	e.eng.Down(primary, true)
	e.eng.Fail(primary)
	nextState[client.Migrated](t, s)
	waitFor(t, "the move report at the door", func() bool { return e.counter("POST /api/streams/"+s.ID()+"/migrate").Load() > 0 })
	// Many quality periods pass on the standby's provider meanwhile.
	time.Sleep(300 * time.Millisecond)
	close(release)
	waitFor(t, "samples on the backup", func() bool { return on(backup) >= 3 })
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if logs := e.logs.String(); strings.Contains(logs, "quality samples refused") {
		t.Fatalf("samples refused:\n%s", logs)
	}
}
