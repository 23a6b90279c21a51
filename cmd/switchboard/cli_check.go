package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/switchboardhq/switchboard/client/admin"
)

const checkUsage = `Usage:
  switchboard check          probe every enabled provider now
  switchboard check NAME     probe one provider now

Prints each result: PROBE is the outcome of this probe (ok or failed, - when
the provider was not probed), USABLE whether the provider may take streams
after it, STATUS its badge, then latency, uptime and error rate of its window,
and the failed stage and error. Exits 1 when a probe failed or a probed
provider is not usable. Needs an admin token.
`

// errUnhealthy makes check exit 1 after printing its results.
var errUnhealthy = errors.New("a probe failed or a provider is not usable")

func checkCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("check", checkUsage, stderr)
	var cf clientFlags
	cf.register(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return usageError{msg: "usage: switchboard check [NAME]"}
	}
	c, ctx, done, err := cf.connect(ctx, getenv)
	if err != nil {
		return err
	}
	defer done()
	var raw json.RawMessage
	var results []admin.CheckResult
	if len(pos) == 1 {
		var r admin.CheckResult
		r, err = c.CheckProvider(ctx, pos[0])
		raw, results = r.JSON, []admin.CheckResult{r}
	} else {
		var all admin.CheckResults
		all, err = c.CheckAllProviders(ctx)
		raw, results = all.JSON, all.Results
	}
	if err != nil {
		return cf.explain(err)
	}
	if cf.output == "json" {
		if err := printJSON(stdout, raw); err != nil {
			return err
		}
	} else {
		tw := newTable(stdout)
		row(tw, "NAME", "PROBE", "USABLE", "STATUS", "LATENCY", "UPTIME", "ERROR%", "STAGE", "ERROR")
		for _, r := range results {
			lat, probe := "-", "-"
			if r.Probed {
				lat = strconv.FormatInt(r.Latency, 10) + "ms"
				probe = "failed"
				if r.Healthy {
					probe = "ok"
				}
			}
			row(tw, r.Name, probe, yesNo(r.Usable), string(r.Status), lat, fmt.Sprintf("%.2f", r.Uptime), fmt.Sprintf("%.2f", r.ErrorRate), string(r.Stage), r.Error)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, r := range results {
		if r.Probed && (!r.Healthy || !r.Usable || r.Stage != "") {
			return errUnhealthy
		}
	}
	return nil
}
