package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/internal/testdb"
	"github.com/datapusher/datapusher/metrics"
	"github.com/datapusher/datapusher/ratelimit"
)

// recordingLimiter passes every call to a real Limiter and records it.
type recordingLimiter struct {
	ratelimit.Limiter

	mu    sync.Mutex
	calls []limiterCall
}

// limiterCall is one AllowN call: Allow calls are recorded with n = 1.
type limiterCall struct {
	key   string
	limit ratelimit.Limit
	n     int
}

func newRecordingLimiter() *recordingLimiter {
	return &recordingLimiter{Limiter: ratelimit.NewLocal()}
}

func (l *recordingLimiter) Allow(ctx context.Context, key string, limit ratelimit.Limit) (ratelimit.Result, error) {
	return l.AllowN(ctx, key, limit, 1)
}

func (l *recordingLimiter) AllowN(ctx context.Context, key string, limit ratelimit.Limit, n int) (ratelimit.Result, error) {
	l.mu.Lock()
	l.calls = append(l.calls, limiterCall{key, limit, n})
	l.mu.Unlock()
	return l.Limiter.AllowN(ctx, key, limit, n)
}

// callsFor returns the recorded calls whose key starts with prefix.
func (l *recordingLimiter) callsFor(prefix string) []limiterCall {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []limiterCall
	for _, c := range l.calls {
		if strings.HasPrefix(c.key, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// forEachDialectWith is forEachDialect with the Config that newConfig
// returns, called once per dialect so that no state is shared.
func forEachDialectWith(t *testing.T, newConfig func() Config, fn func(t *testing.T, fx *fixture)) {
	t.Helper()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			fn(t, newFixture(t, testdb.Open(t, dialect), newConfig()))
		})
	}
}

// counterValue returns the value of the counter series of the named metric
// whose labels include labels, or 0 when there is none.
func counterValue(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	require.NoError(t, err)
	for _, family := range families {
		if family.GetName() != name {
			continue
		}
		for _, metric := range family.GetMetric() {
			got := map[string]string{}
			for _, pair := range metric.GetLabel() {
				got[pair.GetName()] = pair.GetValue()
			}
			if hasLabels(got, labels) {
				return metric.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func hasLabels(got, want map[string]string) bool {
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// requireThrottled checks a 429 response: the body has Django REST
// Framework's message with the Retry-After value, which is between 1 and
// maxWait seconds, and the RateLimit headers are set.
func requireThrottled(t *testing.T, resp *response, maxWait int) {
	t.Helper()
	require.Equal(t, http.StatusTooManyRequests, resp.status, "%s", resp.body)
	wait, err := strconv.Atoi(resp.header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After %q", resp.header.Get("Retry-After"))
	require.GreaterOrEqual(t, wait, 1)
	require.LessOrEqual(t, wait, maxWait)
	unit := "seconds"
	if wait == 1 {
		unit = "second"
	}
	want := fmt.Sprintf("Request was throttled. Expected available in %d %s.", wait, unit)
	require.Equal(t, map[string]any{"detail": want}, resp.object(t))
	require.Equal(t, "0", resp.header.Get("RateLimit-Remaining"))
	require.NotEmpty(t, resp.header.Get("RateLimit-Limit"))
	require.NotEmpty(t, resp.header.Get("RateLimit-Reset"))
}

func TestAPIRateLimit(t *testing.T) {
	t.Parallel()
	newConfig := func() Config {
		return Config{Limiter: newRecordingLimiter(), APIRatePerSecond: 1, Metrics: metrics.New(nil)}
	}
	forEachDialectWith(t, newConfig, func(t *testing.T, fx *fixture) {
		limiter := fx.server.cfg.Limiter.(*recordingLimiter)
		m := fx.server.cfg.Metrics

		t.Run("ThrottlesPerUser", func(t *testing.T) {
			require.Equal(t, http.StatusOK, fx.do("GET", "/api/users/me/", fx.admin, nil).status)
			resp := fx.do("GET", "/api/accounts/", fx.admin, nil)
			requireThrottled(t, resp, 1)
			require.Equal(t, "1", resp.header.Get("RateLimit-Limit"))

			// Another user has a limit of their own.
			require.Equal(t, http.StatusOK, fx.do("GET", "/api/users/me/", fx.normal, nil).status)
			require.Equal(t, float64(1), counterValue(t, m, "datapusher_rate_limited_total",
				map[string]string{"scope": "api"}))
		})
		t.Run("KeyAndLimit", func(t *testing.T) {
			calls := limiter.callsFor("api:" + fx.admin.user.ID)
			require.NotEmpty(t, calls)
			for _, c := range calls {
				require.Equal(t, ratelimit.PerSecond(1), c.limit)
				require.Equal(t, 1, c.n)
			}
		})
		t.Run("PublicRoutesNotCounted", func(t *testing.T) {
			before := len(limiter.callsFor("api:"))
			require.Equal(t, http.StatusOK, fx.do("GET", "/healthz", nil, nil).status)
			require.Equal(t, http.StatusUnauthorized, fx.do("GET", "/api/users/me/", nil, nil).status)
			require.Equal(t, http.StatusOK, fx.do("GET", "/api/schema/", fx.outsider, nil).status)
			require.Len(t, limiter.callsFor("api:"), before)
		})
		t.Run("RecoversAfterWait", func(t *testing.T) {
			require.Equal(t, http.StatusOK, fx.do("GET", "/api/users/me/", fx.super, nil).status)
			requireThrottled(t, fx.do("GET", "/api/users/me/", fx.super, nil), 1)
			time.Sleep(1100 * time.Millisecond)
			require.Equal(t, http.StatusOK, fx.do("GET", "/api/users/me/", fx.super, nil).status)
		})
	})
}

func TestAPIRateLimitDisabled(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, testdb.Open(t, testdb.Dialects[0]), Config{APIRatePerSecond: 1})
	for range 5 {
		require.Equal(t, http.StatusOK, fx.do("GET", "/api/users/me/", fx.admin, nil).status)
	}
}

// signInFrom posts a sign-in from remoteAddr with the extra header fields.
func (fx *fixture) signInFrom(t *testing.T, remoteAddr, email, password string, header http.Header) *response {
	t.Helper()
	body := fmt.Sprintf(`{"email": %q, "password": %q}`, email, password)
	req := httptest.NewRequest("POST", "/api/token/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for name, values := range header {
		req.Header[name] = values
	}
	req.RemoteAddr = remoteAddr
	return serveRequest(t, fx.server.Handler(), req, []byte(body))
}

func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	newConfig := func() Config {
		return Config{Limiter: newRecordingLimiter(), LoginFailuresPerMinute: 3, Metrics: metrics.New(nil)}
	}
	forEachDialectWith(t, newConfig, func(t *testing.T, fx *fixture) {
		limiter := fx.server.cfg.Limiter.(*recordingLimiter)
		m := fx.server.cfg.Metrics
		throttledCount := 0

		t.Run("PerEmail", func(t *testing.T) {
			for i := range 3 {
				resp := fx.signInFrom(t, fmt.Sprintf("10.0.0.%d:4000", i+1), "admin@example.com", "wrong password", nil)
				require.Equal(t, http.StatusUnauthorized, resp.status, "attempt %d", i+1)
			}
			// A new IP with the right password is still rejected, before
			// the password is checked.
			requireThrottled(t, fx.signInFrom(t, "10.0.0.9:4000", "admin@example.com", testPassword, nil), 20)
			requireThrottled(t, fx.signInFrom(t, "10.0.0.9:4000", " ADMIN@Example.com", testPassword, nil), 20)
			throttledCount += 2

			resp := fx.signInFrom(t, "10.0.0.9:4000", "normal@example.com", testPassword, nil)
			require.Equal(t, http.StatusOK, resp.status, "other emails are not limited: %s", resp.body)
		})
		t.Run("PerIP", func(t *testing.T) {
			for i := range 3 {
				resp := fx.signInFrom(t, "10.1.0.1:5000", fmt.Sprintf("nobody%d@example.com", i), testPassword, nil)
				require.Equal(t, http.StatusUnauthorized, resp.status)
			}
			requireThrottled(t, fx.signInFrom(t, "10.1.0.1:5001", "root@example.com", testPassword, nil), 20)
			throttledCount++

			resp := fx.signInFrom(t, "10.1.0.2:5000", "root@example.com", testPassword, nil)
			require.Equal(t, http.StatusOK, resp.status, "other IPs are not limited: %s", resp.body)
		})
		t.Run("IgnoresForwardedFor", func(t *testing.T) {
			for i := range 4 {
				resp := fx.signInFrom(t, "10.2.0.1:6000", fmt.Sprintf("ghost%d@example.com", i), "x",
					http.Header{"X-Forwarded-For": {fmt.Sprintf("203.0.113.%d", i)}, "X-Real-Ip": {"203.0.113.99"}})
				if i < 3 {
					require.Equal(t, http.StatusUnauthorized, resp.status)
				} else {
					requireThrottled(t, resp, 20)
					throttledCount++
				}
			}
			require.Empty(t, limiter.callsFor("login-ip:203.0.113."))
		})
		t.Run("SuccessDoesNotCount", func(t *testing.T) {
			for range 5 {
				resp := fx.signInFrom(t, "10.3.0.1:7000", "outsider@example.com", testPassword, nil)
				require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			}
			for _, c := range limiter.callsFor("login-email:outsider@example.com") {
				require.Equal(t, 0, c.n, "a successful sign-in only checks the limit")
			}
			for range 3 {
				resp := fx.signInFrom(t, "10.3.0.1:7000", "outsider@example.com", "wrong password", nil)
				require.Equal(t, http.StatusUnauthorized, resp.status)
			}
			requireThrottled(t, fx.signInFrom(t, "10.3.0.1:7000", "outsider@example.com", testPassword, nil), 20)
			throttledCount++
		})
		t.Run("KeysAndLimit", func(t *testing.T) {
			failures := 0
			for _, c := range limiter.callsFor("login-") {
				require.Equal(t, ratelimit.PerMinute(3), c.limit)
				if c.n == 1 {
					failures++
				}
			}
			// Each failed sign-in above consumed one from its email key and
			// one from its IP key: 3 in each of the four subtests.
			require.Equal(t, 2*12, failures)
			require.NotEmpty(t, limiter.callsFor("login-email:admin@example.com"))
			require.NotEmpty(t, limiter.callsFor("login-ip:10.1.0.1"))
			require.Empty(t, limiter.callsFor("login-email: "), "emails are trimmed")
		})
		t.Run("ValidationErrorsNotCounted", func(t *testing.T) {
			before := len(limiter.callsFor("login-"))
			resp := fx.do("POST", "/api/token/", nil, map[string]any{"email": "admin@example.com"})
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.Len(t, limiter.callsFor("login-"), before)
		})
		t.Run("Metrics", func(t *testing.T) {
			require.Equal(t, float64(throttledCount), counterValue(t, m, "datapusher_rate_limited_total",
				map[string]string{"scope": "login"}))
		})
		t.Run("LogsNoEmails", func(t *testing.T) {
			logs := fx.logs.String()
			require.NotContains(t, logs, "login-email")
			require.NotContains(t, logs, "admin@example.com")
			require.NotContains(t, logs, "wrong password")
		})
	})
}

func TestLoginRateLimitDisabled(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, testdb.Open(t, testdb.Dialects[0]), Config{LoginFailuresPerMinute: 1})
	for range 4 {
		resp := fx.do("POST", "/api/token/", nil, map[string]any{"email": "admin@example.com", "password": "nope"})
		require.Equal(t, http.StatusUnauthorized, resp.status)
	}
	fx.signIn(t, "admin@example.com")
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	for remoteAddr, want := range map[string]string{
		"192.0.2.1:1234":     "192.0.2.1",
		"[2001:db8::1]:443":  "2001:db8::1",
		"192.0.2.7":          "192.0.2.7",
		"":                   "",
		"unix-socket-client": "unix-socket-client",
	} {
		req := httptest.NewRequest("GET", "/", nil)
		req.RemoteAddr = remoteAddr
		require.Equal(t, want, clientIP(req), remoteAddr)
	}
}

func TestThrottledMessage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		retryAfter time.Duration
		want       string
	}{
		{time.Nanosecond, "Request was throttled. Expected available in 1 second."},
		{time.Second, "Request was throttled. Expected available in 1 second."},
		{1001 * time.Millisecond, "Request was throttled. Expected available in 2 seconds."},
		{59 * time.Second, "Request was throttled. Expected available in 59 seconds."},
	} {
		rec := httptest.NewRecorder()
		err := throttled(rec, ratelimit.Result{Limit: 5, RetryAfter: tc.retryAfter, ResetAfter: time.Minute})
		require.Equal(t, codeThrottled, datapusher.ErrorCode(err))
		require.Equal(t, tc.want, datapusher.ErrorMessage(err))
		require.Equal(t, strings.Fields(tc.want)[6], rec.Header().Get("Retry-After"))
	}
}

func TestPublicRateLimit(t *testing.T) {
	t.Parallel()
	newConfig := func() Config {
		return Config{Limiter: newRecordingLimiter(), PublicRatePerMinute: 2, Metrics: metrics.New(nil)}
	}
	forEachDialectWith(t, newConfig, func(t *testing.T, fx *fixture) {
		register := func(email string) *response {
			return fx.do("POST", "/api/users/register/", nil, map[string]any{"email": email, "password": "a long password"})
		}
		require.Equal(t, http.StatusCreated, register("one@example.test").status)
		require.Equal(t, http.StatusCreated, register("two@example.test").status)
		requireThrottled(t, register("three@example.test"), 60)

		resp := fx.do("POST", "/api/users/accept-invite/", nil, map[string]any{"token": "x", "password": "a long password"})
		require.Equal(t, http.StatusTooManyRequests, resp.status, "the limit is per client IP across public routes")
		require.Equal(t, float64(2), counterValue(t, fx.server.cfg.Metrics, "datapusher_rate_limited_total",
			map[string]string{"scope": "public"}))
	})
}
