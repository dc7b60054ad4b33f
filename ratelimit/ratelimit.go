// Package ratelimit limits how often a key (an account, a user, an email
// address or a client IP) may act. Each call names its own [Limit], so one
// [Limiter] serves every policy: events per account, management API calls
// per user and failed logins per email and per IP.
//
// [Local] keeps its state in process in a token bucket per key
// (golang.org/x/time/rate). [Redis] shares one limit across all nodes with the
// generic cell rate algorithm (GCRA) of github.com/go-redis/redis_rate, and
// falls back to a [Local] while Redis is unreachable. Both behave the same: a
// new key may make Burst requests at once and then regains Rate requests per
// Period.
//
// To limit failures rather than requests, check with AllowN(ctx, key, limit, 0),
// which consumes nothing, and call Allow only when an attempt fails.
package ratelimit

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Limiter decides whether a key may make a request under a given limit.
// Implementations are safe for concurrent use.
type Limiter interface {
	// Allow is AllowN(ctx, key, limit, 1).
	Allow(ctx context.Context, key string, limit Limit) (Result, error)

	// AllowN consumes n requests for key if all n fit in the limit now, and
	// consumes nothing otherwise. With n == 0 it consumes nothing, and
	// Result.Allowed reports whether one more request would be allowed.
	// It returns an error for an invalid limit or a negative n.
	AllowN(ctx context.Context, key string, limit Limit, n int) (Result, error)
}

// Limit is a rate limit policy: Rate requests per Period on average, with up
// to Burst requests at once.
type Limit struct {
	Rate   int
	Burst  int
	Period time.Duration
}

// PerSecond returns a limit of rate requests per second with a burst of rate.
func PerSecond(rate int) Limit {
	return Limit{Rate: rate, Burst: rate, Period: time.Second}
}

// PerMinute returns a limit of rate requests per minute with a burst of rate.
func PerMinute(rate int) Limit {
	return Limit{Rate: rate, Burst: rate, Period: time.Minute}
}

// String formats the limit as "5/1s (burst 5)".
func (l Limit) String() string {
	return fmt.Sprintf("%d/%s (burst %d)", l.Rate, l.Period, l.Burst)
}

// validate returns an error unless the limit and the request count n are
// usable: Rate, Burst and Period positive, n not negative.
func (l Limit) validate(n int) error {
	if l.Rate <= 0 || l.Burst <= 0 || l.Period <= 0 {
		return fmt.Errorf("invalid rate limit %s: rate, burst and period must be positive", l)
	}
	if n < 0 {
		return fmt.Errorf("invalid request count %d: must not be negative", n)
	}
	return nil
}

// duration converts a number of requests to the time the limit takes to
// regain them.
func (l Limit) duration(requests float64) time.Duration {
	return time.Duration(requests * float64(l.Period) / float64(l.Rate))
}

// Result is the outcome of one Allow or AllowN call.
type Result struct {
	// Allowed reports whether the request fits in the limit. When n == 0 it
	// reports whether one more request would fit.
	Allowed bool

	// Limit is the burst: the number of requests the key may make at once
	// when it has been idle.
	Limit int

	// Remaining is the number of requests the key may make right now. It is
	// 0 when the request was rejected.
	Remaining int

	// RetryAfter is the time until the rejected request would fit. It is 0
	// when the request was allowed.
	RetryAfter time.Duration

	// ResetAfter is the time until the key regains its full burst.
	ResetAfter time.Duration
}

// SetHeaders sets RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset
// and, when the request was rejected, Retry-After. Reset and Retry-After are
// whole seconds rounded up, and Retry-After is at least 1. The RateLimit
// fields are those of draft-ietf-httpapi-ratelimit-headers-06.
func (r Result) SetHeaders(h http.Header) {
	h.Set("RateLimit-Limit", strconv.Itoa(r.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(r.Remaining))
	h.Set("RateLimit-Reset", strconv.FormatInt(ceilSeconds(r.ResetAfter), 10))
	if !r.Allowed {
		h.Set("Retry-After", strconv.FormatInt(max(1, ceilSeconds(r.RetryAfter)), 10))
	}
}

func ceilSeconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}
