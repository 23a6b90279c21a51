package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/switchboardhq/switchboard"
)

// adminGate is the store as the API sees it while the first admin is being
// created in the background: every call that reads or writes users or
// sessions waits until the creation is over (done), so that a login, a user
// listing or the creation of a user named admin never sees the store
// without the admin. Every other call goes straight to the store.
type adminGate struct {
	switchboard.Store
	started chan struct{} // closed when bootstrap has been started
	done    chan struct{} // closed when bootstrap has finished
	err     error         // bootstrap's error, once done is closed
	stopped bool          // whether err came from the server stopping, once done is closed
}

func newAdminGate(store switchboard.Store) *adminGate {
	return &adminGate{Store: store, started: make(chan struct{}), done: make(chan struct{})}
}

// bootstrap creates the superadmin user on first start (bootstrapAdmin) and
// opens the gate. It is called once.
func (g *adminGate) bootstrap(ctx context.Context, password string, clock switchboard.Clock, log *slog.Logger) {
	close(g.started)
	defer close(g.done)
	t0 := time.Now()
	g.err = bootstrapAdmin(ctx, g.Store, password, clock, log)
	// A stop asked for meanwhile is no failure of the server: the admin is
	// created at the next start.
	g.stopped = g.err != nil && ctx.Err() != nil
	log.Debug("bootstrap admin done", "took", time.Since(t0).String())
}

// wait waits until the admin exists or ctx ends; it returns the error that
// prevented its creation. It is one of the app's runners.
func (g *adminGate) wait(ctx context.Context) error {
	select {
	case <-g.done:
		if g.stopped {
			return nil
		}
		return g.err
	case <-ctx.Done():
		return nil
	}
}

// settled waits until a bootstrap that was started is over, so that the
// store can be closed under no write.
func (g *adminGate) settled() {
	if g == nil {
		return
	}
	select {
	case <-g.started:
		<-g.done
	default:
	}
}

// open waits for the bootstrap to finish, or for ctx to end.
func (g *adminGate) open(ctx context.Context) error {
	select {
	case <-g.done:
		if g.err != nil {
			return switchboard.Errorf(switchboard.EUnavailable, "users are not available: the first admin could not be created")
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for the first admin: %w", ctx.Err())
	}
}

// CreateUser waits for the gate, then stores the user.
func (g *adminGate) CreateUser(ctx context.Context, u switchboard.User) error {
	if err := g.open(ctx); err != nil {
		return err
	}
	return g.Store.CreateUser(ctx, u)
}

// GetUser waits for the gate, then reads the user.
func (g *adminGate) GetUser(ctx context.Context, username string) (switchboard.User, error) {
	if err := g.open(ctx); err != nil {
		return switchboard.User{}, err
	}
	return g.Store.GetUser(ctx, username)
}

// CountUsers waits for the gate, then counts the users.
func (g *adminGate) CountUsers(ctx context.Context) (int, error) {
	if err := g.open(ctx); err != nil {
		return 0, err
	}
	return g.Store.CountUsers(ctx)
}

// AddUser waits for the gate, then adds the user.
func (g *adminGate) AddUser(ctx context.Context, u switchboard.User, audit switchboard.AuditEntry) error {
	if err := g.open(ctx); err != nil {
		return err
	}
	return g.Store.AddUser(ctx, u, audit)
}

// ListUsers waits for the gate, then lists the users.
func (g *adminGate) ListUsers(ctx context.Context) ([]switchboard.User, error) {
	if err := g.open(ctx); err != nil {
		return nil, err
	}
	return g.Store.ListUsers(ctx)
}

// UserBySSO waits for the gate, then reads the user of an SSO subject.
func (g *adminGate) UserBySSO(ctx context.Context, subject string) (switchboard.User, error) {
	if err := g.open(ctx); err != nil {
		return switchboard.User{}, err
	}
	return g.Store.UserBySSO(ctx, subject)
}

// UpdateUser waits for the gate, then updates the user.
func (g *adminGate) UpdateUser(ctx context.Context, username string, fn func(switchboard.User) (switchboard.User, error), audit switchboard.AuditEntry) (before, after switchboard.User, ended bool, err error) {
	if err := g.open(ctx); err != nil {
		return switchboard.User{}, switchboard.User{}, false, err
	}
	return g.Store.UpdateUser(ctx, username, fn, audit)
}

// DeleteUser waits for the gate, then deletes the user.
func (g *adminGate) DeleteUser(ctx context.Context, username string, audit switchboard.AuditEntry) (switchboard.User, error) {
	if err := g.open(ctx); err != nil {
		return switchboard.User{}, err
	}
	return g.Store.DeleteUser(ctx, username, audit)
}

// CreateSession waits for the gate, then stores the session.
func (g *adminGate) CreateSession(ctx context.Context, s switchboard.Session, audit switchboard.AuditEntry) error {
	if err := g.open(ctx); err != nil {
		return err
	}
	return g.Store.CreateSession(ctx, s, audit)
}

// SessionByHash waits for the gate, then reads the session.
func (g *adminGate) SessionByHash(ctx context.Context, hash []byte, now time.Time) (switchboard.Session, error) {
	if err := g.open(ctx); err != nil {
		return switchboard.Session{}, err
	}
	return g.Store.SessionByHash(ctx, hash, now)
}
