package jobs

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// segment is stream time of one provider at one tier.
type segment struct {
	provider   string
	quality    sb.Quality
	start, end time.Time
}

type compaction struct{ day, keepRawBefore time.Time }

type period struct{ from, to time.Time }

// fakeStore is an in-memory Store with the contract of the SQL store, enough
// for the jobs: Usage clips segments to the period, AbandonStale ends streams
// at their last heartbeat, SaveMonthlyUsage upserts, MarkJobRan records once.
type fakeStore struct {
	mu          sync.Mutex
	providers   []sb.ProviderRecord
	segments    []segment
	streams     []sb.Stream
	compactions []compaction
	usageCalls  []period
	cutoffs     []time.Time
	monthly     map[string]sb.MonthlyUsage // provider + " " + month
	saves       int
	jobs        map[string]time.Time // job + " " + period
	fail        map[string]error     // method -> error of its next call
	sweeps      chan struct{}        // gets a value per AbandonStale, when not full
}

func newStore(providers ...sb.ProviderRecord) *fakeStore {
	return &fakeStore{
		providers: providers,
		monthly:   map[string]sb.MonthlyUsage{},
		jobs:      map[string]time.Time{},
		fail:      map[string]error{},
	}
}

var errInjected = errors.New("injected failure")

// failNext makes the next call of method fail.
func (s *fakeStore) failNext(method string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[method] = errInjected
}

// failed reports and consumes an injected failure; s.mu must be held.
func (s *fakeStore) failed(method string) error {
	err := s.fail[method]
	delete(s.fail, method)
	return err
}

func (s *fakeStore) addSegment(seg segment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.segments = append(s.segments, seg)
}

func (s *fakeStore) ListProviders(ctx context.Context) ([]sb.ProviderRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failed("ListProviders"); err != nil {
		return nil, err
	}
	return slices.Clone(s.providers), nil
}

func (s *fakeStore) CompactHistory(ctx context.Context, day, keepRawBefore time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failed("CompactHistory"); err != nil {
		return err
	}
	s.compactions = append(s.compactions, compaction{day, keepRawBefore})
	return nil
}

func (s *fakeStore) AbandonStale(ctx context.Context, cutoff time.Time) ([]sb.Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sweeps != nil {
		select {
		case s.sweeps <- struct{}{}:
		default:
		}
	}
	if err := s.failed("AbandonStale"); err != nil {
		return nil, err
	}
	s.cutoffs = append(s.cutoffs, cutoff)
	var ended []sb.Stream
	for i, st := range s.streams {
		if st.Status == sb.StreamActive && st.LastHeartbeat.Before(cutoff) {
			at := st.LastHeartbeat
			st.Status, st.EndedAt, st.EndReason = sb.StreamEnded, &at, sb.EndAbandoned
			s.streams[i] = st
			ended = append(ended, st)
		}
	}
	return ended, nil
}

func (s *fakeStore) Usage(ctx context.Context, from, to time.Time) ([]sb.ProviderUsage, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failed("Usage"); err != nil {
		return nil, err
	}
	s.usageCalls = append(s.usageCalls, period{from, to})
	byName := map[string]*sb.ProviderUsage{}
	var out []sb.ProviderUsage
	for _, seg := range s.segments {
		start, end := later(seg.start, from), earlier(seg.end, to)
		if !end.After(start) {
			continue
		}
		u := byName[seg.provider]
		if u == nil {
			u = &sb.ProviderUsage{Provider: seg.provider, Seconds: map[sb.Quality]float64{}}
			byName[seg.provider] = u
		}
		u.Seconds[seg.quality] += end.Sub(start).Seconds()
	}
	for _, u := range byName {
		out = append(out, *u)
	}
	return out, nil
}

func (s *fakeStore) SaveMonthlyUsage(ctx context.Context, us []sb.MonthlyUsage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failed("SaveMonthlyUsage"); err != nil {
		return err
	}
	s.saves++
	for _, u := range us {
		s.monthly[u.Provider+" "+u.Month] = u
	}
	return nil
}

func (s *fakeStore) MarkJobRan(ctx context.Context, job, period string, at time.Time) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failed("MarkJobRan"); err != nil {
		return false, err
	}
	k := job + " " + period
	if _, ok := s.jobs[k]; ok {
		return false, nil
	}
	s.jobs[k] = at
	return true, nil
}

func (s *fakeStore) JobRan(ctx context.Context, job, period string) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failed("JobRan"); err != nil {
		return false, err
	}
	_, ok := s.jobs[job+" "+period]
	return ok, nil
}

func (s *fakeStore) ran(job, period string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.jobs[job+" "+period]
	return ok
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func earlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
