package sqlstore

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/pgtest"
	"github.com/switchboardhq/switchboard/internal/storetest"
)

func TestPostgresConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) switchboard.Store {
		return mustOpen(t, pgtest.DSN(t), newSealer(t))
	})
}

// Replicas start together: each applies the migrations it lacks under the
// advisory lock, and all of them end up on the same schema.
func TestPostgresConcurrentOpen(t *testing.T) {
	dsn := pgtest.DSN(t)
	sealer := newSealer(t)
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			s, err := Open(context.Background(), dsn, sealer, nil)
			if err == nil {
				s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open #%d: %v", i, err)
		}
	}
	s := mustOpen(t, dsn, sealer)
	ms, err := postgresDialect.migrationFiles()
	if err != nil {
		t.Fatal(err)
	}
	var applied int
	if err := s.w.QueryRow(`SELECT COUNT(*) FROM schema_migrations`).Scan(&applied); err != nil {
		t.Fatal(err)
	}
	if applied != len(ms) {
		t.Errorf("schema_migrations has %d rows, want %d", applied, len(ms))
	}
}

// The migrations of both dialects have the same versions and names.
func TestMigrationsMirror(t *testing.T) {
	lite, err := sqliteDialect.migrationFiles()
	if err != nil {
		t.Fatal(err)
	}
	pg, err := postgresDialect.migrationFiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(lite) != len(pg) {
		t.Fatalf("%d SQLite migrations, %d PostgreSQL ones", len(lite), len(pg))
	}
	for i := range lite {
		if lite[i].name != pg[i].name {
			t.Errorf("migration %d: SQLite %s, PostgreSQL %s", i, lite[i].name, pg[i].name)
		}
	}
}

// Writers on several pools (replicas) increment the same counters: none is lost.
func TestPostgresConcurrentWritersAcrossPools(t *testing.T) {
	dsn := pgtest.DSN(t)
	sealer := newSealer(t)
	stores := []*Store{mustOpen(t, dsn, sealer), mustOpen(t, dsn, sealer), mustOpen(t, dsn, sealer)}
	ctx := context.Background()
	if err := stores[0].CreateProvider(ctx, storetest.AgoraProvider(t, "agora"), switchboard.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
	const perStore = 40
	var wg sync.WaitGroup
	for _, s := range stores {
		for range perStore {
			wg.Go(func() {
				_, _, err := s.RecordCheck(ctx, "agora", switchboard.ProbeResult{OK: true, Latency: time.Millisecond},
					func(h switchboard.Health) switchboard.Health {
						h.TotalChecks++
						h.SuccessfulChecks++
						return h
					})
				if err != nil {
					t.Errorf("RecordCheck: %v", err)
				}
			})
			wg.Go(func() {
				_, _, err := s.UpdateProvider(ctx, "agora", func(p switchboard.Provider) (switchboard.Provider, error) {
					p.Weight++
					return p, nil
				}, switchboard.AuditEntry{})
				if err != nil {
					t.Errorf("UpdateProvider: %v", err)
				}
			})
		}
	}
	wg.Wait()
	rec, err := stores[1].GetProvider(ctx, "agora")
	if err != nil {
		t.Fatal(err)
	}
	want := int64(len(stores) * perStore)
	if got := rec.Health.TotalChecks; got != want {
		t.Errorf("TotalChecks = %d, want %d", got, want)
	}
	if got, want := rec.Provider.Weight, storetest.AgoraProvider(t, "agora").Weight+int(want); got != want {
		t.Errorf("Weight = %d, want %d", got, want)
	}
}

// A server that cannot be reached is EUnavailable, and the message names
// neither the user nor the password of the URL.
func TestPostgresUnavailable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, err = Open(ctx, "postgres://sbuser:hunter2secret@"+addr+"/test?sslmode=disable&connect_timeout=2", newSealer(t), nil)
	if err == nil {
		t.Fatal("Open of a closed port succeeded")
	}
	if code := switchboard.ErrorCode(err); code != switchboard.EUnavailable {
		t.Errorf("code = %s, want %s (err %v)", code, switchboard.EUnavailable, err)
	}
	if msg := err.Error(); strings.Contains(msg, "hunter2secret") {
		t.Errorf("error holds the password: %s", msg)
	}
	if !errors.Is(err, errUnavailable) {
		t.Errorf("err %v is not errUnavailable", err)
	}
}

// proxy forwards TCP connections to target until cut, which closes them all.
type proxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Go(func() { io.Copy(up, c); up.Close() })
			p.wg.Go(func() { io.Copy(c, up); c.Close() })
		}
	})
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// When PostgreSQL goes away, reads and writes fail with EUnavailable (a 503)
// and Ping fails, so readiness fails.
func TestPostgresLostServerIsUnavailable(t *testing.T) {
	dsn := pgtest.DSN(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	q := u.Query()
	q.Set("connect_timeout", "2")
	u.RawQuery = q.Encode()
	s := mustOpen(t, u.String(), newSealer(t))
	ctx := context.Background()
	if err := s.CreateProvider(ctx, storetest.AgoraProvider(t, "agora"), switchboard.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
	p.cut()

	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	tests := []struct {
		name string
		call func() error
	}{
		{"Ping", func() error { return s.Ping(ctx) }},
		{"GetProvider", func() error { _, err := s.GetProvider(ctx, "agora"); return err }},
		{"CreateProvider", func() error {
			return s.CreateProvider(ctx, storetest.AgoraProvider(t, "other"), switchboard.AuditEntry{})
		}},
		{"RecordCheck", func() error {
			_, _, err := s.RecordCheck(ctx, "agora", switchboard.ProbeResult{OK: true}, nil)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if code := switchboard.ErrorCode(err); code != switchboard.EUnavailable {
				t.Errorf("code = %q, want %q (err %v)", code, switchboard.EUnavailable, err)
			}
		})
	}
}

// TestPostgresRefusedText shows that text PostgreSQL refuses (a NUL, invalid
// UTF-8) is the caller's error, EInvalid, and never an internal one.
func TestPostgresRefusedText(t *testing.T) {
	s := mustOpen(t, pgtest.DSN(t), newSealer(t))
	ctx := context.Background()
	for _, bad := range []string{"ad\x00min", "ad\xffmin"} {
		if _, err := s.GetUser(ctx, bad); switchboard.ErrorCode(err) != switchboard.EInvalid {
			t.Errorf("GetUser(%q): %v, want code %s", bad, err, switchboard.EInvalid)
		}
		if _, err := s.ListAudit(ctx, switchboard.AuditFilter{Target: bad}); switchboard.ErrorCode(err) != switchboard.EInvalid {
			t.Errorf("ListAudit(target %q): %v, want code %s", bad, err, switchboard.EInvalid)
		}
	}
}
