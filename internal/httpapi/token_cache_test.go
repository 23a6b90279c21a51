package httpapi

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/auth"
)

// TestTokenCacheRevocation checks that a token kept in memory is refused as
// soon as it is revoked here, as soon as another replica's principals.ended
// event arrives, and, with no event, once tokenCacheTTL has passed.
func TestTokenCacheRevocation(t *testing.T) {
	e := newTestEnv(t)
	super := e.tokens[sb.RoleSuperadmin]
	newToken := func() (id, secret string) {
		t.Helper()
		var out struct{ ID, Token string }
		e.mustDo("POST", "/api/auth/tokens", super, map[string]any{"name": "cached", "role": "client"}, 201, &out)
		return out.ID, out.Token
	}
	me := func(secret string) int {
		st, _ := e.do("GET", "/api/auth/me", secret, nil)
		return st
	}

	// Revoked through this server: refused at once.
	id, secret := newToken()
	if st := me(secret); st != 200 {
		t.Fatalf("new token: %d", st)
	}
	if _, ok := e.api.tokens.get(auth.HashToken(secret), time.Now()); !ok {
		t.Fatal("the token was not kept")
	}
	e.mustDo("DELETE", "/api/auth/tokens/"+id, super, nil, 204, nil)
	if st := me(secret); st != 401 {
		t.Fatalf("revoked here: %d, want 401", st)
	}

	// Revoked by another replica (in the store behind this server's back):
	// still served from memory until its event arrives.
	id, secret = newToken()
	me(secret)
	revoke := func() {
		t.Helper()
		if err := e.store.RevokeAPIToken(context.Background(), id, e.clock.Now(), sb.AuditEntry{Action: "token.revoke", Target: id, At: e.clock.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	revoke()
	if st := me(secret); st != 200 {
		t.Fatalf("before the event: %d, want 200 from memory", st)
	}
	e.api.PrincipalsEnded(sb.Event{Type: EventPrincipalsEnded, Data: principalsEnded{Principals: []Principal{TokenPrincipal(id)}}})
	if st := me(secret); st != 401 {
		t.Fatalf("after the event: %d, want 401", st)
	}

	// The event lost: refused once the entry is older than tokenCacheTTL.
	id, secret = newToken()
	me(secret)
	revoke()
	k, _ := cacheKey(auth.HashToken(secret))
	en := e.api.tokens.entries[k]
	en.read = en.read.Add(-tokenCacheTTL)
	e.api.tokens.entries[k] = en
	if st := me(secret); st != 401 {
		t.Fatalf("after tokenCacheTTL: %d, want 401", st)
	}
	// An unknown secret is never kept.
	if st := me("sbt_unknown-secret-0000000000000000"); st != 401 || len(e.api.tokens.entries) > 3 {
		t.Fatalf("unknown: %d, %d entries", st, len(e.api.tokens.entries))
	}
}

// touchGate counts the writes of a token's last-used time and holds each until
// the requests that are not writing it have been answered (or a deadline
// passes), so that the requests of a wave all reach the point where the time
// falls due while the first write is still under way.
type touchGate struct {
	sb.Store
	touches  atomic.Int64
	answered *atomic.Int64
	others   int64
}

func (g *touchGate) TouchAPIToken(ctx context.Context, id string, at time.Time) error {
	g.touches.Add(1)
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && g.answered.Load() < g.others; {
		time.Sleep(time.Millisecond)
	}
	return g.Store.TouchAPIToken(ctx, id, at)
}

// TestTokenTouchOnce checks that when a token's last-used time falls due, one
// request writes it, not every request in flight, and that the next write
// comes a timeTouchEvery later; a failed write is retried by a later request.
func TestTokenTouchOnce(t *testing.T) {
	e := newTestEnv(t)
	var out struct{ Token string }
	e.mustDo("POST", "/api/auth/tokens", e.tokens[sb.RoleSuperadmin], map[string]any{"name": "busy", "role": "client"}, 201, &out)
	const n = 32
	answered := &atomic.Int64{}
	gate := &touchGate{Store: e.store, answered: answered, others: n - 1}
	e.api.store = gate
	wave := func() {
		t.Helper()
		answered.Store(0)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				if st, body := e.do("GET", "/api/auth/me", out.Token, nil); st != 200 {
					t.Errorf("me: %d %s", st, body)
				}
				answered.Add(1)
			})
		}
		wg.Wait()
	}
	wave()
	if got := gate.touches.Load(); got != 1 {
		t.Fatalf("first wave: %d writes of the last-used time, want 1", got)
	}
	wave()
	if got := gate.touches.Load(); got != 1 {
		t.Fatalf("second wave within a minute: %d writes, want 1", got)
	}
	e.clock.Advance(timeTouchEvery + time.Second)
	wave()
	if got := gate.touches.Load(); got != 2 {
		t.Fatalf("a minute later: %d writes, want 2", got)
	}

	// A failed write releases the claim: the next request writes it.
	hash := auth.HashToken(out.Token)
	now := e.clock.Now().Add(2 * timeTouchEvery)
	if !e.api.tokens.claimTouch(hash, now) {
		t.Fatal("claim after a minute refused")
	}
	if e.api.tokens.claimTouch(hash, now) {
		t.Fatal("second claim granted")
	}
	e.api.tokens.releaseTouch(hash)
	if !e.api.tokens.claimTouch(hash, now) {
		t.Fatal("claim after a release refused")
	}
}

// readGate counts the reads of tokens from the store and makes each take hold.
type readGate struct {
	sb.Store
	reads  atomic.Int64
	hold   time.Duration
	panics atomic.Bool
}

func (g *readGate) APITokenByHash(ctx context.Context, hash []byte) (sb.APIToken, error) {
	g.reads.Add(1)
	time.Sleep(g.hold)
	if g.panics.Load() {
		panic("read gate")
	}
	return g.Store.APITokenByHash(ctx, hash)
}

// TestTokenReadOnce checks that the requests that miss the cache together
// share one read of the token from the store, and that a read that began
// before the cache was emptied (a revocation) keeps nothing.
func TestTokenReadOnce(t *testing.T) {
	e := newTestEnv(t)
	var out struct{ Token string }
	e.mustDo("POST", "/api/auth/tokens", e.tokens[sb.RoleSuperadmin], map[string]any{"name": "busy", "role": "client"}, 201, &out)
	gate := &readGate{Store: e.store, hold: 100 * time.Millisecond}
	e.api.store = gate
	e.api.tokens.clear()
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			if st, body := e.do("GET", "/api/auth/me", out.Token, nil); st != 200 {
				t.Errorf("me: %d %s", st, body)
			}
		})
	}
	wg.Wait()
	if got := gate.reads.Load(); got != 1 {
		t.Fatalf("32 requests missing the cache together: %d reads of the token, want 1", got)
	}
	// An unknown secret is refused to every request, those that shared a
	// read included.
	for range 8 {
		wg.Go(func() {
			if st, _ := e.do("GET", "/api/auth/me", "sbt_unknown-secret-0000000000000000", nil); st != 401 {
				t.Errorf("unknown secret: %d, want 401", st)
			}
		})
	}
	wg.Wait()

	// A read that panics answers its requests with an error; the server
	// goes on.
	gate.panics.Store(true)
	e.api.tokens.clear()
	if st, _ := e.do("GET", "/api/auth/me", out.Token, nil); st != 500 {
		t.Errorf("read that panicked: %d, want 500", st)
	}
	gate.panics.Store(false)
	if st, body := e.do("GET", "/api/auth/me", out.Token, nil); st != 200 {
		t.Fatalf("after a read that panicked: %d %s", st, body)
	}

	// A read that began before a revocation emptied the cache keeps nothing.
	hash := auth.HashToken(out.Token)
	tok, err := e.store.APITokenByHash(context.Background(), hash)
	if err != nil {
		t.Fatal(err)
	}
	c := newTokenCache()
	gen := c.generation()
	c.clear()
	c.put(hash, tok, time.Now(), gen)
	if _, ok := c.get(hash, time.Now()); ok {
		t.Fatal("a read from before the cache was emptied was kept")
	}
	c.put(hash, tok, time.Now(), c.generation())
	if _, ok := c.get(hash, time.Now()); !ok {
		t.Fatal("a read of this generation was not kept")
	}
}
