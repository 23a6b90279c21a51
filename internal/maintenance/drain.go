package maintenance

import (
	"context"
	"fmt"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// listBatch is how many live streams of the provider one look reads.
const listBatch = 1000

// MigrateData is the data of a stream.migrate event.
type MigrateData struct {
	StreamID string `json:"streamId"`
	From     string `json:"from"`
	Reason   string `json:"reason"`
	// Window is the id of the maintenance window that asks.
	Window string `json:"window"`
}

// drain asks the live streams on w's provider to move, one every
// 1/DrainRate seconds at most, until none is left, the window is over or
// ctx ends. It looks at the provider's streams every second, counts those
// it asked that left (moved, or ended), asks again those still there after
// the re-ask delay, and stores the progress in the window.
func (s *Service) drain(ctx context.Context, w sb.MaintenanceWindow) {
	interval := time.Duration(float64(time.Second) / w.DrainRate)
	now := s.clock.Now()
	p := sb.MaintenanceDrain{StartedAt: now}
	if w.DrainProgress != nil {
		p = *w.DrainProgress // a new leader carries on
	}
	s.log.Info("maintenance drain", "id", w.ID, "provider", w.Provider, "rate", w.DrainRate)
	reason := fmt.Sprintf("maintenance of %s from %s: %s", w.Provider, w.Start.UTC().Format(time.RFC3339), w.Reason)
	asked := map[string]time.Time{} // streams asked to move, with when
	var queue []sb.Stream           // streams to ask, in order
	var looked time.Time            // wall time of the last look; zero: never
	var last time.Time              // wall time of the last request; zero: never
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if looked.IsZero() || time.Since(looked) >= time.Second {
			q, err := s.look(ctx, w, &p, asked)
			if err != nil {
				if ctx.Err() == nil {
					s.log.Warn("maintenance drain: read the provider's streams", "id", w.ID, "err", err.Error())
				}
			} else {
				queue = q
			}
			looked = time.Now()
			if err := s.store.SetMaintenanceDrain(ctx, w.ID, p); err != nil && ctx.Err() == nil {
				s.log.Warn("maintenance drain: store progress", "id", w.ID, "err", err.Error())
			}
		}
		if len(queue) > 0 && (last.IsZero() || time.Since(last) >= interval) {
			st := queue[0]
			queue = queue[1:]
			at := s.clock.Now()
			asked[st.ID] = at
			p.Asked++
			last = time.Now()
			s.bus.Publish(sb.Event{Type: sb.EventStreamMigrate, At: at, Audience: sb.RoleClient, Owner: st.Owner,
				Data: MigrateData{StreamID: st.ID, From: w.Provider, Reason: reason, Window: w.ID}})
		}
		// Next: the next request when one is due, else the next look.
		next := time.Until(looked.Add(time.Second))
		if len(queue) > 0 {
			next = min(next, interval-time.Since(last))
		}
		timer.Reset(max(next, 0))
	}
}

// look reads the live streams on w's provider, updates the progress p and
// returns the streams to ask now, in start order.
func (s *Service) look(ctx context.Context, w sb.MaintenanceWindow, p *sb.MaintenanceDrain, asked map[string]time.Time) ([]sb.Stream, error) {
	counts, err := s.store.ActiveCounts(ctx)
	if err != nil {
		return nil, err
	}
	var live []sb.Stream
	if counts[w.Provider] > 0 {
		// Reading a provider's live streams walks the index of all live
		// streams: not once a second for the rest of a drained window.
		if live, err = s.store.ListStreams(ctx, sb.StreamFilter{Status: sb.StreamActive, Provider: w.Provider, Limit: listBatch}); err != nil {
			return nil, err
		}
	}
	now := s.clock.Now()
	on := make(map[string]bool, len(live))
	for _, st := range live {
		on[st.ID] = true
	}
	for id := range asked {
		if on[id] {
			continue
		}
		st, err := s.store.GetStream(ctx, id)
		if err != nil && !sb.IsCode(err, sb.ENotFound) {
			return nil, err
		}
		if err == nil && st.Status == sb.StreamActive && st.Provider == w.Provider {
			continue // beyond the batch read: still there
		}
		if err == nil && st.Status == sb.StreamActive {
			p.Moved++
		} else {
			p.Ended++
		}
		delete(asked, id)
	}
	p.Remaining = int(counts[w.Provider])
	p.UpdatedAt = now
	if p.Remaining == 0 {
		if p.DoneAt == nil {
			p.DoneAt = &now
			s.log.Info("maintenance drain done", "id", w.ID, "provider", w.Provider, "moved", p.Moved)
		}
	} else {
		p.DoneAt = nil
		if !now.Before(w.Start) && !p.Late {
			p.Late = true
			s.log.Warn("maintenance drain late: streams left at the start", "id", w.ID, "provider", w.Provider, "remaining", p.Remaining)
		}
	}
	var queue []sb.Stream
	for i := len(live) - 1; i >= 0; i-- { // oldest first
		st := live[i]
		if at, ok := asked[st.ID]; !ok || now.Sub(at) >= s.reask {
			queue = append(queue, st)
		}
	}
	return queue, nil
}
