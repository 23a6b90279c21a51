package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/alerts"
	"github.com/switchboardhq/switchboard/internal/auth"
	"github.com/switchboardhq/switchboard/internal/config"
	"github.com/switchboardhq/switchboard/internal/events"
	"github.com/switchboardhq/switchboard/internal/geo"
	"github.com/switchboardhq/switchboard/internal/health"
	"github.com/switchboardhq/switchboard/internal/httpapi"
	"github.com/switchboardhq/switchboard/internal/jobs"
	"github.com/switchboardhq/switchboard/internal/maintenance"
	"github.com/switchboardhq/switchboard/internal/predict"
	"github.com/switchboardhq/switchboard/internal/providers"
	"github.com/switchboardhq/switchboard/internal/replica"
	"github.com/switchboardhq/switchboard/internal/reports"
	"github.com/switchboardhq/switchboard/internal/secrets"
	"github.com/switchboardhq/switchboard/internal/sqlstore"
	"github.com/switchboardhq/switchboard/internal/streams"
)

func newLogger(w io.Writer, format, level string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// keyFileFor is where the credential key lives when SWITCHBOARD_SECRET_KEY is
// not set: beside the SQLite database, or in the working directory.
func keyFileFor(dsn string) string {
	if path, ok := sqlstore.SQLiteFile(dsn); ok {
		return strings.TrimSuffix(path, filepath.Ext(path)) + ".key"
	}
	return "switchboard.key"
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(args, getenv, stderr)
	if err != nil {
		return usageError{msg: err.Error()}
	}
	return runServer(ctx, cfg, newLogger(stderr, cfg.LogFormat, cfg.LogLevel), stdout, nil)
}

// runServer wires the app, serves it on cfg.Addr until ctx ends (announcing
// the address on announce) and shuts down in order: the HTTP server drains,
// then the background work stops, then the store closes. beside, if set, runs
// alongside with the server's URL (the demo's simulated world) and ends with it.
func runServer(ctx context.Context, cfg config.Config, log *slog.Logger, announce io.Writer,
	beside func(ctx context.Context, url string) error) error {
	app, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer app.close()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	tlsConf, tlsRun, err := tlsSetup(cfg, log)
	if err != nil {
		ln.Close()
		return err
	}
	pprofSrv, pprofLn, err := pprofListen(cfg.PprofAddr, log)
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{
		Handler: app.handler, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// A request, body included, must arrive within ReadTimeout, or its
		// connection is closed; event streams lift the deadline once their
		// request has arrived.
		ReadTimeout: cfg.ReadTimeout, TLSConfig: tlsConf,
	}
	if cfg.ReadTimeout > 0 {
		srv.ReadHeaderTimeout = min(srv.ReadHeaderTimeout, cfg.ReadTimeout)
	}
	// Shutdown does not wait for event streams: end them so it can finish.
	// Those on connections the hub took over from the server are waited for
	// (or cut) by the hub's own Shutdown, below.
	srv.RegisterOnShutdown(app.hub.Close)
	url := "http://" + ln.Addr().String()
	if tlsConf != nil {
		url = "https://" + ln.Addr().String()
	}
	log.Info("listening", "addr", ln.Addr().String(), "db", redactDSN(cfg.DB), "version", switchboard.Version)
	fmt.Fprintf(announce, "switchboard listening on %s\n", url)

	g, gctx := errgroup.WithContext(ctx)
	// The background work outlives the requests being drained, which still
	// publish events (shared with the other replicas by a runner) and ask
	// for checks; it stops once they are done, and the store closes last.
	rctx, stopRunners := context.WithCancel(context.WithoutCancel(gctx))
	defer stopRunners()
	g.Go(func() error {
		serve := func() error { return srv.Serve(ln) }
		if tlsConf != nil {
			serve = func() error { return srv.ServeTLS(ln, "", "") }
		}
		if err := serve(); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	if tlsRun != nil {
		g.Go(func() error { return tlsRun(rctx) })
	}
	if pprofSrv != nil {
		fmt.Fprintf(announce, "switchboard pprof on http://%s/debug/pprof/\n", pprofLn.Addr())
		g.Go(func() error {
			if err := pprofSrv.Serve(pprofLn); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("pprof: %w", err)
			}
			return nil
		})
		g.Go(func() error {
			<-gctx.Done()
			// Profiles in progress are cut short: they hold no state.
			return pprofSrv.Close()
		})
	}
	g.Go(func() error {
		err := app.run(rctx)
		if err != nil && rctx.Err() == nil {
			return fmt.Errorf("background work: %w", err)
		}
		return nil
	})
	if beside != nil {
		g.Go(func() error {
			if err := beside(gctx, url); err != nil && gctx.Err() == nil {
				return err
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down")
		defer stopRunners()
		sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		err := srv.Shutdown(sctx)
		if err != nil {
			// Time is up: cut the connections still open rather than leave
			// their handlers running against a closing store.
			log.Warn("shutdown timed out: closing the remaining connections", "timeout", cfg.ShutdownTimeout.String())
			_ = srv.Close()
		}
		// The event streams on connections taken over from the server write
		// what was queued for them and close, or are cut once time is up.
		if herr := app.hub.Shutdown(sctx); herr != nil && err == nil {
			log.Warn("shutdown timed out: closing the remaining event streams", "timeout", cfg.ShutdownTimeout.String())
			err = herr
		}
		if err != nil {
			return fmt.Errorf("shutdown: %w", err)
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// pprofListen listens on addr, a loopback address already checked by the
// configuration, for the Go profiler's endpoints, served on a mux of their
// own and never with the API. It returns nils when addr is empty.
func pprofListen(addr string, log *slog.Logger) (*http.Server, net.Listener, error) {
	if addr == "" {
		return nil, nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("pprof-addr: %w", err)
	}
	if ip, ok := ln.Addr().(*net.TCPAddr); !ok || !ip.IP.IsLoopback() {
		// localhost resolved to something else: refuse rather than expose.
		ln.Close()
		return nil, nil, fmt.Errorf("pprof-addr: %s is not a loopback address", ln.Addr())
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	log.Info("pprof listening", "addr", ln.Addr().String())
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}, ln, nil
}

// redactDSN hides a password in a database URL.
func redactDSN(dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		if at := strings.LastIndex(dsn, "@"); at > i {
			cred := dsn[i+3 : at]
			if c := strings.Index(cred, ":"); c >= 0 {
				return dsn[:i+3] + cred[:c] + ":xxxxx" + dsn[at:]
			}
		}
	}
	return dsn
}

// app is the wired server: store, API and background work.
type app struct {
	store   switchboard.Store
	hub     *events.Hub
	handler http.Handler
	log     *slog.Logger
	runners []func(ctx context.Context) error
	// alerts sends the alert notifications; a Silencer may be set on it
	// before run.
	alerts *alerts.Dispatcher
	// gate creates the first admin in the background; the store closes
	// after it is done.
	gate *adminGate
}

func newApp(ctx context.Context, cfg config.Config, log *slog.Logger) (*app, error) {
	if !sqlstore.SingleNode(cfg.DB) && cfg.SecretKey == "" {
		// A key file per replica would leave each unable to read the
		// credentials the others stored.
		return nil, errors.New("credential key: SWITCHBOARD_SECRET_KEY is required with PostgreSQL, the same on every replica")
	}
	key, err := secrets.LoadKey(cfg.SecretKey, keyFileFor(cfg.DB))
	if err != nil {
		return nil, fmt.Errorf("credential key: %w", err)
	}
	sealer, err := secrets.NewAESGCM(key)
	if err != nil {
		return nil, fmt.Errorf("credential key: %w", err)
	}
	proxies, err := httpapi.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("trusted-proxies: %w", err)
	}
	corsOrigins, err := httpapi.ParseCORSOrigins(cfg.CORSOrigins)
	if err != nil {
		return nil, fmt.Errorf("cors-origins: %w", err)
	}
	clock := switchboard.SystemClock{}
	geoMap, err := geo.LoadMap(cfg.GeoMap)
	if err != nil {
		return nil, err
	}
	store, err := sqlstore.Open(ctx, cfg.DB, sealer, clock)
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	// The first admin's password hash (Argon2id, about a quarter of a second
	// of CPU) is made beside the rest of the start and off the path to
	// readiness: the API sees the users through gate, which holds every
	// user and session lookup until the admin exists.
	gate := newAdminGate(store)
	a := &app{store: store, log: log, gate: gate}
	hubOpts := events.Options{Clock: clock, Logger: log}
	var logFrom uint64
	if store.SupportsReplicas() {
		// Replicas take their events' ids from the shared log, and this one
		// reads the log from its end as it is now: before it reads the state
		// that events keep fresh (settings, providers, routing) and before
		// it serves, so that every change made at another replica from now
		// on reaches it, and so does every event that an event stream opened
		// at once should get. Its hub knows the events after that position
		// only: a client resuming from an earlier id is told to resync.
		if logFrom, err = replica.LogPosition(ctx, store, log); err != nil {
			_ = store.Close()
			return nil, fmt.Errorf("event log: %w", err)
		}
		hubOpts.FirstID = logFrom
	} else {
		// A single node numbers its own events: after the wall clock's
		// microseconds at start, so that the ids of this run follow those of
		// the run before, and a client that resumes with an id of that run
		// is told to resync. (Replicas take their ids from the shared log.)
		hubOpts.FirstID = uint64(time.Now().UnixMicro())
	}
	hub := events.New(hubOpts)
	a.hub = hub
	// One node (SQLite) publishes to its hub and always leads. Replicas on
	// PostgreSQL share events through the database and elect a leader for
	// scheduled work (health sweeps, jobs).
	var (
		bus       switchboard.Bus    = hub
		lead      replica.Leadership = replica.Solo{}
		scheduler *health.Scheduler  // set below; remote provider changes reschedule it
		svc       *streams.Service   // set below; remote provider changes refresh its snapshot
		api       *httpapi.Server    // set below; remote settings changes refresh its settings
		maint     *maintenance.Service
		tracker   *predict.Tracker // set below; takes the leader's verdicts on the other replicas
	)
	// The settings nobody set take these values; the leader lease comes from
	// --leader-lease until the setting leaderLease is set.
	defaults := switchboard.DefaultSettings()
	defaults.LeaderLease = switchboard.Duration(cfg.LeaderLease)
	if store.SupportsReplicas() {
		id := replica.NewID()
		var watch *settingsWatch // set below, before the runners start
		evs := replica.NewEvents(store, hub, replica.EventsOptions{ReplicaID: id, Logger: log,
			OnEvent: func(e switchboard.Event) {
				if strings.HasPrefix(e.Type, "provider") {
					scheduler.Notify()
					svc.ProvidersChanged()
					api.ProvidersChanged()
				}
				if e.Type == switchboard.EventSettingsUpdated {
					watch.notify()
				}
				if e.Type == switchboard.EventRoutingUpdated {
					svc.RoutingChanged()
				}
				if e.Type == httpapi.EventPrincipalsEnded {
					api.PrincipalsEnded(e) // a token revoked or a logout on any replica
				}
				if strings.HasPrefix(e.Type, "maintenance.") {
					maint.Changed()
				}
				tracker.Apply(e) // the leader's degradation verdicts
			}})
		evs.BeginAfter(logFrom)
		lease := leaderLease(ctx, store, defaults, log)
		leader := replica.NewLeader(store, replica.LeaderOptions{ID: id, Logger: log, TTL: lease})
		watch = newSettingsWatch(store, defaults, leader, func() { api.SettingsChanged() }, log)
		bus, lead = evs, leader
		a.runners = append(a.runners, leader.Run, evs.Run, watch.run)
		ttl, renew := leader.Lease()
		log.Info("replica", "id", id, "lease_ttl", ttl.String(), "lease_renew", renew.String())
	}
	reg := prometheus.NewRegistry()
	metrics := httpapi.NewMetrics(reg, store)
	tracker = predict.NewTracker(predict.TrackerConfig{Logger: log, Bus: bus})
	reg.MustRegister(tracker)
	checker, err := health.NewChecker(health.Config{
		Registry: store, Health: store, Probers: providers.Probers(), Clock: clock, Logger: log, Bus: bus,
		MaxConcurrent: cfg.HealthConcurrency, OnTransition: metrics.ObserveTransition,
		OnProbe: func(r health.Result) { metrics.ObserveProbe(r); tracker.ObserveProbe(r) },
		Region:  cfg.Region, Regional: store,
	})
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	scheduler = health.NewScheduler(checker, health.SchedulerConfig{})
	minters := map[switchboard.Kind]switchboard.TokenMinter{}
	for k, ad := range providers.Adapters() {
		minters[k] = ad
	}
	maint = maintenance.New(maintenance.Config{Store: store, Bus: bus, Clock: clock, Logger: log})
	// Heartbeats are acknowledged from memory and written every second in
	// one transaction: a crash loses at most that much last-seen time.
	svc = streams.New(streams.Config{Store: store, Checker: checker, Minters: minters, Bus: bus, Clock: clock, Logger: log, Maintenance: maint,
		Predictions: tracker, Settings: func(ctx context.Context) switchboard.Settings { return api.Settings(ctx) }, Routing: store, Regional: store,
		HeartbeatFlush: time.Second})
	runner := jobs.New(jobs.Config{Store: store, Bus: bus, Clock: clock, Logger: log,
		AbandonAfter: cfg.AbandonAfter, SweepGrace: cfg.AbandonAfter})
	// Alerts go out from the leader only; every replica serves test sends.
	dispatcher := alerts.New(alerts.Config{Store: store, Senders: alerts.Senders(nil, nil, nil), Clock: clock, Logger: log,
		Metrics: alerts.NewMetrics(reg), Events: hub, DashboardURL: cfg.PublicURL, Silencer: maint, Predictions: tracker})
	a.alerts = dispatcher
	a.runners = append(a.runners, svc.Run, func(ctx context.Context) error { return tracker.Run(ctx, hub) },
		func(ctx context.Context) error { return lead.RunWhileLeader(ctx, scheduler.Run) },
		func(ctx context.Context) error { return lead.RunWhileLeader(ctx, runner.Run) },
		func(ctx context.Context) error { return lead.RunWhileLeader(ctx, dispatcher.Run) },
		maint.Run, func(ctx context.Context) error { return lead.RunWhileLeader(ctx, maint.Lead) },
		func(ctx context.Context) error { return lead.RunWhileLeader(ctx, svc.RunPreemptive) },
		func(ctx context.Context) error { return lead.RunWhileLeader(ctx, svc.RunRegionalEvents) },
		func(ctx context.Context) error {
			return lead.RunWhileLeader(ctx, func(ctx context.Context) error {
				return reports.RecordDegradations(ctx, hub, store, log)
			})
		})
	sso, err := newSSO(cfg)
	if err != nil {
		_ = store.Close()
		return nil, err
	}
	api = httpapi.New(httpapi.Options{
		OIDC:  sso,
		Store: gate, Clock: clock, Logger: log, BootstrapToken: cfg.BootstrapToken, Bus: bus, Settings: defaults,
		Health: checker, Metrics: metrics, ProvidersChanged: scheduler.Notify, Streams: svc, Events: hub, Alerts: dispatcher,
		Maintenance: maint, Predictions: tracker, GeoHeader: cfg.GeoHeader, GeoMap: geoMap,
		PublicRate: cfg.PublicRateLimit, PublicBurst: cfg.PublicBurst,
		SSEPerToken: cfg.SSEPerToken, TrustedProxies: proxies, TLS: cfg.TLS(), CORSOrigins: corsOrigins,
		Admission: httpapi.Admission{
			Failover: httpapi.ClassLimit{MaxInFlight: cfg.MaxInflightFailover},
			Start:    httpapi.ClassLimit{MaxInFlight: cfg.MaxInflightStart},
			Other:    httpapi.ClassLimit{MaxInFlight: cfg.MaxInflightOther},
		},
	})
	a.handler = api
	go gate.bootstrap(ctx, cfg.AdminPassword, clock, log)
	// A failed creation of the admin stops the server, as it did when it
	// was made before listening.
	a.runners = append(a.runners, gate.wait)
	return a, nil
}

// leaderLease is the lease this replica starts with: the setting
// leaderLease, or def's when it is not set or cannot be read.
func leaderLease(ctx context.Context, store switchboard.Store, def switchboard.Settings, log *slog.Logger) time.Duration {
	set, err := store.GetSettings(ctx)
	if err != nil {
		log.Warn("read settings: starting with the leader lease of the flags", "err", err.Error())
	}
	return set.Or(def).LeaderLease.D()
}

// settingsWatch applies the settings another replica, or this one, changed
// (a settings.updated event from the shared log) to what reads them outside
// the API: the leader's lease. It also tells the API, whose cached settings
// would otherwise live until they expire. It reads the store again every
// settingsRecheck, in case an event was missed.
type settingsWatch struct {
	store    switchboard.SettingsStore
	defaults switchboard.Settings
	leader   *replica.Leader
	log      *slog.Logger
	api      func()        // tells the API the settings changed
	changed  chan struct{} // buffered 1: a read of the settings is due
}

const settingsRecheck = 30 * time.Second

func newSettingsWatch(store switchboard.SettingsStore, defaults switchboard.Settings, leader *replica.Leader, api func(), log *slog.Logger) *settingsWatch {
	return &settingsWatch{store: store, defaults: defaults, leader: leader, api: api, log: log, changed: make(chan struct{}, 1)}
}

// notify asks for the settings to be read again. It never blocks.
func (w *settingsWatch) notify() {
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// run applies the settings after every notify and every settingsRecheck,
// until ctx ends.
func (w *settingsWatch) run(ctx context.Context) error {
	tick := time.NewTicker(settingsRecheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.changed:
			w.api()
		case <-tick.C:
		}
		set, err := w.store.GetSettings(ctx)
		if err != nil {
			if ctx.Err() == nil {
				w.log.Warn("read settings", "err", err.Error())
			}
			continue
		}
		w.leader.SetLease(set.Or(w.defaults).LeaderLease.D())
	}
}

// run runs the background work until ctx is done.
func (a *app) run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, r := range a.runners {
		g.Go(func() error { return r(gctx) })
	}
	return g.Wait()
}

func (a *app) close() {
	a.gate.settled()
	if err := a.store.Close(); err != nil {
		a.log.Error("close store", "err", err.Error())
	}
}

// bootstrapAdmin creates the superadmin user "admin" on first start.
func bootstrapAdmin(ctx context.Context, store switchboard.Store, password string, clock switchboard.Clock, log *slog.Logger) error {
	n, err := store.CountUsers(ctx)
	if err != nil {
		return fmt.Errorf("bootstrap admin: %w", err)
	}
	if n > 0 {
		return nil
	}
	generated := password == ""
	if generated {
		password = auth.RandomPassword()
	}
	hash, err := auth.HashPassword(password)
	if err != nil {
		return err
	}
	// A generated password is temporary: it must be changed at the first login.
	if err := store.CreateUser(ctx, switchboard.User{Username: "admin", Role: switchboard.RoleSuperadmin, PasswordHash: hash,
		MustChangePassword: generated, CreatedAt: clock.Now()}); err != nil {
		if switchboard.IsCode(err, switchboard.EConflict) {
			return nil // another replica created it first
		}
		return fmt.Errorf("bootstrap admin: %w", err)
	}
	if generated {
		// Written once, on first start, so that the operator can log in.
		log.Warn("created superadmin user admin with a generated password, to be changed at the first login (or set SWITCHBOARD_ADMIN_PASSWORD)", "username", "admin", "password", password)
	} else {
		log.Info("created superadmin user admin with the password from SWITCHBOARD_ADMIN_PASSWORD", "username", "admin")
	}
	return nil
}

// newSSO configures the single sign-on of the dashboard; nil when off.
func newSSO(cfg config.Config) (*httpapi.OIDC, error) {
	if cfg.OIDCIssuer == "" {
		return nil, nil
	}
	roles, err := config.ParseRoleMapping(cfg.OIDCRoles)
	if err != nil {
		return nil, err
	}
	return httpapi.NewOIDC(httpapi.OIDCConfig{
		Issuer: cfg.OIDCIssuer, ClientID: cfg.OIDCClientID, ClientSecret: cfg.OIDCClientSecret,
		RedirectURL: cfg.OIDCRedirectURL, RoleClaim: cfg.OIDCRoleClaim, Roles: roles,
	})
}
