package bench

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

const usage = `Usage: datapusher bench [flags]

Starts the datapusher binary with a fresh database per scenario, sends
events to it from a load generator and receives the deliveries, all on
127.0.0.1. Prints one table row per scenario and store.

Scenarios:
  ingest     the api command only, without delivery workers: events stored per
             second, at the maximum rate or at -ingest-rate
  steady     a fixed offered rate (-steady-rate) to 2 destinations: latency
  max        the maximum rate to 2 destinations: end-to-end throughput
  slow       -slow-destinations destinations that respond after -slow-delay
  isolation  4 healthy destinations beside 1 that never responds before the
             delivery timeout (-isolation-timeout)

The child process gets DATAPUSHER_ALLOWED_DESTINATION_NETWORKS=127.0.0.0/8,
DATAPUSHER_LOG_LEVEL=warn, DATAPUSHER_MAX_RATE_LIMIT_PER_SECOND=1000000,
DATAPUSHER_API_RATE_PER_SECOND=1000000 and the settings below. Data Pusher settings in the harness's own environment
are not passed on; use -env for more.

Flags:
`

// ParseFlags parses the flags of "datapusher bench" into a Config whose
// Stdout and Stderr are still to be set. -h returns flag.ErrHelp.
func ParseFlags(args []string, stderr io.Writer) (*Config, error) {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}

	stores := fs.String("stores", "", "comma-separated stores: sqlite, postgres (default sqlite, and postgres when -database-url is set)")
	scenarios := fs.String("scenarios", strings.Join(AllScenarios, ","), `comma-separated scenarios to run, or "none" for only the latency sweep`)
	sweepRates := fs.String("sweep-rates", joinRates(cfg.SweepRates), "comma-separated offered rates in events per second of the latency sweep")
	quick := fs.Bool("quick", false, "smoke run: 2s of load per scenario and sweep point, at most 20s of drain, unless those flags are set")
	env := envFlag{}

	fs.StringVar(&cfg.Binary, "binary", "", "datapusher binary to start (default this program)")
	fs.StringVar(&cfg.Target, "target", "", "base URL of a running server on 127.0.0.1 to use instead of starting one, such as http://127.0.0.1:8000")
	fs.IntVar(&cfg.PID, "pid", 0, "process id of the -target server, to read its RSS and CPU time")
	fs.StringVar(&cfg.DatabaseURL, "database-url", "", "PostgreSQL server on 127.0.0.1 for the postgres store; each scenario gets a new schema that is dropped after it")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "load phase of each scenario")
	fs.Int64Var(&cfg.Count, "count", 0, "events per scenario at most, sent within -duration; 0 means no limit")
	fs.IntVar(&cfg.Concurrency, "concurrency", cfg.Concurrency, "concurrent requests of the load generator")
	fs.IntVar(&cfg.PayloadSize, "payload-size", cfg.PayloadSize, "approximate size of each event body in bytes")
	fs.DurationVar(&cfg.DrainTimeout, "drain-timeout", cfg.DrainTimeout, "maximum wait for outstanding deliveries after the load phase")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "DATAPUSHER_WORKERS of the server: concurrent deliveries")
	fs.IntVar(&cfg.MaxPerDestination, "max-per-destination", cfg.MaxPerDestination, "DATAPUSHER_MAX_PER_DESTINATION of the server")
	fs.Var(env, "env", "KEY=VALUE setting for the server process; repeat for more")
	fs.Float64Var(&cfg.IngestRate, "ingest-rate", 0, "offered events per second of the ingest scenario; 0 sends as fast as the senders can")
	fs.Float64Var(&cfg.SteadyRate, "steady-rate", cfg.SteadyRate, "offered events per second of the steady scenario")
	fs.Float64Var(&cfg.SlowRate, "slow-rate", cfg.SlowRate, "offered events per second of the slow scenario")
	fs.IntVar(&cfg.SlowDestinations, "slow-destinations", cfg.SlowDestinations, "destinations of the slow scenario")
	fs.DurationVar(&cfg.SlowDelay, "slow-delay", cfg.SlowDelay, "response delay of the destinations of the slow scenario")
	fs.Float64Var(&cfg.IsolationRate, "isolation-rate", cfg.IsolationRate, "offered events per second of the isolation scenario")
	fs.DurationVar(&cfg.IsolationTimeout, "isolation-timeout", cfg.IsolationTimeout, "DATAPUSHER_DELIVERY_TIMEOUT of the isolation scenario")
	fs.DurationVar(&cfg.ReceiverDelay, "receiver-delay", 0, "response delay of the destinations of the steady, max and isolation scenarios")
	fs.BoolVar(&cfg.Ceilings, "ceilings", cfg.Ceilings, "measure the receiver and a bare 202 handler with the same load first")
	fs.StringVar(&cfg.JSONFile, "json", "", "write all results as JSON to this file")
	fs.StringVar(&cfg.PlotFile, "plot", "", "run the latency sweep and draw p50 and p99 against offered load into this PNG file")
	fs.DurationVar(&cfg.SweepDuration, "sweep-duration", cfg.SweepDuration, "load phase of each latency sweep point")
	fs.BoolVar(&cfg.Verbose, "v", false, "copy the server's log to stderr")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}

	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *quick {
		explicit := *cfg
		cfg.SetQuick()
		if set["duration"] {
			cfg.Duration = explicit.Duration
		}
		if set["sweep-duration"] {
			cfg.SweepDuration = explicit.SweepDuration
		}
		if set["drain-timeout"] {
			cfg.DrainTimeout = explicit.DrainTimeout
		}
	}

	cfg.Env = env
	cfg.Scenarios = splitList(*scenarios)
	if len(cfg.Scenarios) == 1 && cfg.Scenarios[0] == "none" {
		cfg.Scenarios = nil
	}
	switch {
	case *stores != "":
		cfg.Stores = splitList(*stores)
	case cfg.Target != "":
		cfg.Stores = []string{StoreTarget}
	case cfg.DatabaseURL != "":
		cfg.Stores = []string{StoreSQLite, StorePostgres}
	}
	var err error
	if cfg.SweepRates, err = parseRates(*sweepRates); err != nil {
		return nil, err
	}
	return cfg, nil
}

// envFlag collects repeated KEY=VALUE flags.
type envFlag map[string]string

func (e envFlag) String() string { return "" }

func (e envFlag) Set(s string) error {
	key, value, ok := strings.Cut(s, "=")
	if !ok || key == "" {
		return fmt.Errorf("invalid setting %q: want KEY=VALUE", s)
	}
	e[key] = value
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, field := range strings.Split(s, ",") {
		if field = strings.TrimSpace(field); field != "" {
			out = append(out, field)
		}
	}
	return out
}

func parseRates(s string) ([]float64, error) {
	var rates []float64
	for _, field := range splitList(s) {
		rate, err := strconv.ParseFloat(field, 64)
		if err != nil || rate <= 0 {
			return nil, fmt.Errorf("invalid -sweep-rates entry %q: want a positive number of events per second", field)
		}
		rates = append(rates, rate)
	}
	return rates, nil
}

func joinRates(rates []float64) string {
	var parts []string
	for _, rate := range rates {
		parts = append(parts, strconv.FormatFloat(rate, 'g', -1, 64))
	}
	return strings.Join(parts, ",")
}
