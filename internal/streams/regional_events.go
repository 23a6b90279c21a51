package streams

import (
	"context"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/health"
)

// RegionalStale is the state a RegionalChange names for a region whose
// reports stopped for longer than health.StaleAfter (its status is UNKNOWN).
const RegionalStale = "stale"

// RegionalWatchEvery is how often RunRegionalEvents looks at the regional
// health.
const RegionalWatchEvery = 2 * time.Second

// RegionalChange is the Data of an sb.EventProviderRegional event: the
// status of Provider as probed from Region changed. From and To are
// statuses, or RegionalStale. It never holds a credential.
type RegionalChange struct {
	Provider string `json:"provider"`
	Region   string `json:"region"`
	From     string `json:"from"`
	To       string `json:"to"`
	Reason   string `json:"reason"`
	// Source is "server", or "agent:" and the name of the agent's token,
	// that reported last.
	Source string    `json:"source"`
	At     time.Time `json:"at"`
}

// regionalWatch is what RunRegionalEvents remembers between looks: the
// state of each provider in each region, keyed by provider and region.
type regionalWatch struct {
	seen  bool
	state map[[2]string]string
}

// RunRegionalEvents publishes an sb.EventProviderRegional whenever the
// status of a provider in a region changes, until ctx ends. Every
// RegionalWatchEvery it reads the regional health, folds each row with the
// status rules as of now (health.RegionalStatus, so that a region whose
// agent stopped turns stale without any report), and compares with the
// look before. The first look only learns the states: a replica that
// becomes leader does not repeat what the last one told. Run it on the
// leader only, so that each change is told once; without a RegionalReader
// it waits for ctx.
func (s *Service) RunRegionalEvents(ctx context.Context) error {
	if s.regionalReader == nil {
		<-ctx.Done()
		return nil
	}
	w := &regionalWatch{state: map[[2]string]string{}}
	t := time.NewTicker(RegionalWatchEvery)
	defer t.Stop()
	for {
		if _, err := s.regionalLook(ctx, w); err != nil && ctx.Err() == nil {
			s.log.Warn("regional status events", "err", err.Error())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// regionalLook is one look of RunRegionalEvents: it publishes the changes
// since the look before and returns them.
func (s *Service) regionalLook(ctx context.Context, w *regionalWatch) ([]RegionalChange, error) {
	rows, err := s.regionalReader.ListRegionalHealth(ctx)
	if err != nil {
		return nil, err
	}
	reg, err := s.registry(ctx)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	next := make(map[[2]string]string, len(rows))
	var changes []RegionalChange
	for _, row := range rows {
		rec, ok := reg.byName[row.Provider]
		if !ok {
			continue // deleted since the rows were read
		}
		st, reason, stale := health.RegionalStatus(row.Health, rec.HealthCheck, rec.Enabled, now)
		to := string(st)
		if stale {
			to = RegionalStale
		}
		key := [2]string{row.Provider, row.Region}
		next[key] = to
		from, had := w.state[key]
		if !w.seen || from == to {
			continue
		}
		if !had {
			from = string(sb.StatusUnknown) // a region reporting for the first time
			if from == to {
				continue
			}
		}
		changes = append(changes, RegionalChange{Provider: row.Provider, Region: row.Region,
			From: from, To: to, Reason: reason, Source: row.Source, At: now})
	}
	w.state, w.seen = next, true
	for _, c := range changes {
		s.log.Info("provider regional status changed", "provider", c.Provider, "region", c.Region,
			"from", c.From, "to", c.To, "reason", c.Reason, "source", c.Source)
		s.bus.Publish(sb.Event{Type: sb.EventProviderRegional, At: c.At, Audience: sb.RoleAdmin, Data: c})
	}
	return changes, nil
}
