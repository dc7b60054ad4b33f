package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

const postgresBin = "/usr/lib/postgresql/15/bin"

// privatePostgres is a PostgreSQL server that one test owns, so it can stop
// and start it without disturbing the shared server other tests use.
type privatePostgres struct {
	t    *testing.T
	dir  string
	port string
}

// startPrivatePostgres creates and starts a PostgreSQL cluster in a
// temporary folder, run as the postgres system user.
func startPrivatePostgres(t *testing.T) *privatePostgres {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a private PostgreSQL server as the postgres user")
	}
	if _, err := os.Stat(filepath.Join(postgresBin, "initdb")); err != nil {
		t.Skipf("PostgreSQL server binaries not found in %s", postgresBin)
	}
	dir, err := os.MkdirTemp("", "datapusher-pg-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, exec.Command("chown", "postgres:postgres", dir).Run())

	_, port, _ := strings.Cut(freeAddr(t), ":")
	pg := &privatePostgres{t: t, dir: dir, port: port}
	pg.run("initdb", "-D", filepath.Join(dir, "data"), "-A", "trust", "-U", "postgres", "--no-sync")
	pg.start()
	t.Cleanup(func() { _ = pg.command("pg_ctl", "-D", filepath.Join(dir, "data"), "stop", "-m", "immediate").Run() })
	return pg
}

func (pg *privatePostgres) command(name string, args ...string) *exec.Cmd {
	return exec.Command("runuser", append([]string{"-u", "postgres", "--", filepath.Join(postgresBin, name)}, args...)...)
}

func (pg *privatePostgres) run(name string, args ...string) {
	pg.t.Helper()
	out, err := pg.command(name, args...).CombinedOutput()
	require.NoError(pg.t, err, "%s: %s", name, out)
}

func (pg *privatePostgres) start() {
	pg.t.Helper()
	options := fmt.Sprintf("-p %s -k %s -c listen_addresses=127.0.0.1 -c fsync=off", pg.port, pg.dir)
	pg.run("pg_ctl", "-D", filepath.Join(pg.dir, "data"), "-o", options, "-l", filepath.Join(pg.dir, "log"), "-w", "start")
}

func (pg *privatePostgres) stop() {
	pg.t.Helper()
	pg.run("pg_ctl", "-D", filepath.Join(pg.dir, "data"), "-m", "fast", "-w", "stop")
}

func (pg *privatePostgres) url() string {
	return "postgres://postgres@127.0.0.1:" + pg.port + "/postgres?sslmode=disable"
}

// TestDatabaseOutage stops PostgreSQL under a running server: incoming data
// gets 503 and never 202 while the database is down, and the server serves
// and delivers again by itself once the database is back.
func TestDatabaseOutage(t *testing.T) {
	t.Parallel()
	pg := startPrivatePostgres(t)
	p := startProcess(t, map[string]string{
		"DATAPUSHER_DATA_DIR":                     t.TempDir(),
		"DATAPUSHER_ALLOWED_DESTINATION_NETWORKS": "127.0.0.0/8",
		"DATABASE_URL":                            pg.url(),
		"DATAPUSHER_RATE_LIMIT_PER_SECOND":        "1000",
	})
	rec := newRecorder(t, http.StatusOK)
	access := p.signIn("outage@example.com")
	account := p.createAccount(access, "Outage")
	p.createDestination(access, account.AccountID, "POST", rec.URL)

	send := func(eventID string) (int, map[string]any) {
		var body map[string]any
		status := p.call("POST", "/server/incoming_data", "", map[string]string{
			"CL-X-TOKEN": account.AppSecretToken, "CL-X-EVENT-ID": eventID,
		}, map[string]string{"phase": eventID}, &body)
		return status, body
	}
	status, _ := send("before")
	require.Equal(t, http.StatusAccepted, status)

	pg.stop()
	for i := range 5 {
		status, body := send(fmt.Sprintf("during-%d", i))
		require.Equal(t, http.StatusServiceUnavailable, status)
		require.Equal(t, false, body["success"])
		require.Equal(t, "Service Unavailable", body["message"])
	}
	var detail map[string]any
	require.Equal(t, http.StatusServiceUnavailable, p.call("GET", "/api/accounts/", access, nil, nil, &detail))

	pg.start()
	require.Eventually(t, func() bool {
		status, _ := send("after")
		return status == http.StatusAccepted
	}, time.Minute, 200*time.Millisecond)
	require.Eventually(t, func() bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		seen := map[string]bool{}
		for _, r := range rec.requests {
			seen[r.Header.Get("CL-X-EVENT-ID")] = true
		}
		return seen["before"] && seen["after"]
	}, time.Minute, 100*time.Millisecond)

	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, r := range rec.requests {
		require.False(t, strings.HasPrefix(r.Header.Get("CL-X-EVENT-ID"), "during-"),
			"an event answered 503 was not stored")
	}
}
