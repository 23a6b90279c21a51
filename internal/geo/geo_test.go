package geo

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDefault(t *testing.T) {
	m := Default()
	for _, tc := range []struct{ country, want string }{
		{"DE", Europe}, {"de", Europe}, {" US ", NorthAmerica}, {"BR", SouthAmerica},
		{"SG", Asia}, {"JP", Asia}, {"AU", Oceania}, {"NG", Africa}, {"MX", NorthAmerica},
		{"XX", ""}, {"T1", ""}, {"", ""}, {"DEU", ""},
	} {
		got, ok := m.Region(tc.country)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("Region(%q) = %q, %v; want %q", tc.country, got, ok, tc.want)
		}
	}
	// Every country is in one continent only.
	seen := map[string]string{}
	for region, list := range continents {
		for _, c := range strings.Fields(list) {
			if prev, dup := seen[c]; dup {
				t.Errorf("%s is in %s and %s", c, prev, region)
			}
			seen[c] = region
		}
	}
	if len(seen) < 240 {
		t.Errorf("the default map has %d countries; want every one (about 249)", len(seen))
	}
}

func TestParse(t *testing.T) {
	m, err := Parse([]byte(`{"DE": "eu-central", "SG": "", "US": "us-west"}`))
	if err != nil {
		t.Fatal(err)
	}
	for c, want := range map[string]string{"DE": "eu-central", "FR": Europe, "SG": "", "US": "us-west"} {
		if got, _ := m.Region(c); got != want {
			t.Errorf("Region(%s) = %q; want %q", c, got, want)
		}
	}
	only, err := Parse([]byte(`{"*": "", "FR": "eu-west"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := only.Region("DE"); ok || len(only) != 1 {
		t.Errorf(`with "*": "" the map is %v; want FR only`, only)
	}
	for _, bad := range []string{`[]`, `{"de": "eu"}`, `{"DE": "Eu West"}`, `{"*": "eu-west"}`, `{`} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%s) succeeded; want an error", bad)
		}
	}
}

func TestLoadMap(t *testing.T) {
	if m, err := LoadMap(""); err != nil || len(m) != len(Default()) {
		t.Fatalf("LoadMap(\"\") = %d countries, %v; want the default", len(m), err)
	}
	path := filepath.Join(t.TempDir(), "geo.json")
	if err := os.WriteFile(path, []byte(`{"JP": "ap-northeast"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := LoadMap(path)
	if err != nil {
		t.Fatal(err)
	}
	if r, _ := m.Region("JP"); r != "ap-northeast" {
		t.Errorf("JP = %q; want ap-northeast", r)
	}
	if _, err := LoadMap(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("LoadMap of a missing file succeeded")
	}
}
