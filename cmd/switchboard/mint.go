package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchboardhq/switchboard/internal/providers/agora"
	"github.com/switchboardhq/switchboard/internal/providers/livekit"
	"github.com/switchboardhq/switchboard/internal/providers/zegocloud"
)

// mintKind is a provider kind whose join tokens `switchboard token` mints:
// its lines in the usage text and its minting, which parses the flags in args
// with fs.
type mintKind struct {
	name  string
	usage string // after "switchboard token NAME"; may hold newlines
	mint  func(fs *flag.FlagSet, args []string, stderr io.Writer) (string, error)
}

// mintKinds are the kinds `switchboard token` mints for, in the order the
// usage text lists them.
var mintKinds = []mintKind{
	{name: "agora", mint: mintAgora, usage: `--app-id ID --app-certificate CERT --channel NAME --uid N
      [--role publisher|subscriber] [--expire SECONDS] [--privilege-expire SECONDS]
      [--issued-at UNIX] [--salt N]`},
	{name: "zegocloud", mint: mintZego, usage: "--app-id N --server-secret S --user-id U [--expire SECONDS]"},
	{name: "livekit", mint: mintLiveKit, usage: `--api-key K --api-secret S --room R --identity I
      [--role publisher|subscriber] [--expire SECONDS]`},
}

// mintKindNames are the names of the kinds.
func mintKindNames() []string {
	names := make([]string, len(mintKinds))
	for i, k := range mintKinds {
		names[i] = k.name
	}
	return names
}

// mintUsage is the usage text of `switchboard token`.
func mintUsage() string {
	var b strings.Builder
	b.WriteString("Usage:\n")
	for _, k := range mintKinds {
		b.WriteString("  switchboard token " + k.name + " " + k.usage + "\n")
	}
	b.WriteString(`
Mints a join token offline, with the same code the server uses, and prints it alone
on the last line.
`)
	return b.String()
}

// mintCommand is `switchboard token`: it mints a join token offline.
func mintCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, mintUsage())
		if len(args) == 0 {
			return usageError{msg: "token: missing provider kind"}
		}
		return nil
	}
	name, rest := args[0], args[1:]
	i := slices.IndexFunc(mintKinds, func(k mintKind) bool { return k.name == name })
	if i < 0 {
		fmt.Fprint(stderr, mintUsage())
		return usageError{msg: fmt.Sprintf("token: unknown kind %q: %s", name, orList(mintKindNames()))}
	}
	fs := flag.NewFlagSet("token "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, mintUsage()) }
	tok, err := mintKinds[i].mint(fs, rest, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// parseMintFlags parses the flags of one kind, none of them positional, and
// checks that those named required were given. It returns flag.ErrHelp for -h.
func parseMintFlags(fs *flag.FlagSet, args []string, required ...string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{}
	}
	if fs.NArg() > 0 {
		return usageError{msg: fmt.Sprintf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))}
	}
	given := givenFlags(fs)
	for _, n := range required {
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

func mintAgora(fs *flag.FlagSet, args []string, _ io.Writer) (string, error) {
	appID := fs.String("app-id", "", "Agora App ID (32 hex characters)")
	cert := fs.String("app-certificate", "", "App certificate (32 hex characters)")
	channel := fs.String("channel", "", "channel name")
	uid := fs.Uint64("uid", 0, "numeric user id (0 = any user)")
	role := fs.String("role", "publisher", "publisher or subscriber")
	expire := fs.Uint64("expire", 3600, "token lifetime in seconds")
	privExpire := fs.Uint64("privilege-expire", 0, "privilege lifetime in seconds (default: --expire)")
	issuedAt := fs.Int64("issued-at", 0, "issue time, unix seconds (default now)")
	salt := fs.Uint64("salt", 0, "salt in [1, 99999999) (default random)")
	if err := parseMintFlags(fs, args, "app-id", "app-certificate", "channel", "uid"); err != nil {
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

func mintZego(fs *flag.FlagSet, args []string, _ io.Writer) (string, error) {
	appID := fs.Uint64("app-id", 0, "ZEGOCLOUD AppID")
	secret := fs.String("server-secret", "", "ServerSecret (32 characters)")
	user := fs.String("user-id", "", "user id")
	expire := fs.Int64("expire", 3600, "token lifetime in seconds")
	if err := parseMintFlags(fs, args, "app-id", "server-secret", "user-id"); err != nil {
		return "", err
	}
	if *appID > 1<<32-1 {
		return "", usageError{msg: "token zegocloud: --app-id must fit in 32 bits"}
	}
	return zegocloud.Build04(uint32(*appID), *user, *secret, *expire, "", time.Now(), nil)
}

func mintLiveKit(fs *flag.FlagSet, args []string, stderr io.Writer) (string, error) {
	key := fs.String("api-key", "", "API key")
	secret := fs.String("api-secret", "", "API secret")
	room := fs.String("room", "", "room name")
	identity := fs.String("identity", "", "participant identity")
	role := fs.String("role", "publisher", "publisher or subscriber")
	expire := fs.Int64("expire", int64(livekit.DefaultTokenTTL/time.Second), "token lifetime in seconds")
	if err := parseMintFlags(fs, args, "api-key", "api-secret", "room", "identity"); err != nil {
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
