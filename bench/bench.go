// Package bench is the benchmark harness behind "datapusher bench".
//
// For each scenario it starts the datapusher binary as a child process with
// a fresh database and creates an account and destinations through the API.
// A load generator sends events to /server/incoming_data, and a receiver in
// the harness process takes the deliveries. The report gives ingest and
// delivery throughput, ingest and end-to-end latency, errors, and the
// server's peak RSS and CPU time. Two ceilings measured with the same load
// generator put the numbers in proportion.
//
// All traffic stays on loopback addresses. The harness's HTTP clients reject
// connections to any other address, and the PostgreSQL URL must name a
// loopback host or a Unix socket.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"
)

// Report is everything one benchmark run measured.
type Report struct {
	Started           time.Time        `json:"started"`
	Machine           Machine          `json:"machine"`
	DatapusherVersion string           `json:"datapusher_version,omitempty"`
	Target            string           `json:"target,omitempty"`
	DurationSeconds   float64          `json:"duration_seconds"` // load phase per scenario
	Ceilings          *Ceilings        `json:"ceilings,omitempty"`
	Results           []ScenarioResult `json:"results"`
	Sweep             []ScenarioResult `json:"latency_sweep,omitempty"` // steady scenario at each offered rate
}

// Run runs the ceilings, every scenario on every store and the latency
// sweep of cfg, prints the result table to cfg.Stdout, and writes the JSON
// report and the plot when cfg.JSONFile and cfg.PlotFile are set. A scenario that fails leaves
// its error in its result and the table's notes, and the others still run.
// When ctx ends, Run stops the running scenario and reports what it
// measured so far.
func Run(ctx context.Context, cfg *Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// The progress lines, the child's log and the errors reach Stderr from
	// several goroutines.
	cfgCopy := *cfg
	cfgCopy.Stderr = &lockedWriter{w: cfg.Stderr}
	cfg = &cfgCopy
	r := &runner{cfg: cfg, clock: newClock()}
	report := &Report{
		Started: time.Now().UTC(), Machine: ReadMachine(), Target: cfg.Target,
		DurationSeconds: cfg.Duration.Seconds(),
	}
	if cfg.Target == "" {
		report.DatapusherVersion = binaryVersion(ctx, cfg.Binary)
	}

	var errs []error
	if cfg.Ceilings && len(cfg.Scenarios) > 0 {
		ceilings, err := r.measureCeilings(ctx)
		if err != nil && ctx.Err() == nil {
			errs = append(errs, fmt.Errorf("measure ceilings: %w", err))
		}
		report.Ceilings = ceilings
	}
	for _, store := range cfg.Stores {
		for _, name := range cfg.Scenarios {
			if ctx.Err() != nil {
				break
			}
			report.Results = append(report.Results, r.runScenario(ctx, store, cfg.scenario(name)))
		}
	}
	if cfg.PlotFile != "" {
		r.sweep(ctx, report)
	}

	printTable(cfg.Stdout, report)
	if cfg.JSONFile != "" {
		if err := writeJSON(cfg.JSONFile, report); err != nil {
			errs = append(errs, err)
		}
	}
	if cfg.PlotFile != "" && len(report.Sweep) > 0 {
		if err := writePlot(cfg.PlotFile, report.Sweep); err != nil {
			errs = append(errs, err)
		}
	}

	if ctx.Err() != nil {
		errs = append(errs, fmt.Errorf("benchmark interrupted: %w", ctx.Err()))
	} else if failed := countFailed(report); failed > 0 {
		errs = append(errs, fmt.Errorf("%d of %d scenario runs failed; the notes under the table give the errors",
			failed, len(report.Results)+len(report.Sweep)))
	}
	return report, errors.Join(errs...)
}

func countFailed(report *Report) int {
	failed := 0
	for _, res := range slices.Concat(report.Results, report.Sweep) {
		if res.Error != "" {
			failed++
		}
	}
	return failed
}

// sweep runs the steady scenario at each of cfg.SweepRates on every store,
// each for cfg.SweepDuration on a fresh server.
func (r *runner) sweep(ctx context.Context, report *Report) {
	for _, store := range r.cfg.Stores {
		for _, rate := range r.cfg.SweepRates {
			if ctx.Err() != nil {
				return
			}
			s := r.cfg.scenario(ScenarioSteady)
			s.Rate, s.Duration = rate, r.cfg.SweepDuration
			report.Sweep = append(report.Sweep, r.runScenario(ctx, store, s))
		}
	}
}

func writeJSON(path string, report *Report) error {
	data, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// lockedWriter serializes the writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
