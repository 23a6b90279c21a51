package agorafake

import (
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/switchboardhq/switchboard/internal/providers/fault"
	"github.com/switchboardhq/switchboard/internal/providers/probe/probetest"
)

const (
	testAppID    = "0123456789abcdef0123456789abcdef"
	testCustomer = "cust-4f1d2a9b7c"
	testSecret   = "secret-9e8d7c6b5a4f3e2d"
)

func TestMain(m *testing.M) { os.Exit(probetest.Main(m)) }

func newFake(t *testing.T) *Fake {
	t.Helper()
	f, err := New(Config{AppID: testAppID, CustomerID: testCustomer, CustomerSecret: testSecret,
		Channels: []Channel{{Name: "lobby", UserCount: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	probetest.CloseAtEnd(t, f)
	return f
}

func TestFakeEndpoints(t *testing.T) {
	probetest.CheckGoroutines(t)
	f := newFake(t)
	get := func(path, id, secret string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, f.URL()+path, nil)
		req.SetBasicAuth(id, secret)
		return probetest.Do(t, req)
	}
	tests := []struct {
		path, id, secret string
		status           int
		body             string
	}{
		{"/dev/v1/projects", testCustomer, testSecret, 200, `"vendor_key":"` + testAppID + `"`},
		{"/dev/v1/projects", testCustomer, "nope", 401, unauthorizedBody},
		{"/dev/v1/channel/" + testAppID + "?page_no=0&page_size=1", testCustomer, testSecret, 200, `{"success":true,"data":{"channels":[{"channel_name":"lobby","user_count":3}],"total_size":1}}`},
		{"/dev/v1/channel/" + testAppID + "?page_no=1&page_size=1", testCustomer, testSecret, 200, `"channels":[]`},
		{"/dev/v1/channel/xyz", testCustomer, testSecret, 400, invalidAppIDBody},
		{"/dev/v1/channel/" + strings.Repeat("a", 32), testCustomer, testSecret, 401, unauthorizedBody},
		{"/dev/v1/channel/" + testAppID, "", "", 401, unauthorizedBody},
	}
	for _, tt := range tests {
		status, body := get(tt.path, tt.id, tt.secret)
		if status != tt.status || !strings.Contains(body, tt.body) {
			t.Errorf("GET %s = %d %s, want %d with %s", tt.path, status, body, tt.status, tt.body)
		}
	}
	if err := f.Faults().Set(fault.RejectAuth); err != nil {
		t.Fatal(err)
	}
	if status, body := get("/dev/v1/projects", testCustomer, testSecret); status != 401 || body != unauthorizedBody {
		t.Errorf("reject-auth projects = %d %s", status, body)
	}
}

func TestNewInvalid(t *testing.T) {
	for _, cfg := range []Config{
		{AppID: "short", CustomerID: "a", CustomerSecret: "b"},
		{AppID: testAppID, CustomerID: "a"},
	} {
		if f, err := New(cfg); err == nil {
			f.Close()
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}
