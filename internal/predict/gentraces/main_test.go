package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The shipped traces are what the generator writes with seed 1, byte for byte.
func TestShippedTracesAreSeedOne(t *testing.T) {
	dir := t.TempDir()
	if err := generate(dir, 1); err != nil {
		t.Fatal(err)
	}
	const shipped = "../testdata/traces"
	got, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadDir(shipped)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d files generated, %d shipped", len(got), len(want))
	}
	for _, e := range got {
		a, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(shipped, e.Name()))
		if err != nil {
			t.Fatalf("%s generated but not shipped: %v", e.Name(), err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs from the shipped one: run go run ./internal/predict/gentraces -seed 1", e.Name())
		}
	}
}
