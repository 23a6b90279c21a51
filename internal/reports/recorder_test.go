package reports_test

import (
	"bytes"
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/events"
	"github.com/switchboardhq/switchboard/internal/reports"
	"github.com/switchboardhq/switchboard/internal/secrets"
	"github.com/switchboardhq/switchboard/internal/sqlstore"
)

// TestRecordDegradations publishes the detector's events on a hub and
// reads them back from an SQLite store; the recorder stops with its context.
func TestRecordDegradations(t *testing.T) {
	sealer, err := secrets.NewAESGCM(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "sb.db"), sealer, sb.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	hub := events.New(events.Options{})
	defer hub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = reports.RecordDegradations(ctx, hub, store, nil) })

	t0 := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	since := t0.Add(-2 * time.Minute)
	deg := sb.Degradation{Provider: "agora", Degrading: true, Since: &since, At: t0,
		Evidence: []sb.DegradationEvidence{{Signal: "errors", Baseline: 0.01, Current: 0.2, Since: since}}}
	// Before the subscription is taken an event may be missed: publish until
	// the record appears.
	var got []sb.DegradationRecord
	for deadline := time.Now().Add(10 * time.Second); len(got) == 0 && time.Now().Before(deadline); {
		hub.Publish(sb.Event{Type: sb.EventProviderDegrading, At: t0, Data: deg})
		time.Sleep(20 * time.Millisecond)
		if got, err = store.Degradations(context.Background(), t0.Add(-time.Hour), t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	// A verdict from another replica arrives as JSON.
	hub.Publish(sb.Event{Type: sb.EventProviderRecovered, At: t0.Add(10 * time.Minute),
		Data: map[string]any{"provider": "agora", "degrading": false, "at": t0.Add(10 * time.Minute).Format(time.RFC3339)}})
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if got, err = store.Degradations(context.Background(), t0.Add(-time.Hour), t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if len(got) == 1 && got[0].EndedAt != nil {
			break
		}
	}
	if len(got) != 1 || !got[0].StartedAt.Equal(since) || got[0].EndedAt == nil || !got[0].EndedAt.Equal(t0.Add(10*time.Minute)) ||
		len(got[0].Evidence) != 1 || got[0].Evidence[0].Signal != "errors" {
		t.Fatalf("degradations = %+v", got)
	}
	cancel()
	wg.Wait()
}
