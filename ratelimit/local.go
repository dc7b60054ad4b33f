package ratelimit

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// sweepInterval is how often Local looks for idle keys to drop.
const sweepInterval = time.Minute

// Local is an in-process Limiter with one token bucket per key. Its limits
// hold per process, so N processes together allow up to N times the limit.
//
// Local drops a key once it has been idle long enough to regain its full
// burst, because a new bucket would be in the same state. Memory therefore
// grows with the keys used within the longest refill time plus one minute.
type Local struct {
	now func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	limiter  *rate.Limiter
	limit    Limit
	lastUsed time.Time
}

// NewLocal returns an empty Local.
func NewLocal() *Local {
	return &Local{
		now:     time.Now,
		buckets: make(map[string]*bucket),
	}
}

// Allow is AllowN(ctx, key, limit, 1).
func (l *Local) Allow(ctx context.Context, key string, limit Limit) (Result, error) {
	return l.AllowN(ctx, key, limit, 1)
}

// AllowN consumes n requests for key if all n fit in the limit now, as
// described on [Limiter]. It returns an error only for an invalid limit or a
// negative n.
func (l *Local) AllowN(_ context.Context, key string, limit Limit, n int) (Result, error) {
	if err := limit.validate(n); err != nil {
		return Result{}, err
	}

	l.mu.Lock()
	defer l.mu.Unlock()

	now := l.now()
	l.sweep(now)
	b := l.bucket(key, limit, now)
	b.lastUsed = now

	return take(b.limiter, limit, n, now), nil
}

// bucket returns the bucket of key, created full if key is new. A bucket
// whose key is now used with another limit keeps its tokens and takes the
// new rate and burst from now on.
func (l *Local) bucket(key string, limit Limit, now time.Time) *bucket {
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{
			limiter: rate.NewLimiter(tokensPerSecond(limit), limit.Burst),
			limit:   limit,
		}
		l.buckets[key] = b
		return b
	}

	if b.limit != limit {
		b.limiter.SetLimitAt(now, tokensPerSecond(limit))
		b.limiter.SetBurstAt(now, limit.Burst)
		b.limit = limit
	}
	return b
}

// sweep drops the buckets that have been idle for at least their full
// refill time. It runs at most once per sweepInterval, in the call that
// finds it due, and holds the lock for time linear in the number of keys.
func (l *Local) sweep(now time.Time) {
	if now.Sub(l.lastSweep) < sweepInterval {
		return
	}
	l.lastSweep = now

	for key, b := range l.buckets {
		if now.Sub(b.lastUsed) >= b.limit.duration(float64(b.limit.Burst)) {
			delete(l.buckets, key)
		}
	}
}

func tokensPerSecond(limit Limit) rate.Limit {
	return rate.Limit(float64(limit.Rate) / limit.Period.Seconds())
}

// take consumes n tokens from limiter if it has them at now. The caller must
// hold the lock that guards limiter, so the check and the consumption happen
// as one step. The result mirrors redis_rate, so Local and Redis return the
// same values for the same state.
func take(limiter *rate.Limiter, limit Limit, n int, now time.Time) Result {
	tokens := limiter.TokensAt(now)
	result := Result{Limit: limit.Burst}

	// A peek (n == 0) checks whether one more request would fit.
	needed := float64(max(n, 1))
	if tokens < needed {
		result.RetryAfter = max(limit.duration(needed-tokens), time.Nanosecond)
		result.ResetAfter = limit.duration(float64(limit.Burst) - tokens)
		return result
	}

	if n > 0 {
		// TokensAt and AllowN compute the same token count for the same
		// time, and the caller's lock keeps other requests out between
		// them, so AllowN succeeds after the check above.
		limiter.AllowN(now, n)
		tokens -= float64(n)
	}

	result.Allowed = true
	result.Remaining = int(math.Floor(tokens))
	result.ResetAfter = limit.duration(float64(limit.Burst) - tokens)
	return result
}
