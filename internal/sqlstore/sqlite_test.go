package sqlstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/pgtest"
	"github.com/switchboardhq/switchboard/internal/secrets"
	"github.com/switchboardhq/switchboard/internal/storetest"
)

func newSealer(t testing.TB) secrets.BoundSealer {
	t.Helper()
	key := make([]byte, secrets.KeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	s, err := secrets.NewAESGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustOpen(t testing.TB, dsn string, sealer secrets.BoundSealer) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, sealer, nil)
	if err != nil {
		t.Fatalf("Open(%s): %v", dsn, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func tempDSN(t testing.TB) (dsn, path string) {
	path = filepath.Join(t.TempDir(), "switchboard.db")
	return "sqlite:" + path, path
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) switchboard.Store {
		dsn, _ := tempDSN(t)
		return mustOpen(t, dsn, newSealer(t))
	})
}

func TestConformanceMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) switchboard.Store {
		return mustOpen(t, "sqlite::memory:", newSealer(t))
	})
}

func TestReopen(t *testing.T) {
	ctx := context.Background()
	dsn, _ := tempDSN(t)
	sealer := newSealer(t)
	p := storetest.AgoraProvider(t, "agora")
	s1, err := Open(ctx, dsn, sealer, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.CreateProvider(ctx, p, switchboard.AuditEntry{Action: "provider.create"}); err != nil {
		t.Fatal(err)
	}
	bare := storetest.AgoraProvider(t, "bare")
	bare.Credentials = switchboard.Credentials{}
	if err := s1.CreateProvider(ctx, bare, switchboard.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}

	t.Run("same key", func(t *testing.T) {
		s := mustOpen(t, dsn, sealer)
		rec, err := s.GetProvider(ctx, "agora")
		if err != nil {
			t.Fatal(err)
		}
		if rec.Credentials.CustomerSecret != p.Credentials.CustomerSecret || rec.Credentials.AppCertificate != p.Credentials.AppCertificate {
			t.Error("credentials did not survive a reopen")
		}
		if es, _ := s.ListAudit(ctx, switchboard.AuditFilter{}); len(es) != 2 {
			t.Errorf("%d audit entries after reopen, want 2", len(es))
		}
	})
	t.Run("other key", func(t *testing.T) {
		s := mustOpen(t, dsn, newSealer(t)) // Open itself does not need the key
		_, err := s.GetProvider(ctx, "agora")
		if err == nil {
			t.Fatal("GetProvider with another key succeeded")
		}
		if !errors.Is(err, secrets.ErrOpen) || !strings.Contains(err.Error(), "credentials of provider agora") {
			t.Errorf("error = %v, want a clear credentials error", err)
		}
		for _, v := range p.Credentials.Values() {
			if strings.Contains(err.Error(), v) {
				t.Errorf("error leaks a credential: %v", err)
			}
		}
		if _, err := s.ListProviders(ctx); !errors.Is(err, secrets.ErrOpen) {
			t.Errorf("ListProviders error = %v, want ErrOpen", err)
		}
		// A provider without credentials still reads; one with them can still be deleted.
		if _, err := s.GetProvider(ctx, "bare"); err != nil {
			t.Errorf("GetProvider(bare): %v", err)
		}
		if err := s.DeleteProvider(ctx, "agora", switchboard.AuditEntry{}); err != nil {
			t.Errorf("DeleteProvider with another key: %v", err)
		}
	})
}

func TestNoPlaintextOnDisk(t *testing.T) {
	ctx := context.Background()
	dsn, path := tempDSN(t)
	s := mustOpen(t, dsn, newSealer(t))
	a := storetest.AgoraProvider(t, "agora")
	h := storetest.HTTPProvider(t, "web", "https://web.example/health")
	for _, p := range []switchboard.Provider{a, h} {
		if err := s.CreateProvider(ctx, p, switchboard.AuditEntry{}); err != nil {
			t.Fatal(err)
		}
	}
	const rotated = "rotated-customer-secret-7781"
	if _, _, err := s.UpdateProvider(ctx, "agora", func(p switchboard.Provider) (switchboard.Provider, error) {
		p.Credentials.CustomerSecret = rotated
		return p, nil
	}, switchboard.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
	secretValues := append(append(a.Credentials.Values(), h.Credentials.Values()...), rotated)

	check := func(when string) {
		t.Helper()
		files, _ := filepath.Glob(path + "*") // the database, -wal and -shm
		if len(files) == 0 {
			t.Fatal("no database files")
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range secretValues {
				if bytes.Contains(b, []byte(v)) {
					t.Errorf("%s: %s holds a plaintext credential", when, filepath.Base(f))
				}
			}
		}
	}
	check("open")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check("closed")
	// Non-secret fields are stored in the clear, which shows the check reads the right files.
	b, _ := os.ReadFile(path)
	if !bytes.Contains(b, []byte(a.Config.AppID)) {
		t.Error("the App ID is not in the database file: is the check reading the right file?")
	}
}

func TestSwappedCredentialsRefused(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, "sqlite::memory:", newSealer(t))
	for _, n := range []string{"a", "b"} {
		if err := s.CreateProvider(ctx, storetest.AgoraProvider(t, n), switchboard.AuditEntry{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE providers SET credentials = (SELECT credentials FROM providers WHERE name = 'a') WHERE name = 'b'`); err != nil {
		t.Fatal(err)
	}
	_, err := s.GetProvider(ctx, "b")
	if err == nil || !strings.Contains(err.Error(), "sealed for another provider") {
		t.Fatalf("GetProvider with a copied credential = %v, want a refusal", err)
	}
}

func TestMigrations(t *testing.T) {
	ctx := context.Background()
	dsn, _ := tempDSN(t)
	sealer := newSealer(t)
	ms, err := sqliteDialect.migrationFiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].version != 1 {
		t.Fatalf("migrations = %v", ms)
	}
	applied := func(s *Store) []int {
		t.Helper()
		rows, err := s.r.QueryContext(ctx, `SELECT version FROM schema_migrations ORDER BY version`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var vs []int
		for rows.Next() {
			var v int
			if err := rows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			vs = append(vs, v)
		}
		return vs
	}
	var want []int
	for _, m := range ms {
		want = append(want, m.version)
	}
	for i := range 3 {
		s, err := Open(ctx, dsn, sealer, nil)
		if err != nil {
			t.Fatalf("Open #%d: %v", i+1, err)
		}
		if got := applied(s); !equalInts(got, want) {
			t.Errorf("Open #%d: applied %v, want %v", i+1, got, want)
		}
		if i == 0 {
			if err := s.CreateProvider(ctx, storetest.AgoraProvider(t, "p"), switchboard.AuditEntry{}); err != nil {
				t.Fatal(err)
			}
		} else if _, err := s.GetProvider(ctx, "p"); err != nil {
			t.Errorf("Open #%d lost data: %v", i+1, err)
		}
		s.Close()
	}

	// A database from a newer build is refused.
	s := mustOpen(t, dsn, sealer)
	if _, err := s.w.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, '9999_future', 0)`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(ctx, dsn, sealer, nil); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Errorf("Open of a newer schema = %v, want a refusal", err)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestConcurrentOpenSameFile(t *testing.T) {
	// Stores opening one new file at once (as processes would) migrate it once and all work.
	ctx := context.Background()
	dsn, _ := tempDSN(t)
	sealer := newSealer(t)
	const n = 4
	errs := make(chan error, n)
	stores := make(chan *Store, n)
	for range n {
		go func() {
			s, err := Open(ctx, dsn, sealer, nil)
			errs <- err
			stores <- s
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("Open: %v", err)
		}
		s := <-stores
		t.Cleanup(func() { s.Close() })
	}
	a := mustOpen(t, dsn, sealer)
	if err := a.CreateProvider(ctx, storetest.AgoraProvider(t, "p"), switchboard.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
	b := mustOpen(t, dsn, sealer)
	if _, err := b.GetProvider(ctx, "p"); err != nil {
		t.Fatalf("second store does not see the first one's write: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		dsn    string
		sealer secrets.BoundSealer
		want   string
	}{
		{"no sealer", "sqlite::memory:", nil, "sealer"},
		{"no scheme", "switchboard.db", newSealer(t), `"sqlite:"`},
		{"unknown scheme", "mysql://user:hunter2@db/x", newSealer(t), `"sqlite:"`},
		{"malformed postgres URL", "postgres://user:hunter2@[::1/db", newSealer(t), "open postgres"},
		{"empty path", "sqlite:", newSealer(t), "empty"},
		{"query in path", "sqlite:x.db?_pragma=foo", newSealer(t), "must not contain"},
		{"missing directory", "sqlite:" + filepath.Join(t.TempDir(), "no", "such", "dir.db"), newSealer(t), "open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(ctx, tt.dsn, tt.sealer, nil)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want it to mention %s", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error quotes a password: %v", err)
			}
		})
	}
}

func TestOpenRelativePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	s := mustOpen(t, "sqlite:data/../rel.db", newSealer(t))
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	if s.Dialect() != "sqlite" {
		t.Errorf("Dialect() = %q", s.Dialect())
	}
	os.Mkdir(filepath.Join(dir, "data"), 0o755)
	s2 := mustOpen(t, "sqlite:data/x.db", newSealer(t))
	s2.Close()
	if _, err := os.Stat(filepath.Join(dir, "data", "x.db")); err != nil {
		t.Errorf("relative database not created in the working directory: %v", err)
	}
}

func TestRebind(t *testing.T) {
	pg := &dialect{numbered: true}
	tests := []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`a = ? AND b = ?`, `a = $1 AND b = $2`},
		{`x = '?' AND y = ? AND "we?ird" = ?`, `x = '?' AND y = $1 AND "we?ird" = $2`},
		{`'it''s?' = ?`, `'it''s?' = $1`},
	}
	for _, tt := range tests {
		if got := pg.rebind(tt.in); got != tt.want {
			t.Errorf("rebind(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if got := sqliteDialect.rebind(tt.in); got != tt.in {
			t.Errorf("sqlite rebind changed %q to %q", tt.in, got)
		}
	}
}

func TestTimesAreUTC(t *testing.T) {
	ctx := context.Background()
	s := mustOpen(t, "sqlite::memory:", newSealer(t))
	if err := s.CreateProvider(ctx, storetest.AgoraProvider(t, "p"), switchboard.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 6, 1, 12, 30, 0, 123456789, time.FixedZone("CEST", 2*3600))
	if _, _, err := s.RecordCheck(ctx, "p", switchboard.ProbeResult{OK: true, At: at}, func(h switchboard.Health) switchboard.Health {
		h.LastCheck = &at
		h.Status = switchboard.StatusHealthy
		return h
	}); err != nil {
		t.Fatal(err)
	}
	rec, _ := s.GetProvider(ctx, "p")
	if lc := rec.Health.LastCheck; lc == nil || !lc.Equal(at) || lc.Location() != time.UTC {
		t.Errorf("LastCheck = %v, want %v in UTC", lc, at)
	}
	rs, _ := s.HourlyRollups(ctx, "p", at.Add(-time.Hour), at.Add(time.Hour))
	if len(rs) != 1 || !rs[0].Bucket.Equal(time.Date(2025, 6, 1, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("rollups = %+v, want the UTC hour 10:00", rs)
	}
	ts, _ := s.Transitions(ctx, "p", time.Time{}, 0)
	if len(ts) != 1 || !ts[0].At.Equal(at) || ts[0].At.Location() != time.UTC {
		t.Errorf("transitions = %+v", ts)
	}
}

// Close leaves no goroutine behind: synctest.Test fails when goroutines
// started in its bubble are still blocked once its function returns.
func TestCloseReleasesGoroutines(t *testing.T) {
	dsn, _ := tempDSN(t)
	sealer := newSealer(t)
	synctest.Test(t, func(t *testing.T) {
		for range 3 {
			s, err := Open(context.Background(), dsn, sealer, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.ListProviders(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func BenchmarkRecordCheck(b *testing.B) {
	ctx := context.Background()
	dsn, _ := tempDSN(b)
	s := mustOpen(b, dsn, newSealer(b))
	if err := s.CreateProvider(ctx, storetest.AgoraProvider(b, "p"), switchboard.AuditEntry{}); err != nil {
		b.Fatal(err)
	}
	fold := func(h switchboard.Health) switchboard.Health { h.TotalChecks++; return h }
	at := time.Now().UTC()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r := switchboard.ProbeResult{OK: true, Latency: 20 * time.Millisecond, At: at.Add(time.Duration(i) * time.Millisecond)}
		if _, _, err := s.RecordCheck(ctx, "p", r, fold); err != nil {
			b.Fatal(err)
		}
	}
}

func TestDBTimeClamps(t *testing.T) {
	tests := []struct {
		in   time.Time
		want int64
	}{
		{time.Time{}, math.MinInt64},
		{time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), math.MaxInt64},
		{time.Unix(0, 0), 0},
		{time.Unix(1, 5), 1_000_000_005},
	}
	for _, tt := range tests {
		if got := dbTime(tt.in); got != tt.want {
			t.Errorf("dbTime(%v) = %d, want %d", tt.in, got, tt.want)
		}
	}
	// Open-ended bounds work in queries.
	ctx := context.Background()
	s := mustOpen(t, "sqlite::memory:", newSealer(t))
	if err := s.CreateProvider(ctx, storetest.AgoraProvider(t, "p"), switchboard.AuditEntry{}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, _, err := s.RecordCheck(ctx, "p", switchboard.ProbeResult{OK: true, At: at}, nil); err != nil {
		t.Fatal(err)
	}
	end := time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)
	for name, f := range map[string]func(context.Context, string, time.Time, time.Time) ([]switchboard.Rollup, error){
		"hourly": s.HourlyRollups, "daily": s.DailyRollups,
	} {
		rs, err := f(ctx, "p", time.Time{}, end)
		if err != nil || len(rs) != 1 {
			t.Errorf("%s rollups over all time = %v, %v; want 1", name, rs, err)
		}
	}
}

// TestAbandonStaleInBatches: a sweep ends every stale stream, oldest
// heartbeat first, in transactions of a few streams each, and a stream that
// sent a heartbeat after the sweep found it stale stays active.
func TestAbandonStaleInBatches(t *testing.T) {
	for _, name := range []string{"sqlite", "postgres"} {
		t.Run(name, func(t *testing.T) {
			dsn, _ := tempDSN(t)
			if name == "postgres" {
				dsn = pgtest.DSN(t)
			}
			s := mustOpen(t, dsn, newSealer(t))
			s.abandonBatch = 2
			ctx := context.Background()
			if err := s.CreateProvider(ctx, storetest.AgoraProvider(t, "agora"), switchboard.AuditEntry{}); err != nil {
				t.Fatal(err)
			}
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			var want []string
			for i := range 7 {
				at := t0.Add(time.Duration(i) * time.Second)
				st := switchboard.Stream{ID: switchboard.NewStreamID(), Room: "r", UserID: "u", Role: switchboard.RolePublisher,
					Quality: switchboard.QualityHD, Provider: "agora", Status: switchboard.StreamActive, Owner: "token:t",
					StartedAt: at, LastHeartbeat: at}
				if _, _, err := s.StartStream(ctx, st, switchboard.TrailEntry{StreamID: st.ID, At: at, Kind: switchboard.TrailAssign, Provider: "agora"}, 0); err != nil {
					t.Fatal(err)
				}
				want = append(want, st.ID)
			}
			// The third one's heartbeat arrives between the read and its batch.
			late := want[2]
			s.abandonHook = func() {
				if _, err := s.Heartbeat(ctx, late, t0.Add(time.Hour)); err != nil {
					t.Error(err)
				}
				s.abandonHook = nil
			}
			got, err := s.AbandonStale(ctx, t0.Add(time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			want = slices.Delete(want, 2, 3)
			var ids []string
			for _, st := range got {
				ids = append(ids, st.ID)
				if st.Status != switchboard.StreamEnded || st.EndReason != switchboard.EndAbandoned {
					t.Errorf("%s: %s %s", st.ID, st.Status, st.EndReason)
				}
			}
			if !slices.Equal(ids, want) {
				t.Fatalf("ended %v, want %v", ids, want)
			}
			if st, err := s.GetStream(ctx, late); err != nil || st.Status != switchboard.StreamActive {
				t.Fatalf("the stream with a late heartbeat: %+v, %v", st, err)
			}
			if n, err := s.ActiveCounts(ctx); err != nil || n["agora"] != 1 {
				t.Fatalf("active counts %v, %v; want agora 1", n, err)
			}
		})
	}
}
