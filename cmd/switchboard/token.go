package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/switchboardhq/switchboard/internal/providers/agora"
	"github.com/switchboardhq/switchboard/internal/providers/livekit"
	"github.com/switchboardhq/switchboard/internal/providers/zegocloud"
)

func init() { commands["token"] = tokenCommand }

const tokenUsage = `Usage:
  switchboard token agora --app-id ID --app-certificate CERT --channel NAME --uid N
      [--role publisher|subscriber] [--expire SECONDS] [--privilege-expire SECONDS]
      [--issued-at UNIX] [--salt N]
  switchboard token zegocloud --app-id N --server-secret S --user-id U [--expire SECONDS]
  switchboard token livekit --api-key K --api-secret S --room R --identity I
      [--role publisher|subscriber] [--expire SECONDS]

Mints a join token offline, with the same code the server uses, and prints it alone
on the last line.
`

func tokenCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, tokenUsage)
		if len(args) == 0 {
			return usageError{msg: "token: missing provider kind"}
		}
		return nil
	}
	kind, rest := args[0], args[1:]
	fs := flag.NewFlagSet("token "+kind, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, tokenUsage) }
	var tok string
	var err error
	switch kind {
	case "agora":
		tok, err = agoraToken(fs, rest)
	case "zegocloud":
		tok, err = zegoToken(fs, rest)
	case "livekit":
		tok, err = livekitToken(fs, rest, stderr)
	default:
		fmt.Fprint(stderr, tokenUsage)
		return usageError{msg: fmt.Sprintf("token: unknown kind %q: agora, zegocloud or livekit", kind)}
	}
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

func parseTokenFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{}
	}
	if fs.NArg() > 0 {
		return usageError{msg: fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	return nil
}

func required(fs *flag.FlagSet, names ...string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for _, n := range names {
		if !given[n] {
			return usageError{msg: fmt.Sprintf("%s: --%s is required", fs.Name(), n)}
		}
	}
	return nil
}

func publisherRole(fs *flag.FlagSet, role string) (bool, error) {
	switch role {
	case "publisher":
		return true, nil
	case "subscriber":
		return false, nil
	}
	return false, usageError{msg: fs.Name() + ": --role must be publisher or subscriber"}
}

func agoraToken(fs *flag.FlagSet, args []string) (string, error) {
	appID := fs.String("app-id", "", "Agora App ID (32 hex characters)")
	cert := fs.String("app-certificate", "", "App certificate (32 hex characters)")
	channel := fs.String("channel", "", "channel name")
	uid := fs.Uint64("uid", 0, "numeric user id (0 = any user)")
	role := fs.String("role", "publisher", "publisher or subscriber")
	expire := fs.Uint64("expire", 3600, "token lifetime in seconds")
	privExpire := fs.Uint64("privilege-expire", 0, "privilege lifetime in seconds (default: --expire)")
	issuedAt := fs.Int64("issued-at", 0, "issue time, unix seconds (default now)")
	salt := fs.Uint64("salt", 0, "salt in [1, 99999999) (default random)")
	if err := parseTokenFlags(fs, args); err != nil {
		return "", err
	}
	if err := required(fs, "app-id", "app-certificate", "channel", "uid"); err != nil {
		return "", err
	}
	pub, err := publisherRole(fs, *role)
	if err != nil {
		return "", err
	}
	if *uid > 1<<32-1 || *expire > 1<<32-1 || *privExpire > 1<<32-1 || *salt > 1<<32-1 {
		return "", usageError{msg: "token agora: --uid, --expire, --privilege-expire and --salt must fit in 32 bits"}
	}
	if *privExpire == 0 {
		*privExpire = *expire
	}
	ts := *issuedAt
	if ts == 0 {
		ts = time.Now().Unix()
	}
	if ts < 0 || ts > 1<<32-1 {
		return "", usageError{msg: "token agora: --issued-at must be a unix time in 32 bits"}
	}
	s := uint32(*salt)
	if s == 0 {
		if s, err = agora.NewSalt(nil); err != nil {
			return "", err
		}
	}
	return agora.BuildRTCToken(*appID, *cert, *channel, uint32(*uid), pub, uint32(*expire), uint32(*privExpire), uint32(ts), s)
}

func zegoToken(fs *flag.FlagSet, args []string) (string, error) {
	appID := fs.Uint64("app-id", 0, "ZEGOCLOUD AppID")
	secret := fs.String("server-secret", "", "ServerSecret (32 characters)")
	user := fs.String("user-id", "", "user id")
	expire := fs.Int64("expire", 3600, "token lifetime in seconds")
	if err := parseTokenFlags(fs, args); err != nil {
		return "", err
	}
	if err := required(fs, "app-id", "server-secret", "user-id"); err != nil {
		return "", err
	}
	if *appID > 1<<32-1 {
		return "", usageError{msg: "token zegocloud: --app-id must fit in 32 bits"}
	}
	return zegocloud.Build04(uint32(*appID), *user, *secret, *expire, "", time.Now(), nil)
}

func livekitToken(fs *flag.FlagSet, args []string, stderr io.Writer) (string, error) {
	key := fs.String("api-key", "", "API key")
	secret := fs.String("api-secret", "", "API secret")
	room := fs.String("room", "", "room name")
	identity := fs.String("identity", "", "participant identity")
	role := fs.String("role", "publisher", "publisher or subscriber")
	expire := fs.Int64("expire", int64(livekit.DefaultTokenTTL/time.Second), "token lifetime in seconds")
	if err := parseTokenFlags(fs, args); err != nil {
		return "", err
	}
	if err := required(fs, "api-key", "api-secret", "room", "identity"); err != nil {
		return "", err
	}
	pub, err := publisherRole(fs, *role)
	if err != nil {
		return "", err
	}
	warning, err := livekit.ValidateKeys(*key, *secret)
	if err != nil {
		return "", err
	}
	if warning != "" {
		fmt.Fprintln(stderr, "warning:", warning)
	}
	if *expire <= 0 {
		return "", usageError{msg: "token livekit: --expire must be positive, got " + strconv.FormatInt(*expire, 10)}
	}
	return livekit.MintJoinToken(*key, *secret, *room, *identity, pub, time.Duration(*expire)*time.Second, time.Now())
}
