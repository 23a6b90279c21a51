// Package seed fills a store with realistic stream history in bulk: ended
// streams spread over a past period, on several providers, some of them
// migrated (with the failures that moved them), with their segments and
// trail, and optionally streams that are live now. It exists to prove that the
// control plane's hot paths do not slow down as history grows: switchboard
// seed and the benchmarks use it.
package seed

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// Store is what Run writes to: the store's bulk import of history.
type Store interface {
	ImportStreams(ctx context.Context, hs []sb.StreamHistory) error
}

// Options describe the history to write.
type Options struct {
	// Ended and Active are the numbers of ended and live streams.
	Ended, Active int
	// Providers are the providers streams go to, in priority order: the first
	// takes most streams, and a migration moves a stream to another one.
	Providers []string
	// Owners are the owners of the streams (e.g. "token:<id>"), taken in turn.
	Owners []string
	// Now is the end of the history (default: the time now); Span how far
	// back it goes (default 365 days).
	Now  time.Time
	Span time.Duration
	// Batch is the number of streams per transaction (default 10,000).
	Batch int
	// Seed makes the history reproducible (0: a random seed). Ids differ
	// from one seed to another, so that seeding a database again with
	// another seed adds to its history.
	Seed uint64
	// Progress, if set, is called after each batch with the streams written.
	Progress func(written int)
}

// Stats count what Run wrote.
type Stats struct {
	Ended, Active, Segments, Trail, Migrations int
}

// DefaultProviders are the providers of switchboard demo's fakes.
var DefaultProviders = []string{"agora-main", "zego-backup", "livekit-edge"}

// Run writes the history o describes to st, Batch streams per transaction,
// generating the next batch while the store writes the previous one.
func Run(ctx context.Context, st Store, o Options) (Stats, error) {
	if o.Ended < 0 || o.Active < 0 {
		return Stats{}, errors.New("seed: stream counts must not be negative")
	}
	if len(o.Providers) == 0 {
		o.Providers = DefaultProviders
	}
	if len(o.Owners) == 0 {
		o.Owners = []string{"seed"}
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.Span <= 0 {
		o.Span = 365 * 24 * time.Hour
	}
	if o.Batch <= 0 {
		o.Batch = 10000
	}
	for o.Seed == 0 {
		o.Seed = rand.Uint64()
	}
	g := &generator{o: o, rnd: rand.New(rand.NewPCG(o.Seed, 0x5eed))}
	g.rooms = max(o.Ended/8, 100)

	type batch struct {
		hs    []sb.StreamHistory
		stats Stats
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan batch, 1)
	go func() {
		defer close(batches)
		for done := 0; done < o.Ended+o.Active; {
			n := min(o.Batch, o.Ended+o.Active-done)
			b := batch{hs: make([]sb.StreamHistory, n)}
			for i := range n {
				if done+i < o.Ended {
					b.hs[i] = g.ended(&b.stats)
				} else {
					b.hs[i] = g.active(&b.stats)
				}
			}
			g.done += b.stats.Ended
			select {
			case batches <- b:
			case <-ctx.Done():
				return
			}
			done += n
		}
	}()
	var total Stats
	written := 0
	for b := range batches {
		if err := st.ImportStreams(ctx, b.hs); err != nil {
			return total, fmt.Errorf("seed: %w", err)
		}
		total.Ended += b.stats.Ended
		total.Active += b.stats.Active
		total.Segments += b.stats.Segments
		total.Trail += b.stats.Trail
		total.Migrations += b.stats.Migrations
		written += len(b.hs)
		if o.Progress != nil {
			o.Progress(written)
		}
	}
	return total, ctx.Err()
}

// generator makes streams; it is used by one goroutine.
type generator struct {
	o     Options
	rnd   *rand.Rand
	rooms int
	n     int // streams made, to take owners in turn
	done  int // ended streams of the batches before
}

func (g *generator) hex(n int) string {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := g.rnd.Uint64()
		for j := i; j < min(i+8, n); j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
	return hex.EncodeToString(b)
}

// seqHex is 12 hex digits that grow with each stream made. Ids and
// idempotency keys start with them (the rest is random), so that the bulk
// load appends to the indexes on them instead of writing all over them: about
// four times faster on SQLite, and a lookup by id costs the same either way.
func (g *generator) seqHex() string {
	return fmt.Sprintf("%012x", uint64(g.n))
}

// pick returns an index in [0, n), each one about a third as likely as the
// one before: 72 %, 22 % and 6 % for three.
func (g *generator) pick(n int) int {
	total, w := 0.0, 1.0
	for range n {
		total += w
		w *= 0.3
	}
	x, w := g.rnd.Float64()*total, 1.0
	for i := range n - 1 {
		if x < w {
			return i
		}
		x -= w
		w *= 0.3
	}
	return n - 1
}

var (
	qualities = []sb.Quality{sb.QualityHD, sb.QualityHD, sb.QualityHD, sb.QualityHD, sb.QualityHD, sb.QualityHD,
		sb.QualitySD, sb.QualitySD, sb.QualitySD, sb.QualityAudio, sb.QualityFullHD}
	regions = []string{"", "", "", "us-east", "eu-west", "ap-south"}
)

// base returns a new stream's fixed parts.
func (g *generator) base() sb.Stream {
	role := sb.RoleSubscriber
	if g.rnd.IntN(10) < 3 {
		role = sb.RolePublisher
	}
	g.n++
	return sb.Stream{
		ID: "st_" + g.seqHex() + g.hex(6), Room: fmt.Sprintf("room-%d", g.rnd.IntN(g.rooms)), UserID: fmt.Sprintf("user-%d", g.rnd.IntN(g.rooms*4)),
		Role: role, Region: regions[g.rnd.IntN(len(regions))], Quality: qualities[g.rnd.IntN(len(qualities))],
		Owner: g.o.Owners[g.n%len(g.o.Owners)], IdempotencyKey: g.seqHex() + g.hex(10),
	}
}

func (g *generator) statuses(bad string) map[string]sb.Status {
	m := make(map[string]sb.Status, len(g.o.Providers))
	for _, p := range g.o.Providers {
		m[p] = sb.StatusExcellent
		if p == bad {
			m[p] = sb.StatusCritical
		}
	}
	return m
}

func (g *generator) assign(st sb.Stream, p int) sb.TrailEntry {
	return sb.TrailEntry{At: st.StartedAt, Kind: sb.TrailAssign, Provider: g.o.Providers[p], Statuses: g.statuses(""),
		Reason: fmt.Sprintf("%s is the highest-priority usable provider (EXCELLENT, priority %d)", g.o.Providers[p], p+1)}
}

// ended makes a stream that started within the span and has ended, with 0, 1
// or 2 migrations.
func (g *generator) ended(stats *Stats) sb.StreamHistory {
	st := g.base()
	// Lengths are log-normal: a median of 20 minutes, from 10 s to 4 h.
	d := time.Duration(math.Exp(math.Log(20*60)+1.1*g.rnd.NormFloat64()) * float64(time.Second))
	d = min(max(d, 10*time.Second), 4*time.Hour)
	latest := g.o.Now.Add(-d - time.Minute)
	// Streams come in the order they started, evenly over the span with
	// some jitter, as they would have been written.
	step := float64(g.o.Span) / float64(max(g.o.Ended, 1))
	st.StartedAt = g.o.Now.Add(-g.o.Span + time.Duration(step*(float64(stats.Ended+g.done)+g.rnd.Float64())))
	if st.StartedAt.After(latest) {
		st.StartedAt = latest
	}
	st.StartedAt = st.StartedAt.UTC().Truncate(time.Millisecond)
	end := st.StartedAt.Add(d)
	st.Status, st.EndReason = sb.StreamEnded, sb.EndClient
	if g.rnd.IntN(20) == 0 {
		st.EndReason = sb.EndAbandoned
	}
	st.LastHeartbeat = end
	st.EndedAt = &end

	moves := 0
	if n := len(g.o.Providers); n > 1 {
		switch x := g.rnd.IntN(100); {
		case x < 2:
			moves = 2
		case x < 12:
			moves = 1
		}
	}
	p := g.pick(len(g.o.Providers))
	h := sb.StreamHistory{Trail: []sb.TrailEntry{g.assign(st, p)}}
	at := st.StartedAt
	for i := 0; i <= moves; i++ {
		seg := sb.StreamSegment{Seq: i, Provider: g.o.Providers[p], Quality: st.Quality, StartedAt: at}
		if i == moves {
			seg.EndedAt, seg.EndReason = &end, st.EndReason
			h.Segments = append(h.Segments, seg)
			break
		}
		// The move happens somewhere in what is left of the stream.
		next := at.Add(time.Duration(g.rnd.Int64N(int64(end.Sub(at))/2 + 1)))
		seg.EndedAt, seg.EndReason = &next, "migrated"
		h.Segments = append(h.Segments, seg)
		from := g.o.Providers[p]
		p = (p + 1 + g.rnd.IntN(len(g.o.Providers)-1)) % len(g.o.Providers)
		reason := "provider " + from + " is CRITICAL"
		if g.rnd.IntN(10) < 6 {
			h.Trail = append(h.Trail, sb.TrailEntry{At: next.Add(-150 * time.Millisecond), Kind: sb.TrailFailure, Provider: from,
				Stage: "media", Code: "connection_lost", Reason: "media connection lost"})
			reason = "media error on " + from
		}
		h.Trail = append(h.Trail, sb.TrailEntry{At: next, Kind: sb.TrailMigrate, Provider: g.o.Providers[p], From: from,
			Reason: reason, Statuses: g.statuses(from)})
		at = next
		stats.Migrations++
	}
	st.Provider = g.o.Providers[p]
	h.Trail = append(h.Trail, sb.TrailEntry{At: end, Kind: sb.TrailEnd, Provider: st.Provider, Reason: st.EndReason})
	h.Stream = st
	stats.Ended++
	stats.Segments += len(h.Segments)
	stats.Trail += len(h.Trail)
	return h
}

// active makes a stream that started within the last minute and is live.
func (g *generator) active(stats *Stats) sb.StreamHistory {
	st := g.base()
	st.StartedAt = g.o.Now.Add(-time.Duration(g.rnd.Int64N(int64(time.Minute)))).UTC()
	st.LastHeartbeat = g.o.Now.UTC()
	st.Status = sb.StreamActive
	p := g.pick(len(g.o.Providers))
	st.Provider = g.o.Providers[p]
	h := sb.StreamHistory{Stream: st,
		Segments: []sb.StreamSegment{{Seq: 0, Provider: st.Provider, Quality: st.Quality, StartedAt: st.StartedAt}},
		Trail:    []sb.TrailEntry{g.assign(st, p)}}
	stats.Active++
	stats.Segments++
	stats.Trail++
	return h
}
