package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// hostnameRE matches a DNS host name that a certificate may be issued for.
var hostnameRE = regexp.MustCompile(`^(?i)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$`)

// ACMEDomains returns the host names of --acme-domain.
func (c Config) ACMEDomains() []string {
	var out []string
	for d := range strings.SplitSeq(c.ACMEDomain, ",") {
		if d = strings.TrimSpace(d); d != "" {
			out = append(out, strings.ToLower(d))
		}
	}
	return out
}

// TLS reports whether the server serves HTTPS.
func (c Config) TLS() bool { return c.TLSCert != "" || c.ACMEDomain != "" }

// validateSecurity checks the settings of transport security and limits.
func (c Config) validateSecurity() error {
	if c.ReadTimeout < 100*time.Millisecond || c.ReadTimeout > time.Hour {
		return errors.New("read-timeout: must be from 100ms to 1h")
	}
	if c.SSEPerToken < 1 || c.SSEPerToken > 10000 {
		return errors.New("sse-per-token: must be from 1 to 10000")
	}
	for p := range strings.SplitSeq(c.TrustedProxies, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if _, err := netip.ParsePrefix(p); err == nil {
			continue
		}
		if _, err := netip.ParseAddr(p); err != nil {
			return fmt.Errorf("trusted-proxies: %q is not an IP address or CIDR prefix", p)
		}
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("tls-cert and tls-key: give both or neither")
	}
	if c.ACMEDomain == "" {
		if c.ACMECache != "" || c.ACMEEmail != "" || c.ACMEDirectory != "" {
			return errors.New("acme-cache, acme-email and acme-directory: need acme-domain")
		}
		return nil
	}
	if c.TLSCert != "" {
		return errors.New("acme-domain: cannot be used with tls-cert and tls-key (choose one source of certificates)")
	}
	ds := c.ACMEDomains()
	if len(ds) == 0 {
		return errors.New("acme-domain: give at least one host name")
	}
	for _, d := range ds {
		if len(d) > 253 || !hostnameRE.MatchString(d) {
			return fmt.Errorf("acme-domain: %q is not a DNS host name", d)
		}
		if _, err := netip.ParseAddr(d); err == nil {
			return fmt.Errorf("acme-domain: %q is an IP address, not a host name", d)
		}
	}
	if c.ACMECache == "" {
		return errors.New("acme-cache: required with acme-domain (a directory that keeps the account key and the certificates)")
	}
	if c.ACMEEmail != "" && (!strings.Contains(c.ACMEEmail, "@") || strings.ContainsAny(c.ACMEEmail, " \r\n")) {
		return errors.New("acme-email: must be an email address")
	}
	if c.ACMEDirectory != "" {
		u, err := url.Parse(c.ACMEDirectory)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return errors.New("acme-directory: must be an https:// URL")
		}
	}
	return nil
}
