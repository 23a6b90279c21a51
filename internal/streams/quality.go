package streams

import (
	"context"

	sb "github.com/switchboardhq/switchboard"
)

// QualityReport is the body of POST /api/streams/{id}/quality.
type QualityReport struct {
	// Provider is the provider the samples were measured on: one the stream
	// has been on. Empty means the stream's current provider.
	Provider string             `json:"provider,omitempty"`
	Samples  []sb.QualitySample `json:"samples"`
}

// QualityTarget checks that the caller may report the quality of stream id,
// which must be active, and returns the provider and region its samples are
// counted under: provider when set (one the stream has been on, so that an
// app cannot lower the score of providers it never used), else the stream's
// current provider. Errors: ENotFound (also for another owner's stream),
// EConflict when the stream has ended, EInvalid (field provider).
func (s *Service) QualityTarget(ctx context.Context, id, owner string, admin bool, provider string) (prov, region string, err error) {
	if provider != "" && !sb.ValidSlug(provider) {
		return "", "", sb.Invalid("provider", "is not a provider name")
	}
	st, err := s.own(ctx, id, owner, admin)
	if err != nil {
		return "", "", err
	}
	if st.Status != sb.StreamActive {
		return "", "", sb.Errorf(sb.EConflict, "stream %s has ended", id)
	}
	if provider == "" || provider == st.Provider {
		return st.Provider, st.Region, nil
	}
	on, err := s.store.StreamWasOn(ctx, id, provider)
	if err != nil {
		return "", "", err
	}
	if !on {
		return "", "", sb.Invalid("provider", "stream %s was never on %s", id, provider)
	}
	return provider, st.Region, nil
}
