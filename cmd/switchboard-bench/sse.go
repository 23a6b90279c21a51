package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// sseSide is what one side's event subscribers measured.
type sseSide struct {
	Subscribers          int     `json:"subscribers"`
	MemoryPerSubscriberK float64 `json:"memoryPerSubscriberKiB"` // the largest of the rounds
	DeliveryP50Ms        float64 `json:"deliveryP50Ms"`
	DeliveryP99Ms        float64 `json:"deliveryP99Ms"`
	Missed               int     `json:"missed"` // deliveries not seen within 10 s
}

// sseReport compares one event to every subscriber on both sides.
type sseReport struct {
	Switchboard sseSide `json:"switchboard"`
	Baseline    sseSide `json:"baseline"`
	MemoryRatio float64 `json:"memoryRatio"`
	P99Ratio    float64 `json:"deliveryP99Ratio"`
	Target      string  `json:"target"`
	Met         bool    `json:"met"`
}

// subscribers is a set of open event streams, each read by a goroutine of
// its own that records when it sees each marker.
type subscribers struct {
	conns []net.Conn
	mu    sync.Mutex
	seen  map[string][]time.Time // marker -> arrival per subscriber (zero: not yet)
	wg    sync.WaitGroup
}

// openSubscribers opens n event streams on base with token (none for the
// baseline) and returns once every one has its response headers.
func openSubscribers(ctx context.Context, base, token string, n int) (*subscribers, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	req := "GET /api/events HTTP/1.1\r\nHost: " + u.Host + "\r\nAccept: text/event-stream\r\n"
	if token != "" {
		req += "Authorization: Bearer " + token + "\r\n"
	}
	req += "\r\n"
	s := &subscribers{seen: map[string][]time.Time{}}
	// Closing with SO_LINGER 0 leaves no TIME_WAIT behind, so that rounds of
	// 10,000 connections do not use up the ephemeral ports.
	d := net.Dialer{Timeout: 10 * time.Second}
	ready := make(chan error, n)
	sem := make(chan struct{}, 64) // connections being opened at once
	for i := range n {
		sem <- struct{}{}
		c, err := d.DialContext(ctx, "tcp", u.Host)
		if err != nil {
			<-sem
			s.close()
			return nil, fmt.Errorf("subscriber %d: %w", i, err)
		}
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		s.conns = append(s.conns, c)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.read(i, c, req, ready, sem)
		}()
	}
	timeout := time.After(120 * time.Second)
	for i := range n {
		select {
		case err := <-ready:
			if err != nil {
				s.close()
				return nil, fmt.Errorf("subscriber: %w", err)
			}
		case <-timeout:
			s.close()
			return nil, fmt.Errorf("only %d of %d subscribers got their headers in 120s", i, n)
		}
	}
	return s, nil
}

// read sends the request on c, reports the response's headers on ready, then
// records the arrival of every marker until c is closed.
func (s *subscribers) read(i int, c net.Conn, req string, ready chan<- error, sem <-chan struct{}) {
	released := false
	release := func(err error) {
		if !released {
			released = true
			<-sem
			ready <- err
		}
	}
	defer release(fmt.Errorf("connection closed before the headers"))
	if _, err := c.Write([]byte(req)); err != nil {
		release(err)
		return
	}
	r := bufio.NewReaderSize(c, 512)
	status, err := r.ReadSlice('\n')
	if err != nil {
		release(err)
		return
	}
	if !bytes.Contains(status, []byte(" 200 ")) {
		release(fmt.Errorf("status %q", bytes.TrimSpace(status)))
		return
	}
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			release(err)
			return
		}
		if len(bytes.TrimSpace(line)) == 0 {
			break
		}
	}
	release(nil)
	for {
		line, err := r.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
		at := time.Now()
		j := bytes.Index(line, []byte("sse-mark-"))
		if j < 0 {
			continue
		}
		end := j + len("sse-mark-")
		for end < len(line) && line[end] >= '0' && line[end] <= '9' {
			end++
		}
		s.mu.Lock()
		if got, ok := s.seen[string(line[j:end])]; ok && got[i].IsZero() {
			got[i] = at
		}
		s.mu.Unlock()
	}
}

// expect prepares the recording of mark, before it is sent.
func (s *subscribers) expect(mark string) {
	s.mu.Lock()
	s.seen[mark] = make([]time.Time, len(s.conns))
	s.mu.Unlock()
}

// wait returns the delivery latencies of mark from t0, waiting up to 10 s
// for every subscriber, and how many did not see it.
func (s *subscribers) wait(mark string, t0 time.Time) ([]time.Duration, int) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		got := s.seen[mark]
		missing := 0
		for _, at := range got {
			if at.IsZero() {
				missing++
			}
		}
		if missing == 0 || time.Now().After(deadline) {
			var lat []time.Duration
			for _, at := range got {
				if !at.IsZero() {
					lat = append(lat, at.Sub(t0))
				}
			}
			s.mu.Unlock()
			return lat, missing
		}
		s.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *subscribers) close() {
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.wg.Wait()
}

// sse measures both sides' memory per idle subscriber and the delivery of
// one event to all of them, round after round in turns; each round opens
// the subscribers afresh.
func (b *bench) sse(ctx context.Context) (sseReport, error) {
	var r sseReport
	type side struct {
		name    string
		srv     *server
		token   string
		trigger func(mark string) error
		out     *sseSide
		lat     []time.Duration
	}
	sides := []*side{
		{name: "switchboard", srv: b.sb, token: b.sbEnv.admin, out: &r.Switchboard, trigger: func(mark string) error {
			// A stream start publishes stream.started, whose data holds the room.
			_, err := b.body(ctx, "POST", b.sb.url+"/api/streams", b.sbEnv.client, fmt.Sprintf(`{"room":%q,"userId":"u","role":"publisher"}`, mark), 201)
			return err
		}},
		{name: "baseline", srv: b.base, out: &r.Baseline, trigger: func(mark string) error {
			_, err := b.body(ctx, "POST", b.base.url+"/bench/publish", "", fmt.Sprintf(`{"room":%q}`, mark), 204)
			return err
		}},
	}
	// Switchboard counts an SSE subscriber until its handler has seen the
	// connection close; the next round's subscribers, under the same token
	// and its limit, wait until the last round's are gone (one run was
	// refused a subscriber with 429 when they did not).
	idle, err := b.eventSubscribers(ctx)
	if err != nil {
		return r, err
	}
	seq := 0
	for round := range b.o.rounds {
		for _, sd := range sides {
			if sd.srv == b.sb {
				if err := b.waitSubscribers(ctx, idle); err != nil {
					return r, err
				}
			}
			runtime.GC()
			before := rssOf([]int{sd.srv.pid()})
			subs, err := openSubscribers(ctx, sd.srv.url, sd.token, b.o.subs)
			if err != nil {
				return r, fmt.Errorf("%s: %w", sd.name, err)
			}
			time.Sleep(time.Second) // let the server settle
			after := rssOf([]int{sd.srv.pid()})
			perSub := float64(after-before) / 1024 / float64(b.o.subs)
			sd.out.Subscribers = b.o.subs
			sd.out.MemoryPerSubscriberK = max(sd.out.MemoryPerSubscriberK, round1(perSub))
			missedBefore := sd.out.Missed
			for range b.o.events {
				seq++
				mark := "sse-mark-" + strconv.Itoa(seq)
				subs.expect(mark)
				t0 := time.Now()
				if err := sd.trigger(mark); err != nil {
					subs.close()
					return r, fmt.Errorf("%s: publish: %w", sd.name, err)
				}
				lat, missed := subs.wait(mark, t0)
				sd.lat = append(sd.lat, lat...)
				sd.out.Missed += missed
			}
			subs.close()
			b.logf("sse round %d, %s: %.1f KiB per subscriber, %d deliveries missed", round+1, sd.name, perSub, sd.out.Missed-missedBefore)
		}
	}
	for _, sd := range sides {
		slices.Sort(sd.lat)
		sd.out.DeliveryP50Ms, sd.out.DeliveryP99Ms = pctMs(sd.lat, 50), pctMs(sd.lat, 99)
	}
	r.MemoryRatio = ratio(r.Switchboard.MemoryPerSubscriberK, r.Baseline.MemoryPerSubscriberK)
	r.P99Ratio = ratio(r.Switchboard.DeliveryP99Ms, r.Baseline.DeliveryP99Ms)
	r.Target = "switchboard memoryPerSubscriberKiB <= 16 and deliveryP99Ratio <= 1.2"
	r.Met = r.Switchboard.MemoryPerSubscriberK <= 16 && r.P99Ratio <= 1.2 && r.Switchboard.Missed == 0
	return r, nil
}

// eventSubscribers reads switchboard_events_subscribers from Switchboard's
// metrics.
func (b *bench) eventSubscribers(ctx context.Context) (int, error) {
	body, err := b.body(ctx, "GET", b.sb.url+"/metrics", "", "", 200)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(body)) {
		if v, ok := strings.CutPrefix(line, "switchboard_events_subscribers "); ok {
			n, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int(n), err
		}
	}
	return 0, fmt.Errorf("no switchboard_events_subscribers in the metrics")
}

// waitSubscribers waits, at most 60 s, until Switchboard has at most n event
// subscribers.
func (b *bench) waitSubscribers(ctx context.Context, n int) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := b.eventSubscribers(ctx)
		if err != nil {
			return err
		}
		if got <= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("switchboard still has %d event subscribers 60 s after a round closed them (%d before the first)", got, n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
