package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/client"
	"github.com/switchboardhq/switchboard/client/admin"
	"github.com/switchboardhq/switchboard/client/clienttest"
	"github.com/switchboardhq/switchboard/internal/auth"
	"github.com/switchboardhq/switchboard/internal/config"
	"github.com/switchboardhq/switchboard/internal/providers/fakes"
	"github.com/switchboardhq/switchboard/internal/providers/fault"
)

const demoUsage = `Usage: switchboard demo [flags]

Starts the whole system on this machine: the control plane on an embedded
SQLite database, three loopback fake providers (Agora-, ZEGOCLOUD- and
LiveKit-like) registered with 5 s health checks, and a few simulated streams
run through the client SDK. It prints the dashboard URL and the admin login,
and the streams' states as they change. With --chaos, providers fail and
recover on a schedule so that failover can be watched. Ctrl-C stops it.
`

// demoOptions are the flags of the demo.
type demoOptions struct {
	addr       string
	dir        string
	streams    int
	chaos      bool
	chaosEvery time.Duration
	logLevel   string
}

func demo(ctx context.Context, args []string, _ func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("demo", demoUsage, stderr)
	var o demoOptions
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&o.dir, "dir", "", "directory of the demo database (default: a temporary one, removed at exit)")
	fs.IntVar(&o.streams, "streams", 6, "simulated streams")
	fs.BoolVar(&o.chaos, "chaos", false, "fail and restore providers on a schedule")
	fs.DurationVar(&o.chaosEvery, "chaos-every", 20*time.Second, "time between two chaos steps")
	fs.StringVar(&o.logLevel, "log-level", "warn", "server log level: debug, info, warn, error")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if o.streams < 0 || o.streams > 1000 {
		return usageError{msg: "--streams must be from 0 to 1000"}
	}
	if o.chaosEvery < time.Second {
		return usageError{msg: "--chaos-every must be at least 1s"}
	}
	return runDemo(ctx, o, stdout, stderr, nil)
}

// runDemo runs the demo until ctx ends. ready, when not nil, receives the
// server URL and the SDK's client token once everything is up (for tests).
func runDemo(ctx context.Context, o demoOptions, stdout, stderr io.Writer, ready func(url, token string)) error {
	if o.dir == "" {
		dir, err := os.MkdirTemp("", "switchboard-demo-")
		if err != nil {
			return fmt.Errorf("demo directory: %w", err)
		}
		defer os.RemoveAll(dir)
		o.dir = dir
	} else if err := os.MkdirAll(o.dir, 0o700); err != nil {
		return fmt.Errorf("demo directory: %w", err)
	}
	world, err := fakes.Start()
	if err != nil {
		return err
	}
	defer world.Close()

	password, bootstrap := auth.RandomPassword(), auth.NewToken()
	env := map[string]string{"SWITCHBOARD_ADMIN_PASSWORD": password, "SWITCHBOARD_BOOTSTRAP_TOKEN": bootstrap}
	cfg, err := config.Load([]string{"--addr", o.addr, "--db", "sqlite:" + filepath.Join(o.dir, "demo.db"), "--log-level", o.logLevel},
		func(k string) string { return env[k] }, stderr)
	if err != nil {
		return usageError{msg: err.Error()}
	}
	return runServer(ctx, cfg, newLogger(stderr, cfg.LogFormat, cfg.LogLevel), io.Discard,
		func(ctx context.Context, url string) error {
			return demoWorld(ctx, o, url, bootstrap, password, world, stdout, ready)
		})
}

// demoWorld runs the demo's world beside the server at url until ctx ends:
// it registers the fake providers, prints the banner, starts the simulated
// streams and, with --chaos, fails the providers in turn.
func demoWorld(ctx context.Context, o demoOptions, url, bootstrap, password string, world *fakes.Fakes, stdout io.Writer, ready func(url, token string)) error {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	defer tr.CloseIdleConnections()
	ac, err := admin.New(url, bootstrap, &http.Client{Transport: tr, Timeout: 10 * time.Second})
	if err != nil {
		return err
	}
	if err := registerProviders(ctx, ac, world); err != nil {
		return err
	}
	tok, err := ac.CreateToken(ctx, "demo-sdk", "client")
	if err != nil {
		return fmt.Errorf("create the SDK's token: %w", err)
	}
	out := &syncWriter{w: stdout}
	printDemoBanner(out, o, url, password, tok.Secret)
	eng := clienttest.New(50 * time.Millisecond)
	streams, err := startDemoStreams(ctx, o.streams, url, tok.Secret, eng, out)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while the streams were starting
		}
		return err
	}
	if ready != nil {
		ready(url, tok.Secret)
	}
	if o.chaos {
		runDemoChaos(ctx, o.chaosEvery, world, eng, out)
	} else {
		<-ctx.Done()
	}
	return streams.close()
}

// registerProviders registers the fake providers of world, checked every 5 s.
// The server checks each one as it is registered; a provider that is not
// usable after that (its fake did not answer) is an error, as the demo's
// streams would have nowhere verified to go.
func registerProviders(ctx context.Context, ac *admin.Client, world *fakes.Fakes) error {
	for _, p := range world.Providers(5*time.Second, false) {
		got, err := registerProvider(ctx, ac, p)
		if err != nil {
			return fmt.Errorf("register %s: %w", p.Name, err)
		}
		if !got.Usable {
			return fmt.Errorf("register %s: not usable after its first check (%s)", p.Name, got.Status)
		}
	}
	return nil
}

// printDemoBanner prints what the demo runs and how to reach it.
func printDemoBanner(out *syncWriter, o demoOptions, url, password, token string) {
	out.printf("Switchboard demo\n")
	out.printf("  dashboard    %s/\n", url)
	out.printf("  admin login  admin / %s\n", password)
	// A throwaway token of a throwaway server, shown so that the simulate
	// command can be pointed at the demo.
	out.printf("  client token %s  (switchboard simulate --server %s --token ...)\n", token, url)
	out.printf("  providers    %s (priority 1), %s (2), %s (3): loopback fakes, checked every 5s\n",
		fakes.Agora, fakes.Zegocloud, fakes.LiveKit)
	out.printf("  streams      %d simulated, through the client SDK\n", o.streams)
	if o.chaos {
		out.printf("  chaos        a provider fails every %s and recovers %s later\n", o.chaosEvery, o.chaosEvery/2)
	}
	out.printf("Ctrl-C stops the demo.\n\n")
}

// demoStreams are the demo's simulated streams: one SDK client, and a
// goroutine a stream that prints its states.
type demoStreams struct {
	sdk      *client.Client
	tr       *http.Transport
	watchers sync.WaitGroup
}

// startDemoStreams starts n streams through the SDK on the simulated engine
// eng, printing their states as they change. A stream that fails to start is
// reported and left out; when ctx ends while they start, the streams already
// started are ended and ctx's error returned.
func startDemoStreams(ctx context.Context, n int, url, token string, eng *clienttest.Engine, out *syncWriter) (*demoStreams, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	opts := []client.Option{client.WithHTTPClient(&http.Client{Transport: tr}), client.WithWatchdog(5 * time.Second)}
	for _, k := range simKinds {
		opts = append(opts, client.WithEngine(client.Kind(k), eng))
	}
	sdk, err := client.New(url, token, opts...)
	if err != nil {
		tr.CloseIdleConnections()
		return nil, err
	}
	ds := &demoStreams{sdk: sdk, tr: tr}
	for i := range n {
		room := fmt.Sprintf("demo-room-%d", i+1)
		s, err := sdk.Start(ctx, room, client.WithUserID(fmt.Sprintf("demo-user-%d", i+1)))
		if err != nil {
			if ctx.Err() != nil {
				_ = ds.close()
				return nil, ctx.Err()
			}
			out.printf("%s  %-12s start failed: %v\n", time.Now().Format(time.TimeOnly), room, err)
			continue
		}
		// The watchers return when their streams end: the SDK closes first.
		ds.watchers.Go(func() {
			for st := range s.States() {
				out.printf("%s  %-12s %s\n", time.Now().Format(time.TimeOnly), room, st)
			}
		})
	}
	return ds, nil
}

// close ends the streams and waits for their watchers.
func (ds *demoStreams) close() error {
	err := ds.sdk.Close()
	ds.watchers.Wait()
	ds.tr.CloseIdleConnections()
	return err
}

// runDemoChaos fails the fake providers in turn until ctx ends: every
// `every`, the next one goes down (its API answers 503, its media
// connections drop) and recovers every/2 later.
func runDemoChaos(ctx context.Context, every time.Duration, world *fakes.Fakes, eng *clienttest.Engine, out *syncWriter) {
	names := []string{fakes.Agora, fakes.Zegocloud, fakes.LiveKit}
	for i := 0; ; i++ {
		if !sleepUntil(ctx, time.Now().Add(every)) {
			return
		}
		name := names[i%len(names)]
		f, _ := world.Faults(name)
		out.printf("%s  chaos: %s goes down (its API answers 503, its media connections drop)\n", time.Now().Format(time.TimeOnly), name)
		_ = f.Set(fault.ServerErr)
		eng.Down(name, true)
		eng.Fail(name)
		if !sleepUntil(ctx, time.Now().Add(every/2)) {
			return
		}
		out.printf("%s  chaos: %s recovers (streams stay where they are)\n", time.Now().Format(time.TimeOnly), name)
		_ = f.Set(fault.OK)
		eng.Down(name, false)
	}
}

// registerProvider creates p on the server, or updates it when a demo
// directory is reused.
func registerProvider(ctx context.Context, ac *admin.Client, p switchboard.Provider) (admin.Provider, error) {
	in := map[string]any{
		"name": p.Name, "kind": p.Kind, "priority": p.Priority, "enabled": true, "config": p.Config,
		"healthCheck": p.HealthCheck,
		"credentials": map[string]string{
			"customerId": p.Credentials.CustomerID, "customerSecret": p.Credentials.CustomerSecret,
			"appCertificate": p.Credentials.AppCertificate, "serverSecret": p.Credentials.ServerSecret,
			"apiKey": p.Credentials.APIKey, "apiSecret": p.Credentials.APISecret,
		},
	}
	creds := in["credentials"].(map[string]string)
	for k, v := range creds {
		if v == "" {
			delete(creds, k)
		}
	}
	got, err := ac.CreateProvider(ctx, in)
	if admin.IsStatus(err, http.StatusConflict) {
		delete(in, "name")
		delete(in, "kind")
		got, err = ac.UpdateProvider(ctx, p.Name, in)
	}
	return got, err
}
