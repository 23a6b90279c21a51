package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/switchboardhq/switchboard/internal/apiclient"
)

func init() { commands["tokens"] = tokensCommand }

const tokensUsage = `Usage:
  switchboard tokens create --name NAME --role client|admin|superadmin
  switchboard tokens list
  switchboard tokens revoke ID

create prints the new token once, on the last line; it cannot be shown again.
Managing tokens needs a superadmin token.
`

func tokensCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("tokens", tokensUsage, stderr)
	var cf clientFlags
	cf.register(fs)
	var name, role string
	fs.StringVar(&name, "name", "", "name of the new token, e.g. the app or person using it")
	fs.StringVar(&role, "role", "", "role of the new token: client, admin or superadmin")
	pos, err := parseArgs(fs, args)
	if errors.Is(err, errHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return usageError{msg: "tokens: missing verb"}
	}
	verb, rest := pos[0], pos[1:]
	cmd := "tokens " + verb
	given := givenFlags(fs)
	switch verb {
	case "create":
		err = wantArgs(cmd, rest, 0, "")
		if err == nil {
			err = checkFlags(cmd, given, "name", "role")
		}
		if err == nil && (name == "" || role == "") {
			err = usageError{msg: "usage: switchboard tokens create --name NAME --role client|admin|superadmin"}
		}
	case "list":
		if err = wantArgs(cmd, rest, 0, ""); err == nil {
			err = checkFlags(cmd, given)
		}
	case "revoke":
		if err = wantArgs(cmd, rest, 1, "ID"); err == nil {
			err = checkFlags(cmd, given)
		}
	default:
		err = usageError{msg: fmt.Sprintf("tokens: unknown verb %q (want create, list or revoke)", verb)}
	}
	if err != nil {
		return err
	}
	c, ctx, done, err := cf.connect(ctx, getenv)
	if err != nil {
		return err
	}
	defer done()
	asJSON := cf.output == "json"
	switch verb {
	case "create":
		t, err := c.CreateToken(ctx, name, role)
		if err != nil {
			return cf.explain(err)
		}
		if asJSON {
			return printJSON(stdout, t.JSON)
		}
		if err := printTokens(stdout, []apiclient.Token{t.Token}); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "Token (shown only once; store it now):")
		fmt.Fprintln(stdout, t.Secret)
		return nil
	case "list":
		l, err := c.ListTokens(ctx)
		if err != nil {
			return cf.explain(err)
		}
		if asJSON {
			return printJSON(stdout, l.JSON)
		}
		if len(l.Tokens) == 0 {
			fmt.Fprintln(stderr, "No tokens.")
			return nil
		}
		return printTokens(stdout, l.Tokens)
	default: // revoke
		if err := c.RevokeToken(ctx, rest[0]); err != nil {
			return cf.explain(err)
		}
		if !asJSON {
			fmt.Fprintf(stdout, "token %s revoked\n", rest[0])
		}
		return nil
	}
}

func printTokens(w io.Writer, ts []apiclient.Token) error {
	now := time.Now()
	tw := newTable(w)
	row(tw, "ID", "NAME", "ROLE", "CREATED", "LAST USED", "STATE")
	for _, t := range ts {
		state := "active"
		if t.RevokedAt != nil {
			state = "revoked " + ago(t.RevokedAt, now)
		}
		row(tw, t.ID, t.Name, t.Role, ago(&t.CreatedAt, now), ago(t.LastUsedAt, now), state)
	}
	return tw.Flush()
}
