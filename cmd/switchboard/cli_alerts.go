package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/switchboardhq/switchboard"
)

// alertFlags are the flags of the alerts command.
type alertFlags struct {
	file    string
	channel string
	limit   int
}

func (f *alertFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.file, "f", "", "JSON body `FILE` of a channel or rule (- for stdin)")
	fs.StringVar(&f.channel, "channel", "", "deliveries: only those of this `CHANNEL`")
	fs.IntVar(&f.limit, "limit", 50, "deliveries: at most `N` attempts, newest first")
}

// alertsCommand manages alert channels and rules and shows deliveries.
var alertsCommand = verbCommand[alertFlags]{
	name: "alerts",
	notes: `channels and rules take a sub-verb: list (the default), get NAME,
add -f FILE, set NAME -f FILE, rm NAME. A channel body is
  {"name": "oncall", "kind": "webhook", "config": {"url": "https://..."},
   "secrets": {"signingSecret": "..."}}
and a rule body
  {"name": "down", "events": ["provider.critical"], "channels": ["oncall"],
   "repeatInterval": "30m"}
Secrets are write-only: keep them in the file, not on the command line. On
set, secrets left out keep their values.
test sends a test notification and prints its outcome; it exits 1 when the
receiver refused it. deliveries lists delivery attempts, newest first.
Changing channels needs a superadmin token; the rest an admin token.
`,
	flags: (*alertFlags).register,
	verbs: []verb[alertFlags]{
		{name: "channels", synopsis: "[list|get NAME|add -f FILE|set NAME -f FILE|rm NAME]", check: checkAlertCRUD, run: alertsChannels},
		{name: "rules", synopsis: "[list|get NAME|add -f FILE|set NAME -f FILE|rm NAME]", check: checkAlertCRUD, run: alertsRules},
		{name: "deliveries", synopsis: "[--channel NAME] [--limit N]", check: checkAlertDeliveries, run: alertsDeliveries},
		{name: "test", synopsis: "CHANNEL", check: checkOneArg[alertFlags], run: alertsTest},
	},
}

// checkAlertCRUD checks the sub-verb of channels and rules and its arguments.
func checkAlertCRUD(v verbCall[alertFlags]) error {
	sub, rest := "list", v.args
	if len(rest) > 0 {
		sub, rest = rest[0], rest[1:]
	}
	usage := usageError{msg: "usage: switchboard " + v.cmd + " " + v.synopsis}
	switch sub {
	case "list":
		if len(rest) != 0 {
			return usage
		}
		return v.checkFlags()
	case "get", "rm":
		if len(rest) != 1 {
			return usage
		}
		return v.checkFlags()
	case "add", "set":
		if (sub == "add") != (len(rest) == 0) || len(rest) > 1 || v.flags.file == "" {
			return usage
		}
		return v.checkFlags("f")
	default:
		return usageError{msg: fmt.Sprintf("%s: unknown sub-verb %q (want list, get, add, set or rm)", v.cmd, sub)}
	}
}

func checkAlertDeliveries(v verbCall[alertFlags]) error {
	if err := v.wantArgs(0); err != nil {
		return err
	}
	if v.flags.limit < 1 || v.flags.limit > 1000 {
		return usageError{msg: v.cmd + ": --limit must be from 1 to 1000"}
	}
	return v.checkFlags("channel", "limit")
}

// readBody reads the -f file as JSON.
func (f *alertFlags) readBody() (json.RawMessage, error) {
	b, err := readInput(f.file)
	if err != nil {
		return nil, err
	}
	if !json.Valid(b) {
		return nil, usageError{msg: "-f " + f.file + ": not JSON"}
	}
	return json.RawMessage(b), nil
}

func subVerb(args []string) (string, []string) {
	if len(args) == 0 {
		return "list", nil
	}
	return args[0], args[1:]
}

func alertsChannels(ctx context.Context, v verbCall[alertFlags]) error {
	sub, rest := subVerb(v.args)
	switch sub {
	case "list":
		l, err := v.c.ListAlertChannels(ctx)
		if err != nil {
			return err
		}
		if v.json {
			return printJSON(v.stdout, l.JSON)
		}
		tw := newTable(v.stdout)
		fmt.Fprintln(tw, "NAME\tKIND\tTARGET\tSECRETS")
		for _, c := range l.Channels {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, c.Kind, channelTarget(c), orDash(strings.Join(c.SecretsSet, ",")))
		}
		return tw.Flush()
	case "get":
		c, err := v.c.GetAlertChannel(ctx, rest[0])
		if err != nil {
			return err
		}
		return printJSON(v.stdout, c.JSON)
	case "add", "set":
		body, err := v.flags.readBody()
		if err != nil {
			return err
		}
		var name string
		if sub == "add" {
			c, err := v.c.CreateAlertChannel(ctx, body)
			if err != nil {
				return err
			}
			if v.json {
				return printJSON(v.stdout, c.JSON)
			}
			name = c.Name
		} else {
			c, err := v.c.UpdateAlertChannel(ctx, rest[0], body)
			if err != nil {
				return err
			}
			if v.json {
				return printJSON(v.stdout, c.JSON)
			}
			name = c.Name
		}
		fmt.Fprintf(v.stdout, "alert channel %s %s\n", name, map[string]string{"add": "created", "set": "updated"}[sub])
		return nil
	default: // rm
		if err := v.c.DeleteAlertChannel(ctx, rest[0]); err != nil {
			return err
		}
		if !v.json {
			fmt.Fprintf(v.stdout, "alert channel %s deleted\n", rest[0])
		}
		return nil
	}
}

// channelTarget is where a channel sends, without a secret.
func channelTarget(c switchboard.AlertChannel) string {
	switch c.Kind {
	case switchboard.ChannelWebhook:
		return c.Config.URL
	case switchboard.ChannelEmail, switchboard.ChannelSMS:
		return strings.Join(c.Config.To, ",")
	default:
		return "-"
	}
}

func alertsRules(ctx context.Context, v verbCall[alertFlags]) error {
	sub, rest := subVerb(v.args)
	switch sub {
	case "list":
		l, err := v.c.ListAlertRules(ctx)
		if err != nil {
			return err
		}
		if v.json {
			return printJSON(v.stdout, l.JSON)
		}
		tw := newTable(v.stdout)
		fmt.Fprintln(tw, "NAME\tENABLED\tEVENTS\tCHANNELS\tPROVIDERS\tREPEAT\tMIN SEVERITY")
		for _, r := range l.Rules {
			fmt.Fprintf(tw, "%s\t%v\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Enabled, strings.Join(r.Events, ","),
				strings.Join(r.Channels, ","), orDash(strings.Join(r.Providers, ",")), r.RepeatInterval.D(), r.MinSeverity)
		}
		return tw.Flush()
	case "get":
		r, err := v.c.GetAlertRule(ctx, rest[0])
		if err != nil {
			return err
		}
		return printJSON(v.stdout, r.JSON)
	case "add", "set":
		body, err := v.flags.readBody()
		if err != nil {
			return err
		}
		var name string
		if sub == "add" {
			r, err := v.c.CreateAlertRule(ctx, body)
			if err != nil {
				return err
			}
			if v.json {
				return printJSON(v.stdout, r.JSON)
			}
			name = r.Name
		} else {
			r, err := v.c.UpdateAlertRule(ctx, rest[0], body)
			if err != nil {
				return err
			}
			if v.json {
				return printJSON(v.stdout, r.JSON)
			}
			name = r.Name
		}
		fmt.Fprintf(v.stdout, "alert rule %s %s\n", name, map[string]string{"add": "created", "set": "updated"}[sub])
		return nil
	default: // rm
		if err := v.c.DeleteAlertRule(ctx, rest[0]); err != nil {
			return err
		}
		if !v.json {
			fmt.Fprintf(v.stdout, "alert rule %s deleted\n", rest[0])
		}
		return nil
	}
}

func alertsDeliveries(ctx context.Context, v verbCall[alertFlags]) error {
	p, err := v.c.ListAlertDeliveries(ctx, v.flags.channel, v.flags.limit, 0)
	if err != nil {
		return err
	}
	if v.json {
		return printJSON(v.stdout, p.JSON)
	}
	tw := newTable(v.stdout)
	fmt.Fprintln(tw, "AT\tCHANNEL\tRULE\tINCIDENT\tTRANSITION\tOUTCOME\tSTATUS\tERROR")
	for _, a := range p.Attempts {
		inc, st := "-", "-"
		if a.IncidentID != 0 {
			inc = fmt.Sprint(a.IncidentID)
		}
		if a.HTTPStatus != 0 {
			st = fmt.Sprint(a.HTTPStatus)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", a.At.Local().Format(time.DateTime), a.Channel, orDash(a.Rule), inc,
			a.Transition, a.Outcome, st, orDash(a.Error))
	}
	return tw.Flush()
}

func alertsTest(ctx context.Context, v verbCall[alertFlags]) error {
	r, err := v.c.TestAlertChannel(ctx, v.args[0])
	if err != nil {
		return err
	}
	if v.json {
		if err := printJSON(v.stdout, r.JSON); err != nil {
			return err
		}
	} else if r.Attempt.Outcome == switchboard.OutcomeSent {
		fmt.Fprintf(v.stdout, "test notification sent to %s (%d ms)\n", v.args[0], r.Attempt.DurationMs)
	}
	if r.Attempt.Outcome != switchboard.OutcomeSent {
		msg := r.Attempt.Error
		if r.Attempt.HTTPStatus != 0 && !slices.Contains(strings.Fields(msg), fmt.Sprint(r.Attempt.HTTPStatus)) {
			msg = fmt.Sprintf("%d: %s", r.Attempt.HTTPStatus, msg)
		}
		return fmt.Errorf("test notification to %s failed: %s", v.args[0], msg)
	}
	return nil
}
