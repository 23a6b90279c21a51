package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/client/admin"
)

// providersCommand manages the providers of a server.
var providersCommand = verbCommand[providerFlags]{
	name: "providers",
	notes: `Flags may come before or after the verb. set sends only the flags given.
Credentials are write-only: prefer --credentials-file (a JSON object such as
{"apiKey": "...", "apiSecret": "..."}) to credential flags, which other users
of the machine may see in the process list.
`,
	flags: (*providerFlags).register,
	verbs: []verb[providerFlags]{
		{name: "list", check: checkNoArgs[providerFlags], run: providersList},
		{name: "get", synopsis: "NAME", check: checkOneArg[providerFlags], run: providersGet},
		{name: "add", synopsis: "--name NAME --kind KIND [field flags] | -f FILE", check: checkProviderFields(0), run: providersAdd},
		{name: "set", synopsis: "NAME [field flags] | -f FILE", check: checkProviderFields(1), run: providersSet},
		{name: "enable", synopsis: "NAME", check: checkOneArg[providerFlags], run: providersEnable},
		{name: "disable", synopsis: "NAME", check: checkOneArg[providerFlags], run: providersDisable},
		{name: "reorder", synopsis: "NAME1 NAME2 ...   (every provider, highest priority first)", check: checkReorder, run: providersReorder},
		{name: "rm", synopsis: "NAME", check: checkOneArg[providerFlags], run: providersRemove},
	},
}

// providerFlags are the field flags of providers add and set.
type providerFlags struct {
	file, credentialsFile                      string
	name, kind, displayName                    string
	priority, weight, maxStreams               int
	regions                                    string
	appID, baseURL, url, method, expectStatus  string
	customerID, customerSecret, appCertificate string
	serverSecret, apiKey, apiSecret            string
	headers                                    headerFlag
}

// Flag names by group, to check which apply to a verb.
var (
	providerFieldFlags = []string{"name", "kind", "display-name", "priority", "weight", "regions", "max-streams"}
	configFlags        = []string{"app-id", "base-url", "url", "method", "expect-status"}
	credentialFlags    = []string{"customer-id", "customer-secret", "app-certificate", "server-secret", "api-key", "api-secret", "header"}
)

func (f *providerFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.file, "f", "", "JSON body `FILE` to send as is (- for stdin)")
	fs.StringVar(&f.credentialsFile, "credentials-file", "", "JSON object of credentials in `FILE` (- for stdin)")
	fs.StringVar(&f.name, "name", "", "provider name (a lowercase slug)")
	fs.StringVar(&f.kind, "kind", "", "provider kind: agora, zegocloud, livekit or http")
	fs.StringVar(&f.displayName, "display-name", "", "name shown in the dashboard")
	fs.IntVar(&f.priority, "priority", 0, "priority (1 is tried first)")
	fs.IntVar(&f.weight, "weight", 0, "weight among providers of equal priority")
	fs.StringVar(&f.regions, "regions", "", "comma-separated regions, e.g. us-east,eu-west")
	fs.IntVar(&f.maxStreams, "max-streams", 0, "most active streams (0 = unlimited)")
	fs.StringVar(&f.appID, "app-id", "", "App ID (agora, zegocloud)")
	fs.StringVar(&f.baseURL, "base-url", "", "REST API base URL (agora, zegocloud)")
	fs.StringVar(&f.url, "url", "", "server URL (livekit) or URL to probe (http)")
	fs.StringVar(&f.method, "method", "", "probe method (http): GET, HEAD, POST or OPTIONS")
	fs.StringVar(&f.expectStatus, "expect-status", "", "comma-separated expected statuses (http), e.g. 200,204")
	fs.StringVar(&f.customerID, "customer-id", "", "RESTful API customer ID (agora)")
	fs.StringVar(&f.customerSecret, "customer-secret", "", "RESTful API customer secret (agora)")
	fs.StringVar(&f.appCertificate, "app-certificate", "", "App certificate (agora)")
	fs.StringVar(&f.serverSecret, "server-secret", "", "ServerSecret (zegocloud)")
	fs.StringVar(&f.apiKey, "api-key", "", "API key (livekit)")
	fs.StringVar(&f.apiSecret, "api-secret", "", "API secret (livekit)")
	fs.Var(&f.headers, "header", "secret request header 'Name: value' (http; repeatable)")
}

// headerFlag collects repeatable --header 'Name: value' flags. Set never
// fails, so that the flag package does not echo a secret value in its error;
// a malformed header is reported after parsing, by position only.
type headerFlag struct {
	m   map[string]string
	bad int // 1-based position of the first malformed header, 0 if none
	n   int
}

func (h *headerFlag) String() string { return "" }

func (h *headerFlag) Set(v string) error {
	h.n++
	name, value, ok := strings.Cut(v, ":")
	name = strings.TrimSpace(name)
	if !ok || name == "" {
		if h.bad == 0 {
			h.bad = h.n
		}
		return nil
	}
	if h.m == nil {
		h.m = map[string]string{}
	}
	h.m[name] = strings.TrimSpace(value)
	return nil
}

func (h *headerFlag) err() error {
	if h.bad == 0 {
		return nil
	}
	return usageError{msg: fmt.Sprintf("--header #%d: must be 'Name: value'", h.bad)}
}

// checkProviderFields is the check of add (n = 0) and set (n = 1): the
// field flags apply, and -f sends the file alone.
func checkProviderFields(n int) func(v verbCall[providerFlags]) error {
	return func(v verbCall[providerFlags]) error {
		if err := v.wantArgs(n); err != nil {
			return err
		}
		fields := append(append(append([]string{"f", "credentials-file"}, providerFieldFlags...), configFlags...), credentialFlags...)
		if err := v.checkFlags(fields...); err != nil {
			return err
		}
		if v.given["f"] {
			for name := range v.given {
				if name != "f" && !isConnFlag(name) {
					return usageError{msg: fmt.Sprintf("%s: -f sends the file as is and cannot be combined with --%s", v.cmd, name)}
				}
			}
		}
		return v.flags.headers.err()
	}
}

func checkReorder(v verbCall[providerFlags]) error {
	if len(v.args) == 0 {
		return usageError{msg: "usage: switchboard providers reorder NAME1 NAME2 ... (every provider, highest priority first)"}
	}
	return v.checkFlags()
}

func isConnFlag(name string) bool {
	switch name {
	case "server", "token", "o", "output", "timeout":
		return true
	}
	return false
}

func providersList(ctx context.Context, v verbCall[providerFlags]) error {
	l, err := v.c.ListProviders(ctx)
	if err != nil {
		return err
	}
	return printProviders(v, l)
}

func providersGet(ctx context.Context, v verbCall[providerFlags]) error {
	pr, err := v.c.GetProvider(ctx, v.args[0])
	if err != nil {
		return err
	}
	if v.json {
		return printJSON(v.stdout, pr.JSON)
	}
	return describeProvider(v.stdout, pr, time.Now())
}

func providersAdd(ctx context.Context, v verbCall[providerFlags]) error {
	body, err := v.flags.body(v.given, nil)
	if err != nil {
		return err
	}
	pr, err := v.c.CreateProvider(ctx, body)
	return providerChanged(v, pr, err, "created")
}

func providersSet(ctx context.Context, v verbCall[providerFlags]) error {
	var current *switchboard.ProviderConfig
	if v.flags.touchesConfig(v.given) {
		// The server replaces config as a whole: merge the flags given into
		// the current config so that the others keep their values.
		cur, err := v.c.GetProvider(ctx, v.args[0])
		if err != nil {
			return err
		}
		current = &cur.Config
	}
	body, err := v.flags.body(v.given, current)
	if err != nil {
		return err
	}
	if body == nil {
		return usageError{msg: "providers set: nothing to change: give field flags or -f FILE"}
	}
	pr, err := v.c.UpdateProvider(ctx, v.args[0], body)
	return providerChanged(v, pr, err, "updated")
}

func providersEnable(ctx context.Context, v verbCall[providerFlags]) error {
	pr, err := v.c.SetEnabled(ctx, v.args[0], true)
	return providerChanged(v, pr, err, "enabled")
}

func providersDisable(ctx context.Context, v verbCall[providerFlags]) error {
	pr, err := v.c.SetEnabled(ctx, v.args[0], false)
	return providerChanged(v, pr, err, "disabled")
}

func providersReorder(ctx context.Context, v verbCall[providerFlags]) error {
	l, err := v.c.ReorderProviders(ctx, v.args)
	if err != nil {
		return err
	}
	return printProviders(v, l)
}

func providersRemove(ctx context.Context, v verbCall[providerFlags]) error {
	if err := v.c.DeleteProvider(ctx, v.args[0]); err != nil {
		return err
	}
	if !v.json {
		fmt.Fprintf(v.stdout, "provider %s deleted\n", v.args[0])
	}
	return nil
}

// providerChanged prints the outcome of a change.
func providerChanged(v verbCall[providerFlags], pr admin.Provider, err error, what string) error {
	if err != nil {
		return err
	}
	if v.json {
		return printJSON(v.stdout, pr.JSON)
	}
	fmt.Fprintf(v.stdout, "provider %s %s\n", pr.Name, what)
	return nil
}

// printProviders prints the providers, highest priority first.
func printProviders(v verbCall[providerFlags], l admin.ProviderList) error {
	if v.json {
		return printJSON(v.stdout, l.JSON)
	}
	if len(l.Providers) == 0 {
		fmt.Fprintln(v.stderr, "No providers.")
		return nil
	}
	now := time.Now()
	tw := newTable(v.stdout)
	row(tw, "PRIORITY", "NAME", "KIND", "ENABLED", "STATUS", "UPTIME", "ERROR%", "LATENCY", "LAST CHECK", "REGIONS")
	for _, pr := range l.Providers {
		uptime, errRate, latency := "-", "-", "-"
		if pr.TotalChecks > 0 {
			uptime = strconv.FormatFloat(pr.Uptime, 'f', 2, 64) + "%"
			latency = strconv.FormatInt(pr.Latency, 10) + "ms"
		}
		if pr.TotalRequests > 0 {
			errRate = strconv.FormatFloat(pr.ErrorRate, 'f', 2, 64)
		}
		row(tw, strconv.Itoa(pr.Priority), pr.Name, string(pr.Kind), yesNo(pr.Enabled), string(pr.Status),
			uptime, errRate, latency, ago(pr.LastCheck, now), regionsSummary(pr.RegionalHealth))
	}
	return tw.Flush()
}

// regionsSummary is a provider's status in each region, by region, such as
// "ap-east=CRITICAL eu-west=HEALTHY us-east=stale"; "-" without regional
// health.
func regionsSummary(rh map[string]admin.RegionalHealth) string {
	if len(rh) == 0 {
		return "-"
	}
	parts := make([]string, 0, len(rh))
	for _, region := range slices.Sorted(maps.Keys(rh)) {
		st := string(rh[region].Status)
		if rh[region].Stale {
			st = "stale"
		}
		parts = append(parts, region+"="+st)
	}
	return strings.Join(parts, " ")
}

// describeProvider prints one provider as aligned "Key: value" lines.
func describeProvider(w io.Writer, p admin.Provider, now time.Time) error {
	tw := newTable(w)
	kv := func(k, v string) { row(tw, k+":", v) }
	kv("Name", p.Name)
	kv("Display name", p.DisplayName)
	kv("Kind", string(p.Kind))
	kv("Enabled", yesNo(p.Enabled))
	kv("Priority", strconv.Itoa(p.Priority))
	kv("Weight", strconv.Itoa(p.Weight))
	kv("Regions", orDash(strings.Join(p.Regions, ",")))
	streams := "unlimited"
	if p.MaxActiveStreams > 0 {
		streams = strconv.Itoa(p.MaxActiveStreams)
	}
	kv("Max streams", streams)
	cfg := p.Config
	if cfg.AppID != "" {
		kv("App ID", cfg.AppID)
	}
	if cfg.BaseURL != "" {
		kv("Base URL", cfg.BaseURL)
	}
	if cfg.URL != "" {
		kv("URL", cfg.URL)
	}
	if cfg.Method != "" {
		kv("Method", cfg.Method)
	}
	if len(cfg.ExpectStatus) > 0 {
		kv("Expect status", joinInts(cfg.ExpectStatus))
	}
	creds := "not set"
	if p.CredentialsSet {
		creds = "set (write-only)"
	}
	kv("Credentials", creds)
	hc := p.HealthCheck
	kv("Health check", fmt.Sprintf("every %s, timeout %s, down after %d failures, up after %d successes",
		hc.Interval.D(), hc.Timeout.D(), hc.FailureThreshold, hc.SuccessThreshold))
	kv("Status", string(p.Status))
	kv("Checks", fmt.Sprintf("%d (%d successful)", p.TotalChecks, p.SuccessfulChecks))
	if p.TotalChecks > 0 {
		kv("Uptime", strconv.FormatFloat(p.Uptime, 'f', 2, 64)+"%")
		kv("Latency", fmt.Sprintf("%dms (average %.0fms)", p.Latency, p.AverageLatency))
	}
	kv("Error rate", fmt.Sprintf("%.2f%% of %d requests", p.ErrorRate, p.TotalRequests))
	kv("Last check", ago(p.LastCheck, now))
	if e := p.LastError; e != nil {
		kv("Last error", fmt.Sprintf("%s: %s (%s)", e.Stage, e.Message, ago(&e.At, now)))
	}
	for _, region := range slices.Sorted(maps.Keys(p.RegionalHealth)) {
		h := p.RegionalHealth[region]
		line := fmt.Sprintf("%s, uptime %.2f%%, latency %dms, last check %s, from %s", h.Status, h.Uptime, h.Latency, ago(h.LastCheck, now), h.Source)
		if h.Stale {
			line = fmt.Sprintf("%s (stale: no report since %s), from %s", h.Status, ago(h.LastCheck, now), h.Source)
		}
		if h.Quality != nil {
			line += fmt.Sprintf(", quality %.0f", *h.Quality)
		}
		kv("Region "+region, line)
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, n := range v {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

func (f *providerFlags) touchesConfig(given map[string]bool) bool {
	for _, n := range configFlags {
		if given[n] {
			return true
		}
	}
	return false
}

// body returns the request body for add or set: the -f file as is, or a
// switchboard.ProviderInput holding only the fields given. For set, current is
// the provider's config when a config flag is given, so that the flags are
// merged into it; nil (and no field given) returns a nil body.
func (f *providerFlags) body(given map[string]bool, current *switchboard.ProviderConfig) (any, error) {
	if given["f"] {
		b, err := readInput(f.file)
		if err != nil {
			return nil, err
		}
		if !json.Valid(b) {
			return nil, usageError{msg: "-f: the file is not valid JSON"}
		}
		return json.RawMessage(b), nil
	}
	var in switchboard.ProviderInput
	some := false
	str := func(flag string, v string) *string {
		if !given[flag] {
			return nil
		}
		some = true
		return &v
	}
	num := func(flag string, v int) *int {
		if !given[flag] {
			return nil
		}
		some = true
		return &v
	}
	in.Name = str("name", f.name)
	if given["kind"] {
		k := switchboard.Kind(f.kind)
		in.Kind, some = &k, true
	}
	in.DisplayName = str("display-name", f.displayName)
	in.Priority = num("priority", f.priority)
	in.Weight = num("weight", f.weight)
	in.MaxActiveStreams = num("max-streams", f.maxStreams)
	if given["regions"] {
		r := splitList(f.regions)
		in.Regions, some = &r, true
	}
	if f.touchesConfig(given) {
		var cfg switchboard.ProviderConfig
		if current != nil {
			cfg = *current
		}
		if err := f.applyConfig(&cfg, given); err != nil {
			return nil, err
		}
		in.Config, some = &cfg, true
	}
	creds, err := f.credentials(given)
	if err != nil {
		return nil, err
	}
	if creds != nil {
		in.Credentials, some = creds, true
	}
	if !some {
		return nil, nil
	}
	return in, nil
}

func (f *providerFlags) applyConfig(cfg *switchboard.ProviderConfig, given map[string]bool) error {
	if given["app-id"] {
		cfg.AppID = f.appID
	}
	if given["base-url"] {
		cfg.BaseURL = f.baseURL
	}
	if given["url"] {
		cfg.URL = f.url
	}
	if given["method"] {
		cfg.Method = strings.ToUpper(f.method)
	}
	if given["expect-status"] {
		cfg.ExpectStatus = nil
		for _, s := range splitList(f.expectStatus) {
			n, err := strconv.Atoi(s)
			if err != nil {
				return usageError{msg: fmt.Sprintf("--expect-status: %q is not a number", s)}
			}
			cfg.ExpectStatus = append(cfg.ExpectStatus, n)
		}
	}
	return nil
}

// credentials merges the credentials file and the credential flags (which
// win); nil when neither is given.
func (f *providerFlags) credentials(given map[string]bool) (*switchboard.CredentialsInput, error) {
	var in switchboard.CredentialsInput
	some := false
	if given["credentials-file"] {
		b, err := readInput(f.credentialsFile)
		if err != nil {
			return nil, err
		}
		if err := decodeCredentials(b, &in); err != nil {
			return nil, err
		}
		some = true
	}
	set := func(dst **string, flag, v string) {
		if given[flag] {
			*dst, some = &v, true
		}
	}
	set(&in.CustomerID, "customer-id", f.customerID)
	set(&in.CustomerSecret, "customer-secret", f.customerSecret)
	set(&in.AppCertificate, "app-certificate", f.appCertificate)
	set(&in.ServerSecret, "server-secret", f.serverSecret)
	set(&in.APIKey, "api-key", f.apiKey)
	set(&in.APISecret, "api-secret", f.apiSecret)
	if given["header"] {
		in.Headers, some = f.headers.m, true
	}
	if !some {
		return nil, nil
	}
	return &in, nil
}

// decodeCredentials reads a JSON object of credentials strictly. Its errors
// name a field or a byte offset, never a value.
func decodeCredentials(b []byte, in *switchboard.CredentialsInput) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	err := dec.Decode(in)
	var (
		syn *json.SyntaxError
		typ *json.UnmarshalTypeError
	)
	switch {
	case err == nil:
		if dec.More() {
			return usageError{msg: "--credentials-file: must hold one JSON object"}
		}
		return nil
	case errors.As(err, &syn):
		return usageError{msg: fmt.Sprintf("--credentials-file: malformed JSON at byte %d", syn.Offset)}
	case errors.As(err, &typ):
		return usageError{msg: fmt.Sprintf("--credentials-file: field %s: wrong type", typ.Field)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return usageError{msg: "--credentials-file: " + strings.TrimPrefix(err.Error(), "json: ")}
	default:
		return usageError{msg: "--credentials-file: must hold a JSON object of credentials"}
	}
}

// readInput reads a file, or standard input for "-".
func readInput(name string) ([]byte, error) {
	var (
		b   []byte
		err error
	)
	if name == "-" {
		b, err = io.ReadAll(io.LimitReader(os.Stdin, 1<<20+1))
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(b) > 1<<20 {
		return nil, fmt.Errorf("read %s: larger than 1 MiB", name)
	}
	return b, nil
}

// splitList splits a comma-separated flag value; "" is the empty list.
func splitList(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
