package httpapi

import (
	"fmt"
	"net/http"
	"sync"

	"github.com/switchboardhq/switchboard/web"
)

// The dashboard's routes. They serve the embedded page and its files, which
// hold no data: the page reads everything from the API after a login.
const (
	dashboardIndexPath  = "/{$}"
	dashboardAssetsPath = "/assets/{path...}"
)

// isDashboardPath reports whether a route pattern's path serves the dashboard
// rather than the JSON API.
func isDashboardPath(p string) bool {
	return p == dashboardIndexPath || p == dashboardAssetsPath
}

// dashboard reads the embedded dashboard once, on first use: its files are
// fixed at build time, so every server shares them.
var dashboard = sync.OnceValues(web.New)

func (s *Server) dashboardIndex(w http.ResponseWriter, r *http.Request) {
	site, err := dashboard()
	if err != nil {
		s.writeError(w, r, fmt.Errorf("dashboard: %w", err))
		return
	}
	site.ServeIndex(w, r)
}

func (s *Server) dashboardAsset(w http.ResponseWriter, r *http.Request) {
	site, err := dashboard()
	if err != nil {
		s.writeError(w, r, fmt.Errorf("dashboard: %w", err))
		return
	}
	site.ServeAsset(w, r, r.PathValue("path"))
}
