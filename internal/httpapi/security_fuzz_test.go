package httpapi

import (
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"

	sb "github.com/switchboardhq/switchboard"
)

// FuzzDestinationBinding updates a provider that has credentials with any
// body: the answer is a coded client error, or, when the destination
// changed, the provider keeps none of the credentials it had unless the body
// entered the same value again.
func FuzzDestinationBinding(f *testing.F) {
	for _, s := range []string{
		`{"config":{"url":"http://attacker.invalid/"}}`,
		`{"config":{"url":"https://web.invalid/health","method":"POST"}}`,
		`{"config":{"url":"http://attacker.invalid/"},"credentials":{"headers":{"X-New":"n"}}}`,
		`{"config":{"url":"http://attacker.invalid/"},"credentials":{}}`,
		`{"config":{"url":"https://web.invalid/health","method":"GET","expectStatus":[204]}}`,
		`{"priority":2}`, `{"credentials":{"headers":{"X-Key":"other"}}}`, `{}`, `null`,
	} {
		f.Add([]byte(s))
	}
	const old = "old-secret-value-31"
	base := sb.Provider{Name: "web", Kind: sb.KindHTTP, Enabled: true,
		Config:      sb.ProviderConfig{URL: "https://web.invalid/health"},
		Credentials: sb.Credentials{Headers: map[string]string{"X-Key": old}}}
	base.Normalize()
	if err := base.Validate(); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var in sb.ProviderInput
		if err := decodeJSON(body, &in); err != nil {
			return
		}
		p, err := in.ApplyTo(base)
		if err != nil {
			checkCoded(t, err)
			return
		}
		if sb.DestinationChange(base, p) == "" {
			return
		}
		entered := in.Credentials != nil && slices.Contains(in.Credentials.Apply(sb.Credentials{}).Values(), old)
		if slices.Contains(p.Credentials.Values(), old) && !entered {
			t.Fatalf("the destination moved to %s %s with the old credentials", p.Config.Method, p.Config.URL)
		}
	})
}

// FuzzClientAddr reads any X-Forwarded-For from a trusted proxy: the result
// is always an address, the remote one or one of the hops, never a panic.
func FuzzClientAddr(f *testing.F) {
	for _, s := range []string{"203.0.113.9", "6.6.6.6, 203.0.113.9, 10.0.0.1", "", "garbage", "[2001:db8::1]:443",
		",,,", "10.0.0.1, 10.0.0.2", "::ffff:10.0.0.1", "1.2.3.4%eth0"} {
		f.Add(s)
	}
	proxies, _ := ParseTrustedProxies("10.0.0.0/8")
	s := &Server{proxies: proxies, logger: slog.New(slog.DiscardHandler)}
	f.Fuzz(func(t *testing.T, xff string) {
		r, _ := http.NewRequest("GET", "/", nil)
		r.RemoteAddr = "10.9.9.9:1234"
		r.Header.Set("X-Forwarded-For", xff)
		got := s.clientAddr(r)
		if _, err := netip.ParseAddr(got); err != nil {
			t.Fatalf("clientAddr(%q) = %q, not an address", xff, got)
		}
		if got == "10.9.9.9" {
			return
		}
		for h := range strings.SplitSeq(xff, ",") {
			if a, err := netip.ParseAddr(stripPort(strings.TrimSpace(h))); err == nil && a.Unmap().String() == got {
				return
			}
		}
		t.Fatalf("clientAddr(%q) = %q, neither the remote address nor a hop", xff, got)
	})
}
