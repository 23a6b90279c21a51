package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"

	sb "github.com/switchboardhq/switchboard"
)

// BenchmarkReadHandlers measures the server's own work for the two
// documents every app reads, the public health and /api/streaming/config:
// the whole middleware chain and the handler, called in process without
// the network, so that its CPU and allocations per request show.
func BenchmarkReadHandlers(b *testing.B) {
	e := newTestEnv(b)
	e.createProvider(e.agoraProvider("agora", 1))
	e.mustDo("POST", "/api/streaming/providers/agora/health-check", e.tokens[sb.RoleAdmin], nil, 200, nil)
	e.api.public = nil
	client := e.tokens[sb.RoleClient]
	for _, c := range []struct{ name, path, token string }{
		{"publicHealth", "/api/streaming/providers/agora/health", ""},
		{"streamingConfig", "/api/streaming/config", client},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					r := httptest.NewRequest("GET", c.path, nil)
					if c.token != "" {
						r.Header.Set("Authorization", "Bearer "+c.token)
					}
					w := httptest.NewRecorder()
					e.api.ServeHTTP(w, r)
					if w.Code != http.StatusOK {
						b.Fatalf("status %d: %s", w.Code, w.Body)
					}
				}
			})
		})
	}
}
