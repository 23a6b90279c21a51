package config

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/switchboardhq/switchboard"
)

// validateOIDC checks the single sign-on settings: all or nothing.
func (c Config) validateOIDC() error {
	if c.OIDCIssuer == "" {
		if c.OIDCClientID != "" || c.OIDCRoles != "" || c.OIDCRedirectURL != "" {
			return errors.New("oidc-issuer: required by oidc-client-id, oidc-roles and oidc-redirect-url")
		}
		return nil
	}
	if u, err := url.Parse(c.OIDCIssuer); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("oidc-issuer: must be an http(s) URL")
	}
	if c.OIDCClientID == "" {
		return errors.New("oidc-client-id: required with oidc-issuer")
	}
	if c.OIDCRedirectURL != "" {
		if u, err := url.Parse(c.OIDCRedirectURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
			!strings.HasSuffix(u.Path, "/api/auth/oidc/callback") {
			return errors.New("oidc-redirect-url: must be an http(s) URL ending in /api/auth/oidc/callback")
		}
	}
	if c.OIDCRoleClaim == "" {
		return errors.New("oidc-role-claim: must not be empty")
	}
	if _, err := ParseRoleMapping(c.OIDCRoles); err != nil {
		return err
	}
	return nil
}

// ParseRoleMapping reads a role mapping such as "sre=admin,platform=superadmin":
// claim values to the roles admin or superadmin.
func ParseRoleMapping(s string) (map[string]switchboard.Role, error) {
	m := map[string]switchboard.Role{}
	for pair := range strings.SplitSeq(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		value, role, ok := strings.Cut(pair, "=")
		value, role = strings.TrimSpace(value), strings.TrimSpace(role)
		r, known := switchboard.ParseRole(role)
		if !ok || value == "" || !known || r < switchboard.RoleAdmin {
			return nil, fmt.Errorf("oidc-roles: %q must be value=admin or value=superadmin", pair)
		}
		if _, dup := m[value]; dup {
			return nil, fmt.Errorf("oidc-roles: %q is mapped twice", value)
		}
		m[value] = r
	}
	if len(m) == 0 {
		return nil, errors.New("oidc-roles: required with oidc-issuer (such as sre=admin,platform=superadmin)")
	}
	return m, nil
}
