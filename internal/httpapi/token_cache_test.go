package httpapi

import (
	"context"
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
