// Package metrics records Data Pusher's Prometheus metrics: HTTP requests,
// accepted events, deliveries, rate limiting, cache lookups, circuit breakers
// and the depth of the delivery queue.
package metrics

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Circuit breaker states, as gobreaker's State.String returns them.
const (
	CircuitClosed   = "closed"
	CircuitOpen     = "open"
	CircuitHalfOpen = "half-open"
)

// deliveryBuckets are the histogram buckets of delivery durations, in
// seconds. They reach past the sender's default 10 s request timeout.
var deliveryBuckets = []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}

// Metrics records metrics in a registry of its own rather than the global
// one, so that tests and several servers in one process do not collide.
//
// A nil *Metrics is valid and every method on it does nothing, so code that
// runs without metrics needs no checks.
type Metrics struct {
	registry *prometheus.Registry
	handler  http.Handler

	httpRequests     *prometheus.CounterVec
	httpDuration     *prometheus.HistogramVec
	eventsAccepted   *prometheus.CounterVec
	deliveries       *prometheus.CounterVec
	deliveryDuration *prometheus.HistogramVec
	rateLimited      *prometheus.CounterVec
	cacheRequests    *prometheus.CounterVec
	circuitBreakers  *prometheus.GaugeVec

	mu sync.Mutex
	// circuitStates maps a destination id to the state of its breaker, for
	// breakers that are not closed.
	circuitStates map[string]string
}

// New returns Metrics with a new registry that also holds the Go runtime and
// process collectors. Errors that happen while serving a scrape are logged
// to logger, or to slog.Default() when logger is nil.
func New(logger *slog.Logger) *Metrics {
	if logger == nil {
		logger = slog.Default()
	}
	m := &Metrics{
		registry:      prometheus.NewRegistry(),
		circuitStates: make(map[string]string),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datapusher_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status code.",
		}, []string{"route", "method", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "datapusher_http_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by route pattern and method.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route", "method"}),
		eventsAccepted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datapusher_events_accepted_total",
			Help: "Events accepted, by whether the account already had an event with that id.",
		}, []string{"duplicate"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datapusher_deliveries_total",
			Help: "Delivery attempts, by the log status they led to and the sender's error class.",
		}, []string{"outcome", "error_class"}),
		deliveryDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "datapusher_delivery_duration_seconds",
			Help:    "Duration of one delivery attempt's HTTP request, by outcome.",
			Buckets: deliveryBuckets,
		}, []string{"outcome"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datapusher_rate_limited_total",
			Help: "Requests rejected by a rate limit, by scope (incoming, api, login).",
		}, []string{"scope"}),
		cacheRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "datapusher_cache_requests_total",
			Help: "Cache lookups, by cache and result (hit or miss).",
		}, []string{"cache", "result"}),
		circuitBreakers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "datapusher_circuit_breakers",
			Help: "Destinations whose circuit breaker in this process is open or half-open, by state.",
		}, []string{"state"}),
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.httpRequests, m.httpDuration, m.eventsAccepted, m.deliveries, m.deliveryDuration,
		m.rateLimited, m.cacheRequests, m.circuitBreakers,
	)

	// Both states are exported from the start, so that a query on an idle
	// process finds zeros rather than no series.
	m.circuitBreakers.WithLabelValues(CircuitOpen).Set(0)
	m.circuitBreakers.WithLabelValues(CircuitHalfOpen).Set(0)

	// ContinueOnError serves every metric that could be gathered when one
	// collector fails, such as the queue collector while the database is
	// down.
	m.handler = promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorLog:      errorLog{logger},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.registry,
	})
	return m
}

// Registry returns the registry that holds m's metrics, for registering
// more collectors (for example collectors.NewDBStatsCollector).
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.registry
}

// ObserveRequest records one served HTTP request. Pass the ServeMux pattern
// that matched (http.Request.Pattern) as route, never the raw path, so that
// the number of series stays bounded. An empty route is recorded as
// "unmatched".
func (m *Metrics) ObserveRequest(route, method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.httpDuration.WithLabelValues(route, method).Observe(d.Seconds())
}

// EventAccepted counts one accepted event. A duplicate is an event whose id
// the account already had, so nothing new was stored.
func (m *Metrics) EventAccepted(duplicate bool) {
	if m == nil {
		return
	}
	m.eventsAccepted.WithLabelValues(strconv.FormatBool(duplicate)).Inc()
}

// ObserveDelivery records one delivery attempt: outcome is the log status it
// led to (success, retrying or failed), errorClass the sender's error class,
// and d the duration of the request. An empty errorClass is recorded as
// "none".
func (m *Metrics) ObserveDelivery(outcome, errorClass string, d time.Duration) {
	if m == nil {
		return
	}
	if errorClass == "" {
		errorClass = "none"
	}
	m.deliveries.WithLabelValues(outcome, errorClass).Inc()
	m.deliveryDuration.WithLabelValues(outcome).Observe(d.Seconds())
}

// RateLimited counts one request rejected by the rate limit of scope
// (incoming, api or login).
func (m *Metrics) RateLimited(scope string) {
	if m == nil {
		return
	}
	m.rateLimited.WithLabelValues(scope).Inc()
}

// CacheLookup counts one lookup in the named cache.
func (m *Metrics) CacheLookup(cache string, hit bool) {
	if m == nil {
		return
	}
	result := "miss"
	if hit {
		result = "hit"
	}
	m.cacheRequests.WithLabelValues(cache, result).Inc()
}

// SetCircuitState records that the circuit breaker of a destination moved
// to state (CircuitClosed, CircuitOpen or CircuitHalfOpen). The gauge counts
// destinations per state, not one series per destination. A closed breaker
// is forgotten, so the memory used grows only with breakers that are open
// or half-open. Any other state is counted under "unknown".
func (m *Metrics) SetCircuitState(destinationID, state string) {
	if m == nil {
		return
	}
	switch state {
	case CircuitClosed, CircuitOpen, CircuitHalfOpen:
	default:
		state = "unknown"
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	previous, tracked := m.circuitStates[destinationID]
	if tracked && previous == state {
		return
	}
	if tracked {
		m.circuitBreakers.WithLabelValues(previous).Dec()
		delete(m.circuitStates, destinationID)
	}
	if state != CircuitClosed {
		m.circuitStates[destinationID] = state
		m.circuitBreakers.WithLabelValues(state).Inc()
	}
}

// WatchQueue registers a QueueCollector that calls stats on every scrape,
// each call bounded by DefaultQueueStatsTimeout.
func (m *Metrics) WatchQueue(stats QueueStatsFunc) error {
	if m == nil {
		return nil
	}
	if err := m.registry.Register(NewQueueCollector(stats, DefaultQueueStatsTimeout)); err != nil {
		return fmt.Errorf("register queue collector: %w", err)
	}
	return nil
}

// errorLog adapts slog to promhttp's Logger.
type errorLog struct{ logger *slog.Logger }

func (l errorLog) Println(v ...any) {
	l.logger.Error("serve metrics", "error", fmt.Sprint(v...))
}
