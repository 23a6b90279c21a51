package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/switchboardhq/switchboard/client/admin"
	"github.com/switchboardhq/switchboard/internal/auth"
)

// userFlags are the flags of users add and set.
type userFlags struct{ role, enabled string }

// usersCommand manages the dashboard's users.
var usersCommand = verbCommand[userFlags]{
	name: "users",
	notes: `add and passwd set a generated temporary password, printed once on the last
line: the user must change it at the next login. Disabling a user or setting its
password ends its sessions. Managing users needs a superadmin token.
`,
	flags: (*userFlags).register,
	verbs: []verb[userFlags]{
		{name: "list", check: checkNoArgs[userFlags], run: usersList},
		{name: "add", synopsis: "USERNAME --role admin|superadmin", check: checkUsersAdd, run: usersAdd},
		{name: "set", synopsis: "USERNAME [--role admin|superadmin] [--enabled true|false]", check: checkUsersSet, run: usersSet},
		{name: "passwd", synopsis: "USERNAME", check: checkOneArg[userFlags], run: usersPasswd},
		{name: "delete", synopsis: "USERNAME", check: checkOneArg[userFlags], run: usersDelete},
	},
}

func (f *userFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.role, "role", "", "role of the user: admin or superadmin")
	fs.StringVar(&f.enabled, "enabled", "", "true to enable the user, false to disable it")
}

func checkUsersAdd(v verbCall[userFlags]) error {
	if err := v.wantArgs(1); err != nil {
		return err
	}
	if err := v.checkFlags("role"); err != nil {
		return err
	}
	if v.flags.role == "" {
		return usageError{msg: "usage: switchboard " + v.cmd + " " + v.synopsis}
	}
	return nil
}

func checkUsersSet(v verbCall[userFlags]) error {
	if err := v.wantArgs(1); err != nil {
		return err
	}
	if err := v.checkFlags("role", "enabled"); err != nil {
		return err
	}
	if !v.given["role"] && !v.given["enabled"] {
		return usageError{msg: "usage: switchboard " + v.cmd + " " + v.synopsis + " (give --role or --enabled)"}
	}
	if v.given["enabled"] {
		if _, err := strconv.ParseBool(v.flags.enabled); err != nil {
			return usageError{msg: v.cmd + ": --enabled must be true or false"}
		}
	}
	return nil
}

func usersList(ctx context.Context, v verbCall[userFlags]) error {
	l, err := v.c.ListUsers(ctx)
	if err != nil {
		return err
	}
	if v.json {
		return printJSON(v.stdout, l.JSON)
	}
	return printUsers(v.stdout, l.Users)
}

func usersAdd(ctx context.Context, v verbCall[userFlags]) error {
	password := auth.RandomPassword()
	u, err := v.c.CreateUser(ctx, v.args[0], v.flags.role, password)
	if err != nil {
		return err
	}
	return printWithPassword(v, u, password)
}

func usersSet(ctx context.Context, v verbCall[userFlags]) error {
	var up admin.UserUpdate
	if v.given["role"] {
		up.Role = &v.flags.role
	}
	if v.given["enabled"] {
		on, _ := strconv.ParseBool(v.flags.enabled)
		up.Enabled = &on
	}
	u, err := v.c.UpdateUser(ctx, v.args[0], up)
	if err != nil {
		return err
	}
	if v.json {
		return printJSON(v.stdout, u.JSON)
	}
	return printUsers(v.stdout, []admin.User{u})
}

func usersPasswd(ctx context.Context, v verbCall[userFlags]) error {
	password := auth.RandomPassword()
	u, err := v.c.UpdateUser(ctx, v.args[0], admin.UserUpdate{Password: &password})
	if err != nil {
		return err
	}
	return printWithPassword(v, u, password)
}

func usersDelete(ctx context.Context, v verbCall[userFlags]) error {
	if err := v.c.DeleteUser(ctx, v.args[0]); err != nil {
		return err
	}
	if !v.json {
		fmt.Fprintf(v.stdout, "user %s deleted\n", v.args[0])
	}
	return nil
}

// printWithPassword prints a user and, on the last line, its new temporary
// password (with -o json, as {"user":…,"temporaryPassword":…}).
func printWithPassword(v verbCall[userFlags], u admin.User, password string) error {
	if v.json {
		b, err := json.Marshal(map[string]any{"user": u.JSON, "temporaryPassword": password})
		if err != nil {
			return err
		}
		return printJSON(v.stdout, b)
	}
	if err := printUsers(v.stdout, []admin.User{u}); err != nil {
		return err
	}
	fmt.Fprintln(v.stdout, "Temporary password (shown only once; the user must change it at the next login):")
	fmt.Fprintln(v.stdout, password)
	return nil
}

func printUsers(w io.Writer, us []admin.User) error {
	now := time.Now()
	tw := newTable(w)
	row(tw, "USERNAME", "ROLE", "STATE", "LOGIN", "CREATED", "LAST LOGIN")
	for _, u := range us {
		state := "enabled"
		if !u.Enabled {
			state = "disabled"
		}
		if u.MustChangePassword {
			state += ", must change password"
		}
		login := "password"
		if u.SSO {
			login = "sso"
		}
		row(tw, u.Username, u.Role, state, login, ago(&u.CreatedAt, now), ago(u.LastLoginAt, now))
	}
	return tw.Flush()
}
