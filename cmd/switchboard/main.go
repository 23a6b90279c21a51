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

const usage = `Switchboard keeps live streams alive across streaming providers.

Usage:
  switchboard serve [flags]                 run the control plane
  switchboard providers list|get|add|set|enable|disable|reorder|rm
  switchboard tokens create|list|revoke
  switchboard check [name]                  probe providers now
  switchboard token agora|zegocloud|livekit mint a join token offline
  switchboard simulate --server URL --token T --streams N [--procs P] --duration D
                   [--fail-provider NAME --fail-at D --fail-mode kill|hang|slow|auth|partial] [--json]
                                            simulated apps streaming through the SDK
  switchboard demo [--addr ...] [--chaos]   the whole system on loopback, with fake providers
  switchboard seed --db DSN --ended N [--active M] [--providers a,b,c]
                                            write stream history into a database, in bulk
  switchboard version

Commands that talk to a server take --server (env SWITCHBOARD_URL) and
--token (env SWITCHBOARD_TOKEN), and -o json for scripts.
`

// run is the whole program, with its dependencies passed in for tests.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return usageError{}
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serve(ctx, rest, getenv, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "switchboard", switchboard.Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	if c, ok := commands[cmd]; ok {
		return c(ctx, rest, getenv, stdout, stderr)
	}
	fmt.Fprint(stderr, usage)
	return usageError{msg: fmt.Sprintf("unknown command %q", cmd)}
}

// commands holds the subcommands besides serve and version; each file that
// defines one registers it in init.
var commands = map[string]func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error{}
