package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/health"
	"github.com/switchboardhq/switchboard/internal/routing"
	"github.com/switchboardhq/switchboard/internal/streams"
)

// configCache keeps the last body of GET /api/streaming/config with its
// ETag, for as long as what it is made of is the same: the routing
// snapshot of the providers (a new one is a new slice), the client settings
// and the maintenance windows in force.
type configCache struct {
	last atomic.Pointer[configEntry] // nil: none yet
}

// configEntry is a config body, with its newline, its ETag header's value
// (never written to) and what it was made of.
type configEntry struct {
	key  configKey
	body []byte
	etag []string
}

// configKey is what a config body is made of. recs points at the first
// record of the snapshot, which the cache keeps alive, so that its address
// cannot be taken by another snapshot.
type configKey struct {
	recs    *sb.ProviderRecord
	n       int
	client  sb.ClientSettings
	blocked string
}

func (c *configCache) get(k configKey) ([]byte, []string, bool) {
	e := c.last.Load()
	if e == nil || e.key != k {
		return nil, nil, false
	}
	return e.body, e.etag, true
}

func (c *configCache) put(k configKey, body []byte, etag []string) {
	c.last.Store(&configEntry{key: k, body: body, etag: etag})
}

// blockedKey writes the maintenance windows in force as a string, the same
// for the same windows.
func blockedKey(blocked map[string]routing.Maintenance) string {
	if len(blocked) == 0 {
		return ""
	}
	names := make([]string, 0, len(blocked))
	for n := range blocked {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		m := blocked[n]
		b.WriteString(n + "\x00" + m.Until.Format(time.RFC3339Nano) + "\x00" + m.Reason + "\x00")
	}
	return b.String()
}

// configBody builds the body of GET /api/streaming/config, with its newline,
// and its ETag header's value. For a caller's region (region not empty), a
// provider with regional health there is usable only if it is usable there
// too.
func (s *Server) configBody(recs []sb.ProviderRecord, client sb.ClientSettings, blocked map[string]routing.Maintenance,
	region string, regional map[string]map[string]sb.Status) ([]byte, []string) {
	cfg := clientConfig{Providers: []configProvider{}, Region: region, ClientSettings: client}
	for _, rec := range recs {
		if !rec.Enabled {
			continue
		}
		usable := rec.Health.Status.Usable()
		cp := configProvider{ProviderInfo: streams.PublicInfo(rec), State: health.StateOf(rec.Health.Status), Regions: rec.Regions}
		if st, ok := regional[rec.Name][region]; ok && region != "" {
			cp.RegionalStatus = st
			usable = usable && st.Usable()
		}
		cp.Usable, cp.Healthy = usable, usable
		if m, ok := blocked[rec.Name]; ok {
			cp.Maintenance = &configMaintenance{Until: m.Until, Reason: m.Reason}
		}
		cfg.Providers = append(cfg.Providers, cp)
	}
	body, _ := json.Marshal(cfg)
	sum := sha256.Sum256(body)
	// A full slice: an append to the header's value cannot write into it.
	return append(body, '\n'), []string{`"` + hex.EncodeToString(sum[:12]) + `"`}[:1:1]
}
