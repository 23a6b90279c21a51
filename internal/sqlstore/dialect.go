package sqlstore

import (
	"database/sql"
	"embed"
	"errors"
	"io/fs"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations
var migrationsFS embed.FS

// dialect is what differs between the SQL databases the store runs on. Queries
// are written once, in the common subset of SQLite and PostgreSQL, with ?
// placeholders; rebind turns them into the dialect's form. Anything that cannot
// be written portably (DDL, error codes) lives here or in the dialect's
// migrations directory.
type dialect struct {
	name string
	// numbered placeholders ($1, $2, ...) instead of ?
	numbered bool
	// migrations is the directory of NNNN_name.sql files in migrationsFS.
	migrations string
	// migrationsTable creates the table of applied migrations.
	migrationsTable string
	isUnique        func(error) bool
	isForeignKey    func(error) bool
	// lockRow is appended to a SELECT in a write transaction that reads rows
	// it is about to change, so that concurrent writers queue instead of
	// losing updates. Empty for SQLite, whose one writer already serialises
	// them; FOR NO KEY UPDATE on PostgreSQL, which does not block the key
	// share locks that foreign key checks of child rows take.
	lockRow string
	// forDelete is lockRow for a row about to be deleted (FOR UPDATE).
	forDelete string
	// lockKeySQL takes a transaction-scoped lock on a string key (one ? for
	// it), for writes whose invariants span rows (a provider's capacity, the
	// set of providers). Empty for SQLite.
	lockKeySQL string
	// retryable reports whether a failed write transaction may simply be run
	// again: a deadlock or serialization failure between concurrent writers.
	retryable func(error) bool
	// readTx are the options of read transactions (nil: the driver default).
	readTx *sql.TxOptions
	// countShards is the number of rows per provider of
	// provider_stream_counts that writers spread over (see addCounts): 1 on
	// SQLite, whose writers queue anyway; several on PostgreSQL, so that
	// concurrent starts on one provider do not queue on one row.
	countShards int
	// replicas is whether several replicas may share the database: it has
	// the leases and the event log of replica.go.
	replicas bool
	// liveByProvider follows "FROM streams s" in a query for a provider's
	// live streams, newest first: SQLite, planning without statistics,
	// would walk every stream newest first (streams_started) to find them,
	// all of them once the provider has none left; the partial index of
	// live streams holds their providers. Empty for PostgreSQL, which
	// plans from statistics.
	liveByProvider string
}

var sqliteDialect = &dialect{
	name:       "sqlite",
	migrations: "migrations/sqlite",
	migrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`,
	isUnique: func(err error) bool {
		c := sqliteCode(err)
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	},
	isForeignKey:   func(err error) bool { return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY },
	retryable:      func(error) bool { return false },
	countShards:    1,
	liveByProvider: " INDEXED BY streams_heartbeat_active",
}

var postgresDialect = &dialect{
	name:       "postgres",
	numbered:   true,
	migrations: "migrations/postgres",
	migrationsTable: `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    BIGINT NOT NULL PRIMARY KEY,
		name       TEXT   NOT NULL,
		applied_at BIGINT NOT NULL
	)`,
	isUnique:     func(err error) bool { return pgCode(err) == pgUniqueViolation },
	isForeignKey: func(err error) bool { return pgCode(err) == pgForeignKeyViolation },
	lockRow:      " FOR NO KEY UPDATE",
	forDelete:    " FOR UPDATE",
	lockKeySQL:   `SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`,
	retryable: func(err error) bool {
		c := pgCode(err)
		return c == pgDeadlockDetected || c == pgSerializationFailure
	},
	// One snapshot for reads that make several queries (Usage, rollups),
	// as SQLite's read transactions give.
	readTx:      &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
	countShards: 16,
	replicas:    true,
}

// PostgreSQL error codes (SQLSTATE) the store tells apart.
const (
	pgUniqueViolation      = "23505"
	pgForeignKeyViolation  = "23503"
	pgSerializationFailure = "40001"
	pgDeadlockDetected     = "40P01"
	// A NUL or invalid UTF-8 in a text value.
	pgCharacterNotInRepertoire = "22021"
	pgUntranslatableCharacter  = "22P05"
)

func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

// rebind rewrites the ? placeholders of q for d. It skips ? inside quoted
// strings and identifiers, which is all the SQL of this package needs.
func (d *dialect) rebind(q string) string {
	if !d.numbered {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	var quote byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// migrationFiles returns the dialect's migrations, ordered by version.
func (d *dialect) migrationFiles() ([]migration, error) {
	entries, err := fs.ReadDir(migrationsFS, d.migrations)
	if err != nil {
		return nil, err
	}
	var ms []migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		name := strings.TrimSuffix(e.Name(), ".sql")
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, errors.New("migration " + e.Name() + ": name must be NNNN_description.sql")
		}
		if prev, dup := seen[v]; dup {
			return nil, errors.New("migrations " + prev + " and " + e.Name() + " have the same version")
		}
		seen[v] = e.Name()
		body, err := fs.ReadFile(migrationsFS, d.migrations+"/"+e.Name())
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	// fs.ReadDir sorts by file name; zero-padded versions sort the same way, but
	// do not rely on the padding.
	sortMigrations(ms)
	return ms, nil
}
