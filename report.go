package switchboard

import (
	"context"
	"time"
)

// DegradationRecord is one stored period during which the degradation
// detector flagged a provider as degrading: what the SLA report counts as a
// predicted degradation.
type DegradationRecord struct {
	ID       int64  `json:"id"`
	Provider string `json:"provider"`
	// Region is the region the prediction was about; "" for the provider as
	// a whole (the detector runs per provider).
	Region    string     `json:"region"`
	StartedAt time.Time  `json:"startedAt"`
	EndedAt   *time.Time `json:"endedAt"` // nil while it lasts
	// Evidence is the detector's evidence when it raised degrading.
	Evidence []DegradationEvidence `json:"evidence"`
}

// UsageCell is the stream time of the streams that stayed on one provider
// for their whole life, within one UTC day, summed per provider, region and
// quality tier: each such stream is in exactly one cell.
type UsageCell struct {
	Provider string
	Region   string
	Quality  Quality
	Day      time.Time // midnight UTC
	Streams  int64
	Seconds  float64
}

// UsagePiece is the time one stream that moved, spanned midnight or the
// period's bounds, or is still live, spent on one provider within one UTC
// day.
type UsagePiece struct {
	StreamID string
	Provider string
	Region   string
	Quality  Quality
	Day      time.Time // midnight UTC
	Seconds  float64
}

// UsageBreakdown is the stream time within a period: the bulk summed by the
// store (Cells), and the streams that need to be told apart (Pieces), so
// that a report may count distinct streams in any grouping.
type UsageBreakdown struct {
	Cells  []UsageCell
	Pieces []UsagePiece
}

// TimeRange is the period [From, To).
type TimeRange struct {
	From, To time.Time
}

// ReportStore holds what the reports read beyond usage and health.
type ReportStore interface {
	// RecordDegradation stores a verdict of the degradation detector: when
	// d.Degrading it opens a record from *d.Since (or d.At) with its evidence,
	// unless one is open for the provider; otherwise it closes the open one,
	// if any, at d.At. Recording the same verdict twice changes nothing.
	RecordDegradation(ctx context.Context, d Degradation) error
	// Degradations returns the records that overlap [from, to), oldest first.
	Degradations(ctx context.Context, from, to time.Time) ([]DegradationRecord, error)
	// StatusHistory returns, oldest first, every provider's last transition
	// before from (its status when the period began) and its transitions
	// within [from, to).
	StatusHistory(ctx context.Context, from, to time.Time) ([]Transition, error)
	// StreamsDuring counts, for each period, the distinct streams that were
	// on provider at some time within it (an open segment runs up to its
	// stream's last heartbeat), reading the provider's segments once.
	StreamsDuring(ctx context.Context, provider string, periods []TimeRange) ([]int64, error)
	// FailoversOut counts, per provider, the migrations away from it within
	// [from, to).
	FailoversOut(ctx context.Context, from, to time.Time) (map[string]int64, error)
	// UsageBreakdown returns the stream time within [from, to) by provider,
	// region, quality and UTC day, with the same semantics as Usage (an open
	// segment runs up to its stream's last heartbeat). Without byRegion the
	// region is left "", which spares reading the streams.
	UsageBreakdown(ctx context.Context, from, to time.Time, byRegion bool) (UsageBreakdown, error)
	// QualityBetween returns, per provider and region that has any, the
	// totals of the quality samples in the hours of [from, to) (hourly
	// rollups, kept 35 days); Streams counts the streams whose last sample
	// is in the period.
	QualityBetween(ctx context.Context, from, to time.Time) (map[QualityKey]QualityTotals, error)
}
