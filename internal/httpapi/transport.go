package httpapi

import "net/http"

// hstsValue asks browsers to reach the server over HTTPS only, for a year.
const hstsValue = "max-age=31536000"

// withHSTS sets Strict-Transport-Security on every answer; it is used when
// the server itself serves TLS.
func withHSTS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			w.Header().Set("Strict-Transport-Security", hstsValue)
		}
		next.ServeHTTP(w, r)
	})
}

// secureCookies reports whether cookies must be Secure: always when the
// server serves TLS, else when the request came over TLS or through a proxy
// that says it did.
func (s *Server) secureCookies(r *http.Request) bool {
	return s.tls || r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https"
}
