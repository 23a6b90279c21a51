// Package livekitfake is a loopback stand-in for a LiveKit server, for tests
// and the demo: it authenticates requests as livekit-server does, down to its
// error bodies, and injects faults through a fault.Server.
package livekitfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/switchboardhq/switchboard/internal/providers/fault"
	"github.com/switchboardhq/switchboard/internal/providers/livekit"
)

// Config configures a Fake.
type Config struct {
	// APIKey and APISecret are the one key pair the fake accepts; empty means the
	// pair of livekit-server --dev (livekit.DevAPIKey, livekit.DevAPISecret).
	APIKey    string
	APISecret string
	// Now tells the fake's time for token checks; nil means time.Now.
	Now func() time.Time
}

// Fake is a loopback stand-in for a LiveKit server. It answers the health check
// (GET /) and RoomService/ListRooms, authenticating requests as livekit-server
// does, down to its error bodies, and injects faults through Faults. It is safe
// for concurrent use.
type Fake struct {
	fault.Fake // URL, Faults and Close
	apiKey     string
	apiSecret  string
	now        func() time.Time

	mu       sync.Mutex
	notReady bool       // guarded by mu
	rooms    []roomInfo // guarded by mu
}

type roomInfo struct {
	SID             string `json:"sid"`
	Name            string `json:"name"`
	CreationTime    string `json:"creation_time"` // int64, which protojson writes as a string
	NumParticipants int    `json:"num_participants"`
}

// New starts a fake LiveKit server on an ephemeral loopback port.
func New(cfg Config) (*Fake, error) {
	f := &Fake{apiKey: cfg.APIKey, apiSecret: cfg.APISecret, now: cfg.Now}
	if f.apiKey == "" {
		f.apiKey = livekit.DevAPIKey
	}
	if f.apiSecret == "" {
		f.apiSecret = livekit.DevAPISecret
	}
	if f.now == nil {
		f.now = time.Now
	}
	var err error
	if f.Fake, err = fault.StartFake(f.handler()); err != nil {
		return nil, fmt.Errorf("livekit fake: %w", err)
	}
	return f, nil
}

// SetNotReady makes the health check answer 406 Not Ready, as a node whose
// statistics are stale does, or 200 OK again.
func (f *Fake) SetNotReady(notReady bool) {
	f.mu.Lock()
	f.notReady = notReady
	f.mu.Unlock()
}

// AddRoom adds a room that ListRooms reports.
func (f *Fake) AddRoom(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rooms = append(f.rooms, roomInfo{
		SID:          fmt.Sprintf("RM_fake%d", len(f.rooms)+1),
		Name:         name,
		CreationTime: fmt.Sprint(f.now().Unix()),
	})
}

// handler mirrors livekit-server: an authentication middleware in front of
// every route, the Twirp RoomService under /twirp/, and the health check on
// every other path.
func (f *Fake) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/twirp/", f.twirp)
	mux.HandleFunc("/", f.health)
	return f.authenticate(mux)
}

func (f *Fake) health(w http.ResponseWriter, _ *http.Request) {
	f.mu.Lock()
	notReady := f.notReady
	f.mu.Unlock()
	if notReady {
		w.WriteHeader(http.StatusNotAcceptable)
		fmt.Fprintf(w, "Not Ready\nNode Updated At %s", time.Unix(0, 0).UTC())
		return
	}
	_, _ = w.Write([]byte("OK"))
}

// listRoomsPath is the Twirp route of RoomService/ListRooms.
const listRoomsPath = "/twirp/livekit.RoomService/ListRooms"

type grantsKey struct{}

// authenticate is livekit-server's APIKeyAuthMiddleware: a request without a
// token passes on without grants; a token that does not verify is answered 401
// in plain text, echoing the API key or the token as the real server does.
func (f *Fake) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		token := ""
		if h != "" {
			if !strings.HasPrefix(h, "Bearer ") {
				plain401(w, "invalid authorization header. Must start with Bearer ")
				return
			}
			token = strings.TrimPrefix(h, "Bearer ")
		} else {
			token = r.URL.Query().Get("access_token")
		}
		if token == "" {
			next.ServeHTTP(w, r)
			return
		}
		iss, err := livekit.Issuer(token)
		if err != nil {
			plain401(w, "invalid authorization token")
			return
		}
		if iss != f.apiKey {
			plain401(w, "invalid API key: "+iss)
			return
		}
		secret := f.apiSecret
		if fault.AuthRejected(r) {
			secret = "wrong-" + secret // answer as the server does for a wrong secret
		}
		claims, err := livekit.VerifyTokenAt(token, iss, secret, f.now())
		if err != nil {
			plain401(w, "invalid token: "+token+", error: "+joseReason(err))
			return
		}
		r = r.WithContext(contextWithGrants(r, claims))
		next.ServeHTTP(w, r)
	})
}

// joseReason words a verification failure as the go-jose library under
// livekit-server does.
func joseReason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "go-jose/go-jose: error in cryptographic primitive"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "go-jose/go-jose/jwt: validation failed, token is expired (exp)"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "go-jose/go-jose/jwt: validation failed, token not valid yet (nbf)"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "go-jose/go-jose/jwt: validation failed, token issued in the future (iat)"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "missing exp claim"
	default:
		return "go-jose/go-jose: " + err.Error()
	}
}

func plain401(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte(msg))
}

// twirp serves the Twirp routes of the RoomService that the probe uses, with
// Twirp's routing errors: POST only, a known method, a JSON or protobuf body.
func (f *Fake) twirp(w http.ResponseWriter, r *http.Request) {
	route := r.Method + " " + r.URL.Path
	if r.Method != http.MethodPost {
		twirpError(w, http.StatusNotFound, "bad_route",
			fmt.Sprintf("unsupported method %q (only POST is allowed)", r.Method), route)
		return
	}
	if r.URL.Path != listRoomsPath {
		twirpError(w, http.StatusNotFound, "bad_route", fmt.Sprintf("no handler for path %q", r.URL.Path), route)
		return
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct != "application/json" {
		// The fake speaks JSON only; the real server also takes application/protobuf.
		twirpError(w, http.StatusNotFound, "bad_route", fmt.Sprintf("unexpected Content-Type: %q", r.Header.Get("Content-Type")), route)
		return
	}
	var in struct {
		Names []string `json:"names"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&in); err != nil {
		twirpError(w, http.StatusBadRequest, "malformed", "the json request could not be decoded", "")
		return
	}
	claims := grantsFrom(r)
	if claims == nil || claims.Video == nil || !claims.Video.RoomList {
		twirpError(w, http.StatusUnauthorized, "unauthenticated", "permissions denied", "")
		return
	}
	f.mu.Lock()
	rooms := make([]roomInfo, 0, len(f.rooms))
	for _, room := range f.rooms {
		if len(in.Names) == 0 || slices.Contains(in.Names, room.Name) {
			rooms = append(rooms, room)
		}
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"rooms": rooms})
}

func twirpError(w http.ResponseWriter, status int, code, msg, route string) {
	body := map[string]any{"code": code, "msg": msg}
	if route != "" {
		body["meta"] = map[string]string{"twirp_invalid_route": route}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func contextWithGrants(r *http.Request, c *livekit.Claims) context.Context {
	return context.WithValue(r.Context(), grantsKey{}, c)
}

func grantsFrom(r *http.Request) *livekit.Claims {
	c, _ := r.Context().Value(grantsKey{}).(*livekit.Claims)
	return c
}
