// Package pgtest gives tests a PostgreSQL schema of their own on the server
// named by the SWITCHBOARD_TEST_POSTGRES environment variable, and skips them
// when it is unset.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
)

// EnvVar names the environment variable that holds the URL of the test server,
// such as postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const EnvVar = "SWITCHBOARD_TEST_POSTGRES"

// DSN creates a schema with a random name on the test server and returns a URL
// whose connections use it (search_path), so that parallel tests and packages
// do not see each other's tables. The schema is dropped when the test ends.
// DSN skips the test when EnvVar is unset.
func DSN(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvVar)
	if base == "" {
		t.Skipf("PostgreSQL tests skipped: set %s (e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable)", EnvVar)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: not a URL", EnvVar) // do not print it: it may hold a password
	}
	b := make([]byte, 6)
	rand.Read(b)
	schema := "sbtest_" + hex.EncodeToString(b)

	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("open %s: %v", EnvVar, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		db.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})

	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
