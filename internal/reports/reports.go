// Package reports computes the SLA, cost and quality reports from what the
// store holds: the status history, the degradation detector's records, the
// streams' usage and the quality rollups. It only reads and computes; the
// HTTP handlers and the command line render what it returns as JSON or CSV.
package reports

import (
	"context"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// Store is what the reports read.
type Store interface {
	sb.ReportStore
	ListProviders(ctx context.Context) ([]sb.ProviderRecord, error)
}

// Limits of the reports' periods.
const (
	// MaxPeriod is the longest period of a cost or quality report.
	MaxPeriod = 366 * 24 * time.Hour
	// PredictionHorizon is how soon after a degradation is raised a CRITICAL
	// must follow for the degradation to count as its prediction, as in
	// predict-eval.
	PredictionHorizon = 30 * time.Minute
)

// Group-by dimensions.
const (
	ByProvider = "provider"
	ByRegion   = "region"
	ByQuality  = "quality"
	ByDay      = "day"
)

// Formats of the reports.
const (
	FormatJSON = "json"
	FormatCSV  = "csv"
)

// ParseMonth reads a month as YYYY-MM and returns its period in UTC, cut at
// now for the current month. A month after now's is EInvalid (field month).
func ParseMonth(s string, now time.Time) (from, to time.Time, err error) {
	m, perr := time.Parse("2006-01", s)
	if perr != nil || m.Format("2006-01") != s {
		return from, to, sb.Invalid("month", "must be a month as YYYY-MM")
	}
	from, to = m.UTC(), m.UTC().AddDate(0, 1, 0)
	if !from.Before(now) {
		return from, to, sb.Invalid("month", "must not be in the future")
	}
	return from, minTime(to, now), nil
}

// ParsePeriod reads the from and to of a cost or quality report: each an RFC
// 3339 time or a date (YYYY-MM-DD, midnight UTC); from defaults to the
// start of now's month and to to now. to must be after from, by at most
// MaxPeriod, and not after now.
func ParsePeriod(fromS, toS string, now time.Time) (from, to time.Time, err error) {
	from, to = sb.MonthStart(now), now.UTC()
	if fromS != "" {
		if from, err = parseTime("from", fromS); err != nil {
			return
		}
	}
	if toS != "" {
		if to, err = parseTime("to", toS); err != nil {
			return
		}
	}
	switch {
	case to.After(now):
		return from, to, sb.Invalid("to", "must not be in the future")
	case !from.Before(to):
		return from, to, sb.Invalid("from", "must be before to")
	case to.Sub(from) > MaxPeriod:
		return from, to, sb.Invalid("to", "must be at most 366 days after from")
	}
	return from, to, nil
}

func parseTime(field, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.UTC(), nil
	}
	return time.Time{}, sb.Invalid(field, "must be an RFC 3339 time or a date as YYYY-MM-DD")
}

// ParseGroupBy checks groupBy against the dimensions allowed (the first is
// the default when s is empty).
func ParseGroupBy(s string, allowed ...string) (string, error) {
	if s == "" {
		return allowed[0], nil
	}
	for _, a := range allowed {
		if s == a {
			return s, nil
		}
	}
	return "", sb.Invalid("groupBy", "must be one of %v", allowed)
}

// ParseFormat checks format: json (the default) or csv.
func ParseFormat(s string) (string, error) {
	switch s {
	case "", FormatJSON:
		return FormatJSON, nil
	case FormatCSV:
		return FormatCSV, nil
	}
	return "", sb.Invalid("format", "must be json or csv")
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }
