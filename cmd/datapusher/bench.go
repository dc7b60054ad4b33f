package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/datapusher/datapusher/bench"
)

// runBench runs the benchmark harness: it starts this binary, or -binary,
// as the server under test and prints a table of results.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := bench.ParseFlags(args, stderr)
	if err != nil {
		return err
	}
	if cfg.Binary == "" && cfg.Target == "" {
		if cfg.Binary, err = os.Executable(); err != nil {
			return fmt.Errorf("find the datapusher binary: %w; set -binary", err)
		}
	}
	cfg.Stdout, cfg.Stderr = stdout, stderr
	_, err = bench.Run(ctx, cfg)
	return err
}
