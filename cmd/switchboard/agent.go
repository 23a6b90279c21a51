package main

import (
	"context"
	"io"
	"time"

	"github.com/switchboardhq/switchboard"
	"github.com/switchboardhq/switchboard/internal/agent"
	"github.com/switchboardhq/switchboard/internal/providers"
)

const agentUsage = `usage: switchboard agent --server URL --token T --region REGION [flags]

Probes every enabled provider from where it runs, with the server's own
probes, once at start and then at each provider's interval, and reports the
results to the server as the health of the providers in REGION. The token
must have the role agent (switchboard tokens create --role agent): it may
read the providers with their credentials (each read is audited) and report
results, nothing else. An agent that stops reporting shows as stale, never
as healthy. It runs until interrupted.
`

func agentCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("agent", agentUsage, stderr)
	var server, token, region, logLevel, logFormat string
	var refresh time.Duration
	var concurrency int
	fs.StringVar(&server, "server", "", "server URL (env SWITCHBOARD_URL, default "+defaultServerURL+")")
	fs.StringVar(&token, "token", "", "bearer token of role agent (env SWITCHBOARD_TOKEN, which other users of the machine cannot read)")
	fs.StringVar(&region, "region", "", "region the agent probes from, such as eu-west (env SWITCHBOARD_REGION)")
	fs.DurationVar(&refresh, "refresh", agent.DefaultRefresh, "how often the providers are read again")
	fs.IntVar(&concurrency, "concurrency", 16, "probes run at once at most")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	serverFromEnv(&server, &token, getenv)
	if region == "" {
		region = getenv("SWITCHBOARD_REGION")
	}
	switch {
	case token == "":
		return usageError{msg: "agent: --token (or SWITCHBOARD_TOKEN) is required: a token of role agent"}
	case !switchboard.ValidSlug(region):
		return usageError{msg: "agent: --region (or SWITCHBOARD_REGION) is required: a region slug such as eu-west"}
	case refresh < time.Second || concurrency < 1 || concurrency > 1024:
		return usageError{msg: "agent: --refresh must be at least 1s and --concurrency from 1 to 1024"}
	case logFormat != "text" && logFormat != "json":
		return usageError{msg: "agent: --log-format must be text or json"}
	}
	return agent.Run(ctx, agent.Config{
		Server: server, Token: token, Region: region, Probers: providers.Probers(),
		Logger: newLogger(stderr, logFormat, logLevel), Refresh: refresh, MaxConcurrent: concurrency,
	})
}
