// Package web is the operator dashboard: an HTML page, its stylesheet and
// JavaScript modules, embedded in the binary with go:embed. There is no build
// step: the files under static/ are served as they are.
//
// The page holds no data. It logs in through the API and reads everything from
// it (with the session cookie and the CSRF token the login returns), so it can
// be served to anyone. It follows the server's events (GET /api/events) and
// reloads its data every 30 seconds as a fallback; the query parameter
// refresh=<seconds> changes that interval, for example for a wall display.
//
// The modules under static/: app.js (the controller: session, refresh, live
// events, actions), api.js (requests, CSRF header, errors), views.js (cards,
// streams table, events list), form.js (the provider form), routing.js (the
// routing policy, its shares and region overrides), charts.js (SVG history
// and bar charts), reports.js (the Reports section), format.js and dom.js
// (helpers that build nodes without parsing markup).
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed static
var embedded embed.FS

// ContentSecurityPolicy is sent with every dashboard response. Scripts,
// styles and connections come from the same origin only; no inline script or
// style is allowed, and the page may not be framed.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// IndexPath is the file served for the dashboard's root.
const IndexPath = "index.html"

// asset is one embedded file, read once, with what its headers need.
type asset struct {
	name        string
	body        []byte
	etag        string
	contentType string
}

// contentTypes maps the extensions of the embedded files to their media types.
// It is explicit so that the answer does not depend on the host's MIME tables.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
	".png":  "image/png",
	".json": "application/json",
}

// Files is the dashboard's file system: index.html at its root, and the
// assets next to it.
func Files() fs.FS {
	sub, err := fs.Sub(embedded, "static")
	if err != nil {
		panic(err) // "static" is a valid path, embedded above
	}
	return sub
}

// Site serves the embedded dashboard.
type Site struct {
	assets map[string]asset // by path relative to static/
}

// New reads the embedded files once. It fails only if a file has an extension
// without a known content type, which the package's tests rule out.
func New() (*Site, error) {
	s := &Site{assets: map[string]asset{}}
	err := fs.WalkDir(Files(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("dashboard file %s: no content type for its extension", p)
		}
		b, err := fs.ReadFile(Files(), p)
		if err != nil {
			return fmt.Errorf("dashboard file %s: %w", p, err)
		}
		sum := sha256.Sum256(b)
		s.assets[p] = asset{name: p, body: b, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, contentType: ct}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ServeIndex answers with the dashboard page.
func (s *Site) ServeIndex(w http.ResponseWriter, r *http.Request) {
	s.serve(w, r, IndexPath)
}

// ServeAsset answers with the embedded file name (a path relative to the
// dashboard's root, such as "app.js"), or 404.
func (s *Site) ServeAsset(w http.ResponseWriter, r *http.Request, name string) {
	if name == IndexPath || strings.HasPrefix(name, "/") || strings.Contains(name, "..") {
		s.notFound(w)
		return
	}
	s.serve(w, r, name)
}

func (s *Site) serve(w http.ResponseWriter, r *http.Request, name string) {
	a, ok := s.assets[name]
	if !ok {
		s.notFound(w)
		return
	}
	h := w.Header()
	securityHeaders(h)
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", a.etag)
	// Names carry no content hash, so caches revalidate every time; the ETag
	// makes that a 304 without a body.
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, a.name, time.Time{}, bytes.NewReader(a.body))
}

func (s *Site) notFound(w http.ResponseWriter) {
	h := w.Header()
	securityHeaders(h)
	h.Set("Cache-Control", "no-store")
	http.Error(w, "404 page not found", http.StatusNotFound)
}

func securityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
}
