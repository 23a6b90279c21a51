package httpapi

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// settingsMaxAge is how long the settings read from the store are served
// before they are read again, in case the event of another replica's change
// was missed. A change made here, or one SettingsChanged is told of, is seen
// at once.
const settingsMaxAge = 5 * time.Second

// settingsCache holds the effective settings: those set in the store, the
// others from the server's defaults.
type settingsCache struct {
	defaults sb.Settings

	// last is the last settings read or written and when; read without a
	// lock on the path of every request.
	last atomic.Pointer[settingsRead]
	mu   sync.Mutex // held to read the store or replace last
}

// settingsRead is settings and when they were read; zero: read again.
type settingsRead struct {
	cur  sb.Settings
	read time.Time
}

func newSettingsCache(defaults sb.Settings) *settingsCache {
	c := &settingsCache{defaults: defaults.Or(sb.DefaultSettings())}
	c.last.Store(&settingsRead{cur: c.defaults})
	return c
}

// set replaces the settings, read at read (zero: to be read again).
func (c *settingsCache) set(cur sb.Settings, read time.Time) {
	c.last.Store(&settingsRead{cur: cur, read: read})
}

// settings returns the effective settings. When the store cannot be read it
// keeps serving the last settings it knows (the defaults at worst), since
// SDKs need them most when things go wrong.
func (s *Server) settings(ctx context.Context) sb.Settings {
	c := s.setCache
	now := s.clock.Now()
	fresh := func(l *settingsRead) bool {
		return !l.read.IsZero() && now.Sub(l.read) < settingsMaxAge && !now.Before(l.read)
	}
	if l := c.last.Load(); fresh(l) {
		return l.cur
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	l := c.last.Load()
	if fresh(l) {
		return l.cur // read by another request meanwhile
	}
	set, err := s.store.GetSettings(ctx)
	if err != nil {
		s.logger.WarnContext(ctx, "read settings", "err", err.Error())
		return l.cur
	}
	cur := set.Or(c.defaults)
	c.set(cur, now)
	return cur
}

// Settings returns the settings in force, from a cache at most a few
// seconds old (what routing reads for the setting preemptive).
func (s *Server) Settings(ctx context.Context) sb.Settings { return s.settings(ctx) }

// SettingsChanged tells the server that the settings changed elsewhere
// (another replica's settings.updated event): they are read again on next use.
func (s *Server) SettingsChanged() {
	c := s.setCache
	c.mu.Lock()
	c.set(c.last.Load().cur, time.Time{})
	c.mu.Unlock()
}

// getSettings answers the settings as stored (an operator asking sees the
// store, not the cache), and refreshes the cache with them.
func (s *Server) getSettings(w http.ResponseWriter, r *http.Request) {
	set, err := s.store.GetSettings(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c := s.setCache
	cur := set.Or(c.defaults)
	c.mu.Lock()
	c.set(cur, s.clock.Now())
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, cur)
}

// putSettings changes the settings named in the body and keeps the others
// (a partial update). An unknown field, a value out of range or an empty
// body is refused with 400 naming the field, changing nothing. A change is
// audited and published as settings.updated; a body that changes nothing
// is answered with the settings, without either.
func (s *Server) putSettings(w http.ResponseWriter, r *http.Request) {
	var in sb.SettingsInput
	if err := decode(r, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	if in.Empty() {
		s.writeError(w, r, sb.Invalid("body", "must set at least one setting"))
		return
	}
	audit := sb.AuditEntry{At: s.clock.Now(), Actor: sb.ActorFrom(r.Context()), Action: "settings.update", Target: "settings"}
	before, after, err := s.store.UpdateSettings(r.Context(), s.setCache.defaults, in.ApplyTo, audit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c := s.setCache
	c.mu.Lock()
	c.set(after, s.clock.Now())
	c.mu.Unlock()
	if after != before {
		s.logger.InfoContext(r.Context(), "settings updated", "actor", audit.Actor.Name,
			"max_retries", after.MaxRetries, "max_failures", after.MaxFailures,
			"health_check_interval", after.HealthCheckInterval.D().String(), "retry_backoff", after.RetryBackoff.D().String(),
			"retry_budget", after.RetryBudget, "leader_lease", after.LeaderLease.D().String(),
			"preemptive", after.Preemptive, "max_preemptive_migrations_per_minute", after.MaxPreemptiveMigrationsPerMinute)
		s.publish(sb.EventSettingsUpdated, sb.RoleClient, after)
	}
	writeJSON(w, http.StatusOK, after)
}
