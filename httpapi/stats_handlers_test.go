package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/sqlstore"
)

func TestAccountStats(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		base := time.Date(2026, 5, 10, 12, 0, 0, 0, time.UTC)
		d := fx.createDestination(fx.account)
		eventAt := func(eventID string, receivedAt time.Time) *datapusher.DeliveryLog {
			t.Helper()
			fx.store.Now = func() time.Time { return receivedAt }
			return fx.createEvent(fx.account, eventID, d)[0]
		}
		recent := eventAt("recent", base.Add(-time.Hour))
		eventAt("two-days-ago", base.Add(-48*time.Hour))
		eventAt("long-ago", base.Add(-80*24*time.Hour))
		fx.store.Now = func() time.Time { return base }
		code := 200
		require.NoError(t, fx.store.RecordAttempt(ctx, recent.ID, sqlstore.AttemptOutcome{
			Attempt: &datapusher.Attempt{StartedAt: base, RequestURL: d.URL, ResponseStatus: &code},
			Status:  datapusher.StatusSuccess, Final: true,
		}))
		path := "/api/accounts/" + fx.account.AccountID + "/stats/"
		get := func(p *persona, query url.Values) *response {
			t.Helper()
			return fx.do("GET", path+"?"+query.Encode(), p, nil)
		}

		t.Run("DefaultsToLastDay", func(t *testing.T) {
			resp := get(fx.normal, nil)
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			body := resp.object(t)
			require.Equal(t, fx.account.AccountID, body["account_id"])
			require.Equal(t, "2026-05-09T12:00:00Z", body["from"])
			require.Equal(t, "2026-05-10T12:00:00Z", body["to"])
			require.Equal(t, float64(1), body["events"])
			deliveries := body["deliveries"].(map[string]any)
			require.Equal(t, float64(1), deliveries["success"])
			require.Equal(t, float64(0), deliveries["failed"])
			destinations := body["destinations"].([]any)
			require.Len(t, destinations, 1)
			require.Equal(t, d.ID, destinations[0].(map[string]any)["destination_id"])
			latency := body["latency_ms"].(map[string]any)
			require.Equal(t, float64(1), latency["samples"])
			require.Equal(t, float64(time.Hour/time.Millisecond), latency["p50"])
		})
		t.Run("FromAndTo", func(t *testing.T) {
			resp := get(fx.admin, url.Values{"from": {"2026-05-07T00:00:00Z"}, "to": {"2026-05-10T14:00:00+02:00"}})
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			require.Equal(t, float64(2), resp.object(t)["events"])
			require.Equal(t, "2026-05-10T12:00:00Z", resp.object(t)["to"], "times are returned in UTC")
		})
		t.Run("FromOnlyEndsNow", func(t *testing.T) {
			resp := get(fx.admin, url.Values{"from": {"2026-05-08T00:00:00Z"}})
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			require.Equal(t, "2026-05-10T12:00:00Z", resp.object(t)["to"])
			require.Equal(t, float64(2), resp.object(t)["events"])
		})
		t.Run("ToOnlyStartsDayBefore", func(t *testing.T) {
			resp := get(fx.admin, url.Values{"to": {"2026-05-08T13:00:00Z"}})
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			require.Equal(t, "2026-05-07T13:00:00Z", resp.object(t)["from"])
			require.Equal(t, float64(1), resp.object(t)["events"])
		})
		t.Run("YearOne", func(t *testing.T) {
			resp := get(fx.admin, url.Values{"to": {"0001-01-01T12:00:00Z"}})
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			require.Equal(t, "0000-12-31T12:00:00Z", resp.object(t)["from"])
			require.Equal(t, float64(0), resp.object(t)["events"])
		})
		t.Run("NinetyDays", func(t *testing.T) {
			resp := get(fx.admin, url.Values{"from": {"2026-02-09T12:00:00Z"}})
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			require.Equal(t, float64(3), resp.object(t)["events"])
		})
		cases := map[string]struct {
			query url.Values
			field string
		}{
			"BadFrom":       {url.Values{"from": {"yesterday"}}, "from"},
			"BadTo":         {url.Values{"to": {"2026-05-10"}}, "to"},
			"ToBeforeFrom":  {url.Values{"from": {"2026-05-10T00:00:00Z"}, "to": {"2026-05-09T00:00:00Z"}}, "to"},
			"ToEqualsFrom":  {url.Values{"from": {"2026-05-10T00:00:00Z"}, "to": {"2026-05-10T00:00:00Z"}}, "to"},
			"FromInFuture":  {url.Values{"from": {"2026-05-11T00:00:00Z"}}, "to"},
			"WindowTooWide": {url.Values{"from": {"2026-02-09T11:59:59Z"}}, "to"},
			"YearWindow":    {url.Values{"from": {"2025-01-01T00:00:00Z"}, "to": {"2026-01-01T00:00:00Z"}}, "to"},

			// The response repeats from and to, and encoding/json cannot
			// encode years outside 0 to 9999.
			"ToInYearZero":   {url.Values{"to": {"0000-01-01T00:00:00Z"}}, "to"},
			"FromInYearZero": {url.Values{"from": {"0000-12-31T00:00:00Z"}, "to": {"0001-01-01T00:00:00Z"}}, "from"},
			"ToPastYear9999": {url.Values{"from": {"9999-12-31T00:00:00Z"}, "to": {"9999-12-31T23:00:00-02:00"}}, "to"},
		}
		for name, tc := range cases {
			t.Run("Rejects"+name, func(t *testing.T) {
				resp := get(fx.admin, tc.query)
				require.Equal(t, http.StatusBadRequest, resp.status, "%s", resp.body)
				require.Contains(t, resp.object(t), tc.field)
			})
		}
		t.Run("OutsiderNotFound", func(t *testing.T) {
			resp := get(fx.outsider, nil)
			require.Equal(t, http.StatusNotFound, resp.status)
			require.Equal(t, map[string]any{"detail": msgNotFound}, resp.object(t))
		})
		t.Run("UnknownAccount", func(t *testing.T) {
			resp := fx.do("GET", "/api/accounts/00000000-0000-0000-0000-000000000000/stats/", fx.super, nil)
			require.Equal(t, http.StatusNotFound, resp.status)
			resp = fx.do("GET", "/api/accounts/not-a-uuid/stats/", fx.super, nil)
			require.Equal(t, http.StatusNotFound, resp.status)
		})
		t.Run("RequiresSignIn", func(t *testing.T) {
			require.Equal(t, http.StatusUnauthorized, get(nil, nil).status)
		})
	})
}
