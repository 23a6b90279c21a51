package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/auth"
)

// sessionCookie is the name of the dashboard's session cookie.
const sessionCookie = "switchboard_session"

// csrfHeader carries the session's CSRF token on cookie-authenticated writes.
const csrfHeader = "X-CSRF-Token"

// identity is who is calling.
type identity struct {
	actor   sb.Actor
	session *sb.Session // set for cookie logins
}

type identityKey struct{}

func identityFrom(ctx context.Context) identity {
	id, _ := ctx.Value(identityKey{}).(identity)
	return id
}

// guard enforces a route's role. Public routes do not look at credentials.
func (s *Server) guard(rt route) http.Handler {
	if rt.Role == sb.RoleAnonymous {
		return rt.Handler
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := s.authenticate(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if id.session != nil && id.session.MustChangePassword && !duringPasswordChange(rt) {
			s.writeError(w, r, sb.Errorf(sb.EPasswordChange, "change the temporary password first (PUT /api/auth/password)"))
			return
		}
		if !allowed(id.actor.Role, rt.Role) {
			s.writeError(w, r, sb.Errorf(sb.EForbidden, "this endpoint needs role %s", rt.Role))
			return
		}
		// The request's own context holds the caller (see reqCtx); a
		// request that did not come through withRequestID gets one.
		if c, ok := r.Context().Value(ridKey{}).(*reqCtx); ok && !c.authed {
			c.id, c.authed = id, true
			rt.Handler(w, r)
			return
		}
		ctx := sb.WithActor(r.Context(), id.actor)
		ctx = context.WithValue(ctx, identityKey{}, id)
		rt.Handler(w, r.WithContext(ctx))
	})
}

// allowed reports whether a caller with role has the role need of a route:
// the agent routes are for agents only (RoleAgent, exactly), and the others
// for their role and those above it, which never includes RoleAgent.
func allowed(role, need sb.Role) bool {
	if need == sb.RoleAgent || role == sb.RoleAgent {
		return role == need
	}
	return role >= need
}

// authenticate resolves the caller from a bearer token or a session cookie.
func (s *Server) authenticate(r *http.Request) (identity, error) {
	// Made only when refused: formatting it costs every request otherwise.
	unauthorized := func() error { return sb.Errorf(sb.EUnauthorized, "missing or invalid credentials") }
	if h := r.Header.Get("Authorization"); h != "" {
		token, ok := strings.CutPrefix(h, "Bearer ")
		token = strings.TrimSpace(token)
		if !ok || token == "" {
			return identity{}, sb.Errorf(sb.EUnauthorized, "Authorization must be \"Bearer <token>\"")
		}
		if s.boot != "" && auth.Equal(token, s.boot) {
			return identity{actor: sb.Actor{Kind: "bootstrap", Name: "bootstrap", Role: sb.RoleSuperadmin}}, nil
		}
		hash := auth.HashToken(token)
		t, ok := s.tokens.get(hash, time.Now())
		if !ok {
			var err error
			t, err = s.readToken(r.Context(), hash)
			if sb.IsCode(err, sb.ENotFound) {
				return identity{}, unauthorized()
			}
			if err != nil {
				return identity{}, err
			}
		}
		now := s.clock.Now()
		if (t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) > timeTouchEvery) && s.tokens.claimTouch(hash, now) {
			if s.store.TouchAPIToken(r.Context(), t.ID, now) == nil {
				s.tokens.touched(hash, now)
			} else {
				s.tokens.releaseTouch(hash)
			}
		}
		a := sb.Actor{Kind: "token", ID: t.ID, Name: t.Name, Role: t.Role}
		if t.Role == sb.RoleClient {
			var err error
			if a.Instance, err = instanceOf(r); err != nil {
				return identity{}, err
			}
		}
		return identity{actor: a}, nil
	}
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return identity{}, unauthorized()
	}
	sess, err := s.store.SessionByHash(r.Context(), auth.HashToken(c.Value), s.clock.Now())
	if sb.IsCode(err, sb.ENotFound) {
		return identity{}, sb.Errorf(sb.EUnauthorized, "session expired or invalid: log in again")
	}
	if err != nil {
		return identity{}, err
	}
	if !safeMethod(r.Method) && !auth.Equal(r.Header.Get(csrfHeader), sess.CSRFToken) {
		return identity{}, sb.Errorf(sb.EForbidden, "missing or invalid %s header", csrfHeader)
	}
	return identity{actor: sb.Actor{Kind: "user", Name: sess.Username, Role: sess.Role}, session: &sess}, nil
}

// InstanceHeader names the SDK instance that calls with a client token: a
// random value that the SDK draws once (16 to 128 letters, digits, '-' or
// '_'). Every instance of an app shares the app's client token; with the
// header, the streams an instance starts are its own (no other instance may
// act on them, even knowing their ids) and their events (stream.migrate) go
// to its event stream alone, rather than to every instance of the app.
// Without it, a client token's streams belong to the token, as before.
const InstanceHeader = "X-Switchboard-Instance"

// instanceOf returns the digest of r's InstanceHeader (the first 12 bytes of
// its SHA-256, in hex), which stands for the instance in stream owners, so
// that the value itself, which acts as a key, is never stored, logged or
// shown; "" without the header.
func instanceOf(r *http.Request) (string, error) {
	v := r.Header.Get(InstanceHeader)
	if v == "" {
		return "", nil
	}
	if len(v) < 16 || len(v) > 128 || strings.IndexFunc(v, func(c rune) bool {
		return !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_')
	}) >= 0 {
		return "", sb.Invalid(InstanceHeader, "must be 16 to 128 letters, digits, '-' or '_'")
	}
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:12]), nil
}

// tokenReadTimeout bounds a read of a token from the store, which does not end
// with the request that began it.
const tokenReadTimeout = 5 * time.Second

// readToken reads the token whose secret hashes to hash from the store and
// keeps it in the cache. The requests that miss the cache together share one
// read: when an entry expires (every tokenCacheTTL) every request of that
// token in flight missed it at once, and each read the store. The read runs
// on a context of its own, so that the request that began it may end first;
// a request whose context ends stops waiting for it.
func (s *Server) readToken(ctx context.Context, hash []byte) (sb.APIToken, error) {
	gen := s.tokens.generation()
	key := strconv.FormatUint(gen, 10) + ":" + string(hash)
	ch := s.tokenReads.DoChan(key, func() (_ any, err error) {
		// DoChan would re-panic out of reach of the recoverer and end the
		// process: a panic of the read answers its requests with an error.
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("read token: panic: %v", p)
			}
		}()
		read := time.Now()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), tokenReadTimeout)
		defer cancel()
		t, err := s.store.APITokenByHash(ctx, hash)
		if err == nil {
			s.tokens.put(hash, t, read, gen)
		}
		return t, err
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return sb.APIToken{}, res.Err
		}
		return res.Val.(sb.APIToken), nil
	case <-ctx.Done():
		return sb.APIToken{}, context.Cause(ctx)
	}
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}
