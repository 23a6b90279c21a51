package httpapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"

	sb "github.com/switchboardhq/switchboard"
)

// TestRequestID checks that each request gets its own id, the same in its
// context (what the logs name) and in its X-Request-Id header.
func TestRequestID(t *testing.T) {
	var inCtx string
	h := withRequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inCtx = requestID(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	seen := map[string]bool{}
	for range 3 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
		got := rec.Result().Header.Values("X-Request-Id")
		if len(got) != 1 || got[0] != inCtx {
			t.Fatalf("X-Request-Id %q, in the context %q", got, inCtx)
		}
		if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(inCtx) {
			t.Fatalf("request id %q: want 16 hex digits", inCtx)
		}
		if seen[inCtx] {
			t.Fatalf("request id %q given twice", inCtx)
		}
		seen[inCtx] = true
	}
	if id := requestID(httptest.NewRequest("GET", "/x", nil).Context()); id != "" {
		t.Fatalf("request id %q outside withRequestID", id)
	}
}

// TestRequestContextCarriesTheCaller: the request's context answers for its
// caller only once guard has authenticated it, also through contexts made
// from it, and a route reached without withRequestID still gets one.
func TestRequestContextCarriesTheCaller(t *testing.T) {
	e := newTestEnv(t)
	token := e.tokens[sb.RoleClient]
	var before, after sb.Actor
	var afterID identity
	route := e.api.guard(route{Method: "GET", Path: "/x", Role: sb.RoleClient, Handler: func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		after, afterID = sb.ActorFrom(ctx), identityFrom(ctx)
		w.WriteHeader(http.StatusNoContent)
	}})
	for _, h := range []http.Handler{
		withRequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			before = sb.ActorFrom(r.Context())
			route.ServeHTTP(w, r)
		})),
		route,
	} {
		before, after, afterID = sb.Actor{}, sb.Actor{}, identity{}
		r := httptest.NewRequest("GET", "/x", nil)
		r.Header.Set("Authorization", "Bearer "+token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != http.StatusNoContent {
			t.Fatalf("status %d", rec.Code)
		}
		if after.Kind != "token" || after.Role != sb.RoleClient || afterID.actor != after {
			t.Fatalf("after guard: actor %+v, identity %+v", after, afterID)
		}
		if before.Kind == "token" {
			t.Fatalf("before guard the context already named the caller: %+v", before)
		}
	}
}
