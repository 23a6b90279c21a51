package httpapi

import (
	"net/http"

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

// site is the embedded dashboard, read once: its files are fixed at build time.
var site = web.MustNew()

func (s *Server) dashboardIndex(w http.ResponseWriter, r *http.Request) {
	site.ServeIndex(w, r)
}

func (s *Server) dashboardAsset(w http.ResponseWriter, r *http.Request) {
	site.ServeAsset(w, r, r.PathValue("path"))
}
