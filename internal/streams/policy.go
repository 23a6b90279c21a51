package streams

import (
	"context"
	"sync"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/routing"
)

// RoutingStore is what the routing policies read and count in the store.
type RoutingStore interface {
	GetRouting(ctx context.Context) (sb.RoutingConfig, error)
	CountRoutingStart(ctx context.Context, scope, provider string, at time.Time) error
	RoutingStarts(ctx context.Context, since time.Time) (sb.RoutingStarts, error)
	QualityTotals(ctx context.Context, now time.Time, window time.Duration) (map[sb.QualityKey]sb.QualityTotals, error)
}

// RoutingStartRecorder is what a RoutingStore implements to take the starts
// counted for commit in batches (*sqlstore.Store does): by hourly bucket,
// scope and provider, added to what is there.
type RoutingStartRecorder interface {
	CountRoutingStarts(ctx context.Context, starts map[time.Time]sb.RoutingStarts) error
}

// How long what the policies read is kept in memory: the configuration
// (RoutingChanged reloads it at once), the quality aggregates (which move by
// the minute) and the starts counted by other replicas.
const (
	routingConfigAge  = 5 * time.Second
	routingQualityAge = 5 * time.Second
	routingStartsAge  = 10 * time.Second
)

// maxLeaders bounds the regions whose optimized first choice is kept.
const maxLeaders = 1024

// policyState is what the start path keeps of the routing policies: cached
// reads of the store, the starts this replica made since it last read the
// counts, and optimized's current first choice per region.
type policyState struct {
	mu sync.Mutex
	// The fields below are guarded by mu.
	config    sb.RoutingConfig
	configAt  time.Time
	quality   map[sb.QualityKey]sb.QualityTotals
	qualityAt time.Time
	starts    sb.RoutingStarts
	startsAt  time.Time
	leaders   map[string]string // by region: optimized's first choice
	// unsaved are the starts counted since the last flush, by hourly
	// bucket; saving those the flush under way is writing. A read of the
	// counts from the store adds both, since it cannot see them yet.
	unsaved map[time.Time]sb.RoutingStarts
	saving  map[time.Time]sb.RoutingStarts
}

// addStarts adds n starts of provider in scope to the bucket of batch.
func addStarts(batch map[time.Time]sb.RoutingStarts, bucket time.Time, scope, provider string, n int64) {
	if batch[bucket] == nil {
		batch[bucket] = sb.RoutingStarts{}
	}
	if batch[bucket][scope] == nil {
		batch[bucket][scope] = map[string]int64{}
	}
	batch[bucket][scope][provider] += n
}

// addUnwritten adds to the counts the starts not yet in the store, of the
// buckets from since's hour on. p.mu must be held.
func (p *policyState) addUnwritten(since time.Time) {
	from := since.Truncate(time.Hour)
	for _, batch := range []map[time.Time]sb.RoutingStarts{p.unsaved, p.saving} {
		for bucket, byScope := range batch {
			if bucket.Before(from) {
				continue
			}
			for scope, byProvider := range byScope {
				for provider, n := range byProvider {
					p.count(scope, provider, n)
				}
			}
		}
	}
}

// RoutingChanged makes the next start read the routing configuration again:
// the API calls it when it changes it, and on another replica's
// routing.updated event.
func (s *Service) RoutingChanged() {
	s.pol.mu.Lock()
	s.pol.configAt = time.Time{}
	s.pol.mu.Unlock()
}

// policyInput returns the policy for a stream of region and tier and what it
// reads. Without a routing store, or when the store cannot be read, it is
// priority (today's behaviour), logged.
func (s *Service) policyInput(ctx context.Context, region string, tier sb.Quality) routing.PolicyInput {
	if s.routes == nil {
		return routing.PolicyInput{}
	}
	now := s.clock.Now()
	p := &s.pol
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.configAt.IsZero() || now.Sub(p.configAt) >= routingConfigAge || now.Before(p.configAt) {
		c, err := s.routes.GetRouting(ctx)
		if err != nil {
			s.log.Warn("read the routing configuration", "err", err.Error())
			if p.configAt.IsZero() {
				return routing.PolicyInput{}
			}
		} else {
			p.config, p.configAt = c, now
		}
	}
	eff := p.config.For(region)
	in := routing.PolicyInput{Routing: eff, Tier: tier}
	switch eff.Policy {
	case sb.PolicyOptimized:
		if p.qualityAt.IsZero() || now.Sub(p.qualityAt) >= routingQualityAge || now.Before(p.qualityAt) {
			q, err := s.routes.QualityTotals(ctx, now, sb.QualityRoutingWindow)
			if err != nil {
				s.log.Warn("read the quality aggregates for routing", "err", err.Error())
			} else {
				p.quality, p.qualityAt = q, now
			}
		}
		in.Quality = map[string]routing.Quality{}
		for k, t := range p.quality {
			if k.Region != region {
				continue // never another region's data
			}
			st := t.Stats()
			in.Quality[k.Provider] = routing.Quality{Score: st.Score, Samples: st.Samples, Streams: st.Streams}
		}
		in.Leader = p.leaders[region]
	case sb.PolicyCommit:
		if p.startsAt.IsZero() || now.Sub(p.startsAt) >= routingStartsAge || now.Before(p.startsAt) {
			st, err := s.routes.RoutingStarts(ctx, now.Add(-sb.CommitWindow))
			if err != nil {
				s.log.Warn("read the starts for routing", "err", err.Error())
			} else {
				p.starts, p.startsAt = st, now
				p.addUnwritten(now.Add(-sb.CommitWindow))
			}
		}
		in.Starts = map[string]int64{}
		for n, c := range p.starts[eff.Scope] {
			in.Starts[n] = c
		}
	}
	return in
}

// commitDecide runs commit again on the final candidates, under the lock of
// the counts, and counts the choice at once (a reservation): concurrent
// starts then see each other's choices, where deciding on a shared snapshot
// would send a burst of starts to the same provider. It returns the decision
// and the provider reserved ("" when commit chose none).
func (s *Service) commitDecide(cands []routing.Candidate, req routing.Request, in routing.PolicyInput) (routing.Decision, string) {
	p := &s.pol
	p.mu.Lock()
	defer p.mu.Unlock()
	scope := in.Routing.Scope
	in.Starts = map[string]int64{}
	for n, c := range p.starts[scope] {
		in.Starts[n] = c
	}
	d := routing.Decide(cands, req, in, s.rand)
	if d.Policy != sb.PolicyCommit || len(d.Order) == 0 {
		return d, ""
	}
	p.count(scope, d.Order[0], 1)
	return d, d.Order[0]
}

// count adds n to the starts of provider in scope. p.mu must be held.
func (p *policyState) count(scope, provider string, n int64) {
	if p.starts == nil {
		p.starts = sb.RoutingStarts{}
	}
	if p.starts[scope] == nil {
		p.starts[scope] = map[string]int64{}
	}
	p.starts[scope][provider] += n
}

// unreserve takes back the reservation of a start that did not happen.
func (s *Service) unreserve(region, reserved string) {
	if reserved == "" {
		return
	}
	p := &s.pol
	p.mu.Lock()
	p.count(p.config.For(region).Scope, reserved, -1)
	p.mu.Unlock()
}

// started records a stream started on provider by decision d, for which
// commitDecide reserved reserved: optimized's first choice in its region, and
// the start counted for commit (in the store, and in the cached counts unless
// reserved there already, so that the next start sees it at once).
func (s *Service) started(ctx context.Context, region, provider string, d routing.Decision, reserved string) {
	if s.routes == nil {
		return
	}
	p := &s.pol
	p.mu.Lock()
	scope := p.config.For(region).Scope
	if d.Policy == sb.PolicyOptimized && len(d.Order) > 0 {
		if p.leaders == nil {
			p.leaders = map[string]string{}
		}
		// Regions come from clients: the map is bounded, and a region beyond
		// the bound simply has no hysteresis.
		if _, ok := p.leaders[region]; ok || len(p.leaders) < maxLeaders {
			p.leaders[region] = d.Order[0]
		}
	}
	if reserved != provider {
		if reserved != "" {
			p.count(scope, reserved, -1)
		}
		p.count(scope, provider, 1)
	}
	if s.startRec != nil {
		// Written by the next flush: one write per start, on the store's
		// one writer, cost a third of the store's time per start.
		if p.unsaved == nil {
			p.unsaved = map[time.Time]sb.RoutingStarts{}
		}
		addStarts(p.unsaved, s.clock.Now().Truncate(time.Hour), scope, provider, 1)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	if err := s.routes.CountRoutingStart(ctx, scope, provider, s.clock.Now()); err != nil {
		s.log.Warn("count the start for routing", "provider", provider, "err", err.Error())
	}
}

// flushStarts writes the starts counted since the last flush in one
// transaction. On failure it keeps them for the next flush and returns the
// error. Run calls it every startFlush: a crash loses at most the last
// period's counts, and commit's shares then lean by that much, for a window
// of a day.
func (s *Service) flushStarts(ctx context.Context) error {
	p := &s.pol
	p.mu.Lock()
	batch := p.unsaved
	p.unsaved, p.saving = nil, batch
	p.mu.Unlock()
	if len(batch) == 0 {
		return nil
	}
	err := s.startRec.CountRoutingStarts(ctx, batch)
	p.mu.Lock()
	p.saving = nil
	if err != nil {
		if p.unsaved == nil {
			p.unsaved = map[time.Time]sb.RoutingStarts{}
		}
		for bucket, byScope := range batch {
			for scope, byProvider := range byScope {
				for provider, n := range byProvider {
					addStarts(p.unsaved, bucket, scope, provider, n)
				}
			}
		}
	}
	p.mu.Unlock()
	return err
}
