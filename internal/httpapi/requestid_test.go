package httpapi

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
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
