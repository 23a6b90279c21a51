package sqlstore

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkOpenEmptySQLite measures Open on a new SQLite file: creating it
// and applying every migration, what the first start of a server pays
// before it can listen.
func BenchmarkOpenEmptySQLite(b *testing.B) {
	sealer := newSealer(b)
	dir := b.TempDir()
	for i := range b.N {
		s, err := Open(context.Background(), "sqlite:"+filepath.Join(dir, strconv.Itoa(i)+".db"), sealer, nil)
		if err != nil {
			b.Fatal(err)
		}
		_ = s.Close()
	}
}
