// Command datapusher runs the Data Pusher webhook gateway: the HTTP API that
// accepts events, the workers that deliver them, and tools around them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

// Version is the release, set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

const usage = `Data Pusher: a webhook gateway.

Usage:
  datapusher <command> [flags]

Commands:
  serve            run the HTTP API and the delivery workers in one process
  api              run only the HTTP API (events are queued for workers)
  worker           run only the delivery workers
  migrate          apply database migrations and exit
  createsuperuser  create a superuser, or make an existing user one
  sink             run a receiver that prints every request it gets
  bench            measure ingest and delivery throughput and latency
  version          print the version

Run "datapusher <command> -h" for the flags of a command. Every flag can
also be set with the environment variable named in its help.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		// -h printed the command's flags.
	default:
		fmt.Fprintln(os.Stderr, "datapusher:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	command, rest := args[0], args[1:]
	switch command {
	case "serve":
		return runServer(ctx, rest, stderr, modeServe)
	case "api":
		return runServer(ctx, rest, stderr, modeAPI)
	case "worker":
		return runServer(ctx, rest, stderr, modeWorker)
	case "migrate":
		return runMigrate(ctx, rest, stdout, stderr)
	case "createsuperuser":
		return runCreateSuperuser(ctx, rest, stdin, stdout, stderr)
	case "sink":
		return runSink(ctx, rest, stdout, stderr)
	case "bench":
		return runBench(ctx, rest, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "datapusher", Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", command)
}
