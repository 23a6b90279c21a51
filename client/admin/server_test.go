package admin_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"

	sb "github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/health"
	"github.com/switchboardhq/switchboard/internal/httpapi"
	"github.com/switchboardhq/switchboard/internal/providers"
	"github.com/switchboardhq/switchboard/internal/secrets"
	"github.com/switchboardhq/switchboard/internal/sqlstore"
)

// bootstrapToken is the superadmin token of the servers the tests start.
const bootstrapToken = "sbt_admin-example-bootstrap-3f9e1d"

// startServer starts the real admin API on a loopback server, with an empty
// SQLite registry and a provider endpoint that answers 200 for "http"
// providers to probe. stop shuts it all down.
func startServer() (url, endpoint string, stop func(), err error) {
	dir, err := os.MkdirTemp("", "switchboard-admin")
	if err != nil {
		return "", "", nil, err
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	sealer, err := secrets.NewAESGCM(key)
	if err != nil {
		return "", "", nil, err
	}
	clock := sb.SystemClock{}
	store, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(dir, "sb.db"), sealer, clock)
	if err != nil {
		return "", "", nil, err
	}
	checker, err := health.NewChecker(health.Config{Registry: store, Health: store, Probers: providers.Probers(), Clock: clock})
	if err != nil {
		return "", "", nil, err
	}
	api := httpapi.New(httpapi.Options{Store: store, Clock: clock, BootstrapToken: bootstrapToken, Health: checker})
	srv := httptest.NewServer(api)
	ep := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	return srv.URL, ep.URL, func() {
		srv.Close()
		ep.Close()
		_ = store.Close()
		_ = os.RemoveAll(dir)
	}, nil
}
