package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"
)

// runCreateSuperuser creates a superuser from flags, or prompts for the email
// and password on a terminal.
func runCreateSuperuser(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("createsuperuser", flag.ContinueOnError)
	fs.SetOutput(stderr)
	email := fs.String("email", os.Getenv("DATAPUSHER_SUPERUSER_EMAIL"), "email of the superuser (DATAPUSHER_SUPERUSER_EMAIL)")
	password := fs.String("password", os.Getenv("DATAPUSHER_SUPERUSER_PASSWORD"),
		"password, at least 8 characters; asked for on a terminal when empty (DATAPUSHER_SUPERUSER_PASSWORD)")
	dataDir := fs.String("data-dir", envString("DATAPUSHER_DATA_DIR", "data"), "data folder (DATAPUSHER_DATA_DIR)")
	databaseURL := fs.String("database-url", envString("DATABASE_URL", ""), "database (DATABASE_URL)")
	if err := fs.Parse(args); err != nil {
		return err
	}

	reader := bufio.NewReader(stdin)
	if *email == "" {
		fmt.Fprint(stdout, "Email: ")
		line, err := reader.ReadString('\n')
		if err != nil && line == "" {
			return errors.New("missing email: pass -email or type it at the prompt")
		}
		*email = strings.TrimSpace(line)
	}
	if *password == "" {
		p, err := readPassword(reader, stdin, stdout)
		if err != nil {
			return err
		}
		*password = p
	}
	if !strings.Contains(*email, "@") {
		return fmt.Errorf("invalid email %q", *email)
	}
	if len(*password) < 8 {
		return errors.New("password too short: use at least 8 characters")
	}

	cfg, err := parseConfig("createsuperuser", []string{"-data-dir", *dataDir, "-database-url", *databaseURL}, stderr)
	if err != nil {
		return err
	}
	logger, err := newLogger(io.Discard, "info", "text")
	if err != nil {
		return err
	}
	store, err := openStore(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer store.Close()

	hash, err := bcrypt.GenerateFromPassword([]byte(*password), bcrypt.DefaultCost)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	user, err := store.SetSuperuser(ctx, *email, string(hash))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "superuser %s ready (id %s)\n", user.Email, user.ID)
	return nil
}

// readPassword reads a password without echo on a terminal, or one line
// from a pipe.
func readPassword(reader *bufio.Reader, stdin io.Reader, stdout io.Writer) (string, error) {
	fmt.Fprint(stdout, "Password: ")
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stdout)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		return string(b), nil
	}
	line, err := reader.ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("missing password: pass -password or type it at the prompt")
	}
	return strings.TrimRight(line, "\r\n"), nil
}
