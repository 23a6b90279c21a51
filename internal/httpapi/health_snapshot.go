package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"sync"
	"time"
)

// publicSnapshot holds the public health documents in memory, ready to be
// written, so that the endpoint every app polls reads no store. A document
// is dropped by every change this process makes or hears of:
//   - a health record written by the Checker (its Generation moves);
//   - a change to the registry made through this API (Server.changed);
//   - a provider event from another replica (Server.ProvidersChanged).
//
// What no event reports, such as the latency of the leader's probes on
// another replica, is read again after publicSnapshotMaxAge, well within the
// publicHealthMaxAge that clients and CDNs are told they may cache it.
type publicSnapshot struct {
	mu   sync.RWMutex
	gen  uint64               // guarded by mu; moved by invalidate
	docs map[string]publicDoc // guarded by mu; by provider name
}

// publicSnapshotMaxAge bounds how old a document may be served.
const publicSnapshotMaxAge = time.Second

// publicDoc is one provider's public health document.
type publicDoc struct {
	body       []byte // the JSON with its newline
	etag       string
	etagHeader []string  // etag as a header value
	gen        uint64    // publicSnapshot.gen when it was read
	checkerGen uint64    // the Checker's Generation when it was read
	read       time.Time // when it was read, on the monotonic clock
}

func newPublicSnapshot() *publicSnapshot {
	return &publicSnapshot{docs: map[string]publicDoc{}}
}

// invalidate drops every document.
func (p *publicSnapshot) invalidate() {
	p.mu.Lock()
	p.gen++
	clear(p.docs)
	p.mu.Unlock()
}

// generation returns the snapshot's generation, to be noted before a read of
// the store and given to put.
func (p *publicSnapshot) generation() uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.gen
}

// get returns the document of name if it is still current for checkerGen.
func (p *publicSnapshot) get(name string, checkerGen uint64, now time.Time) (publicDoc, bool) {
	p.mu.RLock()
	d, ok := p.docs[name]
	gen := p.gen
	p.mu.RUnlock()
	if !ok || d.gen != gen || d.checkerGen != checkerGen || now.Sub(d.read) >= publicSnapshotMaxAge {
		return publicDoc{}, false
	}
	return d, true
}

// put keeps body as name's document, read from the store after gen and
// checkerGen were noted (so that a change in between leaves it stale), and
// returns it with its ETag.
func (p *publicSnapshot) put(name string, body []byte, gen, checkerGen uint64, read time.Time) publicDoc {
	sum := sha256.Sum256(body)
	etag := `"` + hex.EncodeToString(sum[:12]) + `"`
	d := publicDoc{body: append(body, '\n'), etag: etag, etagHeader: []string{etag}, gen: gen, checkerGen: checkerGen, read: read}
	p.mu.Lock()
	if p.gen == gen {
		p.docs[name] = d
	}
	p.mu.Unlock()
	return d
}

// generationer is what a HealthChecker implements when it can tell that it
// wrote a health record (*health.Checker does); without it nothing is kept.
type generationer interface{ Generation() uint64 }

// ProvidersChanged tells the server that providers or their health changed
// elsewhere (another replica's provider events): what it keeps in memory of
// them is read again on next use.
func (s *Server) ProvidersChanged() { s.pub.invalidate() }
