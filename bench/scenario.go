package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
)

// ScenarioResult is the outcome of one scenario on one store.
type ScenarioResult struct {
	Scenario            string  `json:"scenario"`
	Store               string  `json:"store"`
	Command             string  `json:"command"`
	Destinations        int     `json:"destinations"`
	HangingDestinations int     `json:"hanging_destinations"`
	ReceiverDelayMs     float64 `json:"receiver_delay_ms"`
	OfferedRate         float64 `json:"offered_rate"` // events per second; 0 is the maximum
	Concurrency         int     `json:"concurrency"`
	PayloadBytes        int     `json:"payload_bytes"`
	Workers             int     `json:"workers"`
	MaxPerDestination   int     `json:"max_per_destination"`
	AccountRateLimit    int     `json:"account_rate_limit"`

	LoadSeconds       float64 `json:"load_seconds"`
	EventsSent        int64   `json:"events_sent"`
	EventsAccepted    int64   `json:"events_accepted"`
	AcceptedPerSecond float64 `json:"accepted_per_second"`
	DroppedSlots      int64   `json:"dropped_slots"` // send slots of the offered rate that the senders missed

	// Deliveries count the healthy destinations' 200 responses. The
	// window is the load phase; the drain phase follows it.
	DeliveriesExpected int64   `json:"deliveries_expected"`
	DeliveredInWindow  int64   `json:"delivered_in_window"`
	DeliveredPerSecond float64 `json:"delivered_per_second"`
	DeliveredTotal     int64   `json:"delivered_total"`
	DrainSeconds       float64 `json:"drain_seconds"`
	DrainComplete      bool    `json:"drain_complete"`
	HangAttempts       int64   `json:"hang_attempts"`
	InvalidBodies      int64   `json:"invalid_bodies"`

	EndToEnd LatencySummary   `json:"end_to_end_latency"` // event send to arrival at a healthy destination
	Ingest   LatencySummary   `json:"ingest_latency"`     // POST /server/incoming_data, accepted events only
	Errors   map[string]int64 `json:"errors"`             // ingest errors by kind

	PeakRSSBytes      int64   `json:"peak_rss_bytes"`      // VmHWM of the Data Pusher process
	CPUSeconds        float64 `json:"cpu_seconds"`         // of the Data Pusher process, load and drain phases
	HarnessCPUSeconds float64 `json:"harness_cpu_seconds"` // of this process, load and drain phases
	ServerErrorLogs   int     `json:"server_error_logs"`
	ServerWarnLogs    int     `json:"server_warn_logs"`

	Interrupted bool   `json:"interrupted,omitempty"` // the run was stopped during its load or drain phase
	Error       string `json:"error,omitempty"`
}

// Label returns "store/scenario", followed by " at RATE/s" for a scenario
// with a fixed offered rate.
func (r *ScenarioResult) Label() string {
	label := r.Store + "/" + r.Scenario
	if r.OfferedRate > 0 {
		label += " at " + strconv.FormatFloat(r.OfferedRate, 'g', -1, 64) + "/s"
	}
	return label
}

// runner runs the scenarios of one benchmark run.
type runner struct {
	cfg   *Config
	clock *clock
}

// runScenario runs scenario s on store and returns its result. A failure
// is in the result's Error.
func (r *runner) runScenario(ctx context.Context, store string, s scenario) ScenarioResult {
	cfg := r.cfg
	res := ScenarioResult{
		Scenario: s.Name, Store: store, Command: s.Command,
		Destinations: s.Destinations, HangingDestinations: s.HangDestinations,
		ReceiverDelayMs: milliseconds(s.ReceiverDelay), OfferedRate: s.Rate,
		Concurrency: cfg.Concurrency, PayloadBytes: cfg.PayloadSize,
		Workers: cfg.Workers, MaxPerDestination: cfg.MaxPerDestination,
	}
	err := r.run(ctx, store, s, &res)
	switch {
	case err == nil:
	case ctx.Err() != nil && res.LoadSeconds > 0:
		// The numbers cover the part of the load phase that ran.
		res.Interrupted = true
	default:
		res.Error = err.Error()
		fmt.Fprintf(cfg.Stderr, "%s: %v\n", res.Label(), err)
	}
	return res
}

func (r *runner) run(ctx context.Context, store string, s scenario, res *ScenarioResult) error {
	cfg := r.cfg
	receiver, err := StartReceiver(r.clock, s.ReceiverDelay)
	if err != nil {
		return err
	}
	defer receiver.Close()

	// Start the server under test, unless it runs already.
	baseURL, pid := cfg.Target, cfg.PID
	var serverLog *logWriter
	if cfg.Target == "" {
		var copyTo io.Writer
		if cfg.Verbose {
			copyTo = cfg.Stderr
		}
		child, err := startChild(ctx, childOptions{
			Binary: cfg.Binary, Command: s.Command, Store: store, BaseURL: cfg.DatabaseURL,
			Env: cfg.childEnvSettings(s), Output: copyTo,
		})
		if err != nil {
			return err
		}
		defer child.stop()
		baseURL, pid, serverLog = child.BaseURL, child.PID, child.log
	}

	client := newHTTPClient(2 * cfg.Concurrency)
	defer client.CloseIdleConnections()
	account, err := setupAccount(ctx, &apiClient{baseURL: baseURL, http: client}, destinationURLs(receiver.URL, s))
	if err != nil {
		return err
	}
	res.AccountRateLimit = account.RateLimit
	// Send the load, then wait for the deliveries.
	cpuBefore, harnessBefore := cpuSecondsOf(pid), cpuSecondsOf(os.Getpid())
	stats := &loadStats{}
	progress := startProgress(cfg.Stderr, res.Label(), stats, receiver)
	load := runLoad(ctx, client, r.clock, loadSpec{
		URL: baseURL + "/server/incoming_data", Token: account.Token,
		Concurrency: cfg.Concurrency, Rate: s.Rate, Duration: s.Duration, Count: cfg.Count,
		PayloadSize: cfg.PayloadSize,
	}, stats)
	res.DeliveredInWindow = receiver.Delivered()
	res.EventsAccepted = stats.accepted.Load()
	if s.delivers() {
		res.DeliveriesExpected = res.EventsAccepted * int64(s.Destinations)
		progress.setPhase("drain")
		drainStart := time.Now()
		res.DrainComplete = waitForDeliveries(ctx, receiver, res.DeliveriesExpected, cfg.DrainTimeout)
		res.DrainSeconds = time.Since(drainStart).Seconds()
	}
	progress.stop()

	// Read the resource use before the deferred stop of the child.
	if pid > 0 {
		if stats, err := ReadProcStats(pid); err == nil {
			res.PeakRSSBytes = stats.PeakRSSBytes
			res.CPUSeconds = stats.CPUSeconds - cpuBefore
		}
	}
	res.HarnessCPUSeconds = cpuSecondsOf(os.Getpid()) - harnessBefore
	if serverLog != nil {
		res.ServerErrorLogs, res.ServerWarnLogs = serverLog.Counts()
	}

	res.LoadSeconds = load.Elapsed.Seconds()
	res.EventsSent = stats.sent.Load()
	res.AcceptedPerSecond = perSecond(res.EventsAccepted, load.Elapsed)
	res.DroppedSlots = load.DroppedSlots
	if s.delivers() {
		res.DeliveredPerSecond = perSecond(res.DeliveredInWindow, load.Elapsed)
	}
	res.DeliveredTotal = receiver.Delivered()
	res.HangAttempts = receiver.Hangs()
	res.InvalidBodies = receiver.InvalidBodies()
	res.EndToEnd = receiver.Latency.Summary()
	res.Ingest = stats.Latency.Summary()
	res.Errors = stats.Errors()
	return ctx.Err()
}

// destinationURLs returns the receiver URLs of the destinations of s.
func destinationURLs(receiverURL string, s scenario) []string {
	var urls []string
	for i := range s.Destinations {
		urls = append(urls, receiverURL+healthyPath+strconv.Itoa(i))
	}
	for i := range s.HangDestinations {
		urls = append(urls, receiverURL+hangPath+strconv.Itoa(i))
	}
	return urls
}

// waitForDeliveries waits until receiver has sent the 200 responses of
// expected deliveries, timeout passes or ctx ends, and reports whether all
// arrived.
func waitForDeliveries(ctx context.Context, receiver *Receiver, expected int64, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	ticker := time.NewTicker(20 * time.Millisecond)
	defer ticker.Stop()
	for receiver.Delivered() < expected {
		if !time.Now().Before(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-ticker.C:
		}
	}
	return true
}

func perSecond(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Ceilings are the request rates of two servers in the harness process
// under the same load generator as the scenarios: the benchmark's receiver,
// and a bare net/http handler that responds with 202 without storing
// anything.
type Ceilings struct {
	ReceiverPerSecond float64          `json:"receiver_per_second"`
	ReceiverLatency   LatencySummary   `json:"receiver_request_latency"`
	ReceiverErrors    map[string]int64 `json:"receiver_errors"`
	BarePerSecond     float64          `json:"bare_per_second"`
	BareLatency       LatencySummary   `json:"bare_request_latency"`
	BareErrors        map[string]int64 `json:"bare_errors"`
}

// measureCeilings sends the scenarios' load at the maximum rate to the
// receiver and then to the bare handler.
func (r *runner) measureCeilings(ctx context.Context) (*Ceilings, error) {
	receiver, err := StartReceiver(r.clock, 0)
	if err != nil {
		return nil, err
	}
	receiverStats, receiverLoad := r.measureCeiling(ctx, "ceiling/receiver", receiver.URL+healthyPath+"0", receiver)
	receiver.Close()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	bare, err := startBareServer()
	if err != nil {
		return nil, err
	}
	bareStats, bareLoad := r.measureCeiling(ctx, "ceiling/bare", bare.URL+"/server/incoming_data", nil)
	bare.Close()
	return &Ceilings{
		ReceiverPerSecond: perSecond(receiverStats.accepted.Load(), receiverLoad.Elapsed),
		ReceiverLatency:   receiverStats.Latency.Summary(),
		ReceiverErrors:    receiverStats.Errors(),
		BarePerSecond:     perSecond(bareStats.accepted.Load(), bareLoad.Elapsed),
		BareLatency:       bareStats.Latency.Summary(),
		BareErrors:        bareStats.Errors(),
	}, ctx.Err()
}

func (r *runner) measureCeiling(ctx context.Context, label, url string, receiver *Receiver) (*loadStats, loadResult) {
	client := newHTTPClient(2 * r.cfg.Concurrency)
	defer client.CloseIdleConnections()
	stats := &loadStats{}
	progress := startProgress(r.cfg.Stderr, label, stats, receiver)
	defer progress.stop()
	load := runLoad(ctx, client, r.clock, loadSpec{
		URL: url, Concurrency: r.cfg.Concurrency, Duration: r.cfg.Duration, Count: r.cfg.Count,
		PayloadSize: r.cfg.PayloadSize,
	}, stats)
	return stats, load
}

// progress prints one line per second while a scenario runs: the elapsed
// time, the phase, the accepted events and the deliveries in the last
// second, and the errors so far.
type progress struct {
	w        io.Writer
	label    string
	stats    *loadStats
	receiver *Receiver // nil when nothing is delivered

	mu    sync.Mutex
	phase string

	done    chan struct{}
	stopped chan struct{}
}

func startProgress(w io.Writer, label string, stats *loadStats, receiver *Receiver) *progress {
	p := &progress{w: w, label: label, stats: stats, receiver: receiver, phase: "load",
		done: make(chan struct{}), stopped: make(chan struct{})}
	go p.loop()
	return p
}

func (p *progress) setPhase(phase string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.phase = phase
}

func (p *progress) stop() {
	close(p.done)
	<-p.stopped
}

func (p *progress) loop() {
	defer close(p.stopped)
	start := time.Now()
	ticker := time.NewTicker(time.Second)
	defer ticker.Stop()
	var lastAccepted, lastDelivered int64
	for {
		select {
		case <-p.done:
			return
		case <-ticker.C:
		}
		accepted := p.stats.accepted.Load()
		p.mu.Lock()
		phase := p.phase
		p.mu.Unlock()
		line := fmt.Sprintf("%-28s %-5s %4.0fs  accepted %6d/s", p.label, phase, time.Since(start).Seconds(),
			accepted-lastAccepted)
		if p.receiver != nil {
			delivered := p.receiver.Delivered()
			line += fmt.Sprintf("  delivered %6d/s", delivered-lastDelivered)
			lastDelivered = delivered
		}
		fmt.Fprintf(p.w, "%s  errors %d\n", line, p.stats.failed.Load())
		lastAccepted = accepted
	}
}
