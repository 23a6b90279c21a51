package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/secrets"
	"github.com/switchboardhq/switchboard/internal/seed"
	"github.com/switchboardhq/switchboard/internal/sqlstore"
)

const seedUsage = `Usage: switchboard seed --db DSN --ended N [--active M] [flags]

Writes stream history into a Switchboard database, in bulk: N ended streams
spread over the past year (--days), on the providers given (the first takes
most streams), about one in ten migrated to another provider once and one in
fifty twice, with their segments and decision trails (assignment, reported
failures, migrations, end), and M streams that are live now. It proves that
the control plane costs the same with a year of history: seed a database,
then run switchboard serve (or demo --dir) on it and switchboard simulate.

The database is the one switchboard serve uses (sqlite:PATH or postgres://...;
the schema is created or upgraded first) and may be in use by a running
server: each batch is one short transaction. Streams belong to the client
tokens of the database, in turn (or to --owner), so that they are history of
the apps that use it. Live streams get no heartbeat: a running server ends
them as abandoned two minutes later. No credential is read or written.

On two cores, 1,000,000 ended streams (1.1 GB) take about 40 s on SQLite and
about a minute on PostgreSQL.
`

func seedCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("seed", seedUsage, stderr)
	var (
		db, providers, owner string
		ended, active, days  int
		batch                int
		seedN                uint64
	)
	fs.StringVar(&db, "db", "", "database: sqlite:PATH or postgres://... (env SWITCHBOARD_DB, default sqlite:switchboard.db)")
	fs.IntVar(&ended, "ended", 0, "ended streams to write")
	fs.IntVar(&active, "active", 0, "live streams to write")
	fs.StringVar(&providers, "providers", strings.Join(seed.DefaultProviders, ","), "providers, comma-separated, in priority order")
	fs.StringVar(&owner, "owner", "", `owner of the streams, e.g. "token:<id>" (default: the database's client tokens in turn, else "seed")`)
	fs.IntVar(&days, "days", 365, "days of history")
	fs.IntVar(&batch, "batch", 10000, "streams per transaction")
	fs.Uint64Var(&seedN, "seed", 0, "random seed: the same seed writes the same history (default: a random one)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	switch {
	case ended < 0 || active < 0:
		return usageError{msg: "--ended and --active must not be negative"}
	case ended+active == 0:
		return usageError{msg: "nothing to write: give --ended N and/or --active M"}
	case days < 1:
		return usageError{msg: "--days must be at least 1"}
	case batch < 1 || batch > 100000:
		return usageError{msg: "--batch must be from 1 to 100000"}
	}
	var names []string
	for _, n := range strings.Split(providers, ",") {
		n = strings.TrimSpace(n)
		if !switchboard.ValidSlug(n) {
			return usageError{msg: fmt.Sprintf("--providers: %q is not a provider name", n)}
		}
		names = append(names, n)
	}
	if db == "" {
		db = getenv("SWITCHBOARD_DB")
	}
	if db == "" {
		db = "sqlite:switchboard.db"
	}

	// The seed never seals or opens credentials, so any key will do: it
	// neither needs the server's key nor creates a key file.
	key := make([]byte, secrets.KeySize)
	_, _ = rand.Read(key)
	sealer, err := secrets.NewAESGCM(key)
	if err != nil {
		return err
	}
	store, err := sqlstore.Open(ctx, db, sealer, nil)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer store.Close()

	owners := []string{owner}
	if owner == "" {
		owners = nil
		toks, err := store.ListAPITokens(ctx)
		if err != nil {
			return err
		}
		for _, t := range toks {
			if t.Role == switchboard.RoleClient && t.RevokedAt == nil {
				owners = append(owners, "token:"+t.ID)
			}
		}
	}

	began := time.Now()
	last := began
	st, err := seed.Run(ctx, store, seed.Options{
		Ended: ended, Active: active, Providers: names, Owners: owners, Span: time.Duration(days) * 24 * time.Hour,
		Batch: batch, Seed: seedN,
		Progress: func(n int) {
			if time.Since(last) >= 5*time.Second {
				last = time.Now()
				fmt.Fprintf(stderr, "seed: %d of %d streams written (%.0f/s)\n", n, ended+active, float64(n)/time.Since(began).Seconds())
			}
		},
	})
	if err != nil {
		return err
	}
	took := time.Since(began)
	fmt.Fprintf(stdout, "seeded %d ended and %d live streams (%d segments, %d trail entries, %d migrations) in %s: %.0f streams/s\n",
		st.Ended, st.Active, st.Segments, st.Trail, st.Migrations, took.Round(10*time.Millisecond),
		float64(st.Ended+st.Active)/took.Seconds())
	return nil
}
