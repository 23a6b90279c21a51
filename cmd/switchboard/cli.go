package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/switchboardhq/switchboard/client/admin"
)

// This file holds what the commands share, most of all those that talk to a
// running server: connection flags, argument parsing and output.

const defaultServerURL = "http://127.0.0.1:8080"

// clientFlags are the flags of every command that talks to a server. The token
// and the server URL fall back to the environment after parsing, so that help
// output never prints the token as a default.
type clientFlags struct {
	server  string
	token   string
	output  string
	timeout time.Duration
}

func (f *clientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.server, "server", "", "server URL (env SWITCHBOARD_URL, default "+defaultServerURL+")")
	fs.StringVar(&f.token, "token", "", "bearer token (env SWITCHBOARD_TOKEN)")
	fs.StringVar(&f.output, "o", "table", "output format: table or json")
	fs.StringVar(&f.output, "output", "table", "output format: table or json")
	fs.DurationVar(&f.timeout, "timeout", 30*time.Second, "time allowed for the request")
}

// connect resolves the flags against the environment and returns a client,
// the context to call it with, and a cleanup to defer.
func (f *clientFlags) connect(ctx context.Context, getenv func(string) string) (*admin.Client, context.Context, func(), error) {
	if f.output != "table" && f.output != "json" {
		return nil, nil, nil, usageError{msg: "-o must be table or json"}
	}
	if f.timeout <= 0 {
		return nil, nil, nil, usageError{msg: "--timeout must be positive"}
	}
	serverFromEnv(&f.server, &f.token, getenv)
	// A transport of our own, closed when the command ends.
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	c, err := admin.New(f.server, f.token, hc)
	if err != nil {
		return nil, nil, nil, usageError{msg: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	return c, ctx, func() { cancel(); c.CloseIdleConnections() }, nil
}

// serverFromEnv fills in the server URL and the token that the command line
// left empty from the environment (SWITCHBOARD_URL, SWITCHBOARD_TOKEN), and
// the URL from its default.
func serverFromEnv(server, token *string, getenv func(string) string) {
	if *server == "" {
		*server = getenv("SWITCHBOARD_URL")
	}
	if *server == "" {
		*server = defaultServerURL
	}
	if *token == "" {
		*token = getenv("SWITCHBOARD_TOKEN")
	}
}

// explain adds a hint to errors whose cause is likely the command line.
func (f *clientFlags) explain(err error) error {
	if err == nil {
		return nil
	}
	if admin.IsStatus(err, http.StatusUnauthorized) && f.token == "" {
		return fmt.Errorf("%w (set --token or SWITCHBOARD_TOKEN)", err)
	}
	return err
}

// verbCommand is a command whose first argument is a verb (providers,
// tokens). Its table of verbs gives the usage text, the verbs named in errors
// and the dispatch, so that they cannot disagree. F holds the command's own
// flags.
type verbCommand[F any] struct {
	name  string
	notes string // the usage text after the verbs
	// flags registers the command's own flags, besides the connection flags.
	flags func(f *F, fs *flag.FlagSet)
	verbs []verb[F]
}

// verb is one verb of a verbCommand.
type verb[F any] struct {
	name     string
	synopsis string // what follows the verb in the usage text, e.g. "NAME"
	// check checks the arguments and the flags given before anything is
	// sent (call.c is nil then).
	check func(call verbCall[F]) error
	run   func(ctx context.Context, call verbCall[F]) error
}

// verbCall is one verb being run: its arguments, its flags and the client.
type verbCall[F any] struct {
	cmd      string // the command and the verb, e.g. "providers get"
	synopsis string
	args     []string // after the verb
	given    map[string]bool
	flags    *F
	c        *admin.Client
	json     bool // -o json
	stdout   io.Writer
	stderr   io.Writer
}

// wantArgs checks that the verb has n positional arguments.
func (v verbCall[F]) wantArgs(n int) error { return wantArgs(v.cmd, v.args, n, v.synopsis) }

// checkFlags checks that only the connection flags and allowed are given.
func (v verbCall[F]) checkFlags(allowed ...string) error {
	return checkFlags(v.cmd, v.given, allowed...)
}

// names are the names of the verbs.
func (vc verbCommand[F]) names() []string {
	names := make([]string, len(vc.verbs))
	for i, v := range vc.verbs {
		names[i] = v.name
	}
	return names
}

// usage is the command's usage text: a line a verb, then the notes.
func (vc verbCommand[F]) usage() string {
	var b strings.Builder
	b.WriteString("Usage:\n")
	for _, v := range vc.verbs {
		b.WriteString("  switchboard " + vc.name + " " + v.name)
		if v.synopsis != "" {
			b.WriteString(" " + v.synopsis)
		}
		b.WriteString("\n")
	}
	b.WriteString("\n" + vc.notes)
	return b.String()
}

// run parses the flags, finds the verb, checks it and runs it against the server.
func (vc verbCommand[F]) run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet(vc.name, vc.usage(), stderr)
	var cf clientFlags
	var f F
	cf.register(fs)
	vc.flags(&f, fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return usageError{msg: vc.name + ": missing verb"}
	}
	i := slices.IndexFunc(vc.verbs, func(v verb[F]) bool { return v.name == pos[0] })
	if i < 0 {
		return usageError{msg: fmt.Sprintf("%s: unknown verb %q (want %s)", vc.name, pos[0], orList(vc.names()))}
	}
	v := vc.verbs[i]
	call := verbCall[F]{cmd: vc.name + " " + v.name, synopsis: v.synopsis, args: pos[1:], given: givenFlags(fs), flags: &f,
		json: cf.output == "json", stdout: stdout, stderr: stderr}
	if err := v.check(call); err != nil {
		return err
	}
	c, ctx, done, err := cf.connect(ctx, getenv)
	if err != nil {
		return err
	}
	defer done()
	call.c = c
	return cf.explain(v.run(ctx, call))
}

// checkNoArgs is the check of a verb that takes no arguments and no flags
// of its own.
func checkNoArgs[F any](v verbCall[F]) error {
	if err := v.wantArgs(0); err != nil {
		return err
	}
	return v.checkFlags()
}

// checkOneArg is the check of a verb that takes one argument and no flags
// of its own.
func checkOneArg[F any](v verbCall[F]) error {
	if err := v.wantArgs(1); err != nil {
		return err
	}
	return v.checkFlags()
}

// newFlagSet returns a flag set that prints usage and errors to stderr.
func newFlagSet(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fmt.Fprintln(stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	return fs
}

// errHelp reports that -h was asked for: usage is printed and the command
// succeeds (run returns nil).
var errHelp = errors.New("help requested")

// parseFlags parses the flags of a command that takes no positional
// arguments. It returns errHelp for -h, and a usageError for a bad flag
// (which fs prints) or an argument.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return usageError{}
	}
	if fs.NArg() > 0 {
		return usageError{msg: fs.Name() + " takes no arguments"}
	}
	return nil
}

// parseArgs parses flags that may come before, between or after positional
// arguments, and returns the positional ones. Everything after "--" is
// positional. Flag errors are printed by fs and returned as a usageError
// without message.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, errHelp
			}
			return nil, usageError{}
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// givenFlags returns the names of the flags set on the command line.
func givenFlags(fs *flag.FlagSet) map[string]bool {
	m := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { m[f.Name] = true })
	return m
}

// checkFlags returns a usage error when a flag in given is not in allowed
// (the connection flags are always allowed).
func checkFlags(cmd string, given map[string]bool, allowed ...string) error {
	ok := map[string]bool{"server": true, "token": true, "o": true, "output": true, "timeout": true}
	for _, a := range allowed {
		ok[a] = true
	}
	for name := range given {
		if !ok[name] {
			return usageError{msg: fmt.Sprintf("%s: flag --%s does not apply", cmd, name)}
		}
	}
	return nil
}

// wantArgs checks the number of positional arguments of a verb.
func wantArgs(cmd string, args []string, n int, what string) error {
	if len(args) != n {
		if n == 0 {
			return usageError{msg: fmt.Sprintf("%s takes no arguments", cmd)}
		}
		return usageError{msg: fmt.Sprintf("usage: switchboard %s %s", cmd, what)}
	}
	return nil
}

// printJSON writes the server's JSON answer indented.
func printJSON(w io.Writer, raw json.RawMessage) error {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return fmt.Errorf("print response: %w", err)
	}
	b.WriteByte('\n')
	_, err := w.Write(b.Bytes())
	return err
}

// newTable returns a tabwriter for aligned columns; call Flush when done.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// row writes one tab-separated row.
func row(w io.Writer, cols ...string) {
	for i, c := range cols {
		if i > 0 {
			io.WriteString(w, "\t")
		}
		io.WriteString(w, clean(c))
	}
	io.WriteString(w, "\n")
}

// clean replaces control characters (a tab, an escape sequence) that would
// break the table or the terminal.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '?'
		}
		return r
	}, s)
}

// ago formats the time since t, the way kubectl shows ages.
func ago(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	d := max(now.Sub(*t), 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// syncWriter serialises writes from several goroutines.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// printf writes the formatted text in one Write, whole among the others.
func (s *syncWriter) printf(format string, args ...any) {
	fmt.Fprintf(s, format, args...)
}
