package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
)

// Bounds of the child process's start and stop.
const (
	startTimeout = 30 * time.Second
	stopTimeout  = 15 * time.Second

	// childShutdownTimeout is the child's DATAPUSHER_SHUTDOWN_TIMEOUT. It is
	// below stopTimeout, so that the child normally exits by itself.
	childShutdownTimeout = 5 * time.Second
)

// childOptions configures one datapusher child process.
type childOptions struct {
	Binary  string
	Command string            // "serve" or "api"
	Store   string            // StoreSQLite or StorePostgres
	BaseURL string            // PostgreSQL server for StorePostgres
	Env     map[string]string // settings on top of the harness's defaults
	Output  io.Writer         // copy of the child's log, or nil
}

// child is a running datapusher process with its own fresh database.
type child struct {
	BaseURL string
	PID     int

	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	log     *logWriter
	dataDir string
	schema  *pgSchema
}

// startChild starts the datapusher binary on a free port of 127.0.0.1 with
// a fresh database and waits until it serves HTTP. The caller must call
// stop, which also removes the database.
func startChild(ctx context.Context, opts childOptions) (_ *child, err error) {
	c := &child{done: make(chan struct{}), log: newLogWriter(opts.Output)}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()

	c.dataDir, err = os.MkdirTemp("", "datapusher-bench-")
	if err != nil {
		return nil, fmt.Errorf("create data folder: %w", err)
	}
	env := map[string]string{"DATAPUSHER_DATA_DIR": c.dataDir}
	switch opts.Store {
	case StoreSQLite:
		env["DATABASE_URL"] = filepath.Join(c.dataDir, "datapusher.db")
	case StorePostgres:
		c.schema, err = createSchema(ctx, opts.BaseURL)
		if err != nil {
			return nil, err
		}
		env["DATABASE_URL"] = c.schema.URL
	default:
		return nil, fmt.Errorf("unknown store %q", opts.Store)
	}

	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	c.BaseURL = "http://" + addr
	env["DATAPUSHER_ADDR"] = addr
	env["DATAPUSHER_SHUTDOWN_TIMEOUT"] = childShutdownTimeout.String()
	for k, v := range opts.Env {
		env[k] = v
	}

	c.cmd = exec.Command(opts.Binary, opts.Command)
	c.cmd.Env = childEnv(os.Environ(), env)
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	c.cmd.SysProcAttr = childProcAttr()
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", opts.Binary, err)
	}
	c.PID = c.cmd.Process.Pid
	go func() {
		c.waitErr = c.cmd.Wait()
		close(c.done)
	}()

	if err := c.waitReady(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// waitReady polls the API until it responds, the child exits or
// startTimeout passes.
func (c *child) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	client := newHTTPClient(1)
	defer client.CloseIdleConnections()
	ticker := time.NewTicker(50 * time.Millisecond)
	defer ticker.Stop()
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.BaseURL+"/api/roles/", nil)
		if err != nil {
			return fmt.Errorf("check datapusher: %w", err)
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-c.done:
			return fmt.Errorf("datapusher exited at start: %v; its log ends:\n%s", c.waitErr, c.log.Tail())
		case <-ctx.Done():
			return fmt.Errorf("datapusher did not serve %s within %s: %w; its log ends:\n%s",
				c.BaseURL, startTimeout, ctx.Err(), c.log.Tail())
		case <-ticker.C:
		}
	}
}

// stop sends SIGTERM to the child, kills it when it has not exited after
// stopTimeout, and removes its database. It is safe to call on a child that
// did not start.
func (c *child) stop() {
	if c.cmd != nil && c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-time.After(stopTimeout):
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
	if c.schema != nil {
		c.schema.drop()
	}
	if c.dataDir != "" {
		_ = os.RemoveAll(c.dataDir)
	}
}

// childEnv returns the environment of the child: the harness's own, less
// every Data Pusher setting, plus settings. Dropping the inherited settings
// keeps a DATABASE_URL or DATAPUSHER_WORKERS of the shell out of the run.
func childEnv(inherited []string, settings map[string]string) []string {
	var env []string
	for _, kv := range inherited {
		name, _, _ := strings.Cut(kv, "=")
		if name == "DATABASE_URL" || strings.HasPrefix(name, "DATAPUSHER_") {
			continue
		}
		env = append(env, kv)
	}
	for k, v := range settings {
		env = append(env, k+"="+v)
	}
	return env
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	return addr, nil
}

// pgSchema is a PostgreSQL schema created for one child process.
type pgSchema struct {
	Name string
	URL  string // the server URL with search_path set to the schema
	db   *sql.DB
}

// createSchema creates a schema named bench_<random hex> on the server of
// baseURL.
func createSchema(ctx context.Context, baseURL string) (*pgSchema, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("invalid database URL: %w", err)
	}
	random := make([]byte, 6)
	_, _ = rand.Read(random)
	s := &pgSchema{Name: "bench_" + hex.EncodeToString(random)}
	query := u.Query()
	query.Set("search_path", s.Name)
	u.RawQuery = query.Encode()
	s.URL = u.String()

	s.db, err = sql.Open("pgx", baseURL)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if _, err := s.db.ExecContext(ctx, `CREATE SCHEMA `+s.Name); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("create schema %s: %w", s.Name, err)
	}
	return s, nil
}

// drop drops the schema with everything in it. It runs even after the run
// was interrupted, within its own timeout.
func (s *pgSchema) drop() {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	_, _ = s.db.ExecContext(ctx, `DROP SCHEMA IF EXISTS `+s.Name+` CASCADE`)
	s.db.Close()
}

// logWriter takes the child's log lines: it counts the error and warning
// lines, keeps the last ones for error messages and copies all of them to
// an optional writer.
type logWriter struct {
	mu       sync.Mutex
	copyTo   io.Writer
	partial  []byte
	tail     []string
	errors   int
	warnings int
}

const tailLines = 40

func newLogWriter(copyTo io.Writer) *logWriter { return &logWriter{copyTo: copyTo} }

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.copyTo != nil {
		_, _ = w.copyTo.Write(p)
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.addLine(string(w.partial[:i]))
		w.partial = w.partial[i+1:]
	}
	// A line longer than 64 KiB without a newline is cut.
	if len(w.partial) > 64<<10 {
		w.addLine(string(w.partial))
		w.partial = nil
	}
	return len(p), nil
}

func (w *logWriter) addLine(line string) {
	switch {
	case strings.Contains(line, `"level":"ERROR"`), strings.Contains(line, "level=ERROR"):
		w.errors++
	case strings.Contains(line, `"level":"WARN"`), strings.Contains(line, "level=WARN"):
		w.warnings++
	}
	w.tail = append(w.tail, line)
	if len(w.tail) > tailLines {
		w.tail = w.tail[len(w.tail)-tailLines:]
	}
}

// Counts returns the number of error and warning lines so far.
func (w *logWriter) Counts() (errors, warnings int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.errors, w.warnings
}

// Tail returns the last lines of the log.
func (w *logWriter) Tail() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(w.tail, "\n")
}

// binaryVersion returns the output of "BINARY version", or "" when it
// fails.
func binaryVersion(ctx context.Context, binary string) string {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, binary, "version").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// checkLoopbackURL returns an error unless raw is an http URL on a loopback
// address, because the harness sends traffic to nothing else.
func checkLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %w", raw, err)
	}
	if u.Scheme != "http" {
		return fmt.Errorf("invalid URL %q: want http://127.0.0.1:PORT", raw)
	}
	if !isLoopbackHost(u.Hostname()) {
		return fmt.Errorf("invalid URL %q: the host must be a loopback address such as 127.0.0.1", raw)
	}
	return nil
}

// checkDatabaseURL returns an error unless raw is a postgres:// URL on a
// loopback address or a Unix socket.
func checkDatabaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid database URL: %w", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return fmt.Errorf("invalid database URL: want postgres://USER@127.0.0.1:5432/DATABASE, got scheme %q", u.Scheme)
	}
	host := u.Hostname()
	if socketHost := u.Query().Get("host"); host == "" && strings.HasPrefix(socketHost, "/") {
		return nil
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("invalid database URL: the host must be a loopback address such as 127.0.0.1, got %q", host)
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// cpuSecondsOf returns the CPU time of pid, or 0 when it cannot be read.
func cpuSecondsOf(pid int) float64 {
	stats, err := ReadProcStats(pid)
	if err != nil {
		return 0
	}
	return stats.CPUSeconds
}
