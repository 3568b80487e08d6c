// Command gridlake runs the gridlake energy-telemetry pipeline. Each
// subcommand lives in its own file and only wires packages together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"sort"
	"syscall"

	"github.com/gridlake/gridlake/config"
)

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what a subcommand gets from the process: streams and environment,
// injected so tests can run subcommands in-process.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// listen opens the HTTP and PostgreSQL listeners; nil is net.Listen.
	// Tests inject it to kill a listener under a running process.
	listen func(network, address string) (net.Listener, error)
}

// listenTCP opens a TCP listener on addr through e.listen.
func (e *env) listenTCP(addr string) (net.Listener, error) {
	if e.listen != nil {
		return e.listen("tcp", addr)
	}
	return net.Listen("tcp", addr)
}

func commands() map[string]command {
	return map[string]command{
		"auth":     {"create and remove users and API tokens, and list them (gridlake auth --help)", runAuth},
		"broker":   {"run only the embedded Kafka-protocol broker (development, benchmarks)", runBroker},
		"batch":    {"run the batch layer by hand: run, compact, recompute, rebuild", runBatch},
		"bench":    {"measure a layer and print one JSON line: bench speed", runBench},
		"up":       {"run the whole pipeline in one process: embedded broker and object store, HTTP, optional simulator", runUp},
		"serve":    {"run the serving layer: HTTP API /v1, SQL over HTTP and the PostgreSQL protocol, speed layer in-process", runServe},
		"sql":      {"a terminal SQL client: run read-only queries against a running gridlake", runSQL},
		"health":   {"exit 0 when a running gridlake process is ready (container healthchecks; no curl needed)", runHealth},
		"jobs":     {"schedule, run, backfill and inspect the batch jobs (gridlake jobs --help)", runJobs},
		"simulate": {"send simulated battery and hotel traffic to Kafka, with fault injection", runSimulate},
		"speed":    {"run a speed-layer process: exact real-time aggregates above the last batch cut", runSpeed},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	e := &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	if err := run(ctx, e, os.Args[1:]); err != nil {
		if !errors.Is(err, flag.ErrHelp) && err != errUsage {
			fmt.Fprintln(os.Stderr, "gridlake:", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitCode is 0 after --help (the user asked for it), 2 for a usage
// error, 1 for a failure.
func exitCode(err error) int {
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	}
	return 1
}

// actionHelp prints a command's help: to stdout and exit 0 when asked for
// (-h, --help), to stderr as a usage error when the action is missing.
func actionHelp(e *env, args []string, text string) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, text)
		return errUsage
	}
	fmt.Fprint(e.stdout, text)
	return flag.ErrHelp
}

var errUsage = errors.New("usage")

func run(ctx context.Context, e *env, args []string) error {
	cmds := commands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(e.stdout, cmds)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	c, ok := cmds[args[0]]
	if !ok {
		usage(e.stderr, cmds)
		return fmt.Errorf("%w: unknown command %q", errUsage, args[0])
	}
	return c.run(ctx, e, args[1:])
}

func usage(w io.Writer, cmds map[string]command) {
	fmt.Fprint(w, `gridlake: a lambda-architecture pipeline for energy telemetry.

Usage: gridlake <command> [flags]

Commands:
`)
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, cmds[n].summary)
	}
	fmt.Fprint(w, `
Every command reads settings from flags, GRIDLAKE_* environment variables and
a YAML file (--config); "gridlake <command> --help" lists them all.
Start with: gridlake up --simulate
`)
}

// flags returns a flag set for a subcommand with every config setting bound.
func flags(e *env, name, synopsis string) (*flag.FlagSet, *config.Loader) {
	fs := flag.NewFlagSet("gridlake "+name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	l := config.Register(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: gridlake %s [flags]\n\n%s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs, l
}

// load parses a subcommand's args and builds its configuration.
func load(fs *flag.FlagSet, l *config.Loader, e *env, args []string) (config.Config, error) {
	for _, a := range args {
		if a == "-h" || a == "-help" || a == "--help" {
			fs.SetOutput(e.stdout) // asked-for help is output, not an error
		}
	}
	if err := fs.Parse(args); err != nil {
		return config.Config{}, err
	}
	return l.Load(e.getenv)
}

func newLogger(w io.Writer, c config.Log) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level))
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
