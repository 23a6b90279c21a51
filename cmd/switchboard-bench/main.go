// Command switchboard-bench measures Switchboard's hot paths side by side
// with a bare net/http baseline (package benchbase) on the same machine in
// the same run, and prints one JSON object with both sides' figures and
// their ratios. scripts/bench builds it and Switchboard and runs it.
//
//	switchboard-bench run --switchboard ./switchboard [--quick] [--postgres URL]
//	switchboard-bench baseline --addr 127.0.0.1:0 --docs docs.json [--postgres URL]
//
// The load generator is closed-loop: each of --concurrency clients sends its
// next request as soon as the previous one is answered. Every request's
// latency is kept; the server's CPU time per request comes from its
// /proc/PID/stat and its memory from /proc/PID/status. Switchboard and the
// baseline take turns, round after round, so that what else the machine
// does weighs on both alike.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/switchboardhq/switchboard/internal/benchbase"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "switchboard-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: switchboard-bench run|baseline [flags]")
	}
	switch args[0] {
	case "run":
		return runBench(ctx, args[1:], stdout, stderr)
	case "baseline":
		return serveBaseline(ctx, args[1:], stdout, stderr)
	}
	return fmt.Errorf("unknown command %q: want run or baseline", args[0])
}

// serveBaseline serves the baseline until ctx ends.
func serveBaseline(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	docsFile := fs.String("docs", "", "JSON file of the documents to answer (health, config, start, heartbeat)")
	pg := fs.String("postgres", "", "record each start in the bench_starts table of this PostgreSQL URL (its search_path) before answering it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var db *sql.DB
	if *pg != "" {
		var err error
		if db, err = sql.Open("pgx", *pg); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
		defer db.Close()
		// As many connections as a Switchboard replica keeps.
		db.SetMaxOpenConns(16)
		db.SetMaxIdleConns(16)
		if err := db.PingContext(ctx); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
	}
	var docs benchbase.Docs
	if *docsFile != "" {
		b, err := os.ReadFile(*docsFile)
		if err != nil {
			return fmt.Errorf("docs: %w", err)
		}
		if err := json.Unmarshal(b, &docs); err != nil {
			return fmt.Errorf("docs %s: %w", *docsFile, err)
		}
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: benchbase.Handler(docs, benchbase.NewHub(), db), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "baseline listening on http://%s\n", ln.Addr())
	go func() {
		<-ctx.Done()
		_ = srv.Close() // event streams included
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
