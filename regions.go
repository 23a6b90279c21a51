package switchboard

import "context"

// Sources of regional health.
const (
	// SourceServer is the source of the regional health that the server's
	// own probes give the region it runs in (serve --region).
	SourceServer = "server"
	// SourceAgentPrefix starts the source of a probe agent's reports: it is
	// followed by the name of the agent's token.
	SourceAgentPrefix = "agent:"
)

// EventProviderRegional is published when a provider's status in one region
// changes, including when the region goes stale because its reports stopped.
const EventProviderRegional = "provider.regional"

// RegionalHealth is the health of one provider as probed from one region, by
// the server's own probes (Source SourceServer) or by a probe agent (Source
// SourceAgentPrefix and the agent's token name).
type RegionalHealth struct {
	Provider string
	Region   string
	Source   string
	Health   Health
}

// RegionalHealthStore persists the health of providers per region.
type RegionalHealthStore interface {
	// RecordRegionalCheck folds one probe of provider from region into its
	// regional health in one transaction: it reads the record (a zero Health
	// when there is none yet), stores what fold returns and makes source its
	// source. Errors: ENotFound for an unknown provider.
	RecordRegionalCheck(ctx context.Context, provider, region, source string, fold func(Health) Health) (before, after Health, err error)
	// ListRegionalHealth returns every regional health record, ordered by
	// provider then region. A deleted provider's records go with it.
	ListRegionalHealth(ctx context.Context) ([]RegionalHealth, error)
}
