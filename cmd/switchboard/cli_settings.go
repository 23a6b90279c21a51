package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/switchboardhq/switchboard"
)

// settingsFlags: settings has no flags of its own.
type settingsFlags struct{}

// settingsCommand reads and changes the settings operators tune at run time.
var settingsCommand = verbCommand[settingsFlags]{
	name: "settings",
	notes: `get shows every setting with its value now. set changes the settings it
names and keeps the others, e.g.
  switchboard settings set maxRetries=5 retryBackoff=250ms
Settings: maxRetries (1-10), maxFailures (1-10), healthCheckInterval (5s-10m),
retryBackoff (10ms-10s), retryBudget (0.01-1), leaderLease (3s-5m),
preemptive (off, new-streams or migrate), maxPreemptiveMigrationsPerMinute
(1-600).
SDKs apply a change at once. Reading needs an admin token, changing a
superadmin token.
`,
	flags: func(*settingsFlags, *flag.FlagSet) {},
	verbs: []verb[settingsFlags]{
		{name: "get", check: checkNoArgs[settingsFlags], run: settingsGet},
		{name: "set", synopsis: "KEY=VALUE ...", check: checkSettingsSet, run: settingsSet},
	},
}

func settingsGet(ctx context.Context, v verbCall[settingsFlags]) error {
	s, err := v.c.GetSettings(ctx)
	if err != nil {
		return err
	}
	if v.json {
		return printJSON(v.stdout, s.JSON)
	}
	return printSettings(v.stdout, s.Settings)
}

func checkSettingsSet(v verbCall[settingsFlags]) error {
	if len(v.args) == 0 {
		return usageError{msg: "usage: switchboard " + v.cmd + " " + v.synopsis}
	}
	if err := v.checkFlags(); err != nil {
		return err
	}
	_, err := parseSettings(v.args)
	return err
}

func settingsSet(ctx context.Context, v verbCall[settingsFlags]) error {
	in, err := parseSettings(v.args)
	if err != nil {
		return err
	}
	s, err := v.c.UpdateSettings(ctx, in)
	if err != nil {
		return err
	}
	if v.json {
		return printJSON(v.stdout, s.JSON)
	}
	return printSettings(v.stdout, s.Settings)
}

// parseSettings reads KEY=VALUE arguments into a partial update. The keys
// are the JSON names of the settings; a value is a number for the counts
// and the budget, and a Go duration (250ms, 1m) for the others. The server
// checks the ranges.
func parseSettings(args []string) (switchboard.SettingsInput, error) {
	var in switchboard.SettingsInput
	body := map[string]json.RawMessage{}
	for _, a := range args {
		key, val, ok := strings.Cut(a, "=")
		if !ok || key == "" {
			return in, usageError{msg: fmt.Sprintf("settings set: %q: want KEY=VALUE", a)}
		}
		if _, dup := body[key]; dup {
			return in, usageError{msg: fmt.Sprintf("settings set: %s given twice", key)}
		}
		if _, err := strconv.ParseFloat(val, 64); err == nil {
			body[key] = json.RawMessage(val)
		} else {
			body[key], _ = json.Marshal(val)
		}
	}
	raw, _ := json.Marshal(body)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return in, usageError{msg: "settings set: " + settingsError(err, body)}
	}
	return in, nil
}

// settingsError names the setting an error of the decoder is about.
func settingsError(err error, body map[string]json.RawMessage) string {
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return fmt.Sprintf("unknown setting %s (want %s)", name, orList(settingNames()))
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return fmt.Sprintf("%s=%s: %s", te.Field, strings.Trim(string(body[te.Field]), `"`), settingKind(te.Field))
	}
	for key, val := range body { // a duration that does not parse
		var probe switchboard.SettingsInput
		if json.Unmarshal([]byte(`{"`+key+`":`+string(val)+`}`), &probe) != nil {
			return fmt.Sprintf("%s=%s: %s", key, strings.Trim(string(val), `"`), settingKind(key))
		}
	}
	return err.Error()
}

// settingNames are the JSON names of the settings, in their order.
func settingNames() []string {
	t := reflect.TypeFor[switchboard.SettingsInput]()
	names := make([]string, t.NumField())
	for i := range t.NumField() {
		names[i], _, _ = strings.Cut(t.Field(i).Tag.Get("json"), ",")
	}
	return names
}

// settingKind says what kind of value a setting takes.
func settingKind(name string) string {
	switch name {
	case "maxRetries", "maxFailures", "maxPreemptiveMigrationsPerMinute":
		return "must be an integer"
	case "preemptive":
		return "must be off, new-streams or migrate"
	case "retryBudget":
		return "must be a number"
	}
	return "must be a duration such as 250ms or 1m"
}

func printSettings(w io.Writer, s switchboard.Settings) error {
	tw := newTable(w)
	row(tw, "SETTING", "VALUE")
	row(tw, "maxRetries", strconv.Itoa(s.MaxRetries))
	row(tw, "maxFailures", strconv.Itoa(s.MaxFailures))
	row(tw, "healthCheckInterval", s.HealthCheckInterval.D().String())
	row(tw, "retryBackoff", s.RetryBackoff.D().String())
	row(tw, "retryBudget", strconv.FormatFloat(s.RetryBudget, 'g', -1, 64))
	row(tw, "leaderLease", s.LeaderLease.D().String())
	row(tw, "preemptive", string(s.Preemptive))
	row(tw, "maxPreemptiveMigrationsPerMinute", strconv.Itoa(s.MaxPreemptiveMigrationsPerMinute))
	return tw.Flush()
}
