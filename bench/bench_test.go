package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// binaryDir holds the datapusher binary that datapusherBinary builds.
var binaryDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "datapusher-bench-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "create temp dir:", err)
		os.Exit(1)
	}
	binaryDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildErr  error
)

// datapusherBinary builds the datapusher command once, without the race
// detector, since it is the server under measurement.
func datapusherBinary(tb testing.TB) string {
	tb.Helper()
	path := filepath.Join(binaryDir, "datapusher")
	buildOnce.Do(func() {
		build := exec.Command("go", "build", "-o", path, "github.com/datapusher/datapusher/cmd/datapusher")
		out, err := build.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build datapusher: %w\n%s", err, out)
		}
	})
	require.NoError(tb, buildErr)
	return path
}

// TestQuickBench runs the harness in quick mode against the real binary on
// SQLite, for the ingest and steady scenarios, and checks that events were
// accepted and delivered. It asserts no timings.
func TestQuickBench(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the datapusher binary and sends load for several seconds")
	}
	cfg := DefaultConfig()
	cfg.SetQuick()
	cfg.Binary = datapusherBinary(t)
	cfg.Scenarios = []string{ScenarioIngest, ScenarioSteady}
	cfg.Concurrency = 8
	cfg.SteadyRate = 200
	cfg.JSONFile = filepath.Join(t.TempDir(), "bench.json")
	var stdout, stderr bytes.Buffer
	cfg.Stdout, cfg.Stderr = &stdout, &stderr

	report, err := Run(context.Background(), cfg)
	require.NoError(t, err, "progress:\n%s", stderr.String())
	t.Logf("table:\n%s", stdout.String())

	require.NotNil(t, report.Ceilings)
	require.Positive(t, report.Ceilings.ReceiverPerSecond)
	require.Positive(t, report.Ceilings.BarePerSecond)
	require.Len(t, report.Results, 2)
	ingest, steady := report.Results[0], report.Results[1]
	require.Equal(t, ScenarioIngest, ingest.Scenario)
	require.Positive(t, ingest.EventsAccepted)
	require.Equal(t, int64(0), ingest.DeliveredTotal, "the api command runs no delivery workers")
	require.Equal(t, ScenarioSteady, steady.Scenario)
	require.Positive(t, steady.EventsAccepted)
	require.Positive(t, steady.DeliveredTotal)
	require.Positive(t, steady.EndToEnd.Count)
	require.Positive(t, steady.PeakRSSBytes)

	// The table rows carry the same counts: accepted/s is the fourth
	// column and delivered/s the fifth.
	rows := tableRows(stdout.String())
	require.Contains(t, rows, ScenarioIngest)
	require.Contains(t, rows, ScenarioSteady)
	require.Positive(t, parseColumn(t, rows[ScenarioIngest], 3))
	require.Equal(t, "-", rows[ScenarioIngest][4])
	require.Positive(t, parseColumn(t, rows[ScenarioSteady], 3))
	require.Positive(t, parseColumn(t, rows[ScenarioSteady], 4))

	data, err := os.ReadFile(cfg.JSONFile)
	require.NoError(t, err)
	var decoded Report
	require.NoError(t, json.Unmarshal(data, &decoded))
	require.Len(t, decoded.Results, 2)
	require.Equal(t, steady.EventsAccepted, decoded.Results[1].EventsAccepted)
}

// tableRows returns the fields of each sqlite row of the result table by
// scenario name.
func tableRows(table string) map[string][]string {
	rows := map[string][]string{}
	for _, line := range strings.Split(table, "\n") {
		fields := strings.Fields(line)
		if len(fields) > 4 && fields[1] == StoreSQLite {
			rows[fields[0]] = fields
		}
	}
	return rows
}

func parseColumn(t *testing.T, fields []string, i int) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(fields[i], 64)
	require.NoError(t, err, "column %d of %v", i, fields)
	return v
}

// BenchmarkIngestHTTP measures POST /server/incoming_data of the api
// command on SQLite, with two destinations per event, from parallel
// clients. Each operation is one accepted event.
func BenchmarkIngestHTTP(b *testing.B) {
	ctx := context.Background()
	c, err := startChild(ctx, childOptions{
		Binary: datapusherBinary(b), Command: "api", Store: StoreSQLite,
		Env: DefaultConfig().childEnvSettings(scenario{}),
	})
	require.NoError(b, err)
	b.Cleanup(c.stop)

	// The api command delivers nothing, but the destinations still point
	// at a receiver of this process.
	clock := newClock()
	receiver, err := StartReceiver(clock, 0)
	require.NoError(b, err)
	b.Cleanup(receiver.Close)
	client := newHTTPClient(64)
	b.Cleanup(client.CloseIdleConnections)
	account, err := setupAccount(ctx, &apiClient{baseURL: c.BaseURL, http: client},
		destinationURLs(receiver.URL, scenario{Destinations: 2}))
	require.NoError(b, err)

	spec := loadSpec{URL: c.BaseURL + "/server/incoming_data", Token: account.Token, PayloadSize: 200}
	pad := strings.Repeat("x", 150)
	stats := &loadStats{}
	var seq atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			sendEvent(ctx, client, clock, spec, seq.Add(1), pad, stats)
		}
	})
	b.ReportMetric(float64(stats.accepted.Load())/time.Since(start).Seconds(), "events/s")
	require.Empty(b, stats.Errors())
}
