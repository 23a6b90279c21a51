package livekit

import (
	"os"
	"strings"
	"testing"

	"github.com/switchboardhq/switchboard/internal/providers/probe/probetest"
)

func TestMain(m *testing.M) { os.Exit(probetest.Main(m)) }

func TestBaseURL(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{"http://lk:7880", "http://lk:7880", false},
		{"https://lk.example.com/", "https://lk.example.com", false},
		{"ws://lk:7880", "http://lk:7880", false},
		{"wss://lk.example.com/livekit/?x=1#f", "https://lk.example.com/livekit", false},
		{"ftp://lk", "", true},
		{"lk:7880", "", true},
		{"https://user:pw@lk", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := BaseURL(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("BaseURL(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestAuthReason(t *testing.T) {
	tests := []struct{ body, want string }{
		{`{"code":"unauthenticated","msg":"permissions denied"}`, "permissions denied"},
		{"invalid API key: " + testKey, "invalid API key"},
		{"invalid token: eyJ.x.y, error: go-jose/go-jose: error in cryptographic primitive", "wrong API secret"},
		{"invalid token: eyJ.x.y, error: validation failed, token is expired (exp)", "clocks"},
		{"invalid authorization token", "invalid authorization token"},
		{"<html>nope</html>", "credentials rejected"},
	}
	for _, tt := range tests {
		if got := authReason([]byte(tt.body)); !strings.Contains(got, tt.want) || strings.Contains(got, testKey) {
			t.Errorf("authReason(%q) = %q, want it to contain %q", tt.body, got, tt.want)
		}
	}
}
