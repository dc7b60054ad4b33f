package ratelimit

import (
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeClock is a settable clock for the now fields of Local and Redis.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func TestLimitHelpers(t *testing.T) {
	t.Parallel()

	require.Equal(t, Limit{Rate: 5, Burst: 5, Period: time.Second}, PerSecond(5))
	require.Equal(t, Limit{Rate: 20, Burst: 20, Period: time.Minute}, PerMinute(20))
	require.Equal(t, "5/1s (burst 5)", PerSecond(5).String())
}

func TestSetHeaders(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name   string
		result Result
		want   map[string]string
	}{
		{
			name:   "allowed",
			result: Result{Allowed: true, Limit: 5, Remaining: 3, ResetAfter: 400 * time.Millisecond},
			want: map[string]string{
				"RateLimit-Limit":     "5",
				"RateLimit-Remaining": "3",
				"RateLimit-Reset":     "1",
				"Retry-After":         "",
			},
		},
		{
			name:   "allowed and full",
			result: Result{Allowed: true, Limit: 5, Remaining: 5},
			want: map[string]string{
				"RateLimit-Limit":     "5",
				"RateLimit-Remaining": "5",
				"RateLimit-Reset":     "0",
				"Retry-After":         "",
			},
		},
		{
			name:   "rejected under one second",
			result: Result{Limit: 5, RetryAfter: 200 * time.Millisecond, ResetAfter: time.Second},
			want: map[string]string{
				"RateLimit-Limit":     "5",
				"RateLimit-Remaining": "0",
				"RateLimit-Reset":     "1",
				"Retry-After":         "1",
			},
		},
		{
			name:   "rejected rounds up",
			result: Result{Limit: 5, RetryAfter: 12*time.Second + time.Nanosecond, ResetAfter: 59500 * time.Millisecond},
			want: map[string]string{
				"RateLimit-Reset": "60",
				"Retry-After":     "13",
			},
		},
		{
			name:   "rejected whole seconds",
			result: Result{Limit: 5, RetryAfter: 2 * time.Second, ResetAfter: 10 * time.Second},
			want: map[string]string{
				"RateLimit-Reset": "10",
				"Retry-After":     "2",
			},
		},
		{
			name:   "rejected without retry time",
			result: Result{Limit: 5},
			want: map[string]string{
				"RateLimit-Reset": "0",
				"Retry-After":     "1",
			},
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()

			h := http.Header{}
			tt.result.SetHeaders(h)
			for name, want := range tt.want {
				require.Equal(t, want, h.Get(name), "header %s", name)
			}
		})
	}
}

func TestSetHeadersKeepsRetryAfterWhenAllowed(t *testing.T) {
	t.Parallel()

	h := http.Header{}
	h.Set("Retry-After", "30")
	Result{Allowed: true, Limit: 5, Remaining: 4}.SetHeaders(h)

	require.Equal(t, "30", h.Get("Retry-After"))
}
