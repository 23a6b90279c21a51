package streams

import (
	"context"
	"sync"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/health"
)

// RegionalReader reads the health of the providers per region
// (switchboard.RegionalHealthStore satisfies it).
type RegionalReader interface {
	ListRegionalHealth(ctx context.Context) ([]sb.RegionalHealth, error)
}

// regionalMaxAge is how old the snapshot of the regional health may grow
// before the hot paths read it again: agents report at the providers'
// intervals, seconds at the least.
const regionalMaxAge = 2 * time.Second

// regionalCache is the snapshot of the regional health the policy uses.
type regionalCache struct {
	mu   sync.Mutex
	read time.Time           // guarded by mu; when rows were read
	rows []sb.RegionalHealth // guarded by mu
}

// regional returns each provider's status in each region where there is
// regional health, as of now (a stale region is UNKNOWN), for the policy;
// nil without a RegionalReader. The rows are read at most every
// regionalMaxAge; when they cannot be read, the last ones serve, and without
// any the policy goes by the providers' own statuses.
func (s *Service) regional(ctx context.Context, byName map[string]sb.ProviderRecord) map[string]map[string]sb.Status {
	if s.regionalReader == nil {
		return nil
	}
	now := s.clock.Now()
	c := &s.regionalCache
	c.mu.Lock()
	if c.read.IsZero() || now.Sub(c.read) > regionalMaxAge || now.Before(c.read) {
		if rows, err := s.regionalReader.ListRegionalHealth(ctx); err == nil {
			c.rows, c.read = rows, now
		} else if ctx.Err() == nil {
			s.log.Warn("read regional health failed", "error", err)
		}
	}
	rows := c.rows
	c.mu.Unlock()
	if len(rows) == 0 {
		return nil
	}
	out := map[string]map[string]sb.Status{}
	for _, row := range rows {
		rec, ok := byName[row.Provider]
		if !ok {
			continue
		}
		st, _, _ := health.RegionalStatus(row.Health, rec.HealthCheck, rec.Enabled, now)
		if out[row.Provider] == nil {
			out[row.Provider] = map[string]sb.Status{}
		}
		out[row.Provider][row.Region] = st
	}
	return out
}

// RegionalStatuses returns each provider's status in each region where
// there is regional health, as the policy sees it now (see Config.Regional);
// nil when there is none.
func (s *Service) RegionalStatuses(ctx context.Context) (map[string]map[string]sb.Status, error) {
	reg, err := s.registry(ctx)
	if err != nil {
		return nil, err
	}
	return s.regional(ctx, reg.byName), nil
}
