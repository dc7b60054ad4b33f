package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher/internal/testdb"
)

// TestTwoNodes runs two API processes on one PostgreSQL database and one
// Redis server: they enforce one shared rate limit per account, and a token
// rotated through one node stops working on the other.
func TestTwoNodes(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"DATAPUSHER_DATA_DIR":                     t.TempDir(),
		"DATAPUSHER_ALLOWED_DESTINATION_NETWORKS": "127.0.0.0/8",
		"DATABASE_URL":                            testdb.DSN(t, "postgres"),
		"REDIS_URL":                               "redis://127.0.0.1:6379/0",
		"DATAPUSHER_SECRET_KEY":                   "two-nodes-share-this-signing-key-0123456789",
	}
	nodeA := startCommand(t, "api", env)
	nodeB := startCommand(t, "api", env)

	access := nodeA.signIn("nodes@example.com")
	account := nodeA.createAccount(access, "Two Nodes")
	var patched map[string]any
	status := nodeA.call("PATCH", "/api/accounts/"+account.AccountID+"/", access, nil,
		map[string]int{"rate_limit_per_second": 5}, &patched)
	require.Equal(t, http.StatusOK, status)

	// Twenty events at once, alternating between the nodes. Each node alone
	// would accept 5 at once, so 10 in all. With a shared limit the two
	// accept 5, plus what the limit regains (5 per second) while the
	// requests are sent.
	send := func(node *process) int {
		return node.call("POST", "/server/incoming_data", "", map[string]string{
			"CL-X-TOKEN": account.AppSecretToken,
		}, map[string]string{"hello": "nodes"}, nil)
	}
	statuses := make([]int, 20)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := nodeA
			if i%2 == 1 {
				node = nodeB
			}
			statuses[i] = send(node)
		}()
	}
	wg.Wait()
	regained := int(time.Since(start).Seconds()*5) + 1
	accepted := 0
	for _, status := range statuses {
		require.Contains(t, []int{http.StatusAccepted, http.StatusTooManyRequests}, status)
		if status == http.StatusAccepted {
			accepted++
		}
	}
	if 5+regained >= 10 {
		t.Skipf("the requests took too long to tell a shared limit from two separate ones (statuses %v)", statuses)
	}
	require.GreaterOrEqual(t, accepted, 5, "statuses %v", statuses)
	require.LessOrEqual(t, accepted, 5+regained, "statuses %v", statuses)

	// Node B caches the account on its next accepted event; a rotation
	// through node A then reaches node B through Redis.
	require.Eventually(t, func() bool { return send(nodeB) == http.StatusAccepted }, 10*time.Second, 400*time.Millisecond)
	var rotated accountBody
	status = nodeA.call("POST", "/api/accounts/"+account.AccountID+"/rotate-token/", access, nil, map[string]any{}, &rotated)
	require.Equal(t, http.StatusOK, status)
	require.NotEqual(t, account.AppSecretToken, rotated.AppSecretToken)
	require.Eventually(t, func() bool { return send(nodeB) == http.StatusUnauthorized }, 10*time.Second, 400*time.Millisecond)
}

// TestWorkerServesHealthAndMetrics runs an API process beside a worker
// process and checks that the worker, which delivers, can be probed and
// scraped on its own address.
func TestWorkerServesHealthAndMetrics(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"DATAPUSHER_DATA_DIR":                     t.TempDir(),
		"DATAPUSHER_ALLOWED_DESTINATION_NETWORKS": "127.0.0.0/8",
		"DATABASE_URL":                            testdb.DSN(t, "postgres"),
		"DATAPUSHER_SECRET_KEY":                   "api-and-worker-share-this-key-0123456789",
	}
	api := startCommand(t, "api", env)
	worker := startCommand(t, "worker", env)

	receiver := newRecorder(t, http.StatusOK)
	access := api.signIn("worker-metrics@example.com")
	account := api.createAccount(access, "Worker Metrics")
	api.createDestination(access, account.AccountID, "POST", receiver.URL+"/hook")
	status := api.call("POST", "/server/incoming_data", "", map[string]string{
		"CL-X-TOKEN": account.AppSecretToken, "CL-X-EVENT-ID": "scraped-1",
	}, map[string]string{"hello": "worker"}, nil)
	require.Equal(t, http.StatusAccepted, status)
	require.Eventually(t, func() bool { return receiver.count() == 1 }, 20*time.Second, 50*time.Millisecond)

	var ready struct {
		Status string `json:"status"`
	}
	require.Equal(t, http.StatusOK, worker.call("GET", "/readyz", "", nil, nil, &ready))
	require.Equal(t, "ok", ready.Status)

	scrape := func(p *process) string {
		resp, err := http.Get(p.baseURL + "/metrics")
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return string(body)
	}
	// The attempt is counted after the request returns, a moment after the
	// receiver saw it.
	require.Eventually(t, func() bool {
		return strings.Contains(scrape(worker), "datapusher_deliveries_total{")
	}, 10*time.Second, 50*time.Millisecond)
	require.Contains(t, scrape(worker), "datapusher_queue_depth")
	require.NotContains(t, scrape(api), "datapusher_deliveries_total{")

	// The worker does not serve the API.
	require.Equal(t, http.StatusNotFound, worker.call("POST", "/server/incoming_data", "", nil, nil, nil))
}

// runFailing runs a datapusher command with env added to this process's
// environment, requires it to exit with an error within a minute, and
// returns its output.
func runFailing(t *testing.T, command string, env ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binaryPath, command)
	cmd.Env = append(append(os.Environ(), "DATAPUSHER_LOG_FORMAT=json", "DATAPUSHER_DATA_DIR="+t.TempDir()), env...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "output: %s", out)
	return string(out)
}

func TestServeStopsOnShortSecretKey(t *testing.T) {
	t.Parallel()
	out := runFailing(t, "serve", "DATAPUSHER_ADDR=127.0.0.1:0", "DATAPUSHER_SECRET_KEY=too-short", "DATABASE_URL=")
	require.Contains(t, out, "DATAPUSHER_SECRET_KEY must have at least 32 characters")
	require.NotContains(t, out, "delivery workers started", "started delivering without a usable key")
}

func TestWorkerStopsWhenAddressTaken(t *testing.T) {
	t.Parallel()
	occupied, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { occupied.Close() })

	out := runFailing(t, "worker", "DATAPUSHER_ADDR="+occupied.Addr().String(), "DATABASE_URL="+testdb.DSN(t, "postgres"))
	require.Contains(t, out, "address already in use")
	require.NotContains(t, out, "delivery workers started", "started delivering without its address")
}
