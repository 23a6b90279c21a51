package reports

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// Subscriber delivers the server's events (internal/events.Hub).
type Subscriber interface {
	Subscribe(ctx context.Context, filter func(sb.Event) bool) <-chan sb.Event
}

// RecordDegradations stores the degradation detector's verdicts
// (provider.degrading and provider.recovered events) for the SLA report
// until ctx ends. With replicas, run it on the leader only: the store keeps
// one open record per provider whoever writes it, and recording a verdict
// twice changes nothing. A subscription the hub drops for falling behind is
// taken again.
func RecordDegradations(ctx context.Context, events Subscriber, store sb.ReportStore, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	wanted := func(e sb.Event) bool {
		return e.Type == sb.EventProviderDegrading || e.Type == sb.EventProviderRecovered
	}
	for ctx.Err() == nil {
		for e := range events.Subscribe(ctx, wanted) {
			d, ok := degradationOf(e)
			if !ok {
				continue
			}
			if err := store.RecordDegradation(ctx, d); err != nil && ctx.Err() == nil {
				log.Warn("record degradation", "provider", d.Provider, "err", err.Error())
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second): // dropped: listen again
		}
	}
	return nil
}

// degradationOf reads the Degradation of a provider.degrading or
// provider.recovered event, whether it was published here or came from
// another replica as JSON.
func degradationOf(e sb.Event) (sb.Degradation, bool) {
	var d sb.Degradation
	switch v := e.Data.(type) {
	case sb.Degradation:
		d = v
	default:
		b, err := json.Marshal(v)
		if err != nil || json.Unmarshal(b, &d) != nil {
			return d, false
		}
	}
	if d.Provider == "" {
		return d, false
	}
	d.Degrading = e.Type == sb.EventProviderDegrading
	if d.At.IsZero() {
		d.At = e.At
	}
	return d, true
}
