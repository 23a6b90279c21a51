package main

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/secrets"
	"github.com/switchboardhq/switchboard/internal/sqlstore"
)

// TestAdminLoginAtOnceAfterStart: the first admin is created off the path
// to readiness, yet a login sent as soon as the server listens on an empty
// directory succeeds (it waits for the admin rather than failing).
func TestAdminLoginAtOnceAfterStart(t *testing.T) {
	url, logs := startServeArgs(t)
	resp, err := http.Post(url+"/api/auth/login", "application/json",
		strings.NewReader(`{"username":"admin","password":"transport-test-password"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("login at once after start: %d %s\n%s", resp.StatusCode, body, logs)
	}
}

// TestAdminGateFailure: when the first admin cannot be created, the user
// calls answer unavailable instead of an empty store, the gate's runner
// returns the error (which stops the server), and the store can still be
// closed.
func TestAdminGateFailure(t *testing.T) {
	sealer, err := secrets.NewAESGCM(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "sb.db"), sealer, switchboard.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	gate := newAdminGate(store)
	a := &app{store: store, gate: gate, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	a.close() // the store is gone before the admin could be made
	gate.bootstrap(context.Background(), "", switchboard.SystemClock{}, a.log)
	if err := gate.wait(context.Background()); err == nil {
		t.Fatal("wait: no error after a failed bootstrap")
	}
	if _, err := gate.GetUser(context.Background(), "admin"); !switchboard.IsCode(err, switchboard.EUnavailable) {
		t.Fatalf("GetUser after a failed bootstrap: %v, want unavailable", err)
	}
	if _, err := gate.ListUsers(context.Background()); !switchboard.IsCode(err, switchboard.EUnavailable) {
		t.Fatalf("ListUsers after a failed bootstrap: %v, want unavailable", err)
	}
}

// TestAdminGateWaitsForBootstrap: before the bootstrap has run, a user call
// waits (here until its context ends) rather than reading a store without
// the admin; afterwards it sees the admin.
func TestAdminGateWaitsForBootstrap(t *testing.T) {
	sealer, err := secrets.NewAESGCM(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "sb.db"), sealer, switchboard.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	gate := newAdminGate(store)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if n, err := gate.CountUsers(ctx); err == nil {
		t.Fatalf("CountUsers before the bootstrap: %d, no error", n)
	}
	go gate.bootstrap(context.Background(), "an-operator-chosen-password", switchboard.SystemClock{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	u, err := gate.GetUser(context.Background(), "admin")
	if err != nil || u.Role != switchboard.RoleSuperadmin {
		t.Fatalf("GetUser after the bootstrap: %+v, %v", u, err)
	}
	gate.settled()
}

// TestAdminGateStopDuringBootstrap: a server stopped while the admin is
// being created does not report that as a failure of its background work.
func TestAdminGateStopDuringBootstrap(t *testing.T) {
	sealer, err := secrets.NewAESGCM(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlstore.Open(context.Background(), "sqlite:"+filepath.Join(t.TempDir(), "sb.db"), sealer, switchboard.SystemClock{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	gate := newAdminGate(store)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	gate.bootstrap(ctx, "", switchboard.SystemClock{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := gate.wait(context.Background()); err != nil {
		t.Fatalf("wait after a stop during the bootstrap: %v", err)
	}
	if _, err := gate.GetUser(context.Background(), "admin"); !switchboard.IsCode(err, switchboard.EUnavailable) {
		t.Fatalf("GetUser: %v, want unavailable", err)
	}
}
