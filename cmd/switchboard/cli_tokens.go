package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/switchboardhq/switchboard/client/admin"
)

// tokenFlags are the flags of tokens create.
type tokenFlags struct{ name, role string }

// tokensCommand manages the API tokens of a server.
var tokensCommand = verbCommand[tokenFlags]{
	name: "tokens",
	notes: `create prints the new token once, on the last line; it cannot be shown again.
Managing tokens needs a superadmin token.
`,
	flags: (*tokenFlags).register,
	verbs: []verb[tokenFlags]{
		{name: "create", synopsis: "--name NAME --role client|admin|superadmin|agent", check: checkTokensCreate, run: tokensCreate},
		{name: "list", check: checkNoArgs[tokenFlags], run: tokensList},
		{name: "revoke", synopsis: "ID", check: checkOneArg[tokenFlags], run: tokensRevoke},
	},
}

func (f *tokenFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.name, "name", "", "name of the new token, e.g. the app or person using it")
	fs.StringVar(&f.role, "role", "", "role of the new token: client, admin, superadmin or agent (a probe agent: reads the providers with their credentials and reports probe results, nothing else)")
}

func checkTokensCreate(v verbCall[tokenFlags]) error {
	if err := v.wantArgs(0); err != nil {
		return err
	}
	if err := v.checkFlags("name", "role"); err != nil {
		return err
	}
	if v.flags.name == "" || v.flags.role == "" {
		return usageError{msg: "usage: switchboard " + v.cmd + " " + v.synopsis}
	}
	return nil
}

func tokensCreate(ctx context.Context, v verbCall[tokenFlags]) error {
	t, err := v.c.CreateToken(ctx, v.flags.name, v.flags.role)
	if err != nil {
		return err
	}
	if v.json {
		return printJSON(v.stdout, t.JSON)
	}
	if err := printTokens(v.stdout, []admin.Token{t.Token}); err != nil {
		return err
	}
	fmt.Fprintln(v.stdout, "Token (shown only once; store it now):")
	fmt.Fprintln(v.stdout, t.Secret)
	return nil
}

func tokensList(ctx context.Context, v verbCall[tokenFlags]) error {
	l, err := v.c.ListTokens(ctx)
	if err != nil {
		return err
	}
	if v.json {
		return printJSON(v.stdout, l.JSON)
	}
	if len(l.Tokens) == 0 {
		fmt.Fprintln(v.stderr, "No tokens.")
		return nil
	}
	return printTokens(v.stdout, l.Tokens)
}

func tokensRevoke(ctx context.Context, v verbCall[tokenFlags]) error {
	if err := v.c.RevokeToken(ctx, v.args[0]); err != nil {
		return err
	}
	if !v.json {
		fmt.Fprintf(v.stdout, "token %s revoked\n", v.args[0])
	}
	return nil
}

func printTokens(w io.Writer, ts []admin.Token) error {
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
