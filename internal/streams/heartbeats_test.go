package streams

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// TestHeartbeatBatch checks heartbeats acknowledged from memory: the store
// has them after a flush, one that ended the stream here is refused at once,
// an unknown or foreign stream is not found, and stopping Run writes what is
// pending.
func TestHeartbeatBatch(t *testing.T) {
	st := openStore(t, filepath.Join(t.TempDir(), "sb.db"))
	s := newService(t, st)
	s.beats = newBeatBatch(st, time.Hour) // flushed by hand below
	ctx := context.Background()
	a := start(t, s, "r1")
	before, err := st.GetStream(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	ans, err := s.Heartbeat(ctx, a.ID, "o", false, HeartbeatRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !ans.Stream.LastHeartbeat.After(before.LastHeartbeat) && !ans.Stream.LastHeartbeat.Equal(before.LastHeartbeat) {
		t.Fatalf("answered last heartbeat %v, stored %v", ans.Stream.LastHeartbeat, before.LastHeartbeat)
	}
	// Acknowledged, not yet written: the store still has the start's time.
	at := before.LastHeartbeat.Add(time.Minute)
	s.clock = fixedClock(at)
	if _, err := s.Heartbeat(ctx, a.ID, "o", false, HeartbeatRequest{}); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.GetStream(ctx, a.ID); !got.LastHeartbeat.Equal(before.LastHeartbeat) {
		t.Fatalf("written before the flush: %v", got.LastHeartbeat)
	}
	if n, err := s.beats.flush(ctx, time.Now()); err != nil || n != 1 {
		t.Fatalf("flush: %d %v, want 1 stream", n, err)
	}
	if got, _ := st.GetStream(ctx, a.ID); !got.LastHeartbeat.Equal(at) {
		t.Fatalf("after the flush: %v, want %v", got.LastHeartbeat, at)
	}

	// Someone else's stream and an unknown one are not found; an ended one
	// is a conflict at once, though it was in memory.
	if _, err := s.Heartbeat(ctx, a.ID, "intruder", false, HeartbeatRequest{}); !sb.IsCode(err, sb.ENotFound) {
		t.Fatalf("foreign stream: %v, want not found", err)
	}
	if _, err := s.Heartbeat(ctx, "str_"+"0000000000000000", "o", false, HeartbeatRequest{}); !sb.IsCode(err, sb.ENotFound) {
		t.Fatalf("unknown stream: %v, want not found", err)
	}
	if _, err := s.End(ctx, a.ID, "o", false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Heartbeat(ctx, a.ID, "o", false, HeartbeatRequest{}); !sb.IsCode(err, sb.EConflict) {
		t.Fatalf("ended stream: %v, want conflict", err)
	}

	// Run writes what is pending when it stops.
	b := start(t, s, "r2")
	later := at.Add(time.Minute)
	s.clock = fixedClock(later)
	if _, err := s.Heartbeat(ctx, b.ID, "o", false, HeartbeatRequest{}); err != nil {
		t.Fatal(err)
	}
	runAndStop(t, s)
	if got, _ := st.GetStream(ctx, b.ID); !got.LastHeartbeat.Equal(later) {
		t.Fatalf("after Run stopped: %v, want %v", got.LastHeartbeat, later)
	}
}

// runAndStop starts s.Run and stops it at once, so that what Run writes as
// it stops is written.
func runAndStop(t *testing.T, s *Service) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// fixedClock is a clock that always says t.
type fixedClock time.Time

func (c fixedClock) Now() time.Time { return time.Time(c) }

// TestAnyOther checks when a heartbeat skips looking for a standby: only
// when every provider is the stream's own or excluded.
func TestAnyOther(t *testing.T) {
	reg := &registry{recs: []sb.ProviderRecord{{Provider: sb.Provider{Name: "a"}}, {Provider: sb.Provider{Name: "b"}}}}
	for _, c := range []struct {
		current string
		exclude []string
		want    bool
	}{
		{"a", nil, true},
		{"a", []string{"b"}, false},
		{"a", []string{"c"}, true},
		{"c", []string{"a"}, true},
		{"c", []string{"a", "b"}, false},
		{"", nil, true},
	} {
		if got := anyOther(reg, c.current, c.exclude); got != c.want {
			t.Errorf("anyOther(%q, %q) = %v, want %v", c.current, c.exclude, got, c.want)
		}
	}
	if anyOther(&registry{}, "a", nil) {
		t.Error("anyOther on an empty registry")
	}
}
