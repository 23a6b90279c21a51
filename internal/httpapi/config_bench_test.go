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
	token := e.tokens[sb.RoleClient]
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest("GET", "/api/streaming/config", nil)
		r.Header.Set("Authorization", "Bearer "+token)
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

// BenchmarkPublicHealthHandler serves the public health of a provider
// straight to the handler, as BenchmarkConfigHandler does the config.
func BenchmarkPublicHealthHandler(b *testing.B) {
	e := newTestEnv(b)
	e.createProvider(e.agoraProvider("agora", 1))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := httptest.NewRequest("GET", "/api/streaming/providers/agora/health", nil)
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
