package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"

	sb "github.com/switchboardhq/switchboard"
)

// BenchmarkConfigHandler serves GET /api/streaming/config with a client
// token straight to the handler (no network, no client), to profile the
// handler's own cost.
func BenchmarkConfigHandler(b *testing.B) {
	e := newTestEnv(b)
	e.createProvider(e.agoraProvider("agora", 1))
	e.createProvider(e.agoraProvider("agora-2", 2))
	benchmarkHandler(b, e, "/api/streaming/config", e.tokens[sb.RoleClient])
}

// BenchmarkPublicHealthHandler serves the public health of a provider
// straight to the handler, as BenchmarkConfigHandler does the config.
func BenchmarkPublicHealthHandler(b *testing.B) {
	e := newTestEnv(b)
	e.createProvider(e.agoraProvider("agora", 1))
	benchmarkHandler(b, e, "/api/streaming/providers/agora/health", "")
}

// benchmarkHandler serves GET path, with token if any, from parallel
// goroutines straight to e's handler, each answer expected to be 200.
func benchmarkHandler(b *testing.B, e *testEnv, path, token string) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest("GET", path, nil)
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		for pb.Next() {
			w := httptest.NewRecorder()
			e.api.ServeHTTP(w, r)
			if w.Code != http.StatusOK {
				b.Errorf("status %d", w.Code)
				return
			}
		}
	})
}
