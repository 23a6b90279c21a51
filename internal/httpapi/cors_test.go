package httpapi

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestParseCORSOrigins(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		bad  bool
	}{
		{in: "", want: nil},
		{in: " , ", want: nil},
		{in: "https://app.example.com", want: []string{"https://app.example.com"}},
		{in: "https://App.Example.com:8443, http://127.0.0.1:3000,https://app.example.com:8443",
			want: []string{"https://app.example.com:8443", "http://127.0.0.1:3000"}},
		{in: "*", want: []string{"*"}},
		{in: "*, https://app.example.com", bad: true},
		{in: "app.example.com", bad: true},
		{in: "https://app.example.com/", bad: true},
		{in: "https://app.example.com/path", bad: true},
		{in: "https://app.example.com?x=1", bad: true},
		{in: "https://user@app.example.com", bad: true},
		{in: "ftp://app.example.com", bad: true},
		{in: "https://", bad: true},
		{in: "null", bad: true},
	} {
		got, err := ParseCORSOrigins(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("%q: accepted as %q", tc.in, got)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: %q %v, want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestCORS plays requests through the middleware in front of a handler that
// answers as the API does: preflights of allowed origins end in the
// middleware, everything else reaches the handler, and only allowed origins
// get CORS headers, never Allow-Credentials.
func TestCORS(t *testing.T) {
	const app, other = "https://app.example.com", "https://evil.example.net"
	var reached int
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		w.Header().Set("ETag", `"c1"`)
		if r.Method == http.MethodOptions {
			w.Header().Set("Allow", "GET, POST")
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	preflight := map[string]string{"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization,if-none-match"}
	for _, tc := range []struct {
		name     string
		origins  []string
		method   string
		path     string
		origin   string
		headers  map[string]string
		status   int
		reached  bool
		allow    string // Access-Control-Allow-Origin; "" = no CORS header at all
		vary     bool
		expose   bool
		preflits bool
	}{
		{name: "off: no header", origins: nil, method: "GET", path: "/api/streaming/config", origin: app, status: 200, reached: true},
		{name: "off: preflight goes to the API", origins: nil, method: "OPTIONS", path: "/api/streams", origin: app, headers: preflight, status: 405, reached: true},
		{name: "allowed: actual request", origins: []string{app}, method: "GET", path: "/api/streaming/config", origin: app, status: 200, reached: true, allow: app, vary: true, expose: true},
		{name: "allowed: preflight", origins: []string{other, app}, method: "OPTIONS", path: "/api/streams", origin: app, headers: preflight, status: 204, allow: app, vary: true, preflits: true},
		{name: "allowed: preflight of the event stream", origins: []string{app}, method: "OPTIONS", path: "/api/events", origin: app,
			headers: map[string]string{"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization,cache-control,last-event-id"}, status: 204, allow: app, vary: true, preflits: true},
		{name: "allowed: OPTIONS that is no preflight", origins: []string{app}, method: "OPTIONS", path: "/api/streams", origin: app, status: 405, reached: true, allow: app, vary: true, expose: true},
		{name: "other origin: actual request", origins: []string{app}, method: "GET", path: "/api/streaming/config", origin: other, status: 200, reached: true, vary: true},
		{name: "other origin: preflight", origins: []string{app}, method: "OPTIONS", path: "/api/streams", origin: other, headers: preflight, status: 405, reached: true, vary: true},
		{name: "origin differs in port", origins: []string{app}, method: "GET", path: "/api/streams", origin: app + ":8443", status: 200, reached: true, vary: true},
		{name: "origin differs in scheme", origins: []string{app}, method: "GET", path: "/api/streams", origin: "http://app.example.com", status: 200, reached: true, vary: true},
		{name: "opaque origin", origins: []string{app}, method: "GET", path: "/api/streams", origin: "null", status: 200, reached: true, vary: true},
		{name: "no origin", origins: []string{app}, method: "GET", path: "/api/streams", status: 200, reached: true, vary: true},
		{name: "outside the API", origins: []string{app}, method: "GET", path: "/", origin: app, status: 200, reached: true},
		{name: "outside the API: preflight", origins: []string{app}, method: "OPTIONS", path: "/metrics", origin: app, headers: preflight, status: 405, reached: true},
		{name: "any origin", origins: []string{"*"}, method: "GET", path: "/api/events", origin: other, status: 200, reached: true, allow: "*", vary: true, expose: true},
		{name: "any origin: preflight", origins: []string{"*"}, method: "OPTIONS", path: "/api/events", origin: other, headers: preflight, status: 204, allow: "*", vary: true, preflits: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reached = 0
			r := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			cors(tc.origins, api).ServeHTTP(w, r)
			h := w.Result().Header
			if w.Code != tc.status || (reached == 1) != tc.reached {
				t.Fatalf("status %d, reached the API %v; want %d, %v", w.Code, reached == 1, tc.status, tc.reached)
			}
			if got := h.Get("Access-Control-Allow-Origin"); got != tc.allow {
				t.Errorf("Allow-Origin %q, want %q", got, tc.allow)
			}
			if got := h.Get("Access-Control-Allow-Credentials"); got != "" {
				t.Errorf("Allow-Credentials %q: credentials are never allowed", got)
			}
			if got := slices.Contains(h.Values("Vary"), "Origin"); got != tc.vary {
				t.Errorf("Vary: Origin %v, want %v", got, tc.vary)
			}
			expose := h.Get("Access-Control-Expose-Headers")
			if (expose != "") != tc.expose {
				t.Errorf("Expose-Headers %q, want some: %v", expose, tc.expose)
			}
			if tc.expose {
				for _, name := range []string{"ETag", "Retry-After", "X-Request-Id"} {
					if !strings.Contains(expose, name) {
						t.Errorf("Expose-Headers %q lacks %s", expose, name)
					}
				}
			}
			methods, headers, maxAge := h.Get("Access-Control-Allow-Methods"), h.Get("Access-Control-Allow-Headers"), h.Get("Access-Control-Max-Age")
			if !tc.preflits {
				if methods != "" || headers != "" || maxAge != "" {
					t.Errorf("preflight headers on an answer that is none: %q %q %q", methods, headers, maxAge)
				}
				return
			}
			for _, m := range []string{"GET", "POST", "PUT", "DELETE"} {
				if !strings.Contains(methods, m) {
					t.Errorf("Allow-Methods %q lacks %s", methods, m)
				}
			}
			for _, name := range []string{"Authorization", "Content-Type", "Last-Event-ID", "If-None-Match", "Cache-Control"} {
				if !strings.Contains(headers, name) {
					t.Errorf("Allow-Headers %q lacks %s", headers, name)
				}
			}
			if maxAge == "" || maxAge == "0" {
				t.Errorf("Max-Age %q", maxAge)
			}
			if w.Body.Len() != 0 {
				t.Errorf("preflight body %q", w.Body.String())
			}
		})
	}
}
