package httpapi

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
)

// routeMux is a mux with the server's routes whose handlers record the
// pattern and the name wildcard of what they serve.
func routeMux(t testing.TB, s *Server) (*http.ServeMux, *[2]string) {
	t.Helper()
	var got [2]string
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.HandleFunc(rt.Method+" "+rt.Path, func(w http.ResponseWriter, r *http.Request) {
			got = [2]string{r.Pattern, r.PathValue("name")}
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { got = [2]string{"/", ""} })
	return mux, &got
}

// checkDispatch fails when dispatch would serve r itself otherwise than the
// mux does: another route, another name, or a request the mux redirects.
func checkDispatch(t testing.TB, s *Server, mux *http.ServeMux, got *[2]string, r *http.Request) {
	t.Helper()
	h, pattern, name := s.hot(r)
	if h == nil {
		return
	}
	*got = [2]string{}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, r)
	if *got != [2]string{pattern, name} {
		t.Fatalf("%s %q (raw %q): dispatch serves %q name %q, the mux %q name %q (status %d)",
			r.Method, r.URL.Path, r.URL.RawPath, pattern, name, got[0], got[1], rec.Code)
	}
}

// TestDispatchAsTheMux: the routes dispatch finds itself are those the mux
// finds, with the same name, and it leaves everything else to the mux.
func TestDispatchAsTheMux(t *testing.T) {
	e := newTestEnv(t)
	mux, got := routeMux(t, e.api)
	hot := map[string]bool{}
	for _, c := range []struct{ method, target string }{
		{"GET", "/api/streaming/config"},
		{"GET", "/api/streaming/providers/agora/health"},
		{"GET", "/api/streaming/providers/a%20b/health"},
		{"GET", "/api/streaming/providers/%C3%A9/health"},
		{"GET", "/api/streaming/providers/a%2Fb/health"},
		{"GET", "/api/streaming/providers/./health"},
		{"GET", "/api/streaming/providers/../health"},
		{"GET", "/api/streaming/providers//health"},
		{"GET", "/api/streaming/providers/a//health"},
		{"GET", "/api/streaming/providers/agora/health/"},
		{"GET", "/api/streaming/providers/agora/health-check"},
		{"GET", "/api/streaming/providers/agora"},
		{"GET", "/api/streaming//config"},
		{"GET", "/api/streaming/config/"},
		{"HEAD", "/api/streaming/config"},
		{"POST", "/api/streaming/config"},
		{"HEAD", "/api/streaming/providers/agora/health"},
		{"GET", "/api/streaming/providers/agora/health?x=1"},
	} {
		r := httptest.NewRequest(c.method, c.target, nil)
		checkDispatch(t, e.api, mux, got, r)
		if h, _, _ := e.api.hot(r); h != nil {
			hot[c.method+" "+c.target] = true
		}
	}
	for _, want := range []string{"GET /api/streaming/config", "GET /api/streaming/providers/agora/health",
		"GET /api/streaming/providers/a%20b/health", "GET /api/streaming/providers/agora/health?x=1"} {
		if !hot[want] {
			t.Errorf("%s is left to the mux", want)
		}
	}
	if len(hot) != 5 {
		t.Errorf("dispatch serves %d of the requests itself: %v", len(hot), hot)
	}
	// Served end to end, a hot route answers as before.
	e.createProvider(e.agoraProvider("agora", 1))
	var h struct{ Name string }
	e.mustDo("GET", "/api/streaming/providers/agora/health", "", nil, 200, &h)
	if h.Name != "agora" {
		t.Errorf("the public health of agora names %q", h.Name)
	}
	e.mustDo("GET", "/api/streaming/providers/nope/health", "", nil, 404, nil)
}

// FuzzDispatch holds dispatch to the mux's choice for any path.
func FuzzDispatch(f *testing.F) {
	for _, p := range []string{"/api/streaming/config", "/api/streaming/providers/agora/health",
		"/api/streaming/providers/a%2F/health", "/api/streaming/providers/%2E/health", "/api/streaming/providers/x/./health"} {
		f.Add("GET", p)
	}
	e := newTestEnv(f)
	mux, got := routeMux(f, e.api)
	f.Fuzz(func(t *testing.T, method, target string) {
		u, err := url.ParseRequestURI(target)
		if err != nil || !validMethod(method) {
			return
		}
		r := &http.Request{Method: method, URL: u, Host: "example.com", Header: http.Header{}, RequestURI: target}
		checkDispatch(t, e.api, mux, got, r)
	})
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for _, c := range m {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}
