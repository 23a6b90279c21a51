package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/auth"
	"github.com/switchboardhq/switchboard/internal/pgtest"
	"github.com/switchboardhq/switchboard/internal/secrets"
	"github.com/switchboardhq/switchboard/internal/sqlstore"
)

func TestSeedUsage(t *testing.T) {
	for _, args := range [][]string{
		{},                              // nothing to write
		{"--ended", "-1"},               // negative
		{"--ended", "5", "--days", "0"}, // no history span
		{"--ended", "5", "--batch", "0"},
		{"--ended", "5", "--providers", "a,Not A Name"},
		{"--ended", "5", "extra"},
	} {
		_, err := runCLI(t, append([]string{"seed", "--db", "sqlite:" + filepath.Join(t.TempDir(), "x.db")}, args...)...)
		if _, ok := err.(usageError); !ok {
			t.Errorf("seed %v = %v, want a usage error", args, err)
		}
	}
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"seed", "--help"}, func(string) string { return "" }, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), "--ended") || !strings.Contains(errOut.String(), "sqlite:PATH") {
		t.Errorf("help does not describe the command:\n%s", errOut.String())
	}
}

// seedAndCheck seeds the database at dsn, which already has a client token,
// and checks what a server on it sees: the streams, ended and live, belong to
// the token's client, and the stream counts include them.
func seedAndCheck(t *testing.T, dsn string) {
	t.Helper()
	ctx := context.Background()
	key := bytes.Repeat([]byte{9}, secrets.KeySize)
	sealer, err := secrets.NewAESGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlstore.Open(ctx, dsn, sealer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.CreateAPIToken(ctx, switchboard.APIToken{ID: "app1", Name: "app", Role: switchboard.RoleClient,
		Hash: auth.HashToken("sbt_app1")}, switchboard.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
	st.Close()

	out, err := runCLI(t, "seed", "--db", dsn, "--ended", "2500", "--active", "30", "--providers", "p1,p2,p3", "--batch", "1000", "--seed", "5")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "seeded 2500 ended and 30 live streams") {
		t.Errorf("output: %s", out)
	}
	// Again with another seed: more history, no clash.
	if _, err := runCLI(t, "seed", "--db", dsn, "--ended", "100", "--providers", "p1,p2,p3"); err != nil {
		t.Fatalf("seeding again: %v", err)
	}

	st, err = sqlstore.Open(ctx, dsn, sealer, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	counts, err := st.ActiveCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var live int64
	for p, n := range counts {
		if p != "p1" && p != "p2" && p != "p3" {
			t.Errorf("live streams on %s", p)
		}
		live += n
	}
	if live != 30 {
		t.Errorf("ActiveCounts = %v, want 30 live streams", counts)
	}
	us, err := st.Usage(ctx, time.Now().Add(-366*24*time.Hour), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, u := range us {
		total += u.TotalStreams
	}
	if total < 2630 { // each stream has at least one segment
		t.Errorf("TotalStreams = %d over %+v, want at least 2630", total, us)
	}
	mine, err := st.ListStreams(ctx, switchboard.StreamFilter{Owner: "token:app1", Status: switchboard.StreamEnded, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	if len(mine) != 500 {
		t.Errorf("the client token owns %d ended streams on the first page, want 500", len(mine))
	}
	old := mine[len(mine)-1]
	if old.StartedAt.After(time.Now()) || old.EndedAt == nil || old.EndedAt.Before(old.StartedAt) {
		t.Errorf("seeded stream %+v", old)
	}
	trail, err := st.StreamTrail(ctx, old.ID)
	if err != nil || len(trail) < 2 || trail[0].Kind != switchboard.TrailAssign || trail[len(trail)-1].Kind != switchboard.TrailEnd {
		t.Errorf("trail of a seeded stream = %+v, %v", trail, err)
	}
}

func TestSeedSQLite(t *testing.T) {
	seedAndCheck(t, "sqlite:"+filepath.Join(t.TempDir(), "sb.db"))
}

func TestSeedPostgres(t *testing.T) {
	seedAndCheck(t, pgtest.DSN(t))
}
