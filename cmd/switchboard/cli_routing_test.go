package main

import (
	"errors"
	"regexp"
	"strings"
	"testing"
)

// hasCells reports whether the table out has a row starting with the cells.
func hasCells(out string, cells ...string) bool {
	for i, c := range cells {
		cells[i] = regexp.QuoteMeta(c)
	}
	return regexp.MustCompile(`(?m)^` + strings.Join(cells, `\s+`) + `(\s|$)`).MatchString(out)
}

func TestRoutingCLI(t *testing.T) {
	e := startServer(t)
	out := e.mustCLI("routing", "get")
	if !hasCells(out, "global", "priority") {
		t.Fatalf("routing get:\n%s", out)
	}
	out = e.mustCLI("routing", "set", "policy=commit", "shares=agora-main:0.35,zego-main:0.65", "region.eu-west=optimized", "region.eu-west.margin=8")
	if !strings.Contains(out, "agora-main:0.35,zego-main:0.65") || !hasCells(out, "region eu-west", "optimized") {
		t.Fatalf("routing set:\n%s", out)
	}
	var got struct {
		Policy  string             `json:"policy"`
		Shares  map[string]float64 `json:"shares"`
		Margin  float64            `json:"margin"`
		Regions map[string]struct {
			Policy string   `json:"policy"`
			Margin *float64 `json:"margin"`
		} `json:"regions"`
	}
	e.mustJSON(&got, "routing", "get")
	if got.Policy != "commit" || got.Shares["zego-main"] != 0.65 || got.Regions["eu-west"].Margin == nil || *got.Regions["eu-west"].Margin != 8 {
		t.Fatalf("routing get -o json = %+v", got)
	}
	got.Regions = nil
	e.mustJSON(&got, "routing", "set", "region.eu-west=-", "margin=3")
	if len(got.Regions) != 0 || got.Margin != 3 || got.Policy != "commit" {
		t.Fatalf("after removing the region: %+v", got)
	}

	tests := []struct {
		name  string
		args  []string
		usage bool
		want  string
	}{
		{"nothing", []string{"routing", "set"}, true, "usage: switchboard routing set KEY=VALUE"},
		{"no equals", []string{"routing", "set", "policy"}, true, `routing set: "policy": want KEY=VALUE`},
		{"unknown", []string{"routing", "set", "polcy=cost"}, true, "routing set: unknown key polcy"},
		{"bad shares", []string{"routing", "set", "shares=a"}, true, `routing set: shares=a: "a": want NAME:NUMBER`},
		{"bad weight", []string{"routing", "set", "weights=speed:1"}, true, "unknown weight speed"},
		{"region without policy", []string{"routing", "set", "region.eu-west.margin=3"}, true, "region.eu-west needs its policy"},
		{"server refuses", []string{"routing", "set", "policy=fastest"}, false, "(field policy)"},
		{"shares sum", []string{"routing", "set", "shares=a:0.5"}, false, "(field shares)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := e.cli(tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			var u usageError
			if isUsage := errors.As(err, &u); isUsage != tt.usage {
				t.Fatalf("usage error %v, want %v (%v)", isUsage, tt.usage, err)
			}
		})
	}
}
