// Package geo maps the country a trusted edge names in a request header
// (such as Cloudflare's CF-IPCountry or CloudFront-Viewer-Country) to one of
// Switchboard's regions. It does no I/O but LoadMap's read of the file.
package geo

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"

	sb "github.com/switchboardhq/switchboard"
)

// Map maps ISO 3166-1 alpha-2 country codes, upper case, to region slugs.
type Map map[string]string

var countryRE = regexp.MustCompile(`^[A-Z]{2}$`)

// Region returns the region of country (an ISO 3166-1 alpha-2 code, in any
// case, surrounded by spaces or not) and whether m has one. Codes that edges
// send for an unknown origin (such as "XX" or "T1" for Tor) have none.
func (m Map) Region(country string) (string, bool) {
	c := strings.ToUpper(strings.TrimSpace(country))
	if !countryRE.MatchString(c) {
		return "", false
	}
	r, ok := m[c]
	return r, ok
}

// Continent regions of the default map.
const (
	NorthAmerica = "us-east"
	SouthAmerica = "sa-east"
	Europe       = "eu-west"
	Africa       = "af-south"
	Asia         = "ap-east"
	Oceania      = "ap-southeast"
)

// continents lists the countries of each continent (ISO 3166-1 alpha-2;
// Central America and the Caribbean are in North America, the Middle East and
// Russia are in Asia and Europe respectively, Turkey in Europe).
var continents = map[string]string{
	NorthAmerica: "AG AI AW BB BL BM BQ BS BZ CA CR CU CW DM DO GD GL GP GT HN HT JM KN KY LC MF MQ MS MX NI PA PM PR SV SX TC TT UM US VC VG VI",
	SouthAmerica: "AR BO BR CL CO EC FK GF GY PE PY SR UY VE",
	Europe:       "AD AL AT AX BA BE BG BY CH CY CZ DE DK EE ES FI FO FR GB GG GI GR HR HU IE IM IS IT JE LI LT LU LV MC MD ME MK MT NL NO PL PT RO RS RU SE SI SJ SK SM TR UA VA XK",
	Africa:       "AO BF BI BJ BW CD CF CG CI CM CV DJ DZ EG EH ER ET GA GH GM GN GQ GW KE KM LR LS LY MA MG ML MR MU MW MZ NA NE NG RE RW SC SD SH SL SN SO SS ST SZ TD TG TN TZ UG YT ZA ZM ZW",
	Asia:         "AE AF AM AZ BD BH BN BT CN GE HK ID IL IN IO IQ IR JO JP KG KH KP KR KW KZ LA LB LK MM MN MO MV MY NP OM PH PK PS QA SA SG SY TH TJ TL TM TW UZ VN YE",
	Oceania:      "AS AU CK FJ FM GU KI MH MP NC NF NR NU NZ PF PG PN PW SB TK TO TV VU WF WS",
}

// Default returns the built-in map: every country to the region of its
// continent (see the constants NorthAmerica to Oceania).
func Default() Map {
	m := Map{}
	for region, list := range continents {
		for _, c := range strings.Fields(list) {
			m[c] = region
		}
	}
	return m
}

// Parse reads a map from JSON: an object of country codes to region slugs,
// such as {"DE": "eu-central", "FR": "eu-west"}. Countries it leaves out
// keep their region in the default map unless it holds "*": "" (then only
// the countries it names have a region); a country mapped to "" has none.
func Parse(b []byte) (Map, error) {
	var raw map[string]string
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("geo map: %w", err)
	}
	m := Default()
	if v, ok := raw["*"]; ok {
		if v != "" {
			return nil, fmt.Errorf(`geo map: "*" may only map to "" (no default region)`)
		}
		m = Map{}
		delete(raw, "*")
	}
	for c, r := range raw {
		if !countryRE.MatchString(c) {
			return nil, fmt.Errorf("geo map: %q is not an upper-case ISO 3166-1 alpha-2 country code", c)
		}
		if r == "" {
			delete(m, c)
			continue
		}
		if !sb.ValidSlug(r) {
			return nil, fmt.Errorf("geo map: region %q of %s must match %s", r, c, sb.SlugPattern)
		}
		m[c] = r
	}
	return m, nil
}

// LoadMap reads the map of Parse from a file; an empty path is Default.
func LoadMap(path string) (Map, error) {
	if path == "" {
		return Default(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("geo map: %w", err)
	}
	return Parse(b)
}

// Regions returns the distinct regions of m, sorted.
func (m Map) Regions() []string {
	set := map[string]bool{}
	for _, r := range m {
		set[r] = true
	}
	out := make([]string, 0, len(set))
	for r := range maps.Keys(set) {
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}
