package httpapi

import (
	"sync"
	"time"

	sb "github.com/switchboardhq/switchboard"
)

// tokenCache keeps the API tokens that authenticated recently, by the hash of
// their secret, so that a client's every request does not read the store.
// An entry lives tokenCacheTTL at most; every EndPrincipal here and every
// principals.ended event from another replica (a token revoked, a logout)
// empties the cache first, so that a revoked token is refused at once where
// it was revoked and, at the latest, tokenCacheTTL later elsewhere should
// the event be lost; a read of the store that began before it empties the
// cache keeps nothing (gen). Unknown secrets are never kept.
type tokenCache struct {
	mu      sync.RWMutex            // read-locked by get, the path of every request
	entries map[[32]byte]tokenEntry // guarded by mu
	// touches holds when a request last took on writing a token's last-used
	// time (claimTouch), so that one request writes it, not every request in
	// flight when it falls due. Guarded by mu.
	touches map[[32]byte]time.Time
	// gen counts the times the cache was emptied: a token read from the
	// store is kept only if none came between the read's start and its end,
	// as the read may predate the revocation that emptied it. Guarded by mu.
	gen uint64
}

// tokenEntry is one cached token and when it was read from the store.
type tokenEntry struct {
	tok  sb.APIToken
	read time.Time // on the monotonic clock
}

const (
	// tokenCacheTTL bounds how long a token read from the store is trusted.
	tokenCacheTTL = time.Second
	// tokenCacheMax bounds the entries; beyond it the cache starts afresh.
	tokenCacheMax = 10000
)

func newTokenCache() *tokenCache {
	return &tokenCache{entries: map[[32]byte]tokenEntry{}, touches: map[[32]byte]time.Time{}}
}

// get returns the token whose secret hashes to hash, if it was read from the
// store less than tokenCacheTTL before now.
func (c *tokenCache) get(hash []byte, now time.Time) (sb.APIToken, bool) {
	k, ok := cacheKey(hash)
	if !ok {
		return sb.APIToken{}, false
	}
	c.mu.RLock()
	e, ok := c.entries[k]
	c.mu.RUnlock()
	if !ok || now.Sub(e.read) >= tokenCacheTTL {
		return sb.APIToken{}, false
	}
	return e.tok, true
}

// generation is the cache's generation, to pass to put for a read of the
// store that begins now.
func (c *tokenCache) generation() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// put keeps t, read from the store at read by a read that began in
// generation gen; it keeps nothing if the cache was emptied since.
func (c *tokenCache) put(hash []byte, t sb.APIToken, read time.Time, gen uint64) {
	k, ok := cacheKey(hash)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.entries) >= tokenCacheMax {
		clear(c.entries)
	}
	c.entries[k] = tokenEntry{tok: t, read: read}
}

// touched records that the token of hash was used at (as the store now says).
func (c *tokenCache) touched(hash []byte, at time.Time) {
	k, ok := cacheKey(hash)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[k]; ok {
		e.tok.LastUsedAt = &at
		c.entries[k] = e
	}
}

// claimTouch reports whether the caller is to write the last-used time of the
// token of hash, due at now: true for the first caller, false for every other
// until timeTouchEvery has passed or the claim is released. Without it, every
// request in flight when the time falls due wrote it (64 concurrent clients of
// one token: 64 writes of one row at once, each waiting for the other's
// commit on PostgreSQL, and for SQLite's writer), once a minute.
func (c *tokenCache) claimTouch(hash []byte, now time.Time) bool {
	k, ok := cacheKey(hash)
	if !ok {
		return true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if at, ok := c.touches[k]; ok && now.Sub(at) < timeTouchEvery && !now.Before(at) {
		return false
	}
	if len(c.touches) >= tokenCacheMax {
		clear(c.touches)
	}
	c.touches[k] = now
	return true
}

// releaseTouch gives up the claim of claimTouch after a failed write, so that
// the next request tries again.
func (c *tokenCache) releaseTouch(hash []byte) {
	k, ok := cacheKey(hash)
	if !ok {
		return
	}
	c.mu.Lock()
	delete(c.touches, k)
	c.mu.Unlock()
}

// clear forgets every token.
func (c *tokenCache) clear() {
	c.mu.Lock()
	clear(c.entries)
	c.gen++
	c.mu.Unlock()
}

func cacheKey(hash []byte) (k [32]byte, ok bool) {
	if len(hash) != len(k) {
		return k, false
	}
	copy(k[:], hash)
	return k, true
}
