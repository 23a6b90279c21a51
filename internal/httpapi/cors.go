package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// CORS lets web apps served from other origins call the API from the browser
// with a bearer token (the SDK's calls: the configuration, streams, the event
// stream). It never allows credentials: the dashboard's session cookie is not
// sent on a cross-origin request that needs a preflight, and no answer to a
// request that carried it is readable by another origin.

// corsAllowHeaders are the request headers a cross-origin caller may send:
// those the SDKs send beside the CORS-safelisted ones.
const corsAllowHeaders = "Authorization, Content-Type, Accept, Cache-Control, Last-Event-ID, If-None-Match, X-Switchboard-Instance"

// corsExposeHeaders are the response headers a cross-origin caller may read
// beside the CORS-safelisted ones: the configuration's ETag, the Retry-After
// of a 429 or 503, the request id.
const corsExposeHeaders = "ETag, Retry-After, X-Request-Id"

// corsAllowMethods are the methods of the API.
const corsAllowMethods = "GET, POST, PUT, DELETE"

// corsMaxAge is how long (seconds) a browser may keep a preflight's answer.
const corsMaxAge = "600"

// ParseCORSOrigins reads a comma-separated list of origins allowed to call
// the API from a browser: each scheme://host[:port] exactly (no path, no
// trailing slash), or "*" alone for any origin. Empty: CORS is off.
func ParseCORSOrigins(s string) ([]string, error) {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if f == "*" {
			out = append(out, f)
			continue
		}
		u, err := url.Parse(f)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(f, "?") || strings.HasSuffix(f, "#") {
			return nil, fmt.Errorf("%q is not an origin: want scheme://host[:port], such as https://app.example.com", f)
		}
		// Browsers send the origin in lower case.
		o := strings.ToLower(u.Scheme + "://" + u.Host)
		if !slices.Contains(out, o) {
			out = append(out, o)
		}
	}
	if slices.Contains(out, "*") && len(out) > 1 {
		return nil, fmt.Errorf("\"*\" allows every origin: list it alone")
	}
	return out, nil
}

// cors answers the preflights of the allowed origins and marks the API's
// answers to them readable; other origins, and paths outside /api/, get no
// CORS header (the answers are as without CORS). With no origin, it is next.
func cors(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	wildcard := slices.Contains(origins, "*")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		// An answer depends on the Origin: caches must keep one per origin.
		h.Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if origin == "" || (!wildcard && !slices.Contains(origins, origin)) {
			next.ServeHTTP(w, r)
			return
		}
		allow := origin
		if wildcard {
			allow = "*"
		}
		h.Set("Access-Control-Allow-Origin", allow)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", corsAllowMethods)
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", corsMaxAge)
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		next.ServeHTTP(w, r)
	})
}
