package web_test

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/switchboardhq/switchboard/web"
)

// newSite serves the dashboard as the API server does.
func newSite(t *testing.T) *httptest.Server {
	t.Helper()
	site, err := web.New()
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", site.ServeIndex)
	mux.HandleFunc("GET /assets/{path...}", func(w http.ResponseWriter, r *http.Request) {
		site.ServeAsset(w, r, r.PathValue("path"))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestServe(t *testing.T) {
	srv := newSite(t)
	tests := []struct {
		path        string
		status      int
		contentType string
		contains    string
	}{
		{"/", 200, "text/html; charset=utf-8", `<script type="module" src="/assets/app.js">`},
		{"/assets/app.js", 200, "text/javascript; charset=utf-8", "EventSource('/api/events')"},
		{"/assets/api.js", 200, "text/javascript; charset=utf-8", "X-CSRF-Token"},
		{"/assets/charts.js", 200, "text/javascript; charset=utf-8", "export function lineChart"},
		{"/assets/style.css", 200, "text/css; charset=utf-8", ".badge"},
		{"/assets/favicon.svg", 200, "image/svg+xml", "<svg"},
		{"/assets/index.html", 404, "text/plain; charset=utf-8", ""},
		{"/assets/missing.js", 404, "text/plain; charset=utf-8", ""},
		// The mux redirects the cleaned path to /web.go, which is no route.
		{"/assets/../web.go", 404, "text/plain; charset=utf-8", ""},
		{"/assets/%2e%2e/web.go", 404, "text/plain; charset=utf-8", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, err := srv.Client().Get(srv.URL + tt.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.status)
			}
			if got := resp.Header.Get("Content-Type"); got != tt.contentType {
				t.Errorf("Content-Type %q, want %q", got, tt.contentType)
			}
			if resp.StatusCode == 200 {
				if got := resp.Header.Get("Content-Security-Policy"); got != web.ContentSecurityPolicy {
					t.Errorf("Content-Security-Policy %q", got)
				}
				if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
					t.Errorf("X-Content-Type-Options %q", got)
				}
				if got := resp.Header.Get("Cache-Control"); got != "no-cache" {
					t.Errorf("Cache-Control %q, want no-cache", got)
				}
				if resp.Header.Get("ETag") == "" {
					t.Error("no ETag")
				}
			}
			if !strings.Contains(string(body), tt.contains) {
				t.Errorf("body does not contain %q", tt.contains)
			}
		})
	}
}

func TestServeNotModified(t *testing.T) {
	srv := newSite(t)
	resp, err := srv.Client().Get(srv.URL + "/assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	req, _ := http.NewRequest("GET", srv.URL+"/assets/app.js", nil)
	req.Header.Set("If-None-Match", etag)
	resp, err = srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation with the ETag: status %d, want 304", resp.StatusCode)
	}
}

// TestPageHasNoInlineCode checks what the Content-Security-Policy relies on:
// no inline script, no inline style, no event handler attribute.
func TestPageHasNoInlineCode(t *testing.T) {
	html, err := fs.ReadFile(web.Files(), web.IndexPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAllString(string(html), -1) {
		if !strings.Contains(m, ` src="`) {
			t.Errorf("inline script: %s", m)
		}
	}
	for _, bad := range []*regexp.Regexp{
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle="`),
		regexp.MustCompile(`\son[a-z]+="`),
		regexp.MustCompile(`javascript:`),
	} {
		if loc := bad.FindIndex(html); loc != nil {
			t.Errorf("index.html has inline code %q", html[loc[0]:min(loc[1]+20, len(html))])
		}
	}
}

// TestReferencesResolve checks that every asset the page links and every
// module a script imports is embedded.
func TestReferencesResolve(t *testing.T) {
	files := web.Files()
	html, err := fs.ReadFile(files, web.IndexPath)
	if err != nil {
		t.Fatal(err)
	}
	refs := map[string]string{}
	for _, m := range regexp.MustCompile(`(?:src|href)="/assets/([^"]+)"`).FindAllStringSubmatch(string(html), -1) {
		refs[m[1]] = web.IndexPath
	}
	err = fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(p, ".js") {
			return err
		}
		src, err := fs.ReadFile(files, p)
		if err != nil {
			return err
		}
		for _, m := range regexp.MustCompile(`(?m)^import [^'"]*['"]\./([^'"]+)['"]`).FindAllStringSubmatch(string(src), -1) {
			refs[m[1]] = p
		}
		if strings.Contains(string(src), "innerHTML") {
			t.Errorf("%s uses innerHTML: build nodes with dom.js so that no data is parsed as markup", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) < 6 {
		t.Fatalf("found only %d references: %v", len(refs), refs)
	}
	for ref, from := range refs {
		if _, err := fs.Stat(files, ref); err != nil {
			t.Errorf("%s refers to %s, which is not embedded", from, ref)
		}
	}
}
