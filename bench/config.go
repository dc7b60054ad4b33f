package bench

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
)

// Stores that a scenario runs on. StoreTarget labels the results of a run
// against an already running server, whose store the harness does not know.
const (
	StoreSQLite   = "sqlite"
	StorePostgres = "postgres"
	StoreTarget   = "target"
)

// Scenario names.
const (
	ScenarioIngest    = "ingest"
	ScenarioSteady    = "steady"
	ScenarioMax       = "max"
	ScenarioSlow      = "slow"
	ScenarioIsolation = "isolation"
)

// AllScenarios lists every scenario in the order they run.
var AllScenarios = []string{ScenarioIngest, ScenarioSteady, ScenarioMax, ScenarioSlow, ScenarioIsolation}

// Config is the settings of one benchmark run.
type Config struct {
	Binary      string // datapusher binary that the harness starts
	Target      string // base URL of a running server to use instead of starting Binary
	PID         int    // process id of Target, for its RSS and CPU time; 0 for none
	DatabaseURL string // PostgreSQL server for StorePostgres
	Stores      []string
	Scenarios   []string

	Duration     time.Duration // load phase of each scenario
	Count        int64         // events per scenario at most; 0 means no limit
	Concurrency  int           // senders of the load generator
	PayloadSize  int           // approximate bytes per event body
	DrainTimeout time.Duration // maximum wait for the deliveries after the load phase

	Workers           int               // DATAPUSHER_WORKERS of the child
	MaxPerDestination int               // DATAPUSHER_MAX_PER_DESTINATION of the child
	Env               map[string]string // further settings of the child

	IngestRate       float64       // offered events per second of the ingest scenario; 0 is the maximum
	SteadyRate       float64       // offered events per second of the steady scenario
	SlowRate         float64       // offered events per second of the slow scenario
	SlowDestinations int           // destinations of the slow scenario
	SlowDelay        time.Duration // response delay of the slow scenario's receiver
	IsolationRate    float64       // offered events per second of the isolation scenario
	IsolationTimeout time.Duration // DATAPUSHER_DELIVERY_TIMEOUT of the isolation scenario
	ReceiverDelay    time.Duration // response delay of the receiver in the other scenarios

	Ceilings      bool      // measure the receiver and bare-handler ceilings
	JSONFile      string    // write the report as JSON here
	PlotFile      string    // run the latency sweep and draw it as PNG here
	SweepRates    []float64 // offered rates of the latency sweep
	SweepDuration time.Duration

	Verbose bool      // copy the child's log to Stderr
	Stdout  io.Writer // result table
	Stderr  io.Writer // progress lines
}

// DefaultConfig returns the settings of a run of about a minute per store.
func DefaultConfig() *Config {
	return &Config{
		Stores:            []string{StoreSQLite},
		Scenarios:         slices.Clone(AllScenarios),
		Duration:          10 * time.Second,
		Concurrency:       32,
		PayloadSize:       200,
		DrainTimeout:      60 * time.Second,
		Workers:           500,
		MaxPerDestination: 50,
		SteadyRate:        1000,
		SlowRate:          5,
		SlowDestinations:  500,
		SlowDelay:         200 * time.Millisecond,
		IsolationRate:     200,
		IsolationTimeout:  2 * time.Second,
		Ceilings:          true,
		SweepRates:        []float64{250, 500, 1000, 2000, 4000},
		SweepDuration:     5 * time.Second,
		Stdout:            io.Discard,
		Stderr:            io.Discard,
	}
}

// SetQuick shortens the phases for a smoke run: 2 seconds of load per
// scenario and sweep point, and at most 20 seconds of drain.
func (c *Config) SetQuick() {
	c.Duration = 2 * time.Second
	c.SweepDuration = 2 * time.Second
	c.DrainTimeout = 20 * time.Second
}

// Validate returns an error for settings that cannot run.
func (c *Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(c.Duration > 0, "invalid -duration %s: want a positive duration", c.Duration)
	check(c.Count >= 0, "invalid -count %d: want 0 or more", c.Count)
	check(c.Concurrency >= 1, "invalid -concurrency %d: want 1 or more", c.Concurrency)
	check(c.PayloadSize >= 0 && c.PayloadSize <= 1<<20,
		"invalid -payload-size %d: want 0 to 1048576 bytes", c.PayloadSize)
	check(c.DrainTimeout >= 0, "invalid -drain-timeout %s: want 0 or more", c.DrainTimeout)
	check(c.Workers >= 1, "invalid -workers %d: want 1 or more", c.Workers)
	check(c.MaxPerDestination >= 1, "invalid -max-per-destination %d: want 1 or more", c.MaxPerDestination)
	check(c.IngestRate >= 0, "invalid -ingest-rate %g: want 0 (the maximum) or a positive rate", c.IngestRate)
	check(c.SteadyRate > 0, "invalid -steady-rate %g: want a positive rate", c.SteadyRate)
	check(c.SlowRate > 0, "invalid -slow-rate %g: want a positive rate", c.SlowRate)
	check(c.SlowDestinations >= 1, "invalid -slow-destinations %d: want 1 or more", c.SlowDestinations)
	check(c.SlowDelay >= 0, "invalid -slow-delay %s: want 0 or more", c.SlowDelay)
	check(c.IsolationRate > 0, "invalid -isolation-rate %g: want a positive rate", c.IsolationRate)
	check(c.IsolationTimeout > 0, "invalid -isolation-timeout %s: want a positive duration", c.IsolationTimeout)
	check(c.ReceiverDelay >= 0, "invalid -receiver-delay %s: want 0 or more", c.ReceiverDelay)
	check(c.SweepDuration > 0, "invalid -sweep-duration %s: want a positive duration", c.SweepDuration)
	for _, rate := range c.SweepRates {
		check(rate > 0, "invalid -sweep-rates entry %g: want a positive rate", rate)
	}
	check(c.PlotFile == "" || len(c.SweepRates) > 0, "-plot needs at least one -sweep-rates entry")

	for _, name := range c.Scenarios {
		check(slices.Contains(AllScenarios, name), "unknown scenario %q: want one of %v", name, AllScenarios)
	}
	if c.Target != "" {
		if err := checkLoopbackURL(c.Target); err != nil {
			errs = append(errs, fmt.Errorf("invalid -target: %w", err))
		}
		check(slices.Equal(c.Stores, []string{StoreTarget}), "-stores does not apply to -target")
	} else {
		check(c.Binary != "", "missing -binary: the datapusher binary to start")
		check(c.PID == 0, "-pid applies only with -target")
		for _, store := range c.Stores {
			check(store == StoreSQLite || store == StorePostgres,
				"unknown store %q: want %s or %s", store, StoreSQLite, StorePostgres)
		}
	}
	if slices.Contains(c.Stores, StorePostgres) {
		if c.DatabaseURL == "" {
			errs = append(errs, errors.New("store postgres needs -database-url postgres://USER@127.0.0.1:5432/DATABASE"))
		} else if err := checkDatabaseURL(c.DatabaseURL); err != nil {
			errs = append(errs, err)
		}
	}
	check(len(c.Stores) > 0, "missing -stores")
	return errors.Join(errs...)
}

// scenario is the shape of one benchmark scenario.
type scenario struct {
	Name             string
	Command          string        // datapusher subcommand: "serve" or "api"
	Rate             float64       // offered events per second; 0 is the maximum
	Duration         time.Duration // load phase
	Destinations     int           // healthy destinations
	HangDestinations int           // destinations that never respond
	ReceiverDelay    time.Duration // response delay of the healthy destinations
	DeliveryTimeout  time.Duration // DATAPUSHER_DELIVERY_TIMEOUT; 0 keeps the default
}

// delivers reports whether the child runs delivery workers.
func (s scenario) delivers() bool { return s.Command == "serve" }

// scenario returns the scenario named name with the settings of c.
func (c *Config) scenario(name string) scenario {
	s := scenario{
		Name: name, Command: "serve", Duration: c.Duration, Destinations: 2, ReceiverDelay: c.ReceiverDelay,
	}
	switch name {
	case ScenarioIngest:
		// The events still get two destinations, so every insert writes
		// the same log rows and jobs as in the delivery scenarios.
		s.Command = "api"
		s.Rate = c.IngestRate
	case ScenarioSteady:
		s.Rate = c.SteadyRate
	case ScenarioSlow:
		s.Rate = c.SlowRate
		s.Destinations = c.SlowDestinations
		s.ReceiverDelay = c.SlowDelay
	case ScenarioIsolation:
		s.Rate = c.IsolationRate
		s.Destinations = 4
		s.HangDestinations = 1
		s.DeliveryTimeout = c.IsolationTimeout
	}
	return s
}

// childEnvSettings returns the settings of the child process for s.
func (c *Config) childEnvSettings(s scenario) map[string]string {
	env := map[string]string{
		"DATAPUSHER_ALLOWED_DESTINATION_NETWORKS": "127.0.0.0/8",
		"DATAPUSHER_LOG_LEVEL":                    "warn",
		"DATAPUSHER_LOG_FORMAT":                   "json",
		"DATAPUSHER_MAX_RATE_LIMIT_PER_SECOND":    strconv.Itoa(requestedRateLimit),
		// The setup creates up to -slow-destinations destinations through
		// the management API, whose rate limit is not under test.
		"DATAPUSHER_API_RATE_PER_SECOND": strconv.Itoa(requestedRateLimit),
		"DATAPUSHER_WORKERS":             strconv.Itoa(c.Workers),
		"DATAPUSHER_MAX_PER_DESTINATION": strconv.Itoa(c.MaxPerDestination),
	}
	if s.DeliveryTimeout > 0 {
		env["DATAPUSHER_DELIVERY_TIMEOUT"] = s.DeliveryTimeout.String()
	}
	for k, v := range c.Env {
		env[k] = v
	}
	return env
}
