package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/ingest"
	"github.com/datapusher/datapusher/internal/testdb"
	"github.com/datapusher/datapusher/metrics"
	"github.com/datapusher/datapusher/ratelimit"
)

// histogramCount returns the sample count of the histogram series of the
// named metric whose labels include labels, or 0 when there is none.
func histogramCount(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) uint64 {
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
				return metric.GetHistogram().GetSampleCount()
			}
		}
	}
	return 0
}

// routeLabels returns the route label of every series of the request
// counter.
func routeLabels(t *testing.T, m *metrics.Metrics) []string {
	t.Helper()
	families, err := m.Registry().Gather()
	require.NoError(t, err)
	var routes []string
	for _, family := range families {
		if family.GetName() != "datapusher_http_requests_total" {
			continue
		}
		for _, metric := range family.GetMetric() {
			for _, pair := range metric.GetLabel() {
				if pair.GetName() == "route" {
					routes = append(routes, pair.GetValue())
				}
			}
		}
	}
	return routes
}

func TestRequestMetrics(t *testing.T) {
	t.Parallel()
	m := metrics.New(nil)
	fx := newFixture(t, testdb.Open(t, testdb.Dialects[0]), Config{Metrics: m})
	requests := func(labels map[string]string) float64 {
		return counterValue(t, m, "datapusher_http_requests_total", labels)
	}

	t.Run("RoutePattern", func(t *testing.T) {
		for range 2 {
			resp := fx.do("GET", "/api/accounts/"+fx.account.AccountID+"/", fx.admin, nil)
			require.Equal(t, http.StatusOK, resp.status)
		}
		labels := map[string]string{"route": "GET /api/accounts/{account_id}/", "method": "GET", "status": "200"}
		require.Equal(t, float64(2), requests(labels))
		require.Equal(t, uint64(2), histogramCount(t, m, "datapusher_http_request_duration_seconds",
			map[string]string{"route": "GET /api/accounts/{account_id}/", "method": "GET"}))
	})
	t.Run("ErrorStatus", func(t *testing.T) {
		fx.do("GET", "/api/accounts/"+fx.account.AccountID+"/", fx.outsider, nil)
		require.Equal(t, float64(1), requests(map[string]string{
			"route": "GET /api/accounts/{account_id}/", "status": "404",
		}))
	})
	t.Run("Unmatched", func(t *testing.T) {
		fx.do("GET", "/no/such/path/"+fx.account.AccountID, nil, nil)
		require.Equal(t, float64(1), requests(map[string]string{"route": "/", "status": "404"}))
	})
	t.Run("MethodNotAllowed", func(t *testing.T) {
		fx.do("DELETE", "/api/roles/", fx.admin, nil)
		require.Equal(t, float64(1), requests(map[string]string{
			"route": "/api/roles/", "method": "DELETE", "status": "405",
		}))
	})
	t.Run("UnknownMethodIsOther", func(t *testing.T) {
		fx.do("BREW", "/api/roles/", fx.admin, nil)
		require.Equal(t, float64(1), requests(map[string]string{"method": "other", "status": "405"}))
	})
	t.Run("RedirectOfConnect", func(t *testing.T) {
		// ServeMux sets r.Pattern to the raw path when it redirects a
		// CONNECT request, which must not become a label.
		req := httptest.NewRequest("CONNECT", "/api/accounts/"+fx.account.AccountID, nil)
		resp := serveRequest(t, fx.server.Handler(), req, nil)
		require.Equal(t, http.StatusTemporaryRedirect, resp.status)
		require.Equal(t, float64(1), requests(map[string]string{"route": "unmatched", "method": "other"}))
	})
	t.Run("NoRawPaths", func(t *testing.T) {
		for _, route := range routeLabels(t, m) {
			require.NotContains(t, route, fx.account.AccountID)
			require.NotContains(t, route, "/no/such/path")
		}
	})
}

// acceptingEvents is an event submitter whose SubmitWithToken returns
// result or err.
type acceptingEvents struct {
	fakeEvents
	result *datapusher.Submission
	err    error
}

func (e *acceptingEvents) SubmitWithToken(context.Context, string, string, []byte, string) (*datapusher.Submission, error) {
	return e.result, e.err
}

func TestIncomingMetrics(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, testdb.Open(t, testdb.Dialects[0]), Config{})
	m := metrics.New(nil)
	events := &acceptingEvents{}
	s := NewServer(Config{SecretKey: testSecretKey, Metrics: m}, fx.store, events, slog.New(slog.DiscardHandler))
	send := func() *response {
		t.Helper()
		body := `{"a": 1}`
		req := httptest.NewRequest("POST", "/server/incoming_data", strings.NewReader(body))
		req.Header.Set("CL-X-TOKEN", "token")
		return serveRequest(t, s.Handler(), req, []byte(body))
	}
	accepted := func(duplicate string) float64 {
		return counterValue(t, m, "datapusher_events_accepted_total", map[string]string{"duplicate": duplicate})
	}

	events.result = &datapusher.Submission{EventID: "evt-1"}
	require.Equal(t, http.StatusAccepted, send().status)
	events.result = &datapusher.Submission{EventID: "evt-1", Duplicate: true}
	require.Equal(t, http.StatusOK, send().status)
	require.Equal(t, float64(1), accepted("false"))
	require.Equal(t, float64(1), accepted("true"))

	events.result = nil
	events.err = &ingest.RateLimitedError{Result: ratelimit.Result{Limit: 5, RetryAfter: time.Second}}
	resp := send()
	require.Equal(t, http.StatusTooManyRequests, resp.status)
	require.Equal(t, "1", resp.header.Get("Retry-After"))
	require.Equal(t, float64(1), counterValue(t, m, "datapusher_rate_limited_total",
		map[string]string{"scope": "incoming"}))

	events.err = datapusher.Errorf(datapusher.EUNAUTHORIZED, "Unauthenticated")
	require.Equal(t, http.StatusUnauthorized, send().status)
	require.Equal(t, float64(2), accepted("false")+accepted("true"), "rejections are not counted as accepted")
	require.Equal(t, float64(1), counterValue(t, m, "datapusher_http_requests_total",
		map[string]string{"route": "POST /server/incoming_data", "status": "429"}))
}
