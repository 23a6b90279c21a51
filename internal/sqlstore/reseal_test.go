package sqlstore

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/pgtest"
	"github.com/switchboardhq/switchboard/internal/secrets"
	"github.com/switchboardhq/switchboard/internal/storetest"
)

// storedCredentials returns the sealed credentials of a provider as stored.
func storedCredentials(t *testing.T, s *Store, name string) []byte {
	t.Helper()
	var b []byte
	if err := s.r.QueryRowContext(context.Background(), s.q(`SELECT credentials FROM providers WHERE name = ?`), name).Scan(&b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUpgradeResealsLegacyCredentials stores credentials the way the versions
// before destination binding did (unbound, sealed with Seal), then reopens the
// store: they must still read, and be stored bound to their destination.
func TestUpgradeResealsLegacyCredentials(t *testing.T) {
	dsn, _ := tempDSN(t)
	testUpgradeReseal(t, dsn)
}

func TestPostgresUpgradeResealsLegacyCredentials(t *testing.T) {
	testUpgradeReseal(t, pgtest.DSN(t))
}

func testUpgradeReseal(t *testing.T, dsn string) {
	ctx := context.Background()
	sealer := newSealer(t)
	s1 := mustOpen(t, dsn, sealer)
	h := storetest.HTTPProvider(t, "web", "https://web.example/health")
	a := storetest.AgoraProvider(t, "agora")
	for _, p := range []switchboard.Provider{h, a} {
		if err := s1.CreateProvider(ctx, p, switchboard.AuditEntry{}); err != nil {
			t.Fatal(err)
		}
		// What an earlier version wrote: the JSON of sealedCredentials, sealed unbound.
		c := p.Credentials
		pt, _ := json.Marshal(sealedCredentials{Provider: p.Name, CustomerID: c.CustomerID, CustomerSecret: c.CustomerSecret,
			AppCertificate: c.AppCertificate, Headers: c.Headers})
		legacy, err := sealer.Seal(pt)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s1.w.ExecContext(ctx, s1.q(`UPDATE providers SET credentials = ? WHERE name = ?`), legacy, p.Name); err != nil {
			t.Fatal(err)
		}
		if secrets.IsBound(storedCredentials(t, s1, p.Name)) {
			t.Fatal("the legacy value is bound")
		}
	}
	s1.Close()

	s2 := mustOpen(t, dsn, sealer)
	for _, p := range []switchboard.Provider{h, a} {
		if !secrets.IsBound(storedCredentials(t, s2, p.Name)) {
			t.Errorf("%s: credentials not sealed again, bound, at open", p.Name)
		}
		rec, err := s2.GetProvider(ctx, p.Name)
		if err != nil {
			t.Fatalf("%s after the upgrade: %v", p.Name, err)
		}
		if rec.Credentials.CustomerSecret != p.Credentials.CustomerSecret || rec.Credentials.Headers["Authorization"] != p.Credentials.Headers["Authorization"] {
			t.Errorf("%s: credentials lost by the upgrade", p.Name)
		}
	}
	// Opening again changes nothing more.
	before := storedCredentials(t, s2, "web")
	s2.Close()
	s3 := mustOpen(t, dsn, sealer)
	if string(storedCredentials(t, s3, "web")) != string(before) {
		t.Error("a second open sealed the bound credentials again")
	}
}

// TestMovedDestinationCannotOpen changes a provider's URL in the database,
// behind the store's back: the credentials sealed for the old URL must not
// open for the new one.
func TestMovedDestinationCannotOpen(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, "sqlite::memory:", newSealer(t))
	h := storetest.HTTPProvider(t, "web", "https://web.example/health")
	if err := s.CreateProvider(ctx, h, switchboard.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetProvider(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	moved := h.Config
	moved.URL = "http://attacker.example/"
	b, _ := json.Marshal(moved)
	if _, err := s.w.ExecContext(ctx, `UPDATE providers SET config = ? WHERE name = 'web'`, string(b)); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetProvider(ctx, "web")
	if !errors.Is(err, secrets.ErrOpen) || !strings.Contains(err.Error(), "destination") {
		t.Fatalf("GetProvider after the URL moved = %v, want a refusal to open", err)
	}
	for _, v := range h.Credentials.Values() {
		if strings.Contains(err.Error(), v) {
			t.Errorf("error leaks a credential: %v", err)
		}
	}
}
