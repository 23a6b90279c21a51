// Package storetest is the conformance suite that every switchboard.Store
// passes, and fixtures for tests that need valid providers.
package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	"github.com/switchboardhq/switchboard"
)

// AgoraProvider returns a valid, normalised, enabled Agora provider named name,
// with credentials that are unique to the name (so that leak tests can look
// for them).
func AgoraProvider(t testing.TB, name string) switchboard.Provider {
	t.Helper()
	sum := sha256.Sum256([]byte(name))
	p := switchboard.Provider{
		Name:    name,
		Kind:    switchboard.KindAgora,
		Enabled: true,
		Regions: []string{"us-east", "eu-west"},
		Config:  switchboard.ProviderConfig{AppID: "0123456789abcdef0123456789abcdef", BaseURL: "https://api.agora.example"},
		Credentials: switchboard.Credentials{
			CustomerID:     "customer-id-" + name,
			CustomerSecret: "customer-secret-" + name + "-Zq81",
			AppCertificate: hex.EncodeToString(sum[:16]),
		},
		MonthlyBudget: 1234.5,
	}
	p.Normalize()
	if err := p.Validate(); err != nil {
		t.Fatalf("AgoraProvider(%q) is invalid: %v", name, err)
	}
	return p
}

// HTTPProvider returns a valid, normalised, enabled generic HTTP provider named
// name that probes url with a secret header.
func HTTPProvider(t testing.TB, name, url string) switchboard.Provider {
	t.Helper()
	p := switchboard.Provider{
		Name:        name,
		DisplayName: "HTTP " + name,
		Kind:        switchboard.KindHTTP,
		Enabled:     true,
		Weight:      3,
		Config:      switchboard.ProviderConfig{URL: url, Method: "HEAD", ExpectStatus: []int{200, 204}},
		Credentials: switchboard.Credentials{Headers: map[string]string{"Authorization": "Bearer header-secret-" + name}},
	}
	p.Normalize()
	if err := p.Validate(); err != nil {
		t.Fatalf("HTTPProvider(%q) is invalid: %v", name, err)
	}
	return p
}
