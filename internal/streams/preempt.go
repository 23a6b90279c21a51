package streams

import (
	"context"
	"fmt"
	"slices"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/routing"
)

// PreemptReask is how long a stream asked to move off a degrading provider
// has before it is asked again (its app may have missed the event).
const PreemptReask = 30 * time.Second

// preemptBatch is how many live streams of a degrading provider one look reads.
const preemptBatch = 1000

// PreemptMigrateData is the data of a stream.migrate event the degradation
// detector caused: the stream's owner is asked to move it off From.
type PreemptMigrateData struct {
	StreamID string `json:"streamId"`
	From     string `json:"from"`
	Reason   string `json:"reason"`
	// Prediction is the detector's verdict on From.
	Prediction sb.Degradation `json:"prediction"`
}

// preempter is the state of RunPreemptive between looks.
type preempter struct {
	asked map[string]time.Time // stream id → when it was last asked, for the streams still live on a degrading provider
	sent  []time.Time          // when each request of the last minute went out
	storm bool                 // storm control held at the last look
}

// RunPreemptive moves live streams off the providers the degradation
// detector flags while the setting preemptive is migrate, until ctx ends.
// Every second it looks at each degrading provider's live streams, oldest
// first, and asks the owner of each (a stream.migrate event, as a
// maintenance drain does) to move it, when routing would send the stream to
// a provider that is not degrading. It asks at most
// maxPreemptiveMigrationsPerMinute in any minute, asks a stream again only
// after PreemptReask, and asks nothing while storm control holds (more than
// half of the usable providers degrading: routing.Storm). Run it on the
// leader only: the replicas would multiply the rate.
func (s *Service) RunPreemptive(ctx context.Context) error {
	if s.predict == nil || s.setting == nil {
		<-ctx.Done()
		return nil
	}
	p := &preempter{asked: map[string]time.Time{}}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if err := s.preemptOnce(ctx, p); err != nil && ctx.Err() == nil {
			s.log.Warn("preemptive migration", "err", err.Error())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// preemptOnce is one look of RunPreemptive.
func (s *Service) preemptOnce(ctx context.Context, p *preempter) error {
	set := s.setting(ctx)
	now := s.clock.Now()
	p.sent = slices.DeleteFunc(p.sent, func(at time.Time) bool { return now.Sub(at) >= time.Minute })
	deg := s.predict.Degrading()
	if set.Preemptive != sb.PreemptiveMigrate || len(deg) == 0 {
		clear(p.asked)
		return nil
	}
	cands, _, err := s.candidates(ctx)
	if err != nil {
		return err
	}
	storm := routing.Storm(cands)
	if storm != p.storm {
		p.storm = storm
		if storm {
			s.log.Warn("preemptive migration paused: more than half of the usable providers are degrading", "degrading", len(deg))
		} else {
			s.log.Info("preemptive migration resumed")
		}
	}
	if storm {
		return nil
	}
	names := make([]string, 0, len(deg))
	for n := range deg {
		names = append(names, n)
	}
	slices.Sort(names)
	still := map[string]bool{}
	lives := make([][]sb.Stream, len(names))
	for i, name := range names {
		live, err := s.store.ListStreams(ctx, sb.StreamFilter{Status: sb.StreamActive, Provider: name, Limit: preemptBatch})
		if err != nil {
			return err
		}
		slices.Reverse(live) // oldest first
		for _, st := range live {
			still[st.ID] = true
		}
		// Streams never asked go first, then those asked longest ago.
		slices.SortStableFunc(live, func(a, b sb.Stream) int { return p.asked[a.ID].Compare(p.asked[b.ID]) })
		lives[i] = live
	}
	for id := range p.asked { // the streams that left, or whose provider recovered
		if !still[id] {
			delete(p.asked, id)
		}
	}
	for i, name := range names {
		v := deg[name]
		reason := fmt.Sprintf("%s is degrading: %s", name, predictSummary(v))
		for _, st := range lives[i] {
			if len(p.sent) >= set.MaxPreemptiveMigrationsPerMinute {
				return nil
			}
			if at, ok := p.asked[st.ID]; ok && now.Sub(at) < PreemptReask {
				continue
			}
			d := routing.Select(cands, routing.Request{Region: st.Region, Exclude: []string{name}}, s.rand)
			if len(d.Order) == 0 || deg[d.Order[0]].Degrading || d.LeastBad || d.Unverified {
				continue // nowhere better to go
			}
			p.asked[st.ID] = now
			p.sent = append(p.sent, now)
			s.log.Info("preemptive migration asked", "stream_id", st.ID, "from", name, "to", d.Order[0])
			s.bus.Publish(sb.Event{Type: sb.EventStreamMigrate, At: now, Audience: sb.RoleClient, Owner: st.Owner,
				Data: PreemptMigrateData{StreamID: st.ID, From: name, Reason: reason, Prediction: v}})
		}
	}
	return nil
}
