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
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/switchboardhq/switchboard/internal/apiclient"
)

// This file holds what the commands that talk to a running server share:
// connection flags, argument parsing and output.

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
func (f *clientFlags) connect(ctx context.Context, getenv func(string) string) (*apiclient.Client, context.Context, func(), error) {
	if f.output != "table" && f.output != "json" {
		return nil, nil, nil, usageError{msg: "-o must be table or json"}
	}
	if f.timeout <= 0 {
		return nil, nil, nil, usageError{msg: "--timeout must be positive"}
	}
	if f.server == "" {
		f.server = getenv("SWITCHBOARD_URL")
	}
	if f.server == "" {
		f.server = defaultServerURL
	}
	if f.token == "" {
		f.token = getenv("SWITCHBOARD_TOKEN")
	}
	// A transport of our own, closed when the command ends.
	hc := &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	c, err := apiclient.New(f.server, f.token, hc)
	if err != nil {
		return nil, nil, nil, usageError{msg: err.Error()}
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	return c, ctx, func() { cancel(); c.CloseIdleConnections() }, nil
}

// explain adds a hint to errors whose cause is likely the command line.
func (f *clientFlags) explain(err error) error {
	if err == nil {
		return nil
	}
	if apiclient.IsStatus(err, http.StatusUnauthorized) && f.token == "" {
		return fmt.Errorf("%w (set --token or SWITCHBOARD_TOKEN)", err)
	}
	return err
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

// errHelp reports that -h was asked for: usage is printed and the command succeeds.
var errHelp = errors.New("help requested")

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
