// Command switchboard runs the Switchboard control plane (`switchboard serve`)
// and talks to a running one, the way kubectl does.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/switchboardhq/switchboard"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ue usageError
		if !errors.As(err, &ue) || ue.msg != "" {
			fmt.Fprintln(os.Stderr, "switchboard:", err)
		}
		os.Exit(exitCode(err))
	}
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func exitCode(err error) int {
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// runFunc runs one command with the arguments after its name.
type runFunc func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

// command is one subcommand of switchboard: its name, the line or lines that
// the help shows for it, and what it does.
type command struct {
	name     string
	aliases  []string // other names that run it
	synopsis string   // after "switchboard " in the help; may hold a newline
	summary  string   // what it does, in the help's second column ("" for none)
	run      runFunc
}

// commands are every subcommand, in the order the help lists them.
var commands = []command{
	{name: "serve", synopsis: "serve [flags]", summary: "run the control plane", run: serve},
	{name: "providers", synopsis: "providers " + strings.Join(providersCommand.names(), "|"), run: providersCommand.run},
	{name: "tokens", synopsis: "tokens " + strings.Join(tokensCommand.names(), "|"), run: tokensCommand.run},
	{name: "users", synopsis: "users " + strings.Join(usersCommand.names(), "|"), summary: "manage the dashboard's users", run: usersCommand.run},
	{name: "settings", synopsis: "settings get|set", summary: "read or tune the SDK settings and leader lease", run: settingsCommand.run},
	{name: "routing", synopsis: "routing get|set", summary: "read or change the routing policy", run: routingCommand.run},
	{name: "alerts", synopsis: "alerts " + strings.Join(alertsCommand.names(), "|"), summary: "alert channels, rules and deliveries", run: alertsCommand.run},
	{name: "maintenance", synopsis: "maintenance " + strings.Join(maintenanceCommand.names(), "|"), summary: "schedule, list and end provider maintenance windows", run: maintenanceCommand.run},
	{name: "reports", synopsis: "reports " + strings.Join(reportsCommand.names(), "|"), summary: "SLA, cost and quality reports", run: reportsCommand.run},
	{name: "agent", synopsis: "agent --server URL --token T --region REGION", summary: "probe the providers from this region and report", run: agentCommand},
	{name: "check", synopsis: "check [name]", summary: "probe providers now", run: checkCommand},
	{name: "token", synopsis: "token " + strings.Join(mintKindNames(), "|"), summary: "mint a join token offline", run: mintCommand},
	{name: "simulate", synopsis: "simulate --server URL --token T --streams N [--procs P] --duration D\n" +
		"                   [--fail-provider NAME --fail-at D --fail-mode kill|hang|slow|auth|partial] [--json]\n" +
		"                   [--regions R,R --degrade PROVIDER@REGION --policy P --admin-token T]",
		summary: "simulated apps streaming through the SDK", run: simulate},
	{name: "demo", synopsis: "demo [--addr ...] [--chaos]", summary: "the whole system on loopback, with fake providers", run: demo},
	{name: "seed", synopsis: "seed --db DSN --ended N [--active M] [--providers a,b,c]",
		summary: "write stream history into a database, in bulk", run: seedCommand},
	{name: "predict-eval", synopsis: "predict-eval --traces DIR [--json]", summary: "measure the degradation detector on probe traces", run: predictEval},
	{name: "version", aliases: []string{"--version"}, synopsis: "version", run: version},
}

// helpNames ask for the help; they are not listed in it.
var helpNames = []string{"help", "-h", "--help"}

// summaryColumn is where the help's second column starts.
const summaryColumn = 44

const (
	usageHead = "Switchboard keeps live streams alive across streaming providers.\n\nUsage:\n"
	usageTail = `
Commands that talk to a server take --server (env SWITCHBOARD_URL) and
--token (env SWITCHBOARD_TOKEN), and -o json for scripts.
`
)

// usage is the help: a line or two for every command.
func usage() string {
	var b strings.Builder
	b.WriteString(usageHead)
	for _, c := range commands {
		line := "  switchboard " + c.synopsis
		b.WriteString(line)
		if c.summary != "" {
			last := line[strings.LastIndexByte(line, '\n')+1:]
			if len(last) < summaryColumn {
				b.WriteString(strings.Repeat(" ", summaryColumn-len(last)))
			} else {
				b.WriteString("\n" + strings.Repeat(" ", summaryColumn))
			}
			b.WriteString(c.summary)
		}
		b.WriteString("\n")
	}
	b.WriteString(usageTail)
	return b.String()
}

// lookup returns the command called name.
func lookup(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name || slices.Contains(c.aliases, name) {
			return c, true
		}
	}
	return command{}, false
}

// run is the whole program, with its dependencies passed in for tests.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return usageError{}
	}
	name, rest := args[0], args[1:]
	if slices.Contains(helpNames, name) {
		fmt.Fprint(stdout, usage())
		return nil
	}
	if c, ok := lookup(name); ok {
		if err := c.run(ctx, rest, getenv, stdout, stderr); !errors.Is(err, errHelp) {
			return err
		}
		return nil // the command printed its usage
	}
	fmt.Fprint(stderr, usage())
	return usageError{msg: fmt.Sprintf("unknown command %q", name)}
}

// version prints the version.
func version(_ context.Context, _ []string, _ func(string) string, stdout, _ io.Writer) error {
	fmt.Fprintln(stdout, "switchboard", switchboard.Version)
	return nil
}

// orList joins names as "a, b or c".
func orList(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}
