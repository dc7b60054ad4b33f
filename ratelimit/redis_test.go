package ratelimit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// redisAddr is the Redis server the tests use. They send traffic to no
// other address.
const redisAddr = "127.0.0.1:6379"

// slowLimit allows 5 requests at once and regains one every 12 minutes, so
// real time that passes during a test cannot refill a token.
var slowLimit = Limit{Rate: 5, Burst: 5, Period: time.Hour}

// newRedisClient returns a client of the Redis at redisAddr and fails the
// test if that Redis does not reply to PING.
func newRedisClient(t *testing.T) *redis.Client {
	t.Helper()

	client := redis.NewClient(&redis.Options{Addr: redisAddr})
	t.Cleanup(func() { _ = client.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := client.Ping(ctx).Err()
	require.NoError(t, err, "redis at %s is not reachable; start it with: "+
		"redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save \"\" --appendonly no", redisAddr)
	return client
}

// newTestPrefix returns a key prefix that no other test run uses and
// deletes the test's keys when the test ends.
func newTestPrefix(t *testing.T, client *redis.Client) string {
	t.Helper()

	prefix := "ratelimit_test:" + rand.Text() + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := client.Scan(ctx, 0, "rate:"+prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			if err := client.Del(ctx, iter.Val()).Err(); err != nil {
				t.Errorf("delete test key %s: %v", iter.Val(), err)
			}
		}
		if err := iter.Err(); err != nil {
			t.Errorf("scan test keys: %v", err)
		}
	})
	return prefix
}

// syncBuffer is a bytes.Buffer that slog handlers may write concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the JSON log records written so far.
func (b *syncBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()

	var records []map[string]any
	scanner := bufio.NewScanner(bytes.NewReader(b.buf.Bytes()))
	for scanner.Scan() {
		var record map[string]any
		require.NoError(t, json.Unmarshal(scanner.Bytes(), &record), "log line %q", scanner.Text())
		records = append(records, record)
	}
	require.NoError(t, scanner.Err())
	return records
}

func newTestLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewJSONHandler(buf, nil)), buf
}

func TestRedisBurstThenReject(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := newRedisClient(t)
	prefix := newTestPrefix(t, client)
	logger, logs := newTestLogger()
	fallback := NewLocal()
	limiter := NewRedis(client, prefix, fallback, logger)

	for i := range 5 {
		res, err := limiter.Allow(ctx, "account:1", slowLimit)
		require.NoError(t, err)
		require.True(t, res.Allowed, "request %d", i+1)
		require.Equal(t, 5, res.Limit)
		require.Equal(t, 4-i, res.Remaining)
		require.Zero(t, res.RetryAfter)
		require.Positive(t, res.ResetAfter)
	}

	res, err := limiter.Allow(ctx, "account:1", slowLimit)
	require.NoError(t, err)
	require.False(t, res.Allowed)
	require.Equal(t, 5, res.Limit)
	require.Equal(t, 0, res.Remaining)
	require.Positive(t, res.RetryAfter)
	require.LessOrEqual(t, res.RetryAfter, 12*time.Minute)
	require.LessOrEqual(t, res.ResetAfter, time.Hour)

	exists, err := client.Exists(ctx, "rate:"+prefix+"account:1").Result()
	require.NoError(t, err)
	require.Equal(t, int64(1), exists, "the state must be in Redis")
	require.Zero(t, fallback.len(), "the fallback must not be used")
	require.Empty(t, logs.records(t))
}

func TestRedisKeysIndependent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := newRedisClient(t)
	limiter := NewRedis(client, newTestPrefix(t, client), nil, nil)

	for range 6 {
		_, err := limiter.Allow(ctx, "account:1", slowLimit)
		require.NoError(t, err)
	}

	res, err := limiter.Allow(ctx, "account:2", slowLimit)
	require.NoError(t, err)
	require.True(t, res.Allowed)
	require.Equal(t, 4, res.Remaining)

	res, err = limiter.Allow(ctx, "account:1", slowLimit)
	require.NoError(t, err)
	require.False(t, res.Allowed)
}

func TestRedisNodesShareLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client1 := newRedisClient(t)
	client2 := newRedisClient(t)
	prefix := newTestPrefix(t, client1)
	fallback1, fallback2 := NewLocal(), NewLocal()
	node1 := NewRedis(client1, prefix, fallback1, nil)
	node2 := NewRedis(client2, prefix, fallback2, nil)

	nodes := []*Redis{node1, node2, node1, node2, node1}
	for i, node := range nodes {
		res, err := node.Allow(ctx, "account:1", slowLimit)
		require.NoError(t, err)
		require.True(t, res.Allowed, "request %d", i+1)
		require.Equal(t, 4-i, res.Remaining)
	}

	for i, node := range []*Redis{node1, node2} {
		res, err := node.Allow(ctx, "account:1", slowLimit)
		require.NoError(t, err)
		require.False(t, res.Allowed, "node %d", i+1)
		require.Positive(t, res.RetryAfter)
	}

	require.Zero(t, fallback1.len())
	require.Zero(t, fallback2.len())
}

func TestRedisPeekDoesNotConsume(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := newRedisClient(t)
	limiter := NewRedis(client, newTestPrefix(t, client), nil, nil)

	for range 10 {
		res, err := limiter.AllowN(ctx, "login_email:ada@example.com", slowLimit, 0)
		require.NoError(t, err)
		require.True(t, res.Allowed)
		require.Equal(t, 5, res.Remaining)
		require.Zero(t, res.RetryAfter)
	}

	for i := range 5 {
		res, err := limiter.Allow(ctx, "login_email:ada@example.com", slowLimit)
		require.NoError(t, err)
		require.True(t, res.Allowed, "failure %d", i+1)
	}

	res, err := limiter.AllowN(ctx, "login_email:ada@example.com", slowLimit, 0)
	require.NoError(t, err)
	require.False(t, res.Allowed)
	require.Equal(t, 0, res.Remaining)
	require.Positive(t, res.RetryAfter)
	require.LessOrEqual(t, res.RetryAfter, 12*time.Minute)
	require.Positive(t, res.ResetAfter)
}

func TestRedisMatchesLocal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client := newRedisClient(t)
	limiter := NewRedis(client, newTestPrefix(t, client), nil, nil)
	local, _ := newTestLocal()

	// Each step runs on both limiters, whose results must agree. Redis
	// measures real time, so the durations are compared to within a second.
	steps := []int{0, 2, 1, 0, 3, 2, 0, 5}
	for i, n := range steps {
		want, err := local.AllowN(ctx, "account:1", slowLimit, n)
		require.NoError(t, err)
		got, err := limiter.AllowN(ctx, "account:1", slowLimit, n)
		require.NoError(t, err)

		require.Equal(t, want.Allowed, got.Allowed, "step %d", i)
		require.Equal(t, want.Limit, got.Limit, "step %d", i)
		require.Equal(t, want.Remaining, got.Remaining, "step %d", i)
		require.InDelta(t, want.RetryAfter.Seconds(), got.RetryAfter.Seconds(), 1, "step %d", i)
		require.InDelta(t, want.ResetAfter.Seconds(), got.ResetAfter.Seconds(), 1, "step %d", i)
	}
}

func TestRedisInvalidLimit(t *testing.T) {
	t.Parallel()
	client := newRedisClient(t)
	limiter := NewRedis(client, newTestPrefix(t, client), nil, nil)

	_, err := limiter.Allow(context.Background(), "account:1", Limit{Rate: 5, Burst: 5})
	require.ErrorContains(t, err, "invalid rate limit 5/0s (burst 5)")

	_, err = limiter.AllowN(context.Background(), "account:1", slowLimit, -1)
	require.ErrorContains(t, err, "invalid request count -1")
}

func TestRedisCanceledContext(t *testing.T) {
	t.Parallel()
	client := newRedisClient(t)
	logger, logs := newTestLogger()
	fallback := NewLocal()
	limiter := NewRedis(client, newTestPrefix(t, client), fallback, logger)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := limiter.Allow(ctx, "account:1", slowLimit)
	require.ErrorIs(t, err, context.Canceled)

	require.Zero(t, fallback.len(), "a canceled request must not use the fallback")
	require.Empty(t, logs.records(t), "a canceled request is no Redis error")
}

// newUnreachableRedis returns a Redis limiter whose client dials the closed
// port 127.0.0.1:1, once per command and without retries.
func newUnreachableRedis(t *testing.T, logger *slog.Logger) (*Redis, *Local, *fakeClock) {
	t.Helper()

	client := redis.NewClient(&redis.Options{
		Addr:          "127.0.0.1:1",
		DialTimeout:   time.Second,
		DialerRetries: 1,
		MaxRetries:    -1,
	})
	t.Cleanup(func() { _ = client.Close() })

	fallback, _ := newTestLocal()
	limiter := NewRedis(client, "ratelimit_test:", fallback, logger)
	clock := newFakeClock()
	limiter.now = clock.Now
	return limiter, fallback, clock
}

func TestRedisUnreachableUsesFallback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	logger, _ := newTestLogger()
	limiter, fallback, clock := newUnreachableRedis(t, logger)

	// The fallback's clock does not move, so it allows exactly the burst.
	for i := range 5 {
		res, err := limiter.Allow(ctx, "account:1", PerSecond(5))
		require.NoError(t, err)
		require.True(t, res.Allowed, "request %d", i+1)
		require.Equal(t, 4-i, res.Remaining)

		clock.Advance(2 * time.Second)
	}

	res, err := limiter.Allow(ctx, "account:1", PerSecond(5))
	require.NoError(t, err)
	require.False(t, res.Allowed)
	require.Equal(t, 0, res.Remaining)
	require.Equal(t, 200*time.Millisecond, res.RetryAfter)

	res, err = limiter.Allow(ctx, "account:2", PerSecond(5))
	require.NoError(t, err)
	require.True(t, res.Allowed)

	require.Equal(t, 2, fallback.len())
}

func TestRedisUnreachableLogsOncePerMinute(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	logger, logs := newTestLogger()
	limiter, _, clock := newUnreachableRedis(t, logger)

	// The first request fails on Redis, and the next ones within a second
	// use the fallback without trying Redis.
	for range 5 {
		_, err := limiter.Allow(ctx, "account:1", PerSecond(5))
		require.NoError(t, err)
	}
	// Each of these requests tries Redis again, fails, and is not logged.
	for range 10 {
		clock.Advance(2 * time.Second)
		_, err := limiter.Allow(ctx, "account:1", PerSecond(5))
		require.NoError(t, err)
	}

	records := logs.records(t)
	require.Len(t, records, 1)
	require.Equal(t, "WARN", records[0]["level"])
	require.Equal(t, "redis rate limiter failed, using in-process limiter", records[0]["msg"])
	require.Contains(t, records[0]["error"], "127.0.0.1:1")
	require.Equal(t, "ratelimit_test:", records[0]["key_prefix"])
	require.Equal(t, float64(0), records[0]["suppressed_errors"])

	clock.Advance(time.Minute)
	_, err := limiter.Allow(ctx, "account:1", PerSecond(5))
	require.NoError(t, err)

	records = logs.records(t)
	require.Len(t, records, 2)
	require.Equal(t, "redis rate limiter failed, using in-process limiter", records[1]["msg"])
	require.Equal(t, float64(10), records[1]["suppressed_errors"])
}

func TestRedisRecoversAfterOutage(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	logger, logs := newTestLogger()

	// The client dials the real Redis except while redisDown is set.
	var redisDown atomic.Bool
	client := redis.NewClient(&redis.Options{
		Addr: redisAddr,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if redisDown.Load() {
				return nil, errors.New("test: redis is down")
			}
			var dialer net.Dialer
			return dialer.DialContext(ctx, network, addr)
		},
		DialerRetries: 1,
		MaxRetries:    -1,
	})
	t.Cleanup(func() { _ = client.Close() })
	prefix := newTestPrefix(t, newRedisClient(t))

	fallback := NewLocal()
	limiter := NewRedis(client, prefix, fallback, logger)
	clock := newFakeClock()
	limiter.now = clock.Now

	redisDown.Store(true)
	res, err := limiter.Allow(ctx, "account:1", slowLimit)
	require.NoError(t, err)
	require.True(t, res.Allowed)
	require.Equal(t, 1, fallback.len())

	// Within a second of the error the limiter does not try Redis.
	redisDown.Store(false)
	res, err = limiter.Allow(ctx, "account:1", slowLimit)
	require.NoError(t, err)
	require.True(t, res.Allowed)
	require.Equal(t, 3, res.Remaining, "the fallback must answer")

	clock.Advance(2 * time.Second)
	res, err = limiter.Allow(ctx, "account:1", slowLimit)
	require.NoError(t, err)
	require.True(t, res.Allowed)
	require.Equal(t, 4, res.Remaining, "Redis must answer")

	records := logs.records(t)
	require.Len(t, records, 2)
	require.Equal(t, "WARN", records[0]["level"])
	require.Contains(t, records[0]["error"], "test: redis is down")
	require.Equal(t, "INFO", records[1]["level"])
	require.Equal(t, "redis rate limiter recovered", records[1]["msg"])
	require.Equal(t, prefix, records[1]["key_prefix"])
}

func TestRedisConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	client1 := newRedisClient(t)
	client2 := newRedisClient(t)
	prefix := newTestPrefix(t, client1)
	fallback := NewLocal()
	nodes := []*Redis{
		NewRedis(client1, prefix, fallback, nil),
		NewRedis(client2, prefix, fallback, nil),
	}
	// One token per 864 s, so real time cannot refill one during the test.
	limit := Limit{Rate: 100, Burst: 100, Period: 24 * time.Hour}

	const workers = 20
	const requests = 25
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for w := range workers {
		node := nodes[w%len(nodes)]
		wg.Go(func() {
			for range requests {
				res, err := node.Allow(ctx, "shared", limit)
				if err != nil {
					t.Errorf("allow: %v", err)
					return
				}
				if res.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()

	require.Equal(t, int64(100), allowed.Load())
	require.Zero(t, fallback.len(), "the fallback must not be used")
}
