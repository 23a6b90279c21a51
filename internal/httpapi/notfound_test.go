package httpapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	sb "github.com/switchboardhq/switchboard"
)

// TestNotFoundQuotesWholeCharacters: a bad provider name or stream id is
// quoted in the 404 cut to 64 bytes, never inside a multi-byte character.
func TestNotFoundQuotesWholeCharacters(t *testing.T) {
	e := newTestEnv(t)
	long := "a" + strings.Repeat("é", 40) // byte 64 is inside an é
	want := strconv.Quote("a" + strings.Repeat("é", 31))
	tests := []struct {
		name, method, path, msg string
	}{
		{"provider", "GET", "/api/streaming/providers/" + url.PathEscape(long), "no provider named " + want},
		{"stream", "POST", "/api/streams/" + url.PathEscape(long) + "/end", "no stream " + want},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := e.do(tt.method, tt.path, e.tokens[sb.RoleAdmin], nil)
			if code != http.StatusNotFound {
				t.Fatalf("status %d, want 404: %s", code, body)
			}
			var got errorBody
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if got.Error.Message != tt.msg {
				t.Fatalf("message %q, want %q", got.Error.Message, tt.msg)
			}
		})
	}
}
