package main

import (
	"context"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/internal/testutil"
)

// cancelOn is the demo's output; it cancels the demo when a line contains want.
type cancelOn struct {
	testutil.Buffer
	want   string
	cancel context.CancelFunc
	once   sync.Once
}

func (c *cancelOn) Write(p []byte) (int, error) {
	if strings.Contains(string(p), c.want) {
		c.once.Do(c.cancel)
	}
	return c.Buffer.Write(p)
}

// Stopped while it is still starting its streams, the demo ends the streams
// already live and returns.
func TestDemoStopsWhileStartingStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole demo")
	}
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &cancelOn{want: "demo-room-1  live on", cancel: cancel}
	var errOut testutil.Buffer
	done := make(chan error, 1)
	go func() {
		done <- runDemo(ctx, demoOptions{addr: "127.0.0.1:0", streams: 200, chaosEvery: time.Hour, logLevel: "warn"}, out, &errOut, nil)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("demo returned %v after cancel", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("demo did not stop\n%s", out.String())
	}
	if !strings.Contains(out.String(), "demo-room-1  live on") {
		t.Errorf("the demo stopped before a stream was live:\n%s", out.String())
	}
	testutil.CheckGoroutines(t, before)
}
