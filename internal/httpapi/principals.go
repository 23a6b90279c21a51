package httpapi

import (
	"context"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
)

// Principal names who holds open event streams: a bearer token, a dashboard
// session or a user. A session's streams are held by both the session and its
// user, so that ending either ends them.
type Principal struct {
	Kind string // "token", "session", "user" or "bootstrap"
	ID   string // the token id, the hex of the session's hash, the case-folded username
}

// TokenPrincipal is the holder of the streams opened with the API token of id.
func TokenPrincipal(id string) Principal { return Principal{Kind: "token", ID: id} }

// SessionPrincipal is the holder of the streams opened with the session whose
// cookie hashes to hash (auth.HashToken).
func SessionPrincipal(hash []byte) Principal {
	return Principal{Kind: "session", ID: hex.EncodeToString(hash)}
}

// UserPrincipal is the holder of the streams opened by any session of the user.
func UserPrincipal(username string) Principal {
	return Principal{Kind: "user", ID: strings.ToLower(username)}
}

// bootstrapPrincipal holds the streams opened with the bootstrap token.
var bootstrapPrincipal = Principal{Kind: "bootstrap"}

// EndPrincipal ends at once the open event streams (GET /api/events) held by
// any of ps on this server, and returns how many it ended. Call it after the
// change that takes the credentials away is committed (a token revoked, a
// session deleted, a user disabled or deleted, a password changed): a stream
// opened later is authenticated against the store and refused.
//
// It does not touch the store: deleting the sessions of a user is the
// caller's part. Logout and token revocation call it themselves.
func (s *Server) EndPrincipal(ps ...Principal) int { return s.open.end(ps...) }

// OpenStreams returns how many event streams p holds open on this server.
func (s *Server) OpenStreams(p Principal) int { return s.open.count(p) }

// errTooManyStreams is returned by streamSet.open beyond the limit.
var errTooManyStreams = errors.New("too many open event streams")

// streamSet keeps the open event streams by principal, with the function
// that ends each.
type streamSet struct {
	mu sync.Mutex
	by map[Principal]map[*openStream]struct{}
}

type openStream struct {
	cancel context.CancelFunc
	keys   []Principal
}

func newStreamSet() *streamSet {
	return &streamSet{by: map[Principal]map[*openStream]struct{}{}}
}

// open registers a stream held by keys, unless keys[0] already holds limit
// streams (limit ≤ 0: no limit). The stream runs under the returned context,
// which end cancels; release unregisters it and must be called when it ends.
func (ss *streamSet) open(parent context.Context, limit int, keys ...Principal) (context.Context, func(), error) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if limit > 0 && len(ss.by[keys[0]]) >= limit {
		return nil, nil, errTooManyStreams
	}
	ctx, cancel := context.WithCancel(parent)
	st := &openStream{cancel: cancel, keys: keys}
	for _, k := range keys {
		m := ss.by[k]
		if m == nil {
			m = map[*openStream]struct{}{}
			ss.by[k] = m
		}
		m[st] = struct{}{}
	}
	release := func() {
		cancel()
		ss.mu.Lock()
		defer ss.mu.Unlock()
		for _, k := range st.keys {
			delete(ss.by[k], st)
			if len(ss.by[k]) == 0 {
				delete(ss.by, k)
			}
		}
	}
	return ctx, release, nil
}

// end cancels every stream held by any of ps.
func (ss *streamSet) end(ps ...Principal) int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	n := 0
	for _, p := range ps {
		for st := range ss.by[p] {
			st.cancel()
			n++
		}
	}
	return n
}

func (ss *streamSet) count(p Principal) int {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return len(ss.by[p])
}

// principalsOf returns who holds a stream opened by id: the token, or the
// session and its user.
func principalsOf(id identity) []Principal {
	switch {
	case id.session != nil:
		return []Principal{SessionPrincipal(id.session.Hash), UserPrincipal(id.session.Username)}
	case id.actor.Kind == "bootstrap":
		return []Principal{bootstrapPrincipal}
	default:
		return []Principal{TokenPrincipal(id.actor.ID)}
	}
}
