package metrics_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher/metrics"
)

// scrape fetches the handler's output through a real HTTP server and
// returns the status code and body.
func scrape(t *testing.T, handler http.Handler, authorization string) (int, string) {
	t.Helper()
	server := httptest.NewServer(handler)
	t.Cleanup(server.Close)
	req, err := http.NewRequest(http.MethodGet, server.URL+"/metrics", nil)
	require.NoError(t, err)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	res, err := server.Client().Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(body)
}

// lines returns the sample lines of a text scrape as a set.
func lines(body string) map[string]bool {
	set := map[string]bool{}
	for _, line := range strings.Split(body, "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			set[line] = true
		}
	}
	return set
}

func discardLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	m := metrics.New(discardLogger())

	m.ObserveRequest("GET /api/v1/accounts/", "GET", 200, 250*time.Millisecond)
	m.ObserveRequest("GET /api/v1/accounts/", "GET", 200, 750*time.Millisecond)
	m.ObserveRequest("GET /api/v1/accounts/", "GET", 404, time.Second)
	m.ObserveRequest("", "POST", 404, 0)
	m.EventAccepted(false)
	m.EventAccepted(false)
	m.EventAccepted(true)
	m.ObserveDelivery("success", "", 500*time.Millisecond)
	m.ObserveDelivery("retrying", "timeout", 10*time.Second)
	m.ObserveDelivery("retrying", "timeout", 10*time.Second)
	m.RateLimited("incoming")
	m.RateLimited("login")
	m.RateLimited("login")
	m.CacheLookup("account_token", true)
	m.CacheLookup("account_token", false)
	m.CacheLookup("account_token", true)

	status, body := scrape(t, m.Handler(""), "")
	require.Equal(t, http.StatusOK, status)
	got := lines(body)
	for _, want := range []string{
		`datapusher_http_requests_total{method="GET",route="GET /api/v1/accounts/",status="200"} 2`,
		`datapusher_http_requests_total{method="GET",route="GET /api/v1/accounts/",status="404"} 1`,
		`datapusher_http_requests_total{method="POST",route="unmatched",status="404"} 1`,
		`datapusher_http_request_duration_seconds_count{method="GET",route="GET /api/v1/accounts/"} 3`,
		`datapusher_http_request_duration_seconds_sum{method="GET",route="GET /api/v1/accounts/"} 2`,
		`datapusher_http_request_duration_seconds_bucket{method="GET",route="GET /api/v1/accounts/",le="0.5"} 1`,
		`datapusher_events_accepted_total{duplicate="false"} 2`,
		`datapusher_events_accepted_total{duplicate="true"} 1`,
		`datapusher_deliveries_total{error_class="none",outcome="success"} 1`,
		`datapusher_deliveries_total{error_class="timeout",outcome="retrying"} 2`,
		`datapusher_delivery_duration_seconds_count{outcome="retrying"} 2`,
		`datapusher_delivery_duration_seconds_sum{outcome="retrying"} 20`,
		`datapusher_delivery_duration_seconds_sum{outcome="success"} 0.5`,
		`datapusher_rate_limited_total{scope="incoming"} 1`,
		`datapusher_rate_limited_total{scope="login"} 2`,
		`datapusher_cache_requests_total{cache="account_token",result="hit"} 2`,
		`datapusher_cache_requests_total{cache="account_token",result="miss"} 1`,
		`datapusher_circuit_breakers{state="open"} 0`,
		`datapusher_circuit_breakers{state="half-open"} 0`,
	} {
		require.True(t, got[want], "scrape lacks %s", want)
	}
	require.Contains(t, body, "go_goroutines ", "the Go collector is registered")
	require.Contains(t, body, "process_start_time_seconds ", "the process collector is registered")
}

func TestMetricsRegistriesAreSeparate(t *testing.T) {
	t.Parallel()
	first, second := metrics.New(discardLogger()), metrics.New(discardLogger())
	first.RateLimited("api")

	_, body := scrape(t, second.Handler(""), "")
	require.NotContains(t, body, "datapusher_rate_limited_total{")
	_, body = scrape(t, first.Handler(""), "")
	require.Contains(t, body, `datapusher_rate_limited_total{scope="api"} 1`)
}

func TestCircuitState(t *testing.T) {
	t.Parallel()
	m := metrics.New(discardLogger())
	expect := func(open, halfOpen string) {
		t.Helper()
		_, body := scrape(t, m.Handler(""), "")
		got := lines(body)
		require.True(t, got[`datapusher_circuit_breakers{state="open"} `+open], "open should be %s:\n%s", open, body)
		require.True(t, got[`datapusher_circuit_breakers{state="half-open"} `+halfOpen], "half-open should be %s:\n%s", halfOpen, body)
	}

	m.SetCircuitState("d1", metrics.CircuitOpen)
	m.SetCircuitState("d2", metrics.CircuitOpen)
	m.SetCircuitState("d2", metrics.CircuitOpen)
	expect("2", "0")

	m.SetCircuitState("d1", metrics.CircuitHalfOpen)
	expect("1", "1")

	m.SetCircuitState("d1", metrics.CircuitClosed)
	m.SetCircuitState("d3", metrics.CircuitClosed)
	expect("1", "0")

	m.SetCircuitState("d2", "sideways")
	expect("0", "0")
	_, body := scrape(t, m.Handler(""), "")
	require.Contains(t, body, `datapusher_circuit_breakers{state="unknown"} 1`)
}

func TestQueueCollector(t *testing.T) {
	t.Parallel()

	t.Run("ExportsDepthAndAge", func(t *testing.T) {
		t.Parallel()
		m := metrics.New(discardLogger())
		calls := 0
		require.NoError(t, m.WatchQueue(func(ctx context.Context) (int64, time.Duration, error) {
			calls++
			_, hasDeadline := ctx.Deadline()
			require.True(t, hasDeadline, "the statistics read has a timeout")
			return 7, 90 * time.Second, nil
		}))

		status, body := scrape(t, m.Handler(""), "")
		require.Equal(t, http.StatusOK, status)
		got := lines(body)
		require.True(t, got["datapusher_queue_depth 7"], body)
		require.True(t, got["datapusher_queue_oldest_pending_seconds 90"], body)
		require.Equal(t, 1, calls, "one read per scrape")
	})

	t.Run("ErrorKeepsOtherMetrics", func(t *testing.T) {
		t.Parallel()
		var logs bytes.Buffer
		m := metrics.New(slog.New(slog.NewTextHandler(&logs, nil)))
		require.NoError(t, m.WatchQueue(func(context.Context) (int64, time.Duration, error) {
			return 0, 0, errors.New("database unavailable")
		}))
		m.EventAccepted(false)

		status, body := scrape(t, m.Handler(""), "")
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, body, `datapusher_events_accepted_total{duplicate="false"} 1`)
		require.NotContains(t, body, "datapusher_queue_depth ")
		require.Contains(t, logs.String(), "read queue stats: database unavailable")

		// The handler counts a gathering error after it has written the
		// scrape, so the next scrape shows the first one.
		_, body = scrape(t, m.Handler(""), "")
		require.Contains(t, body, `promhttp_metric_handler_errors_total{cause="gathering"} 1`)
	})
}

func TestHandlerToken(t *testing.T) {
	t.Parallel()
	m := metrics.New(discardLogger())
	m.EventAccepted(true)
	handler := m.Handler("s3cret-token")

	for name, authorization := range map[string]string{
		"RejectsMissingHeader": "",
		"RejectsWrongToken":    "Bearer s3cret-tokeN",
		"RejectsTokenPrefix":   "Bearer s3cret",
		"RejectsOtherScheme":   "Basic s3cret-token",
		"RejectsEmptyToken":    "Bearer ",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			status, body := scrape(t, handler, authorization)
			require.Equal(t, http.StatusUnauthorized, status)
			require.NotContains(t, body, "datapusher_events_accepted_total")
		})
	}
	t.Run("AcceptsToken", func(t *testing.T) {
		t.Parallel()
		status, body := scrape(t, handler, "Bearer s3cret-token")
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, body, `datapusher_events_accepted_total{duplicate="true"} 1`)
	})
	t.Run("AcceptsLowercaseScheme", func(t *testing.T) {
		t.Parallel()
		status, _ := scrape(t, handler, "bearer s3cret-token")
		require.Equal(t, http.StatusOK, status)
	})
	t.Run("ChallengesClient", func(t *testing.T) {
		t.Parallel()
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		require.Equal(t, http.StatusUnauthorized, rec.Code)
		require.Equal(t, `Bearer realm="metrics"`, rec.Header().Get("WWW-Authenticate"))
	})
}

func TestNilMetrics(t *testing.T) {
	t.Parallel()
	var m *metrics.Metrics
	require.NotPanics(t, func() {
		m.ObserveRequest("GET /", "GET", 200, time.Millisecond)
		m.EventAccepted(false)
		m.ObserveDelivery("success", "", time.Millisecond)
		m.RateLimited("api")
		m.CacheLookup("account_token", true)
		m.SetCircuitState("d1", metrics.CircuitOpen)
		require.NoError(t, m.WatchQueue(nil))
		require.Nil(t, m.Registry())
	})
	status, _ := scrape(t, m.Handler("token"), "Bearer token")
	require.Equal(t, http.StatusNotFound, status)
}
