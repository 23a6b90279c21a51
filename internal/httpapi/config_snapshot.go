package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"

	sb "github.com/switchboardhq/switchboard"
)

// configSnapshot keeps the /api/streaming/config documents built last, one
// per region, with what each was built from: the streams service's provider
// snapshot (the very slice, which that service replaces on every change it
// makes or hears of and never modifies) and the client settings. A document
// serves while both are the same, so a change refreshes it at the next
// request, exactly when the document built afresh would change. Documents
// that depend on the time as well (regional health, a maintenance window)
// are built for each request and not kept.
type configSnapshot struct {
	mu   sync.RWMutex
	docs map[string]configDoc // guarded by mu; by region ("" when unknown)
}

// configSnapshotRegions bounds the regions kept: past it, the documents are
// dropped and the snapshot starts again, so that ?region= cannot grow it.
const configSnapshotRegions = 64

// configDoc is one region's configuration document.
type configDoc struct {
	recs       []sb.ProviderRecord // the provider snapshot it was built from
	client     sb.ClientSettings
	body       []byte // the JSON with its newline
	etag       string
	etagHeader []string // etag as a header value
}

func newConfigSnapshot() *configSnapshot {
	return &configSnapshot{docs: map[string]configDoc{}}
}

// sameSnapshot reports whether a and b are the same provider snapshot.
func sameSnapshot(a, b []sb.ProviderRecord) bool {
	if len(a) != len(b) {
		return false
	}
	return len(a) == 0 || &a[0] == &b[0]
}

// get returns the document of region if it was built from recs and client.
func (c *configSnapshot) get(region string, recs []sb.ProviderRecord, client sb.ClientSettings) (configDoc, bool) {
	c.mu.RLock()
	d, ok := c.docs[region]
	c.mu.RUnlock()
	if !ok || !sameSnapshot(d.recs, recs) || d.client != client {
		return configDoc{}, false
	}
	return d, true
}

// put makes the document of region from body (the JSON without its newline)
// and keeps it.
func (c *configSnapshot) put(region string, recs []sb.ProviderRecord, client sb.ClientSettings, body []byte) configDoc {
	d := newConfigDoc(body)
	d.recs, d.client = recs, client
	c.mu.Lock()
	if _, ok := c.docs[region]; !ok && len(c.docs) >= configSnapshotRegions {
		clear(c.docs)
	}
	c.docs[region] = d
	c.mu.Unlock()
	return d
}

// newConfigDoc makes the document of body (the JSON without its newline).
func newConfigDoc(body []byte) configDoc {
	etag := configETag(body)
	return configDoc{body: append(body, '\n'), etag: etag, etagHeader: []string{etag}}
}

// configETag is the entity tag of a configuration document body.
func configETag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + hex.EncodeToString(sum[:12]) + `"`
}
