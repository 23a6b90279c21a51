package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/client/admin"
)

// maintenanceFlags are the flags of maintenance list and add.
type maintenanceFlags struct {
	provider, start, end, reason, state string
	duration                            time.Duration
	drain                               bool
	drainRate                           float64
}

// maintenanceCommand schedules, lists and ends maintenance windows.
var maintenanceCommand = verbCommand[maintenanceFlags]{
	name: "maintenance",
	notes: `add schedules a window: the provider takes no new streams from --start (default
now) until --end (or for --for), and its alerts are silenced. With --drain its
live streams are moved to other providers beforehand, at most --drain-rate a
second (default 5), starting 10 minutes before the start. Times are RFC 3339,
e.g. 2026-05-01T22:00:00Z. end ends a window now (before its start: cancels it).
list shows the windows, newest first; --state upcoming, active or past filters.
Needs an admin token.
`,
	flags: (*maintenanceFlags).register,
	verbs: []verb[maintenanceFlags]{
		{name: "list", synopsis: "[--state upcoming|active|past] [--provider NAME]", check: checkMaintenanceList, run: maintenanceList},
		{name: "add", synopsis: "--provider NAME (--end TIME | --for DURATION) --reason TEXT [--start TIME] [--drain [--drain-rate N]]",
			check: checkMaintenanceAdd, run: maintenanceAdd},
		{name: "end", synopsis: "ID", check: checkOneArg[maintenanceFlags], run: maintenanceEnd},
	},
}

func (f *maintenanceFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.provider, "provider", "", "the provider under maintenance")
	fs.StringVar(&f.start, "start", "", "when the window starts, RFC 3339 (default now)")
	fs.StringVar(&f.end, "end", "", "when the window ends, RFC 3339")
	fs.DurationVar(&f.duration, "for", 0, "how long the window lasts from its start, instead of --end")
	fs.StringVar(&f.reason, "reason", "", "why: shown on the dashboard, in the configuration SDKs fetch and in the decision trail")
	fs.BoolVar(&f.drain, "drain", false, "move live streams off the provider before the start")
	fs.Float64Var(&f.drainRate, "drain-rate", switchboard.DefaultDrainRate, "streams moved a second at most, with --drain")
	fs.StringVar(&f.state, "state", "", "list only windows upcoming, active or past")
}

func checkMaintenanceList(v verbCall[maintenanceFlags]) error {
	if err := v.wantArgs(0); err != nil {
		return err
	}
	if err := v.checkFlags("state", "provider"); err != nil {
		return err
	}
	switch v.flags.state {
	case "", switchboard.MaintenanceUpcoming, switchboard.MaintenanceActive, switchboard.MaintenancePast:
		return nil
	}
	return usageError{msg: "--state must be upcoming, active or past"}
}

func checkMaintenanceAdd(v verbCall[maintenanceFlags]) error {
	if err := v.wantArgs(0); err != nil {
		return err
	}
	if err := v.checkFlags("provider", "start", "end", "for", "reason", "drain", "drain-rate"); err != nil {
		return err
	}
	f := v.flags
	if f.provider == "" || f.reason == "" || (f.end == "") == (f.duration == 0) {
		return usageError{msg: "usage: switchboard " + v.cmd + " " + v.synopsis}
	}
	if v.given["for"] && f.duration <= 0 {
		return usageError{msg: "--for must be positive"}
	}
	if v.given["drain-rate"] && !f.drain {
		return usageError{msg: "--drain-rate needs --drain"}
	}
	return nil
}

// maintenanceInput is the window the flags describe; with --for, the end
// is that long after the start (or after now).
func maintenanceInput(f *maintenanceFlags, now time.Time) (switchboard.MaintenanceInput, error) {
	in := switchboard.MaintenanceInput{Provider: f.provider, Start: f.start, End: f.end, Reason: f.reason, Drain: f.drain}
	if f.drain {
		rate := f.drainRate
		in.DrainRate = &rate
	}
	if f.duration > 0 {
		from := now
		if f.start != "" {
			t, err := time.Parse(time.RFC3339Nano, f.start)
			if err != nil {
				return in, usageError{msg: "--start must be an RFC 3339 time, such as 2026-05-01T22:00:00Z"}
			}
			from = t
		}
		in.End = from.Add(f.duration).UTC().Format(time.RFC3339Nano)
	}
	return in, nil
}

func maintenanceAdd(ctx context.Context, v verbCall[maintenanceFlags]) error {
	in, err := maintenanceInput(v.flags, time.Now())
	if err != nil {
		return err
	}
	w, err := v.c.ScheduleMaintenance(ctx, in)
	if err != nil {
		return err
	}
	if v.json {
		return printJSON(v.stdout, w.JSON)
	}
	return printWindows(v.stdout, []admin.Window{w})
}

func maintenanceList(ctx context.Context, v verbCall[maintenanceFlags]) error {
	l, err := v.c.ListMaintenance(ctx, v.flags.state, v.flags.provider)
	if err != nil {
		return err
	}
	if v.json {
		return printJSON(v.stdout, l.JSON)
	}
	if len(l.Windows) == 0 {
		fmt.Fprintln(v.stderr, "No maintenance windows.")
		return nil
	}
	return printWindows(v.stdout, l.Windows)
}

func maintenanceEnd(ctx context.Context, v verbCall[maintenanceFlags]) error {
	w, err := v.c.EndMaintenance(ctx, v.args[0])
	if err != nil {
		return err
	}
	if v.json {
		return printJSON(v.stdout, w.JSON)
	}
	return printWindows(v.stdout, []admin.Window{w})
}

func printWindows(w io.Writer, ws []admin.Window) error {
	tw := newTable(w)
	row(tw, "ID", "PROVIDER", "STATE", "START", "END", "DRAIN", "REASON")
	for _, win := range ws {
		drain := "no"
		if win.Drain {
			drain = strconv.FormatFloat(win.DrainRate, 'g', -1, 64) + "/s"
			if p := win.DrainProgress; p != nil {
				drain += fmt.Sprintf(" (%d moved, %d left", p.Moved, p.Remaining)
				if p.Late {
					drain += ", late"
				}
				drain += ")"
			}
		}
		row(tw, win.ID, win.Provider, win.State, win.Start.Format(time.RFC3339), win.Ends().Format(time.RFC3339), drain, win.Reason)
	}
	return tw.Flush()
}
