package httpapi

import (
	"testing"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/geo"
)

// streamRegion starts a stream with headers and returns its region as the
// server stored it.
func (e *testEnv) streamRegion(room string, body map[string]any, headers map[string]string) string {
	e.t.Helper()
	h := map[string]string{"Authorization": bearer(e.tokens[sb.RoleClient])}
	for k, v := range headers {
		h[k] = v
	}
	st, b := e.doHeaders("POST", "/api/streams", body, h)
	if st != 201 {
		e.t.Fatalf("start %s: %d %s", room, st, b)
	}
	var got sb.Stream
	e.mustDo("GET", "/api/streams/"+idOf(b), e.tokens[sb.RoleAdmin], nil, 200, &got)
	return got.Region
}

func TestGeoHeader(t *testing.T) {
	e := newTestEnv(t)
	e.createProvider(e.agoraProvider("agora", 1))
	de := map[string]string{"CF-IPCountry": "DE"}

	// Not configured: the header is never believed.
	if got := e.streamRegion("r1", streamBody("r1", "u1"), de); got != "" {
		t.Errorf("without --geo-header, region = %q; want none", got)
	}

	e.api.geoHeader = "CF-IPCountry"
	for _, tc := range []struct {
		name    string
		body    map[string]any
		headers map[string]string
		want    string
	}{
		{"header mapped by continent", streamBody("r2", "u2"), de, geo.Europe},
		{"lower case country", streamBody("r3", "u3"), map[string]string{"CF-IPCountry": "sg"}, geo.Asia},
		{"the request's region wins", withRegion(streamBody("r4", "u4"), "us-west"), de, "us-west"},
		{"unknown country (Tor)", streamBody("r5", "u5"), map[string]string{"CF-IPCountry": "T1"}, ""},
		{"no header", streamBody("r6", "u6"), nil, ""},
		{"another header is not believed", streamBody("r7", "u7"), map[string]string{"CloudFront-Viewer-Country": "DE"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := e.streamRegion(tc.name, tc.body, tc.headers); got != tc.want {
				t.Errorf("region = %q; want %q", got, tc.want)
			}
		})
	}

	e.api.geoMap = geo.Map{"DE": "eu-central"}
	if got := e.streamRegion("r8", streamBody("r8", "u8"), de); got != "eu-central" {
		t.Errorf("with a geo map, region = %q; want eu-central", got)
	}
}

func withRegion(body map[string]any, region string) map[string]any {
	body["region"] = region
	return body
}
