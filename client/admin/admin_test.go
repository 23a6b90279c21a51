package admin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

const testToken = "sbt_admin-test-token-9a8b7c"

// newServer answers every request with status and body; last returns the
// last request received.
func newServer(t *testing.T, status int, body string) (srv *httptest.Server, last func() *http.Request) {
	t.Helper()
	var (
		mu  sync.Mutex
		req *http.Request
	)
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		req = r.Clone(context.Background())
		req.Body = io.NopCloser(strings.NewReader(string(b)))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, func() *http.Request {
		mu.Lock()
		defer mu.Unlock()
		return req
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"envelope with field", 400, `{"error":{"code":"invalid","message":"must match ^[a-z]$","field":"name"}}`, "400 invalid: must match ^[a-z]$ (field name)"},
		{"envelope", 404, `{"error":{"code":"not_found","message":"no provider named \"x\""}}`, `404 not_found: no provider named "x"`},
		{"not an envelope", 502, `<html>bad gateway</html>`, "502: bad gateway"},
		{"empty", 503, ``, "503: service unavailable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, _ := newServer(t, tt.status, tt.body)
			c, err := New(srv.URL, testToken, srv.Client())
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.GetProvider(context.Background(), "x")
			var e *Error
			if !errors.As(err, &e) || e.StatusCode != tt.status {
				t.Fatalf("err = %v, want *Error with status %d", err, tt.status)
			}
			if err.Error() != tt.want {
				t.Errorf("err = %q, want %q", err, tt.want)
			}
			if !IsStatus(err, tt.status) || strings.Contains(err.Error(), testToken) {
				t.Errorf("IsStatus false or token in error: %v", err)
			}
		})
	}
}

func TestTransportErrorHasNoToken(t *testing.T) {
	srv, _ := newServer(t, 200, `{}`)
	url := srv.URL
	srv.Close()
	c, err := New(url, testToken, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListProviders(context.Background())
	if err == nil || strings.Contains(err.Error(), testToken) {
		t.Errorf("err = %v, want a connection error without the token", err)
	}
}

func TestRequests(t *testing.T) {
	srv, lastReq := newServer(t, 200, `{"name":"a b","kind":"http","enabled":false,"credentialsSet":true,"status":"DISABLED"}`)
	c, err := New(srv.URL+"/prefix/", testToken, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.SetEnabled(context.Background(), "a b", false)
	if err != nil {
		t.Fatal(err)
	}
	last := lastReq()
	if last.Method != "PUT" || last.URL.EscapedPath() != "/prefix/api/streaming/providers/a%20b" {
		t.Errorf("request %s %s", last.Method, last.URL.EscapedPath())
	}
	if got := last.Header.Get("Authorization"); got != "Bearer "+testToken {
		t.Errorf("Authorization %q", got)
	}
	if got := last.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type %q", got)
	}
	b, _ := io.ReadAll(last.Body)
	if string(b) != `{"enabled":false}` {
		t.Errorf("body %s", b)
	}
	if p.Name != "a b" || p.Enabled || !p.CredentialsSet || p.Status != "DISABLED" || !json.Valid(p.JSON) {
		t.Errorf("provider %+v", p)
	}

	// A raw body is sent as is; an invalid one is refused before sending.
	if _, err := c.CreateProvider(context.Background(), json.RawMessage(`{"name":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(lastReq().Body); string(b) != `{"name":"x"}` {
		t.Errorf("raw body %s", b)
	}
	if _, err := c.CreateProvider(context.Background(), json.RawMessage(`{"name":`)); err == nil {
		t.Error("invalid raw body sent")
	}

	// No token, no header.
	anon, _ := New(srv.URL, "", srv.Client())
	if _, err := anon.ListTokens(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := lastReq().Header["Authorization"]; ok {
		t.Error("Authorization sent without a token")
	}
}

func TestNew(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8080", "ftp://h", "http://h?q=1", "http://"} {
		if _, err := New(u, "", nil); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
	if _, err := New("http://h", "a\nb", nil); err == nil {
		t.Error("token with a newline accepted")
	}
	_, err := New("http://user:pa55word@h/?x=1", "", nil)
	if err == nil || strings.Contains(err.Error(), "pa55word") {
		t.Errorf("err = %v, want an error without the password", err)
	}
}
