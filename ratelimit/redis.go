package ratelimit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

const (
	// redisRetryInterval is how long Redis serves every request from the
	// fallback after a Redis error before it tries Redis again. Without it,
	// each request during an outage would wait for the client's dial
	// attempts and retries.
	redisRetryInterval = time.Second

	// errorLogInterval is the minimum time between two log lines about
	// Redis errors.
	errorLogInterval = time.Minute
)

// Redis is a Limiter that keeps its state in Redis, so every node that uses
// the same Redis and prefix shares one limit per key. Each request runs one
// Lua script (redis_rate's GCRA), which Redis executes atomically.
//
// When a Redis call fails, Redis serves the request from its in-process
// fallback and uses only the fallback for the next second. While Redis is
// unreachable, each node therefore enforces the limit on its own. Redis logs
// such errors at most once per minute, and logs when Redis replies again
// after a logged error.
type Redis struct {
	limiter  *redis_rate.Limiter
	prefix   string
	fallback *Local
	logger   *slog.Logger
	now      func() time.Time

	mu sync.Mutex
	// failing is set from a Redis error until the next successful call.
	failing bool
	// retryAt is when a failing Redis is next tried.
	retryAt time.Time
	// lastErrorLog is when the last Redis error was logged.
	lastErrorLog time.Time
	// suppressedErrors counts the Redis errors since lastErrorLog that
	// were not logged.
	suppressedErrors int
	// errorLogged is set when a Redis error was logged and no recovery
	// has been logged since.
	errorLogged bool
}

// NewRedis returns a Redis that stores the state of key under the Redis key
// "rate:" + prefix + key. A nil fallback is replaced by NewLocal(), and a nil
// logger by slog.Default().
//
// A request that goes to Redis waits for the client's dial attempts and
// retries before a Redis error sends it to the fallback, so give client
// short timeouts and few retries.
func NewRedis(client redis.UniversalClient, prefix string, fallback *Local, logger *slog.Logger) *Redis {
	if fallback == nil {
		fallback = NewLocal()
	}
	if logger == nil {
		logger = slog.Default()
	}

	return &Redis{
		limiter:  redis_rate.NewLimiter(client),
		prefix:   prefix,
		fallback: fallback,
		logger:   logger,
		now:      time.Now,
	}
}

// Allow is AllowN(ctx, key, limit, 1).
func (r *Redis) Allow(ctx context.Context, key string, limit Limit) (Result, error) {
	return r.AllowN(ctx, key, limit, 1)
}

// AllowN consumes n requests for key if all n fit in the limit now, as
// described on [Limiter]. It does not return Redis errors, because the
// fallback decides instead. It returns an error for an invalid limit, a
// negative n, or when ctx ends before Redis replies.
func (r *Redis) AllowN(ctx context.Context, key string, limit Limit, n int) (Result, error) {
	if err := limit.validate(n); err != nil {
		return Result{}, err
	}

	key = r.prefix + key
	if !r.shouldTryRedis() {
		return r.fallback.AllowN(ctx, key, limit, n)
	}

	redisLimit := redis_rate.Limit{Rate: limit.Rate, Burst: limit.Burst, Period: limit.Period}
	res, err := r.limiter.AllowN(ctx, key, redisLimit, n)
	if err != nil {
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("check redis rate limit: %w", err)
		}
		r.recordError(ctx, err)
		return r.fallback.AllowN(ctx, key, limit, n)
	}

	r.recordSuccess(ctx)
	return convertResult(res, limit, n), nil
}

// convertResult converts a redis_rate result to a Result. redis_rate
// returns Allowed 0 and RetryAfter -1 for n == 0, so for a peek both are
// derived from ResetAfter, the time until the key is back to its full burst.
// One request fits once ResetAfter is at most the time to regain Burst-1
// requests.
func convertResult(res *redis_rate.Result, limit Limit, n int) Result {
	result := Result{
		Allowed:    res.Allowed > 0,
		Limit:      limit.Burst,
		Remaining:  res.Remaining,
		ResetAfter: max(res.ResetAfter, 0),
	}

	if n == 0 {
		result.Allowed = res.Remaining >= 1
		if !result.Allowed {
			wait := res.ResetAfter - limit.duration(float64(limit.Burst-1))
			result.RetryAfter = max(wait, time.Nanosecond)
		}
		return result
	}

	if !result.Allowed {
		result.Remaining = 0
		result.RetryAfter = max(res.RetryAfter, time.Nanosecond)
	}
	return result
}

// shouldTryRedis reports whether this request should go to Redis. While
// Redis is failing, one request per redisRetryInterval does, and the others
// use the fallback.
func (r *Redis) shouldTryRedis() bool {
	r.mu.Lock()
	defer r.mu.Unlock()

	if !r.failing {
		return true
	}

	now := r.now()
	if now.Before(r.retryAt) {
		return false
	}
	r.retryAt = now.Add(redisRetryInterval)
	return true
}

func (r *Redis) recordError(ctx context.Context, err error) {
	r.mu.Lock()
	now := r.now()
	r.failing = true
	r.retryAt = now.Add(redisRetryInterval)

	if !r.lastErrorLog.IsZero() && now.Sub(r.lastErrorLog) < errorLogInterval {
		r.suppressedErrors++
		r.mu.Unlock()
		return
	}
	suppressed := r.suppressedErrors
	r.lastErrorLog = now
	r.suppressedErrors = 0
	r.errorLogged = true
	r.mu.Unlock()

	r.logger.LogAttrs(ctx, slog.LevelWarn, "redis rate limiter failed, using in-process limiter",
		slog.Any("error", err),
		slog.String("key_prefix", r.prefix),
		slog.Int("suppressed_errors", suppressed),
	)
}

func (r *Redis) recordSuccess(ctx context.Context) {
	r.mu.Lock()
	if !r.failing {
		r.mu.Unlock()
		return
	}
	r.failing = false
	logRecovery := r.errorLogged
	r.errorLogged = false
	r.mu.Unlock()

	if logRecovery {
		r.logger.LogAttrs(ctx, slog.LevelInfo, "redis rate limiter recovered",
			slog.String("key_prefix", r.prefix),
		)
	}
}
