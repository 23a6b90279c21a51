package sqlstore

import (
	"embed"
	"errors"
	"io/fs"
	"strconv"
	"strings"

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
	isForeignKey: func(err error) bool { return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY },
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
