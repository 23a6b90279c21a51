package client

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// QualitySample is what a connection measured of its media over the last
// sampling period (10 s by default).
type QualitySample struct {
	RTTMs       float64 // round-trip time to the provider
	PacketLoss  float64 // fraction of packets lost, 0–1
	JitterMs    float64
	BitrateKbps float64
	FPS         float64 // video frames per second; 0 for audio only
	FreezeCount int64   // video freezes in the period
	FreezeMs    int64   // time frozen in the period
}

// QualityReporter is implemented by connections that can measure their
// media. The SDK calls Quality once per sampling period from the stream's own
// goroutine, never from the media path; it must return quickly, without I/O,
// and report false when it has nothing to say (for example before media
// flows). The SDK sends the samples to the control plane in batches, which
// aggregates them per provider and region.
type QualityReporter interface {
	Quality() (QualitySample, bool)
}

// WithQualityInterval sets how often a stream samples the quality of its
// connection (default 10 s); the samples go to the server every third
// sample, when the stream moves to another provider and when it ends. A
// negative interval switches quality telemetry off.
func WithQualityInterval(d time.Duration) Option { return func(c *Client) { c.qualityEvery = d } }

// Quality telemetry limits.
const (
	defaultQualityEvery = 10 * time.Second
	qualityBatch        = 3  // samples per request in the steady state
	qualityKeep         = 60 // samples kept while the server cannot be reached (the most a request takes)
)

// wireQuality is the body of POST /api/streams/{id}/quality.
type wireQuality struct {
	Provider string              `json:"provider"`
	Samples  []wireQualitySample `json:"samples"`
}

type wireQualitySample struct {
	At          time.Time `json:"at"`
	RTTMs       float64   `json:"rttMs"`
	PacketLoss  float64   `json:"packetLoss"`
	JitterMs    float64   `json:"jitterMs"`
	BitrateKbps float64   `json:"bitrateKbps"`
	FPS         float64   `json:"fps"`
	FreezeCount int64     `json:"freezeCount"`
	FreezeMs    int64     `json:"freezeMs"`
}

// qualityBuffer holds the samples not sent yet, oldest first, each with the
// provider it was measured on.
type qualityBuffer struct {
	mu      sync.Mutex
	pending []pendingSample
	sending sync.Mutex // one send at a time, in order
}

type pendingSample struct {
	provider string
	s        wireQualitySample
}

// add keeps a sample, dropping the oldest past qualityKeep, and reports
// whether a batch is due: qualityBatch samples, or a sample on another
// provider than the one before.
func (b *qualityBuffer) add(p pendingSample) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	moved := len(b.pending) > 0 && b.pending[len(b.pending)-1].provider != p.provider
	b.pending = append(b.pending, p)
	if n := len(b.pending) - qualityKeep; n > 0 {
		b.pending = append(b.pending[:0], b.pending[n:]...)
	}
	return moved || len(b.pending) >= qualityBatch
}

// take removes and returns the samples.
func (b *qualityBuffer) take() []pendingSample {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := b.pending
	b.pending = nil
	return out
}

// putBack returns samples that could not be sent in front of the newer ones.
func (b *qualityBuffer) putBack(ps []pendingSample) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pending = append(ps, b.pending...)
	if n := len(b.pending) - qualityKeep; n > 0 {
		b.pending = b.pending[n:]
	}
}

func (c *Client) qualityInterval() time.Duration {
	if c.qualityEvery == 0 {
		return defaultQualityEvery
	}
	return c.qualityEvery
}

// qualityLoop samples the connection's quality every period and sends the
// samples in batches until the stream ends. It runs on its own goroutine:
// neither a slow engine nor a slow server holds up the media or the failover.
func (s *Stream) qualityLoop() {
	defer s.wg.Done()
	every := s.c.qualityInterval()
	if every < 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if s.sampleQuality(time.Now()) {
			s.sendQuality(s.ctx)
		}
	}
}

// sampleQuality asks the current connection for a sample and reports whether
// a batch is due.
func (s *Stream) sampleQuality(at time.Time) bool {
	s.mu.Lock()
	var (
		conn     Connection
		provider string
	)
	if s.cur != nil {
		conn, provider = s.cur.conn, s.cur.provider
	}
	s.mu.Unlock()
	qr, ok := conn.(QualityReporter)
	if !ok {
		return false
	}
	q, ok := qr.Quality()
	if !ok {
		return false
	}
	return s.quality.add(pendingSample{provider: provider, s: wireQualitySample{
		At: at.UTC(), RTTMs: q.RTTMs, PacketLoss: q.PacketLoss, JitterMs: q.JitterMs, BitrateKbps: q.BitrateKbps,
		FPS: q.FPS, FreezeCount: q.FreezeCount, FreezeMs: q.FreezeMs,
	}})
}

// moveUnreported reports whether a move of the stream to provider is
// waiting to be reported to the server (or is being reported).
func (s *Stream) moveUnreported(provider string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.unreported {
		if r.to == provider {
			return true
		}
	}
	return false
}

// finalFlush bounds the sending of the last samples when a stream ends, so
// that an unreachable control plane delays the end by little.
const finalFlush = 2 * time.Second

// flushQuality sends the samples left when the stream ends.
func (s *Stream) flushQuality(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, min(finalFlush, s.c.requestTimeout))
	defer cancel()
	s.sendQuality(ctx)
}

// sendQuality sends the pending samples, one request per run of samples on
// one provider. Samples the server could not take for now (unreachable,
// rate limited, overloaded), and those measured on a provider the stream
// moved to without it while the move is not reported yet, are kept for the
// next batch; samples it refused are dropped, since sending them again would
// not help.
func (s *Stream) sendQuality(ctx context.Context) {
	s.quality.sending.Lock()
	defer s.quality.sending.Unlock()
	ps := s.quality.take()
	for len(ps) > 0 {
		if s.moveUnreported(ps[0].provider) {
			// The server does not know the stream is on this provider yet
			// (a move to the standby, made without it, not reported yet):
			// it would refuse the samples. They wait for the report.
			s.quality.putBack(ps)
			return
		}
		n := 1
		for n < len(ps) && ps[n].provider == ps[0].provider {
			n++
		}
		body := wireQuality{Provider: ps[0].provider, Samples: make([]wireQualitySample, n)}
		for i := range n {
			body.Samples[i] = ps[i].s
		}
		err := s.c.call(ctx, http.MethodPost, streamPath(s.id, "quality"), body, nil)
		if err != nil {
			if retryable(err) && ctx.Err() == nil {
				s.quality.putBack(ps)
				return
			}
			if ctx.Err() == nil {
				s.c.log.Warn("quality samples refused", "stream_id", s.id, "provider", ps[0].provider, "err", err.Error())
			}
		}
		ps = ps[n:]
	}
}
