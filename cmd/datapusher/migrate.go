package main

import (
	"context"
	"fmt"
	"io"
	"strings"
)

// runMigrate applies the migrations that have not run yet and prints their
// names.
func runMigrate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig("migrate", args, stderr)
	if err != nil {
		return err
	}
	logger, err := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
	if err != nil {
		return err
	}
	cfg.Migrate = false
	store, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer store.Close()
	applied, err := store.Migrate(ctx)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Fprintln(stdout, "database is up to date")
	} else {
		fmt.Fprintf(stdout, "applied %d migrations: %s\n", len(applied), strings.Join(applied, ", "))
	}
	return nil
}
