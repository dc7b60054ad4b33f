package delivery

import (
	"errors"
	"sync"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/datapusher/datapusher/metrics"
)

// BreakerConfig sets when a destination's circuit breaker opens. Within
// Window, once at least MinAttempts attempts were made and FailureRatio of
// them failed, the breaker opens: deliveries to the destination wait, without
// counting as attempts, for Cooldown. Then one probe delivery goes through,
// and its success closes the breaker again.
type BreakerConfig struct {
	Window       time.Duration
	MinAttempts  uint32
	FailureRatio float64
	Cooldown     time.Duration
}

// DefaultBreakerConfig is the breaker setting when Config.Breaker is zero.
var DefaultBreakerConfig = BreakerConfig{
	Window: 5 * time.Minute, MinAttempts: 10, FailureRatio: 0.7, Cooldown: 30 * time.Second,
}

// breakers holds one circuit breaker per destination. The state lives in
// this process: each worker process judges a destination by its own
// attempts.
type breakers struct {
	cfg     BreakerConfig
	metrics *metrics.Metrics

	mu        sync.Mutex
	byID      map[string]*breakerEntry
	lastSweep time.Time
}

type breakerEntry struct {
	breaker  *gobreaker.TwoStepCircuitBreaker[struct{}]
	lastUsed time.Time
}

func newBreakers(cfg BreakerConfig, m *metrics.Metrics) *breakers {
	if cfg == (BreakerConfig{}) {
		cfg = DefaultBreakerConfig
	}
	return &breakers{cfg: cfg, metrics: m, byID: make(map[string]*breakerEntry)}
}

// allow requests one attempt from the destination's breaker. It returns report,
// which takes the attempt's outcome (nil, errAttemptFailed or
// errAttemptInterrupted), or ok false while the breaker is open.
func (b *breakers) allow(destinationID string) (report func(error), ok bool) {
	report, err := b.get(destinationID).Allow()
	if err != nil {
		return nil, false
	}
	return report, true
}

var (
	errAttemptFailed = errors.New("delivery attempt failed")

	// errAttemptInterrupted marks an attempt cut short by shutdown, which
	// reveals nothing about the destination, so the breaker ignores it.
	errAttemptInterrupted = errors.New("delivery attempt interrupted")
)

// state returns "closed", "open" or "half-open" for the destination.
func (b *breakers) state(destinationID string) string {
	return b.get(destinationID).State().String()
}

func (b *breakers) get(destinationID string) *gobreaker.TwoStepCircuitBreaker[struct{}] {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := time.Now()
	b.sweep(now)
	entry, ok := b.byID[destinationID]
	if !ok {
		cfg := b.cfg
		entry = &breakerEntry{breaker: gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
			Name:         destinationID,
			MaxRequests:  1,
			Interval:     cfg.Window,
			BucketPeriod: cfg.Window / 10,
			Timeout:      cfg.Cooldown,
			IsExcluded:   func(err error) bool { return errors.Is(err, errAttemptInterrupted) },
			OnStateChange: func(name string, _, to gobreaker.State) {
				b.metrics.SetCircuitState(name, to.String())
			},
			ReadyToTrip: func(counts gobreaker.Counts) bool {
				return counts.Requests >= cfg.MinAttempts &&
					float64(counts.TotalFailures) >= cfg.FailureRatio*float64(counts.Requests)
			},
		})}
		b.byID[destinationID] = entry
	}
	entry.lastUsed = now
	return entry.breaker
}

// sweep drops breakers of destinations that had no delivery for two
// windows. Those are closed with counts that have expired, so nothing is
// lost. The caller holds b.mu.
func (b *breakers) sweep(now time.Time) {
	if now.Sub(b.lastSweep) < b.cfg.Window {
		return
	}
	b.lastSweep = now
	for id, entry := range b.byID {
		if now.Sub(entry.lastUsed) > 2*b.cfg.Window && entry.breaker.State() == gobreaker.StateClosed {
			delete(b.byID, id)
		}
	}
}
