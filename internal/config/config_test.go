package config

import (
	"io"
	"os"
	"path/filepath"
	"testing"
)

func TestPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "sb.yaml")
	if err := os.WriteFile(file, []byte("addr: 127.0.0.1:1111\ndb: sqlite:file.db\nlogFormat: json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SWITCHBOARD_DB": "sqlite:env.db", "SWITCHBOARD_LOG_FORMAT": "text"}
	getenv := func(k string) string { return env[k] }
	c, err := Load([]string{"--config", file, "--log-format", "json"}, getenv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:1111" { // file over default
		t.Errorf("addr = %q", c.Addr)
	}
	if c.DB != "sqlite:env.db" { // env over file
		t.Errorf("db = %q", c.DB)
	}
	if c.LogFormat != "json" { // flag over env
		t.Errorf("log format = %q", c.LogFormat)
	}
	d, err := Load(nil, func(string) string { return "" }, io.Discard)
	if err != nil || d.Addr != "127.0.0.1:8080" || d.DB != "sqlite:switchboard.db" {
		t.Fatalf("defaults: %+v %v", d, err)
	}
}

func TestRejects(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	_ = os.WriteFile(bad, []byte("adr: x\n"), 0o600)
	none := func(string) string { return "" }
	for name, args := range map[string][]string{
		"unknown yaml key": {"--config", bad},
		"bad db":           {"--db", "mysql://x"},
		"bad log format":   {"--log-format", "xml"},
		"stray argument":   {"extra"},
		"missing file":     {"--config", filepath.Join(dir, "none.yaml")},
	} {
		if _, err := Load(args, none, io.Discard); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
