package bench

import (
	"bytes"
	"errors"
	"flag"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseFlagsDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := ParseFlags(nil, io.Discard)
	require.NoError(t, err)
	require.Equal(t, []string{StoreSQLite}, cfg.Stores)
	require.Equal(t, AllScenarios, cfg.Scenarios)
	require.Equal(t, 10*time.Second, cfg.Duration)
	require.Equal(t, 32, cfg.Concurrency)
	require.Equal(t, 200, cfg.PayloadSize)
	require.Equal(t, []float64{250, 500, 1000, 2000, 4000}, cfg.SweepRates)
}

func TestParseFlagsQuick(t *testing.T) {
	t.Parallel()
	cfg, err := ParseFlags([]string{"-quick", "-drain-timeout", "5s"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, 2*time.Second, cfg.Duration)
	require.Equal(t, 2*time.Second, cfg.SweepDuration)
	require.Equal(t, 5*time.Second, cfg.DrainTimeout, "an explicit flag wins over -quick")
}

func TestParseFlagsPostgresStore(t *testing.T) {
	t.Parallel()
	cfg, err := ParseFlags([]string{"-database-url", "postgres://postgres@127.0.0.1:5432/test"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, []string{StoreSQLite, StorePostgres}, cfg.Stores)
}

func TestParseFlagsTargetStore(t *testing.T) {
	t.Parallel()
	cfg, err := ParseFlags([]string{"-target", "http://127.0.0.1:8000", "-pid", "42"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, []string{StoreTarget}, cfg.Stores)
	require.NoError(t, cfg.Validate())
}

func TestParseFlagsLists(t *testing.T) {
	t.Parallel()
	cfg, err := ParseFlags([]string{
		"-scenarios", "steady, max", "-sweep-rates", "100,2.5", "-env", "A=1", "-env", "B=x=y",
	}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, []string{ScenarioSteady, ScenarioMax}, cfg.Scenarios)
	require.Equal(t, []float64{100, 2.5}, cfg.SweepRates)
	require.Equal(t, map[string]string{"A": "1", "B": "x=y"}, cfg.Env)
}

func TestParseFlagsNoScenarios(t *testing.T) {
	t.Parallel()
	cfg, err := ParseFlags([]string{"-scenarios", "none", "-plot", "x.png"}, io.Discard)
	require.NoError(t, err)
	require.Empty(t, cfg.Scenarios)
}

func TestParseFlagsErrors(t *testing.T) {
	t.Parallel()
	for name, args := range map[string][]string{
		"BadRate":     {"-sweep-rates", "100,fast"},
		"BadEnv":      {"-env", "NOVALUE"},
		"ExtraArg":    {"steady"},
		"UnknownFlag": {"-speed", "1"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := ParseFlags(args, io.Discard)
			require.Error(t, err)
		})
	}
}

func TestParseFlagsHelp(t *testing.T) {
	t.Parallel()
	var stderr bytes.Buffer
	_, err := ParseFlags([]string{"-h"}, &stderr)
	require.ErrorIs(t, err, flag.ErrHelp)
	require.Contains(t, stderr.String(), "isolation")
	require.Contains(t, stderr.String(), "-concurrency")
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	valid := func() *Config {
		cfg := DefaultConfig()
		cfg.Binary = "/usr/local/bin/datapusher"
		return cfg
	}
	require.NoError(t, valid().Validate())

	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"UnknownScenario", func(c *Config) { c.Scenarios = []string{"fast"} }, `unknown scenario "fast"`},
		{"UnknownStore", func(c *Config) { c.Stores = []string{"mysql"} }, `unknown store "mysql"`},
		{"PostgresWithoutURL", func(c *Config) { c.Stores = []string{StorePostgres} }, "needs -database-url"},
		{"RemoteDatabase", func(c *Config) {
			c.Stores, c.DatabaseURL = []string{StorePostgres}, "postgres://db.example.com/test"
		}, "loopback"},
		{"RemoteTarget", func(c *Config) {
			c.Target, c.Stores = "http://10.0.0.5:8000", []string{StoreTarget}
		}, "loopback"},
		{"HTTPSTarget", func(c *Config) {
			c.Target, c.Stores = "https://127.0.0.1:8000", []string{StoreTarget}
		}, "want http://127.0.0.1:PORT"},
		{"NoBinary", func(c *Config) { c.Binary = "" }, "missing -binary"},
		{"PIDWithoutTarget", func(c *Config) { c.PID = 42 }, "-pid applies only with -target"},
		{"ZeroConcurrency", func(c *Config) { c.Concurrency = 0 }, "invalid -concurrency 0"},
		{"ZeroDuration", func(c *Config) { c.Duration = 0 }, "invalid -duration"},
		{"HugePayload", func(c *Config) { c.PayloadSize = 2 << 20 }, "invalid -payload-size"},
		{"NegativeIngestRate", func(c *Config) { c.IngestRate = -1 }, "invalid -ingest-rate -1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid()
			tc.change(cfg)
			require.ErrorContains(t, cfg.Validate(), tc.want)
		})
	}
}

func TestConfigScenarios(t *testing.T) {
	t.Parallel()
	cfg := DefaultConfig()

	ingest := cfg.scenario(ScenarioIngest)
	require.Equal(t, "api", ingest.Command)
	require.False(t, ingest.delivers())
	require.Zero(t, ingest.Rate, "ingest runs at the maximum rate by default")
	cfg.IngestRate = 1000
	require.Equal(t, 1000.0, cfg.scenario(ScenarioIngest).Rate)

	slow := cfg.scenario(ScenarioSlow)
	require.Equal(t, 500, slow.Destinations)
	require.Equal(t, 200*time.Millisecond, slow.ReceiverDelay)
	require.Equal(t, 5.0, slow.Rate)

	isolation := cfg.scenario(ScenarioIsolation)
	require.Equal(t, 4, isolation.Destinations)
	require.Equal(t, 1, isolation.HangDestinations)
	env := cfg.childEnvSettings(isolation)
	require.Equal(t, "2s", env["DATAPUSHER_DELIVERY_TIMEOUT"])
	require.Equal(t, "127.0.0.0/8", env["DATAPUSHER_ALLOWED_DESTINATION_NETWORKS"])
	require.Equal(t, "500", env["DATAPUSHER_WORKERS"])

	urls := destinationURLs("http://127.0.0.1:9", isolation)
	require.Equal(t, []string{
		"http://127.0.0.1:9/hook/0", "http://127.0.0.1:9/hook/1", "http://127.0.0.1:9/hook/2",
		"http://127.0.0.1:9/hook/3", "http://127.0.0.1:9/hang/0",
	}, urls)
}

func TestChildEnvDropsInheritedSettings(t *testing.T) {
	t.Parallel()
	env := childEnv([]string{"PATH=/bin", "DATABASE_URL=postgres://elsewhere", "DATAPUSHER_WORKERS=3", "HOME=/root"},
		map[string]string{"DATAPUSHER_WORKERS": "100"})
	slices.Sort(env)
	require.Equal(t, []string{"DATAPUSHER_WORKERS=100", "HOME=/root", "PATH=/bin"}, env)
}

func TestServerMaxRateLimit(t *testing.T) {
	t.Parallel()
	limit, ok := serverMaxRateLimit(&apiError{Status: http.StatusBadRequest,
		Body: `{"rate_limit_per_second":["Enter a whole number from 1 to 1000."]}`})
	require.True(t, ok)
	require.Equal(t, 1000, limit)

	_, ok = serverMaxRateLimit(&apiError{Status: http.StatusForbidden, Body: `from 1 to 1000`})
	require.False(t, ok)
	_, ok = serverMaxRateLimit(errors.New("connection refused"))
	require.False(t, ok)
}

func TestLogWriterCountsLevels(t *testing.T) {
	t.Parallel()
	w := newLogWriter(nil)
	_, _ = w.Write([]byte(`{"level":"WARN","msg":"slow"}` + "\n" + `{"level":"ERROR","msg":"deliver`))
	_, _ = w.Write([]byte(`y"}` + "\n" + `{"level":"ERROR","msg":"x"}` + "\n"))
	errorLines, warnLines := w.Counts()
	require.Equal(t, 2, errorLines)
	require.Equal(t, 1, warnLines)
	require.Contains(t, w.Tail(), `"msg":"delivery"`)
}

func sampleReport() *Report {
	return &Report{
		Machine:  Machine{CPUs: 2, CPUModel: "Test CPU", MemoryBytes: 8 << 30, GoVersion: "go1.26", OS: "linux", Arch: "amd64"},
		Ceilings: &Ceilings{ReceiverPerSecond: 20000, BarePerSecond: 10000},
		Results: []ScenarioResult{
			{Scenario: ScenarioIngest, Store: StoreSQLite, Command: "api", AcceptedPerSecond: 812, EventsAccepted: 8120,
				AccountRateLimit: 1000},
			{Scenario: ScenarioIsolation, Store: StoreSQLite, Command: "serve", OfferedRate: 200, AcceptedPerSecond: 199,
				DeliveredPerSecond: 790, Destinations: 4, HangingDestinations: 1, HangAttempts: 20, DrainComplete: true,
				EndToEnd: LatencySummary{P50Ms: 12.5, P99Ms: 180}, Errors: map[string]int64{"http 429": 3}},
			{Scenario: ScenarioMax, Store: StorePostgres, Command: "serve", Error: "start: no such file\nlog tail"},
		},
	}
}

func TestPrintTable(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	printTable(&out, sampleReport())
	text := out.String()
	require.Contains(t, text, "machine: 2 CPUs, Test CPU, 8.0 GiB memory")
	require.Contains(t, text, "ceilings: receiver 20000 req/s")
	require.Regexp(t, `ingest\s+sqlite\s+max\s+812\s+-`, text)
	require.Regexp(t, `isolation\s+sqlite\s+200\s+199\s+790`, text)
	require.Contains(t, text, "http 429:3")
	require.Contains(t, text, "8%", "accepted/s of ingest against the bare ceiling")
	require.Contains(t, text, "note: sqlite/isolation at 200/s: the e2e latency is of the 4 healthy destinations only")
	require.Contains(t, text, "note: postgres/max failed: start: no such file\n")
	require.Contains(t, text, "capped the account rate_limit_per_second at 1000")
	require.NotContains(t, text, "log tail")
}

func TestWriteJSON(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "bench.json")
	require.NoError(t, writeJSON(path, sampleReport()))
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Contains(t, string(data), `"accepted_per_second": 812`)
	require.Contains(t, string(data), `"hanging_destinations": 1`)
}

func TestWritePlot(t *testing.T) {
	t.Parallel()
	var sweep []ScenarioResult
	for _, store := range []string{StoreSQLite, StorePostgres} {
		for i, rate := range []float64{250, 500, 1000, 2000} {
			sweep = append(sweep, ScenarioResult{Scenario: ScenarioSteady, Store: store, OfferedRate: rate,
				EndToEnd: LatencySummary{Count: 100, P50Ms: float64(5 * (i + 1)), P99Ms: float64(40 * (i + 1))}})
		}
	}
	sweep = append(sweep, ScenarioResult{Scenario: ScenarioSteady, Store: StoreSQLite, OfferedRate: 4000, Error: "failed"})

	path := filepath.Join(t.TempDir(), "latency.png")
	require.NoError(t, writePlot(path, sweep))
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	require.Greater(t, img.Bounds().Dx(), 500)
}

func TestWritePlotNoPoints(t *testing.T) {
	t.Parallel()
	err := writePlot(filepath.Join(t.TempDir(), "latency.png"),
		[]ScenarioResult{{Store: StoreSQLite, OfferedRate: 250, Error: "failed"}})
	require.ErrorContains(t, err, "no sweep point")
}

func TestFormatMs(t *testing.T) {
	t.Parallel()
	for ms, want := range map[float64]string{0: "0", 0.123: "0.12", 12.34: "12.3", 1234.4: "1234"} {
		require.Equal(t, want, formatMs(ms), "%g ms", ms)
	}
	require.True(t, strings.HasPrefix(formatRatio(50, 200), "25"))
	require.Equal(t, "-", formatRatio(50, 0))
}
