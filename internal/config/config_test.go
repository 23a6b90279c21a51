package config

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

func TestMaxInflight(t *testing.T) {
	none := func(string) string { return "" }
	d, err := Load(nil, none, io.Discard)
	if err != nil || d.MaxInflightFailover != 256 || d.MaxInflightStart != 128 || d.MaxInflightOther != 64 {
		t.Fatalf("defaults: %+v %v", d, err)
	}
	file := filepath.Join(t.TempDir(), "sb.yaml")
	if err := os.WriteFile(file, []byte("maxInflightFailover: 10\nmaxInflightStart: 11\nmaxInflightOther: 12\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SWITCHBOARD_MAX_INFLIGHT_START": "21", "SWITCHBOARD_MAX_INFLIGHT_OTHER": "22"}
	c, err := Load([]string{"--config", file, "--max-inflight-other", "0"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// file over default, env over file, flag over env; 0 (no limit) is allowed.
	if c.MaxInflightFailover != 10 || c.MaxInflightStart != 21 || c.MaxInflightOther != 0 {
		t.Errorf("got failover %d, start %d, other %d; want 10, 21, 0", c.MaxInflightFailover, c.MaxInflightStart, c.MaxInflightOther)
	}
	if _, err := Load([]string{"--max-inflight-start", "-1"}, none, io.Discard); err == nil {
		t.Error("negative max-inflight-start accepted")
	}
	if _, err := Load(nil, func(k string) string {
		if k == "SWITCHBOARD_MAX_INFLIGHT_FAILOVER" {
			return "lots"
		}
		return ""
	}, io.Discard); err == nil {
		t.Error("non-integer SWITCHBOARD_MAX_INFLIGHT_FAILOVER accepted")
	}
}

func TestLeaderLease(t *testing.T) {
	none := func(string) string { return "" }
	d, err := Load(nil, none, io.Discard)
	if err != nil || d.LeaderLease != 10*time.Second {
		t.Fatalf("default leader lease: %s %v", d.LeaderLease, err)
	}
	env := func(k string) string {
		if k == "SWITCHBOARD_LEADER_LEASE" {
			return "20s"
		}
		return ""
	}
	if c, err := Load(nil, env, io.Discard); err != nil || c.LeaderLease != 20*time.Second {
		t.Errorf("from the environment: %s %v", c.LeaderLease, err)
	}
	if c, err := Load([]string{"--leader-lease", "30s"}, env, io.Discard); err != nil || c.LeaderLease != 30*time.Second {
		t.Errorf("flag over environment: %s %v", c.LeaderLease, err)
	}
	for _, bad := range []string{"1s", "6m", "0s"} {
		if _, err := Load([]string{"--leader-lease", bad}, none, io.Discard); err == nil || !strings.Contains(err.Error(), "leader-lease") {
			t.Errorf("--leader-lease %s: %v, want an error naming leader-lease", bad, err)
		}
	}
}

func TestCORSOrigins(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sb.yaml")
	if err := os.WriteFile(file, []byte("corsOrigins: https://file.example.com\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	none := func(string) string { return "" }
	d, err := Load(nil, none, io.Discard)
	if err != nil || d.CORSOrigins != "" {
		t.Fatalf("default: %q %v, want off", d.CORSOrigins, err)
	}
	c, err := Load([]string{"--config", file}, none, io.Discard)
	if err != nil || c.CORSOrigins != "https://file.example.com" {
		t.Fatalf("from the file: %q %v", c.CORSOrigins, err)
	}
	env := func(k string) string {
		if k == "SWITCHBOARD_CORS_ORIGINS" {
			return "https://env.example.com"
		}
		return ""
	}
	if c, err = Load([]string{"--config", file}, env, io.Discard); err != nil || c.CORSOrigins != "https://env.example.com" {
		t.Fatalf("env over file: %q %v", c.CORSOrigins, err)
	}
	if c, err = Load([]string{"--config", file, "--cors-origins", "https://a.example.com,https://b.example.com"}, env, io.Discard); err != nil ||
		c.CORSOrigins != "https://a.example.com,https://b.example.com" {
		t.Fatalf("flag over env: %q %v", c.CORSOrigins, err)
	}
}

func TestRegions(t *testing.T) {
	file := filepath.Join(t.TempDir(), "sb.yaml")
	if err := os.WriteFile(file, []byte("region: eu-west\ngeoHeader: CF-IPCountry\ngeoMap: file.json\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SWITCHBOARD_GEO_HEADER": "CloudFront-Viewer-Country", "SWITCHBOARD_GEO_MAP": "env.json"}
	c, err := Load([]string{"--config", file, "--geo-map", "flag.json"}, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.Region != "eu-west" || c.GeoHeader != "CloudFront-Viewer-Country" || c.GeoMap != "flag.json" {
		t.Errorf("region, geo header, geo map = %q, %q, %q; want eu-west (file), CloudFront-Viewer-Country (env), flag.json (flag)", c.Region, c.GeoHeader, c.GeoMap)
	}
	d, err := Load(nil, func(string) string { return "" }, io.Discard)
	if err != nil || d.Region != "" || d.GeoHeader != "" || d.GeoMap != "" {
		t.Errorf("defaults: region %q, geo header %q, geo map %q, %v; want none", d.Region, d.GeoHeader, d.GeoMap, err)
	}
	for _, args := range [][]string{{"--region", "EU West"}, {"--geo-header", "CF IPCountry"}, {"--geo-header", "X:Y"}} {
		_, err := Load(args, func(string) string { return "" }, io.Discard)
		if err == nil || !strings.Contains(err.Error(), strings.TrimPrefix(args[0], "--")) {
			t.Errorf("Load(%q) = %v; want an error naming %s", args, err, args[0])
		}
	}
}

func TestPprofAddr(t *testing.T) {
	none := func(string) string { return "" }
	d, err := Load(nil, none, io.Discard)
	if err != nil || d.PprofAddr != "" {
		t.Fatalf("default: %q %v, want off", d.PprofAddr, err)
	}
	env := func(k string) string {
		if k == "SWITCHBOARD_PPROF_ADDR" {
			return "127.0.0.1:6061"
		}
		return ""
	}
	if c, err := Load(nil, env, io.Discard); err != nil || c.PprofAddr != "127.0.0.1:6061" {
		t.Errorf("from the environment: %q %v", c.PprofAddr, err)
	}
	for _, good := range []string{"127.0.0.1:6060", "[::1]:0", "localhost:6060", "127.0.0.2:1"} {
		if c, err := Load([]string{"--pprof-addr", good}, env, io.Discard); err != nil || c.PprofAddr != good {
			t.Errorf("--pprof-addr %s: %q %v", good, c.PprofAddr, err)
		}
	}
	for _, bad := range []string{"0.0.0.0:6060", ":6060", "192.168.1.10:6060", "[::]:6060", "example.com:6060", "127.0.0.1"} {
		if _, err := Load([]string{"--pprof-addr", bad}, none, io.Discard); err == nil || !strings.Contains(err.Error(), "pprof-addr") {
			t.Errorf("--pprof-addr %s: %v, want an error naming pprof-addr", bad, err)
		}
	}
}

// TestAbandonAfter: two minutes by default, from the file, the environment
// or the flag in that order of precedence, and refused outside 10 s to 24 h
// or when not a duration, naming the option.
func TestAbandonAfter(t *testing.T) {
	none := func(string) string { return "" }
	d, err := Load(nil, none, io.Discard)
	if err != nil || d.AbandonAfter != 2*time.Minute {
		t.Fatalf("default %v, %v", d.AbandonAfter, err)
	}
	file := filepath.Join(t.TempDir(), "sb.yaml")
	if err := os.WriteFile(file, []byte("abandonAfter: 3m\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := Load([]string{"--config", file}, none, io.Discard); err != nil || c.AbandonAfter != 3*time.Minute {
		t.Fatalf("from the file: %v, %v", c.AbandonAfter, err)
	}
	env := func(k string) string {
		if k == "SWITCHBOARD_ABANDON_AFTER" {
			return "4m"
		}
		return ""
	}
	if c, err := Load([]string{"--config", file}, env, io.Discard); err != nil || c.AbandonAfter != 4*time.Minute {
		t.Fatalf("from the environment: %v, %v", c.AbandonAfter, err)
	}
	if c, err := Load([]string{"--config", file, "--abandon-after", "1h"}, env, io.Discard); err != nil || c.AbandonAfter != time.Hour {
		t.Fatalf("from the flag: %v, %v", c.AbandonAfter, err)
	}
	for _, v := range []string{"5s", "25h", "soon"} {
		if _, err := Load([]string{"--abandon-after", v}, none, io.Discard); err == nil || !strings.Contains(err.Error(), "abandon-after") {
			t.Errorf("--abandon-after %s: %v", v, err)
		}
	}
	bad := func(k string) string {
		if k == "SWITCHBOARD_ABANDON_AFTER" {
			return "later"
		}
		return ""
	}
	if _, err := Load(nil, bad, io.Discard); err == nil || !strings.Contains(err.Error(), "SWITCHBOARD_ABANDON_AFTER") {
		t.Errorf("a bad SWITCHBOARD_ABANDON_AFTER: %v", err)
	}
}
