package delivery

import (
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/datapusher/datapusher/delivery/sender"
)

// DefaultSchedule is the wait before each retry after the first attempt.
var DefaultSchedule = []time.Duration{
	5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
}

// MaxRetryAfter caps how long a destination's Retry-After header can delay
// the next attempt.
const MaxRetryAfter = 10 * time.Hour

// Jitter is the fraction by which each scheduled wait varies at random, so
// that retries of many events do not arrive at a destination at once.
const Jitter = 0.2

// Decision is the outcome of an attempt: the log's new status and any retry
// delay.
type Decision struct {
	Status string        // the log's new status
	Final  bool          // no attempt follows
	Delay  time.Duration // wait before the next attempt, when not final
}

// decide turns the result of attempt number attempt (1 for the first) into
// the log's next state, following schedule.
func decide(res sender.Result, attempt int, schedule []time.Duration) Decision {
	if res.Success() {
		return Decision{Status: "success", Final: true}
	}
	if !res.Retryable() || attempt > len(schedule) {
		return Decision{Status: "failed", Final: true}
	}
	delay := withJitter(schedule[attempt-1])

	// 429 and 503 may name a time to come back. That wait is honoured, but
	// never shorter than the schedule and never longer than MaxRetryAfter.
	if res.RetryAfter > 0 && (res.StatusCode == http.StatusTooManyRequests ||
		res.StatusCode == http.StatusServiceUnavailable) {
		delay = min(max(res.RetryAfter, delay), MaxRetryAfter)
	}
	return Decision{Status: "retrying", Delay: delay}
}

func withJitter(d time.Duration) time.Duration {
	factor := 1 + Jitter*(2*rand.Float64()-1)
	return time.Duration(float64(d) * factor)
}
