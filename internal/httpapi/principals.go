package httpapi

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"sync"

	sb "github.com/switchboardhq/switchboard"
)

// Principal names who holds open event streams: a bearer token, a dashboard
// session or a user. A session's streams are held by both the session and its
// user, so that ending either ends them.
type Principal struct {
	Kind string `json:"kind"` // "token", "session", "user" or "bootstrap"
	ID   string `json:"id"`   // the token id, the hex of the session's hash, the case-folded username
}

// EventPrincipalsEnded is the type of the event by which EndPrincipal tells
// the other replicas to end the streams of principals; its data is
// {"principals": [Principal...]}. Its audience is above every role, so that
// no event stream ever carries it.
const EventPrincipalsEnded = "principals.ended"

// audienceInternal is the audience of events that no client receives.
const audienceInternal = sb.RoleSuperadmin + 1

type principalsEnded struct {
	Principals []Principal `json:"principals"`
}

// TokenPrincipal is the holder of the streams opened with the API token of id.
func TokenPrincipal(id string) Principal { return Principal{Kind: "token", ID: id} }

// clientAddressPrincipal holds the streams opened with the client token of
// id from the client address addr (a throttleKey). It bounds them only: it
// is never ended, nor sent to the other replicas (the token is).
func clientAddressPrincipal(id, addr string) Principal {
	return Principal{Kind: "token-address", ID: id + " " + addr}
}

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
// any of ps, and returns how many it ended on this server. It also publishes
// EventPrincipalsEnded on the bus, so that the other replicas, which call
// PrincipalsEnded with it, end theirs too. Call it after the change that
// takes the credentials away is committed (a token revoked, a session
// deleted, a user disabled or deleted, a password changed): a stream opened
// later is authenticated against the store and refused.
//
// It does not touch the store: deleting the sessions of a user is the
// caller's part. Logout and token revocation call it themselves.
func (s *Server) EndPrincipal(ps ...Principal) int {
	if len(ps) == 0 {
		return 0
	}
	s.tokens.clear() // before the streams end: a new one is authenticated afresh
	n := s.open.end(ps...)
	s.publish(EventPrincipalsEnded, audienceInternal, principalsEnded{Principals: ps})
	return n
}

// PrincipalsEnded ends the streams named by an EventPrincipalsEnded event
// from the shared event log (another replica's EndPrincipal, or this one's);
// any other event is ignored. Wire it into the replica's event callback.
func (s *Server) PrincipalsEnded(e sb.Event) int {
	if e.Type != EventPrincipalsEnded {
		return 0
	}
	b, err := json.Marshal(e.Data) // a json.RawMessage from the log, or the value published here
	if err != nil {
		return 0
	}
	var pe principalsEnded
	if err := json.Unmarshal(b, &pe); err != nil {
		s.logger.Warn("malformed principals.ended event", "id", e.ID)
		return 0
	}
	s.tokens.clear()
	return s.open.end(pe.Principals...)
}

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
	gone   func() bool // whether its client has gone, ending it then; nil until known (guarded by streamSet.mu)
}

func newStreamSet() *streamSet {
	return &streamSet{by: map[Principal]map[*openStream]struct{}{}}
}

// open registers a stream held by keys, unless keys[0] already holds limit
// streams (limit ≤ 0: no limit) whose clients are all still there. The stream
// runs under the returned context, which end cancels; release unregisters it
// and must be called when it ends; gone, once called, tells how to find out
// whether its client has gone.
func (ss *streamSet) open(parent context.Context, limit int, keys ...Principal) (ctx context.Context, release func(), gone func(func() bool), err error) {
	if !ss.room(limit, keys[0]) {
		return nil, nil, nil, errTooManyStreams
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if limit > 0 && len(ss.by[keys[0]]) >= limit { // taken meanwhile
		return nil, nil, nil, errTooManyStreams
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
	release = func() {
		cancel()
		ss.release(st)
	}
	gone = func(f func() bool) {
		ss.mu.Lock()
		st.gone = f
		ss.mu.Unlock()
	}
	return ctx, release, gone, nil
}

// room reports whether key holds fewer than limit streams. When it holds
// limit, the streams whose client went away since their last keep-alive
// (a page reloaded, say) are ended and released first.
func (ss *streamSet) room(limit int, key Principal) bool {
	if limit <= 0 {
		return true
	}
	ss.mu.Lock()
	if len(ss.by[key]) < limit {
		ss.mu.Unlock()
		return true
	}
	var checks []*openStream
	for st := range ss.by[key] {
		if st.gone != nil {
			checks = append(checks, st)
		}
	}
	ss.mu.Unlock()
	freed := false
	for _, st := range checks { // without the lock: each reads a connection
		if st.gone() {
			ss.release(st) // the stream's own release follows, and finds nothing left
			freed = true
		}
	}
	return freed
}

// release unregisters st, if it is still registered.
func (ss *streamSet) release(st *openStream) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, k := range st.keys {
		delete(ss.by[k], st)
		if len(ss.by[k]) == 0 {
			delete(ss.by, k)
		}
	}
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
