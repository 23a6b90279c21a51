package switchboard_test

import (
	"strings"
	"testing"

	sb "github.com/switchboardhq/switchboard"
)

func TestValidateProviderName(t *testing.T) {
	reserved := []string{"health-check-all", "priorities"}
	tests := []struct {
		name string
		ok   bool
	}{
		{"agora", true},
		{"priorities-eu", true},
		{"health-check", true},
		{"priorities", false},
		{"health-check-all", false},
		{"Priorities", false}, // not a slug
		{"", false},
	}
	for _, tt := range tests {
		err := sb.ValidateProviderName(tt.name, reserved)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateProviderName(%q) = %v, want ok %v", tt.name, err, tt.ok)
			continue
		}
		if err != nil && (!sb.IsCode(err, sb.EInvalid) || fieldOf(err) != "name") {
			t.Errorf("ValidateProviderName(%q) = %v, want an invalid name", tt.name, err)
		}
	}
	if err := sb.ValidateProviderName("priorities", reserved); !strings.Contains(err.Error(), "reserved") {
		t.Errorf("the error %q does not say the name is reserved", err)
	}
	if err := sb.ValidateProviderName("priorities", nil); err != nil {
		t.Errorf("with nothing reserved: %v", err)
	}
}

func fieldOf(err error) string {
	if e, ok := err.(*sb.Error); ok {
		return e.Field
	}
	return ""
}

func TestProviderURLPorts(t *testing.T) {
	tests := []struct {
		url string
		ok  bool
	}{
		{"http://127.0.0.1:1", true},
		{"https://example.com:65535/x", true},
		{"https://example.com/x", true},
		{"http://[::1]:7880", true},
		{"http://127.0.0.1:0", false},
		{"http://127.0.0.1:65536", false},
		{"http://127.0.0.1:99999999999999999999", false},
		{"http://[::1]:70000", false},
		{"http://example.com:/", false},
		{"ftp://example.com", false},
	}
	for _, tt := range tests {
		for _, kind := range []sb.Kind{sb.KindLiveKit, sb.KindHTTP} {
			p := sb.Provider{Name: "p", Kind: kind, Enabled: true, Config: sb.ProviderConfig{URL: tt.url}}
			p.Normalize()
			err := p.Validate()
			if (err == nil) != tt.ok {
				t.Errorf("%s url %s: %v, want ok %v", kind, tt.url, err, tt.ok)
			} else if err != nil && fieldOf(err) != "config.url" {
				t.Errorf("%s url %s: %v, want field config.url", kind, tt.url, err)
			}
		}
		p := sb.Provider{Name: "p", Kind: sb.KindZegocloud, Enabled: true, Config: sb.ProviderConfig{AppID: "123", BaseURL: tt.url}}
		p.Normalize()
		if err := p.Validate(); (err == nil) != tt.ok {
			t.Errorf("baseUrl %s: %v, want ok %v", tt.url, err, tt.ok)
		} else if err != nil && fieldOf(err) != "config.baseUrl" {
			t.Errorf("baseUrl %s: %v, want field config.baseUrl", tt.url, err)
		}
	}
}
