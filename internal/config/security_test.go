package config

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSecurityDefaultsAndSources(t *testing.T) {
	none := func(string) string { return "" }
	d, err := Load(nil, none, io.Discard)
	if err != nil || d.ReadTimeout != 10*time.Second || d.SSEPerToken != 20 || d.TLS() || d.TrustedProxies != "" {
		t.Fatalf("defaults: %+v %v", d, err)
	}
	file := filepath.Join(t.TempDir(), "sb.yaml")
	if err := os.WriteFile(file, []byte("readTimeout: 3s\nssePerToken: 7\ntrustedProxies: 10.0.0.0/8\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SWITCHBOARD_READ_TIMEOUT": "4s", "SWITCHBOARD_SSE_PER_TOKEN": "8",
		"SWITCHBOARD_TLS_CERT": "c.pem", "SWITCHBOARD_TLS_KEY": "k.pem"}
	c, err := Load([]string{"--config", file, "--read-timeout", "5s"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.ReadTimeout != 5*time.Second || c.SSEPerToken != 8 || c.TrustedProxies != "10.0.0.0/8" || c.TLSCert != "c.pem" || c.TLSKey != "k.pem" || !c.TLS() {
		t.Errorf("got %+v", c)
	}
	a, err := Load([]string{"--acme-domain", "sb.example.com, Api.Example.com", "--acme-cache", "/var/lib/sb/acme"}, none, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.ACMEDomains(), []string{"sb.example.com", "api.example.com"}) || !a.TLS() {
		t.Errorf("acme domains %v", a.ACMEDomains())
	}
}

func TestSecurityRejects(t *testing.T) {
	none := func(string) string { return "" }
	for name, c := range map[string]struct {
		args  []string
		field string
	}{
		"read timeout too short":  {[]string{"--read-timeout", "10ms"}, "read-timeout"},
		"no sse":                  {[]string{"--sse-per-token", "0"}, "sse-per-token"},
		"bad proxy":               {[]string{"--trusted-proxies", "10.0.0.0/8,proxy.local"}, "trusted-proxies"},
		"cert without key":        {[]string{"--tls-cert", "c.pem"}, "tls-cert"},
		"key without cert":        {[]string{"--tls-key", "k.pem"}, "tls-key"},
		"acme without cache":      {[]string{"--acme-domain", "sb.example.com"}, "acme-cache"},
		"acme cache alone":        {[]string{"--acme-cache", "dir"}, "acme-domain"},
		"acme and files":          {[]string{"--acme-domain", "sb.example.com", "--acme-cache", "d", "--tls-cert", "c", "--tls-key", "k"}, "acme-domain"},
		"acme ip":                 {[]string{"--acme-domain", "192.0.2.1", "--acme-cache", "d"}, "acme-domain"},
		"acme bad name":           {[]string{"--acme-domain", "not a host", "--acme-cache", "d"}, "acme-domain"},
		"acme single label":       {[]string{"--acme-domain", "localhost", "--acme-cache", "d"}, "acme-domain"},
		"acme http directory":     {[]string{"--acme-domain", "sb.example.com", "--acme-cache", "d", "--acme-directory", "http://ca.example/dir"}, "acme-directory"},
		"acme bad email":          {[]string{"--acme-domain", "sb.example.com", "--acme-cache", "d", "--acme-email", "nobody"}, "acme-email"},
		"read timeout not a time": {[]string{"--read-timeout", "soon"}, "read-timeout"},
	} {
		_, err := Load(c.args, none, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: %v, want an error naming %s", name, err, c.field)
		}
	}
	if _, err := Load(nil, func(k string) string {
		if k == "SWITCHBOARD_READ_TIMEOUT" {
			return "soon"
		}
		return ""
	}, io.Discard); err == nil {
		t.Error("a bad SWITCHBOARD_READ_TIMEOUT was accepted")
	}
}
