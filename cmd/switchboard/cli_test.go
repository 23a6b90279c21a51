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
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboardhq/switchboard/internal/testutil"
)

// Secret values of the fixtures; no CLI output or server log may hold one.
const (
	cliBootstrap      = "sbt_cli-test-bootstrap-5d1e0a7c"
	cliAdminPassword  = "cli test password 8c2f"
	cliCustomerID     = "cli-cust-id-40a1f7"
	cliCustomerSecret = "cli-cust-secret-Hk3Jq9"
	cliCertificate    = "0badc0de0badc0de0badc0de0badc0de"
	cliZegoSecret     = "cliZegoSecretcliZegoSecret123456"
	cliLiveKitKey     = "cli-lk-key-77ab"
	cliLiveKitSecret  = "cli-lk-secret-0e9d2c4b6a8f"
	cliHeaderSecret   = "Bearer cli-hdr-secret-3f6e"
	cliAgoraAppID     = "5b6e1f0c2d3a4b5c6d7e8f9a0b1c2d3e"
)

var cliSecrets = []string{cliBootstrap, cliAdminPassword, cliCustomerID, cliCustomerSecret, cliCertificate,
	cliZegoSecret, cliLiveKitKey, cliLiveKitSecret, cliHeaderSecret}

// cliEnv is a server started through run("serve") and the output of every
// CLI call made against it.
type cliEnv struct {
	t      *testing.T
	url    string
	logs   *testutil.Buffer
	mu     sync.Mutex
	output strings.Builder // everything the CLI printed
}

// startServer runs `switchboard serve` in-process on a free loopback port and
// stops it at cleanup, checking that it shut down cleanly and left no goroutine.
func startServer(t *testing.T) *cliEnv {
	t.Helper()
	before := runtime.NumGoroutine()

	dir := t.TempDir()
	env := map[string]string{
		"SWITCHBOARD_BOOTSTRAP_TOKEN": cliBootstrap,
		"SWITCHBOARD_ADMIN_PASSWORD":  cliAdminPassword,
	}
	e := &cliEnv{t: t, logs: &testutil.Buffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--db", "sqlite:" + filepath.Join(dir, "sb.db")},
			func(k string) string { return env[k] }, e.logs, e.logs)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve returned %v, want nil after cancel", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("serve did not return after cancel")
		}
		for _, s := range cliSecrets {
			if strings.Contains(e.logs.String(), s) {
				t.Errorf("server output holds a secret of the fixtures")
			}
		}
		testutil.CheckGoroutines(t, before)
	})
	e.url = announcedURL(t, e.logs, done)

	waitHealthy(t, e.url, done)
	return e
}

// cli runs the command line with SWITCHBOARD_URL pointing at the server and
// the given token in SWITCHBOARD_TOKEN ("" for none).
func (e *cliEnv) cliAs(token string, args ...string) (stdout, stderr string, err error) {
	e.t.Helper()
	env := map[string]string{"SWITCHBOARD_URL": e.url, "SWITCHBOARD_TOKEN": token}
	var out, errOut bytes.Buffer
	err = run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	e.mu.Lock()
	e.output.WriteString(out.String() + errOut.String())
	if err != nil {
		e.output.WriteString(err.Error())
	}
	e.mu.Unlock()
	return out.String(), errOut.String(), err
}

func (e *cliEnv) cli(args ...string) (string, string, error) {
	e.t.Helper()
	return e.cliAs(cliBootstrap, args...)
}

// mustCLI runs the command line as superadmin and fails the test on error.
func (e *cliEnv) mustCLI(args ...string) string {
	e.t.Helper()
	out, errOut, err := e.cli(args...)
	if err != nil {
		e.t.Fatalf("switchboard %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// mustJSON runs a command with -o json and decodes its output.
func (e *cliEnv) mustJSON(out any, args ...string) {
	e.t.Helper()
	s := e.mustCLI(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(s), out); err != nil {
		e.t.Fatalf("switchboard %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, s)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

type providerJSON struct {
	Name           string   `json:"name"`
	DisplayName    string   `json:"displayName"`
	Kind           string   `json:"kind"`
	Enabled        bool     `json:"enabled"`
	Priority       int      `json:"priority"`
	Weight         int      `json:"weight"`
	Regions        []string `json:"regions"`
	CredentialsSet bool     `json:"credentialsSet"`
	Config         struct {
		AppID        string `json:"appId"`
		URL          string `json:"url"`
		Method       string `json:"method"`
		ExpectStatus []int  `json:"expectStatus"`
	} `json:"config"`
}

func TestProvidersCLI(t *testing.T) {
	e := startServer(t)

	if out, errOut, err := e.cli("providers", "list"); err != nil || out != "" || errOut != "No providers.\n" {
		t.Errorf("list of none: stdout %q, stderr %q, err %v", out, errOut, err)
	}

	// add with flags, some before the verb.
	out := e.mustCLI("providers", "--kind", "agora", "add", "--name", "agora-main", "--display-name", "Agora main",
		"--app-id", cliAgoraAppID, "--regions", "us-east,eu-west", "--priority", "1",
		"--customer-id", cliCustomerID, "--customer-secret", cliCustomerSecret, "--app-certificate", cliCertificate)
	if want := "provider agora-main created\n"; out != want {
		t.Errorf("add: got %q, want %q", out, want)
	}
	// add with a credentials file.
	creds := writeFile(t, "zego.json", `{"serverSecret": "`+cliZegoSecret+`"}`)
	e.mustCLI("providers", "add", "--name", "zego", "--kind", "zegocloud", "--app-id", "1234567890",
		"--priority", "2", "--credentials-file", creds)
	// add with -f, the body sent as is.
	body := writeFile(t, "http.json", `{"name":"probe","kind":"http","priority":3,
		"config":{"url":"http://127.0.0.1:9/health","expectStatus":[200,204]},
		"credentials":{"headers":{"Authorization":"`+cliHeaderSecret+`"}}}`)
	e.mustCLI("providers", "add", "-f", body)
	// add with credential flags for livekit, flags after the verb.
	e.mustCLI("providers", "add", "--name", "lk", "--kind", "livekit", "--url", "https://lk.example.test",
		"--priority", "4", "--api-key", cliLiveKitKey, "--api-secret", cliLiveKitSecret, "--max-streams", "50")

	// list: table and JSON.
	out = e.mustCLI("providers", "list")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("list: %d lines, want 5:\n%s", len(lines), out)
	}
	for _, col := range []string{"PRIORITY", "NAME", "KIND", "ENABLED", "STATUS", "UPTIME", "ERROR%", "LATENCY", "LAST CHECK"} {
		if !strings.Contains(lines[0], col) {
			t.Errorf("list header %q lacks %s", lines[0], col)
		}
	}
	for i, name := range []string{"agora-main", "zego", "probe", "lk"} {
		if f := strings.Fields(lines[i+1]); len(f) < 3 || f[1] != name {
			t.Errorf("list row %d: %q, want provider %s", i+1, lines[i+1], name)
		}
	}
	// Checked at once when added; the check fails (no Agora answers
	// here), and a provider never verified stays UNKNOWN.
	if !strings.Contains(lines[1], "UNKNOWN") || !strings.Contains(lines[1], " ago") {
		t.Errorf("list row %q: want status UNKNOWN and a LAST CHECK", lines[1])
	}
	var list struct{ Providers []providerJSON }
	e.mustJSON(&list, "providers", "list")
	if len(list.Providers) != 4 {
		t.Fatalf("list -o json: %d providers, want 4", len(list.Providers))
	}
	for _, p := range list.Providers {
		if !p.CredentialsSet {
			t.Errorf("%s: credentialsSet false, want true", p.Name)
		}
	}

	// get: describe and JSON.
	out = e.mustCLI("providers", "get", "agora-main")
	for _, want := range []string{"Display name:", "Agora main", "us-east,eu-west", cliAgoraAppID, "Credentials:", "set (write-only)"} {
		if !strings.Contains(out, want) {
			t.Errorf("get: output lacks %q:\n%s", want, out)
		}
	}
	var got providerJSON
	e.mustJSON(&got, "providers", "get", "agora-main")
	if got.Name != "agora-main" || got.Kind != "agora" || !slices.Equal(got.Regions, []string{"us-east", "eu-west"}) {
		t.Errorf("get -o json: %+v", got)
	}

	// set: a partial update keeps the other fields, config flags merge into the config.
	if out := e.mustCLI("providers", "set", "agora-main", "--display-name", "Primary", "--weight", "5"); out != "provider agora-main updated\n" {
		t.Errorf("set: %q", out)
	}
	e.mustJSON(&got, "providers", "get", "agora-main")
	if got.DisplayName != "Primary" || got.Weight != 5 || got.Config.AppID != cliAgoraAppID || len(got.Regions) != 2 || !got.CredentialsSet {
		t.Errorf("after set: %+v", got)
	}
	// The method decides where the probe and its credentials go: changing it
	// needs the credentials again.
	if _, _, err := e.cli("providers", "set", "probe", "--method", "head"); err == nil ||
		!strings.Contains(err.Error(), "credentials must be entered again when the destination changes") || !strings.Contains(err.Error(), "config.method") {
		t.Errorf("set --method without credentials: %v, want the refusal naming config.method", err)
	}
	e.mustJSON(&got, "providers", "set", "probe", "--method", "head", "--credentials-file", writeFile(t, "probe-creds.json", `{"headers":{"X-Probe-Key":"probe-key-2"}}`))
	if got.Config.Method != "HEAD" || got.Config.URL != "http://127.0.0.1:9/health" || !slices.Equal(got.Config.ExpectStatus, []int{200, 204}) {
		t.Errorf("set --method: config %+v, want url and expectStatus kept", got.Config)
	}
	e.mustCLI("providers", "set", "probe", "-f", writeFile(t, "patch.json", `{"displayName":"HTTP probe"}`))
	e.mustJSON(&got, "providers", "get", "probe")
	if got.DisplayName != "HTTP probe" {
		t.Errorf("set -f: displayName %q", got.DisplayName)
	}

	// enable and disable.
	if out := e.mustCLI("providers", "disable", "zego"); out != "provider zego disabled\n" {
		t.Errorf("disable: %q", out)
	}
	e.mustJSON(&got, "providers", "get", "zego")
	if got.Enabled {
		t.Error("zego enabled after disable")
	}
	e.mustCLI("providers", "enable", "zego")
	e.mustJSON(&got, "providers", "get", "zego")
	if !got.Enabled {
		t.Error("zego disabled after enable")
	}

	// reorder.
	e.mustJSON(&list, "providers", "reorder", "lk", "probe", "zego", "agora-main")
	var names []string
	for _, p := range list.Providers {
		names = append(names, p.Name)
	}
	if want := []string{"lk", "probe", "zego", "agora-main"}; !slices.Equal(names, want) || list.Providers[0].Priority != 1 {
		t.Errorf("reorder: %v (first priority %d), want %v", names, list.Providers[0].Priority, want)
	}

	// rm.
	if out := e.mustCLI("providers", "rm", "lk"); out != "provider lk deleted\n" {
		t.Errorf("rm: %q", out)
	}
	_, _, err := e.cli("providers", "get", "lk")
	if err == nil || !strings.HasPrefix(err.Error(), "404 not_found: ") {
		t.Errorf("get after rm: %v, want 404 not_found", err)
	}

	// No credential value anywhere in what the CLI printed.
	e.mu.Lock()
	all := e.output.String()
	e.mu.Unlock()
	for _, s := range cliSecrets {
		if strings.Contains(all, s) {
			t.Errorf("CLI output holds a secret of the fixtures")
		}
	}
}

func TestProvidersCLIErrors(t *testing.T) {
	e := startServer(t)
	e.mustCLI("providers", "add", "--name", "lk", "--kind", "livekit", "--url", "https://lk.example.test")

	tests := []struct {
		name  string
		token string
		args  []string
		usage bool   // a usageError (exit 2) rather than a server error
		want  string // prefix of the error message
	}{
		{"invalid name", cliBootstrap, []string{"providers", "add", "--name", "Bad_Name", "--kind", "http", "--url", "http://127.0.0.1:9"},
			false, "400 invalid: must match ^[a-z0-9][a-z0-9-]{0,62}$ (field name)"},
		{"field of another kind", cliBootstrap, []string{"providers", "set", "lk", "--server-secret", "x"},
			false, "400 invalid: does not apply to kind livekit (field credentials.serverSecret)"},
		{"duplicate", cliBootstrap, []string{"providers", "add", "--name", "lk", "--kind", "livekit", "--url", "https://lk.example.test"},
			false, "409 conflict: "},
		{"not found", cliBootstrap, []string{"providers", "enable", "nope"}, false, "404 not_found: "},
		{"reorder incomplete", cliBootstrap, []string{"providers", "reorder", "nope"}, false, "400 invalid: "},
		{"no token", "", []string{"providers", "list"},
			false, "401 unauthorized: missing or invalid credentials (set --token or SWITCHBOARD_TOKEN)"},
		{"bad token", "sbt_not-a-real-token", []string{"providers", "list"}, false, "401 unauthorized: missing or invalid credentials"},
		{"missing verb", cliBootstrap, []string{"providers"}, true, "providers: missing verb"},
		{"unknown verb", cliBootstrap, []string{"providers", "frobnicate"}, true, "providers: unknown verb"},
		{"get without name", cliBootstrap, []string{"providers", "get"}, true, "usage: switchboard providers get NAME"},
		{"flag of another verb", cliBootstrap, []string{"providers", "list", "--kind", "http"}, true, "providers list: flag --kind does not apply"},
		{"-f with field flags", cliBootstrap, []string{"providers", "add", "-f", "x.json", "--name", "x"}, true, "providers add: -f sends the file as is"},
		{"set nothing", cliBootstrap, []string{"providers", "set", "lk"}, true, "providers set: nothing to change"},
		{"bad header", cliBootstrap, []string{"providers", "set", "lk", "--header", "no-colon-" + cliHeaderSecret}, true, "--header #1: must be 'Name: value'"},
		{"bad output", cliBootstrap, []string{"providers", "list", "-o", "yaml"}, true, "-o must be table or json"},
		{"bad credentials file", cliBootstrap, []string{"providers", "set", "lk", "--credentials-file", writeFile(t, "c.json", `{"apiSecret": `+cliLiveKitSecret+`}`)},
			true, "--credentials-file: malformed JSON at byte"},
		{"unknown credential", cliBootstrap, []string{"providers", "set", "lk", "--credentials-file", writeFile(t, "c2.json", `{"password": "x"}`)},
			true, `--credentials-file: unknown field "password"`},
		{"bad server", cliBootstrap, []string{"providers", "list", "--server", "ftp://x"}, true, `server URL "ftp://x"`},
		{"tokens missing role", cliBootstrap, []string{"tokens", "create", "--name", "x"}, true, "usage: switchboard tokens create"},
		{"tokens bad role", cliBootstrap, []string{"tokens", "create", "--name", "x", "--role", "root"},
			false, "400 invalid: must be client, admin, superadmin or agent (field role)"},
		{"tokens revoke unknown", cliBootstrap, []string{"tokens", "revoke", "nope"}, false, "404 not_found: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, errOut, err := e.cliAs(tt.token, tt.args...)
			if err == nil {
				t.Fatalf("no error; stdout %q", out)
			}
			var ue usageError
			if isUsage := errors.As(err, &ue); isUsage != tt.usage {
				t.Errorf("usage error %v, want %v (%v)", isUsage, tt.usage, err)
			}
			if !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("error %q, want prefix %q", err, tt.want)
			}
			if exitCode(err) == 0 {
				t.Error("exit code 0")
			}
			if strings.Contains(out+errOut+err.Error(), cliHeaderSecret) || strings.Contains(out+errOut+err.Error(), cliLiveKitSecret) {
				t.Error("output holds a secret")
			}
		})
	}
}

func TestTokensCLI(t *testing.T) {
	e := startServer(t)
	e.mustCLI("providers", "add", "--name", "lk", "--kind", "livekit", "--url", "https://lk.example.test")

	out := e.mustCLI("tokens", "create", "--name", "ci", "--role", "admin")
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	token := lines[len(lines)-1]
	if !strings.HasPrefix(lines[0], "ID") || strings.ContainsAny(token, " \t") || len(token) < 20 {
		t.Fatalf("tokens create output:\n%s", out)
	}
	var created struct{ ID, Name, Role, Token string }
	e.mustJSON(&created, "tokens", "create", "--name", "scripts", "--role", "client")
	if created.ID == "" || created.Role != "client" || created.Token == "" {
		t.Errorf("tokens create -o json: %+v", created)
	}

	// The admin token works through --token, and is refused superadmin verbs.
	if out, _, err := e.cliAs("", "providers", "list", "--token", token); err != nil || !strings.Contains(out, "lk") {
		t.Errorf("list with admin token: %v\n%s", err, out)
	}
	_, _, err := e.cliAs(token, "providers", "rm", "lk")
	if want := "403 forbidden: this endpoint needs role superadmin"; err == nil || err.Error() != want {
		t.Errorf("rm with admin token: %v, want %s", err, want)
	}

	out = e.mustCLI("tokens", "list")
	if !strings.Contains(out, "ci") || !strings.Contains(out, "scripts") || strings.Contains(out, token) {
		t.Errorf("tokens list:\n%s", out)
	}
	var list struct {
		Tokens []struct{ ID, Name, Token string }
	}
	e.mustJSON(&list, "tokens", "list")
	id := ""
	for _, tk := range list.Tokens {
		if tk.Token != "" {
			t.Errorf("tokens list shows a token value")
		}
		if tk.Name == "ci" {
			id = tk.ID
		}
	}
	if out := e.mustCLI("tokens", "revoke", id); out != "token "+id+" revoked\n" {
		t.Errorf("revoke: %q", out)
	}
	if _, _, err := e.cliAs(token, "providers", "list"); !strings.HasPrefix(fmt.Sprint(err), "401 unauthorized") {
		t.Errorf("list with revoked token: %v, want 401", err)
	}
	if out := e.mustCLI("tokens", "list"); !strings.Contains(out, "revoked") {
		t.Errorf("tokens list after revoke:\n%s", out)
	}
}

func TestParseArgs(t *testing.T) {
	tests := []struct {
		args    []string
		wantPos []string
		wantA   string
		wantB   bool
	}{
		{[]string{"get", "x"}, []string{"get", "x"}, "", false},
		{[]string{"-a", "1", "get", "x"}, []string{"get", "x"}, "1", false},
		{[]string{"get", "-a", "1", "x", "-b"}, []string{"get", "x"}, "1", true},
		{[]string{"get", "--a=2", "--", "-b", "x"}, []string{"get", "-b", "x"}, "2", false},
		{nil, nil, "", false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("t", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			a := fs.String("a", "", "")
			b := fs.Bool("b", false, "")
			pos, err := parseArgs(fs, tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(pos, tt.wantPos) || *a != tt.wantA || *b != tt.wantB {
				t.Errorf("got %q a=%q b=%v, want %q a=%q b=%v", pos, *a, *b, tt.wantPos, tt.wantA, tt.wantB)
			}
		})
	}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	if _, err := parseArgs(fs, []string{"x", "--nope"}); !errors.As(err, new(usageError)) {
		t.Errorf("unknown flag: %v, want usageError", err)
	}
}

func TestHeaderFlag(t *testing.T) {
	var h headerFlag
	for _, v := range []string{"Authorization: Bearer x:y", " X-Key :v ", "bad"} {
		if err := h.Set(v); err != nil {
			t.Fatalf("Set(%q): %v", v, err)
		}
	}
	if want := map[string]string{"Authorization": "Bearer x:y", "X-Key": "v"}; !maps.Equal(h.m, want) {
		t.Errorf("headers %v, want %v", h.m, want)
	}
	if err := h.err(); err == nil || strings.Contains(err.Error(), "bad") {
		t.Errorf("err() = %v, want an error that does not echo the value", err)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, func(string) string { return "" }, &out, &errOut)
	return out.String(), err
}
