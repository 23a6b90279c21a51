package streams

import (
	"context"
	"sync"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// HeartbeatRecorder is what a Store implements to take heartbeats in
// batches (*sqlstore.Store does): each stream of beats is alive at its time.
type HeartbeatRecorder interface {
	RecordHeartbeats(ctx context.Context, beats map[string]time.Time) error
}

// beatStreamTTL is how long a stream read for a heartbeat answers the next
// ones from memory. The service's own moves and ends drop it at once; the
// age bounds what other replicas and the abandoned-stream sweep did.
const beatStreamTTL = 2 * time.Second

// beatBatch acknowledges heartbeats from memory and writes them every
// interval, in one transaction: a crash loses at most the last interval's
// heartbeats (the last-seen times move back by that much), never a stream.
type beatBatch struct {
	rec   HeartbeatRecorder
	every time.Duration

	mu      sync.Mutex
	gen     uint64                // guarded by mu; moved by every forget
	streams map[string]beatStream // guarded by mu; by stream id
	pending map[string]time.Time  // guarded by mu; the heartbeats to write
}

// beatStream is a stream as read from the store for a heartbeat.
type beatStream struct {
	st   sb.Stream
	read time.Time // on the monotonic clock
}

func newBeatBatch(rec HeartbeatRecorder, every time.Duration) *beatBatch {
	return &beatBatch{rec: rec, every: every, streams: map[string]beatStream{}, pending: map[string]time.Time{}}
}

// stream returns the stream id if it was read less than beatStreamTTL ago;
// otherwise the generation to give keep once it is read from the store.
func (b *beatBatch) stream(id string, now time.Time) (sb.Stream, uint64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.streams[id]
	if !ok || now.Sub(e.read) >= beatStreamTTL {
		return sb.Stream{}, b.gen, false
	}
	return e.st, b.gen, true
}

// keep remembers st, read at read, unless a stream was forgotten since gen
// was noted before the read: the read may predate that move or end.
func (b *beatBatch) keep(st sb.Stream, read time.Time, gen uint64) {
	b.mu.Lock()
	if b.gen == gen {
		b.streams[st.ID] = beatStream{st: st, read: read}
	}
	b.mu.Unlock()
}

// forget drops the stream id, moved or ended: its next heartbeat reads it.
func (b *beatBatch) forget(id string) {
	b.mu.Lock()
	b.gen++
	delete(b.streams, id)
	b.mu.Unlock()
}

// beat records a heartbeat of id at at, to be written by the next flush.
func (b *beatBatch) beat(id string, at time.Time) {
	b.mu.Lock()
	if at.After(b.pending[id]) {
		b.pending[id] = at
	}
	b.mu.Unlock()
}

// flush writes the pending heartbeats. On failure it keeps them for the next
// flush (newer ones win) and returns the error.
func (b *beatBatch) flush(ctx context.Context, now time.Time) (int, error) {
	b.mu.Lock()
	batch := b.pending
	b.pending = map[string]time.Time{}
	for id, e := range b.streams { // the streams no heartbeat asked for lately
		if now.Sub(e.read) >= beatStreamTTL {
			delete(b.streams, id)
		}
	}
	b.mu.Unlock()
	if len(batch) == 0 {
		return 0, nil
	}
	if err := b.rec.RecordHeartbeats(ctx, batch); err != nil {
		b.mu.Lock()
		for id, at := range batch {
			if at.After(b.pending[id]) {
				b.pending[id] = at
			}
		}
		b.mu.Unlock()
		return 0, err
	}
	return len(batch), nil
}

// flushEvery runs flush every interval until ctx ends, then once more, with
// a deadline of its own, so that a shutdown loses nothing of what it holds.
// A failed flush keeps what it held for the next; what is logged names it as
// what.
func (s *Service) flushEvery(ctx context.Context, every time.Duration, what string, flush func(context.Context) error) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := flush(fctx); err != nil {
				s.log.Error("write "+what+" at shutdown", "err", err.Error())
			}
			cancel()
			return
		case <-t.C:
			if err := flush(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("write "+what+": kept for the next attempt", "err", err.Error())
			}
		}
	}
}

// beatStream returns the active stream id of owner for a heartbeat, from
// memory when it was read lately, else from the store.
func (s *Service) beatStream(ctx context.Context, id, owner string, admin bool) (sb.Stream, error) {
	now := time.Now()
	st, gen, ok := s.beats.stream(id, now)
	if !ok {
		var err error
		if st, err = s.store.GetStream(ctx, id); err != nil {
			return sb.Stream{}, err
		}
		s.beats.keep(st, now, gen)
	}
	if !admin && st.Owner != owner {
		// Not "forbidden": do not reveal that someone else's stream exists.
		return sb.Stream{}, sb.Errorf(sb.ENotFound, "no stream %s", id)
	}
	if st.Status != sb.StreamActive {
		return sb.Stream{}, sb.Errorf(sb.EConflict, "stream %s has ended", id)
	}
	return st, nil
}
