package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

const checkUsage = `Usage:
  switchboard check          probe every enabled provider now
  switchboard check NAME     probe one provider now

Prints each result (healthy, status, latency, failed stage and error). Exits 1 when a
probe failed or a probed provider is not healthy. Needs an admin token.
`

type checkResultOut struct {
	Name      string     `json:"name"`
	Healthy   bool       `json:"healthy"`
	Latency   int64      `json:"latency"`
	Status    string     `json:"status"`
	Badge     string     `json:"badge"`
	Uptime    float64    `json:"uptime"`
	ErrorRate float64    `json:"errorRate"`
	LastCheck *time.Time `json:"lastCheck"`
	Probed    bool       `json:"probed"`
	Stage     string     `json:"stage"`
	Error     string     `json:"error"`
}

// errUnhealthy makes check exit 1 after printing its results.
var errUnhealthy = errors.New("a probe failed or a provider is not healthy")

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
	var results []checkResultOut
	if len(pos) == 1 {
		err = c.Do(ctx, http.MethodPost, "/api/streaming/providers/"+pos[0]+"/health-check", nil, &raw)
		var r checkResultOut
		if err == nil {
			err = json.Unmarshal(raw, &r)
		}
		results = []checkResultOut{r}
	} else {
		err = c.Do(ctx, http.MethodPost, "/api/streaming/providers/health-check-all", nil, &raw)
		var all struct{ Results []checkResultOut }
		if err == nil {
			err = json.Unmarshal(raw, &all)
		}
		results = all.Results
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
		row(tw, "NAME", "HEALTHY", "STATUS", "LATENCY", "UPTIME", "ERROR%", "STAGE", "ERROR")
		for _, r := range results {
			lat := "-"
			if r.Probed {
				lat = strconv.FormatInt(r.Latency, 10) + "ms"
			}
			row(tw, r.Name, yesNo(r.Healthy), r.Badge, lat, fmt.Sprintf("%.2f", r.Uptime), fmt.Sprintf("%.2f", r.ErrorRate), r.Stage, r.Error)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, r := range results {
		if r.Probed && (!r.Healthy || r.Stage != "") {
			return errUnhealthy
		}
	}
	return nil
}
