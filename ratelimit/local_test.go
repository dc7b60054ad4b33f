package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// newTestLocal returns a Local whose clock does not move until the test
// advances it.
func newTestLocal() (*Local, *fakeClock) {
	clock := newFakeClock()
	local := NewLocal()
	local.now = clock.Now
	return local, clock
}

func (l *Local) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

func TestLocalBurstThenReject(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	local, _ := newTestLocal()

	for i := range 5 {
		res, err := local.Allow(ctx, "account:1", PerSecond(5))
		require.NoError(t, err)
		require.True(t, res.Allowed, "request %d", i+1)
		require.Equal(t, 5, res.Limit)
		require.Equal(t, 4-i, res.Remaining)
		require.Zero(t, res.RetryAfter)
		require.Equal(t, time.Duration(i+1)*200*time.Millisecond, res.ResetAfter)
	}

	res, err := local.Allow(ctx, "account:1", PerSecond(5))
	require.NoError(t, err)
	require.False(t, res.Allowed)
	require.Equal(t, 5, res.Limit)
	require.Equal(t, 0, res.Remaining)
	require.Equal(t, 200*time.Millisecond, res.RetryAfter)
	require.Equal(t, time.Second, res.ResetAfter)
}

func TestLocalRefillsAtRate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	local, clock := newTestLocal()

	for range 5 {
		_, err := local.Allow(ctx, "account:1", PerSecond(5))
		require.NoError(t, err)
	}

	clock.Advance(199 * time.Millisecond)
	res, err := local.Allow(ctx, "account:1", PerSecond(5))
	require.NoError(t, err)
	require.False(t, res.Allowed)
	// x/time/rate counts tokens as float64, so allow a rounding error.
	require.InDelta(t, time.Millisecond, res.RetryAfter, float64(time.Microsecond))

	clock.Advance(time.Millisecond)
	res, err = local.Allow(ctx, "account:1", PerSecond(5))
	require.NoError(t, err)
	require.True(t, res.Allowed)
	require.Equal(t, 0, res.Remaining)

	clock.Advance(time.Second)
	res, err = local.Allow(ctx, "account:1", PerSecond(5))
	require.NoError(t, err)
	require.True(t, res.Allowed)
	require.Equal(t, 4, res.Remaining)
}

func TestLocalKeysIndependent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	local, _ := newTestLocal()

	for range 6 {
		_, err := local.Allow(ctx, "account:1", PerSecond(5))
		require.NoError(t, err)
	}

	res, err := local.Allow(ctx, "account:2", PerSecond(5))
	require.NoError(t, err)
	require.True(t, res.Allowed)
	require.Equal(t, 4, res.Remaining)

	res, err = local.Allow(ctx, "account:1", PerSecond(5))
	require.NoError(t, err)
	require.False(t, res.Allowed)
}

func TestLocalPeekDoesNotConsume(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	local, _ := newTestLocal()
	limit := PerMinute(5)

	for range 10 {
		res, err := local.AllowN(ctx, "login_email:ada@example.com", limit, 0)
		require.NoError(t, err)
		require.True(t, res.Allowed)
		require.Equal(t, 5, res.Remaining)
		require.Zero(t, res.RetryAfter)
	}

	for i := range 5 {
		res, err := local.Allow(ctx, "login_email:ada@example.com", limit)
		require.NoError(t, err)
		require.True(t, res.Allowed, "failure %d", i+1)
	}

	res, err := local.AllowN(ctx, "login_email:ada@example.com", limit, 0)
	require.NoError(t, err)
	require.False(t, res.Allowed)
	require.Equal(t, 0, res.Remaining)
	require.Equal(t, 12*time.Second, res.RetryAfter)
	require.Equal(t, time.Minute, res.ResetAfter)
}

func TestLocalRejectsMoreThanBurst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	local, _ := newTestLocal()

	res, err := local.AllowN(ctx, "account:1", PerSecond(5), 6)
	require.NoError(t, err)
	require.False(t, res.Allowed)
	require.Equal(t, 200*time.Millisecond, res.RetryAfter)

	res, err = local.AllowN(ctx, "account:1", PerSecond(5), 5)
	require.NoError(t, err)
	require.True(t, res.Allowed, "a rejected request must not consume tokens")
	require.Equal(t, 0, res.Remaining)
}

func TestLocalLimitChangeKeepsTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	local, clock := newTestLocal()

	for range 5 {
		_, err := local.Allow(ctx, "account:1", PerSecond(5))
		require.NoError(t, err)
	}

	res, err := local.Allow(ctx, "account:1", PerSecond(10))
	require.NoError(t, err)
	require.False(t, res.Allowed)
	require.Equal(t, 10, res.Limit)
	require.Equal(t, 100*time.Millisecond, res.RetryAfter)

	clock.Advance(100 * time.Millisecond)
	res, err = local.Allow(ctx, "account:1", PerSecond(10))
	require.NoError(t, err)
	require.True(t, res.Allowed)
}

func TestLocalEvictsIdleKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	local, clock := newTestLocal()
	hourly := Limit{Rate: 1, Burst: 1, Period: time.Hour}

	for i := range 100 {
		_, err := local.Allow(ctx, fmt.Sprintf("account:%d", i), PerSecond(5))
		require.NoError(t, err)
	}
	_, err := local.Allow(ctx, "login_ip:192.0.2.1", hourly)
	require.NoError(t, err)
	require.Equal(t, 101, local.len())

	// Within a minute of the first request no sweep runs.
	clock.Advance(30 * time.Second)
	_, err = local.Allow(ctx, "account:new", PerSecond(5))
	require.NoError(t, err)
	require.Equal(t, 102, local.len())

	// The sweep drops the per-second keys, which have refilled, and keeps
	// the hourly key, which has not.
	clock.Advance(31 * time.Second)
	_, err = local.Allow(ctx, "account:newer", PerSecond(5))
	require.NoError(t, err)
	require.Equal(t, 2, local.len())

	res, err := local.Allow(ctx, "login_ip:192.0.2.1", hourly)
	require.NoError(t, err)
	require.False(t, res.Allowed, "a key that has not refilled must keep its state")

	clock.Advance(2 * time.Hour)
	_, err = local.Allow(ctx, "account:newest", PerSecond(5))
	require.NoError(t, err)
	require.Equal(t, 1, local.len())
}

func TestLocalConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	local, clock := newTestLocal()
	shared := Limit{Rate: 100, Burst: 100, Period: time.Hour}
	own := Limit{Rate: 10, Burst: 10, Period: time.Hour}

	const workers = 20
	const requests = 50
	var sharedAllowed atomic.Int64
	ownAllowed := make([]int, workers)

	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for range requests {
				res, err := local.Allow(ctx, "shared", shared)
				if err != nil {
					t.Errorf("shared key: %v", err)
					return
				}
				if res.Allowed {
					sharedAllowed.Add(1)
				}

				res, err = local.Allow(ctx, fmt.Sprintf("worker:%d", w), own)
				if err != nil {
					t.Errorf("worker key: %v", err)
					return
				}
				if res.Allowed {
					ownAllowed[w]++
				}

				// Time moves, but less than one token of either limit.
				clock.Advance(time.Millisecond)
			}
		})
	}
	wg.Wait()

	require.Equal(t, int64(100), sharedAllowed.Load())
	for w, allowed := range ownAllowed {
		require.Equal(t, 10, allowed, "worker %d", w)
	}
}

func TestLocalInvalidLimit(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name  string
		limit Limit
		n     int
		want  string
	}{
		{"zero rate", Limit{Rate: 0, Burst: 5, Period: time.Second}, 1, "invalid rate limit 0/1s (burst 5)"},
		{"zero burst", Limit{Rate: 5, Burst: 0, Period: time.Second}, 1, "invalid rate limit 5/1s (burst 0)"},
		{"zero period", Limit{Rate: 5, Burst: 5}, 1, "invalid rate limit 5/0s (burst 5)"},
		{"negative count", PerSecond(5), -1, "invalid request count -1"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			_, err := NewLocal().AllowN(context.Background(), "account:1", tt.limit, tt.n)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
