package httpapi

import "net/http"

// edgeRegion returns the region of the client's country as the trusted edge
// names it in the configured geo header, mapped through the geo map; "" when
// no header is configured (a header the client set itself is then never
// believed), the request has none or its country maps to no region.
func (s *Server) edgeRegion(r *http.Request) string {
	if s.geoHeader == "" {
		return ""
	}
	region, _ := s.geoMap.Region(r.Header.Get(s.geoHeader))
	return region
}
