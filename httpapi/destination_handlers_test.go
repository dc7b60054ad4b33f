package httpapi

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher"
	"github.com/datapusher/datapusher/internal/testdb"
	"github.com/datapusher/datapusher/sqlstore"
)

func validDestination(accountID string) map[string]any {
	return map[string]any{
		"account_id": accountID, "url": "https://hooks.example.test/new", "http_method": "post",
		"headers": map[string]string{"Authorization": "Bearer abc", "X-Team": "red"},
	}
}

func TestCreateDestination(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		t.Run("AdminGetsSecret", func(t *testing.T) {
			resp := fx.do("POST", "/api/destinations/", fx.admin, validDestination(fx.account.AccountID))
			require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
			body := resp.object(t)
			require.Equal(t, "POST", body["http_method"])
			require.Equal(t, true, body["enabled"])
			require.Equal(t, "", body["disabled_reason"])
			require.Equal(t, map[string]any{"Authorization": "Bearer abc", "X-Team": "red"}, body["headers"])
			secret := body["signing_secret"].(string)
			require.True(t, strings.HasPrefix(secret, "whsec_"))
			raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
			require.NoError(t, err)
			require.Len(t, raw, 32)
		})
		t.Run("EmptyHeadersAndDisabled", func(t *testing.T) {
			body := validDestination(fx.account.AccountID)
			body["headers"] = map[string]string{}
			body["enabled"] = false
			body["disabled_reason"] = "paused"
			resp := fx.do("POST", "/api/destinations/", fx.super, body)
			require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
			require.Equal(t, false, resp.object(t)["enabled"])
			require.Equal(t, "paused", resp.object(t)["disabled_reason"])
		})
		t.Run("NormalUserForbidden", func(t *testing.T) {
			resp := fx.do("POST", "/api/destinations/", fx.normal, validDestination(fx.account.AccountID))
			require.Equal(t, http.StatusForbidden, resp.status)
		})
		t.Run("OutsiderNotFound", func(t *testing.T) {
			resp := fx.do("POST", "/api/destinations/", fx.outsider, validDestination(fx.account.AccountID))
			require.Equal(t, http.StatusNotFound, resp.status)
			require.Equal(t, map[string]any{"detail": msgNotFound}, resp.object(t))
		})
		t.Run("UnknownAccountNotFound", func(t *testing.T) {
			resp := fx.do("POST", "/api/destinations/", fx.super, validDestination("00000000-0000-0000-0000-000000000001"))
			require.Equal(t, http.StatusNotFound, resp.status)
		})
		cases := map[string]struct {
			change func(map[string]any)
			field  string
		}{
			"MissingAccount":    {func(b map[string]any) { delete(b, "account_id") }, "account_id"},
			"InvalidAccountID":  {func(b map[string]any) { b["account_id"] = "acme" }, "account_id"},
			"MissingURL":        {func(b map[string]any) { delete(b, "url") }, "url"},
			"FTPURL":            {func(b map[string]any) { b["url"] = "ftp://files.example.test/" }, "url"},
			"NoHost":            {func(b map[string]any) { b["url"] = "https:///path" }, "url"},
			"BadMethod":         {func(b map[string]any) { b["http_method"] = "TRACE" }, "http_method"},
			"MissingMethod":     {func(b map[string]any) { delete(b, "http_method") }, "http_method"},
			"MissingHeaders":    {func(b map[string]any) { delete(b, "headers") }, "headers"},
			"NullHeaders":       {func(b map[string]any) { b["headers"] = nil }, "headers"},
			"HeadersList":       {func(b map[string]any) { b["headers"] = []string{"a"} }, "headers"},
			"NumberValue":       {func(b map[string]any) { b["headers"] = map[string]any{"X-N": 1} }, "headers"},
			"ReservedHost":      {func(b map[string]any) { b["headers"] = map[string]string{"host": "evil"} }, "headers"},
			"ReservedSignature": {func(b map[string]any) { b["headers"] = map[string]string{"Webhook-Signature": "x"} }, "headers"},
			"ReservedEventID":   {func(b map[string]any) { b["headers"] = map[string]string{"cl-x-event-id": "x"} }, "headers"},
			"InvalidName":       {func(b map[string]any) { b["headers"] = map[string]string{"Bad Name": "x"} }, "headers"},
			"ValueWithNewline":  {func(b map[string]any) { b["headers"] = map[string]string{"X-A": "a\r\nX-B: b"} }, "headers"},
			"ValueWithNUL":      {func(b map[string]any) { b["headers"] = map[string]string{"X-A": "a\x00"} }, "headers"},
			"EnabledNotBool":    {func(b map[string]any) { b["enabled"] = "yes" }, "enabled"},
		}
		for name, tc := range cases {
			t.Run(name, func(t *testing.T) {
				body := validDestination(fx.account.AccountID)
				tc.change(body)
				resp := fx.do("POST", "/api/destinations/", fx.admin, body)
				require.Equal(t, http.StatusBadRequest, resp.status, "%s", resp.body)
				require.Contains(t, resp.object(t), tc.field, "body: %s", resp.body)
			})
		}
	})
}

func TestDestinationURLCheck(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			var checked []string
			fx := newFixture(t, testdb.Open(t, dialect), Config{CheckDestinationURL: func(u string) error {
				checked = append(checked, u)
				if strings.Contains(u, "169.254.169.254") {
					return errors.New("Destination address is in a blocked range.")
				}
				return nil
			}})
			body := validDestination(fx.account.AccountID)
			body["url"] = "http://169.254.169.254/latest"
			resp := fx.do("POST", "/api/destinations/", fx.admin, body)
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.Equal(t, map[string]any{"url": []any{"Destination address is in a blocked range."}}, resp.object(t))

			body["url"] = "https://hooks.example.test/ok"
			require.Equal(t, http.StatusCreated, fx.do("POST", "/api/destinations/", fx.admin, body).status)
			require.Equal(t, []string{"http://169.254.169.254/latest", "https://hooks.example.test/ok"}, checked)
		})
	}
}

func TestReadDestinations(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		d := fx.createDestination(fx.account)
		other := fx.createAccount(fx.outsider, "Other")
		fx.createDestination(other)
		path := "/api/destinations/" + d.ID + "/"

		t.Run("SecretOnlyForAdmins", func(t *testing.T) {
			for _, p := range []*persona{fx.admin, fx.super} {
				resp := fx.do("GET", path, p, nil)
				require.Equal(t, http.StatusOK, resp.status)
				require.Equal(t, d.SigningSecret, resp.object(t)["signing_secret"], p.name)
			}
			resp := fx.do("GET", path, fx.normal, nil)
			require.Equal(t, http.StatusOK, resp.status)
			require.NotContains(t, resp.object(t), "signing_secret")
			require.NotContains(t, string(resp.body), d.SigningSecret)
		})
		t.Run("ListHidesSecretFromNormalUser", func(t *testing.T) {
			resp := fx.do("GET", "/api/destinations/", fx.normal, nil)
			require.Equal(t, http.StatusOK, resp.status)
			results := resp.results(t)
			require.Len(t, results, 1)
			require.NotContains(t, results[0], "signing_secret")

			resp = fx.do("GET", "/api/accounts/"+fx.account.AccountID+"/destinations/", fx.normal, nil)
			require.Equal(t, http.StatusOK, resp.status)
			require.Len(t, resp.list(t), 1)
			require.NotContains(t, resp.list(t)[0], "signing_secret")
		})
		t.Run("AccountDestinationsForAdmin", func(t *testing.T) {
			resp := fx.do("GET", "/api/accounts/"+fx.account.AccountID+"/destinations/", fx.admin, nil)
			require.Equal(t, http.StatusOK, resp.status)
			require.Equal(t, d.SigningSecret, resp.list(t)[0]["signing_secret"])
			resp = fx.do("GET", "/api/accounts/"+fx.account.AccountID+"/destinations/", fx.outsider, nil)
			require.Equal(t, http.StatusNotFound, resp.status)
		})
		t.Run("Filters", func(t *testing.T) {
			resp := fx.do("GET", "/api/destinations/", fx.super, nil)
			require.Equal(t, float64(2), resp.object(t)["count"])
			resp = fx.do("GET", "/api/destinations/?account_id="+other.AccountID, fx.super, nil)
			require.Equal(t, float64(1), resp.object(t)["count"])
			resp = fx.do("GET", "/api/destinations/?http_method=get", fx.super, nil)
			require.Equal(t, float64(0), resp.object(t)["count"])
			resp = fx.do("GET", "/api/destinations/?http_method=post&search=HOOKS.example&ordering=-url", fx.super, nil)
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			require.Equal(t, float64(2), resp.object(t)["count"])
			resp = fx.do("GET", "/api/destinations/?account_id="+other.AccountID, fx.admin, nil)
			require.Equal(t, float64(0), resp.object(t)["count"], "another account's rows stay hidden")
		})
		for name, query := range map[string]string{
			"account_id":  "account_id=42",
			"http_method": "http_method=TRACE",
			"ordering":    "ordering=signing_secret",
		} {
			t.Run("Rejects_"+name, func(t *testing.T) {
				resp := fx.do("GET", "/api/destinations/?"+query, fx.admin, nil)
				require.Equal(t, http.StatusBadRequest, resp.status)
				require.Contains(t, resp.object(t), name)
			})
		}
		t.Run("OutsiderNotFound", func(t *testing.T) {
			require.Equal(t, http.StatusNotFound, fx.do("GET", path, fx.outsider, nil).status)
		})
	})
}

func TestUpdateDestination(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		d := fx.createDestination(fx.account)
		path := "/api/destinations/" + d.ID + "/"

		t.Run("NormalUserDisables", func(t *testing.T) {
			resp := fx.do("PATCH", path, fx.normal, map[string]any{"enabled": false, "disabled_reason": "maintenance"})
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			body := resp.object(t)
			require.Equal(t, false, body["enabled"])
			require.Equal(t, "maintenance", body["disabled_reason"])
			require.Equal(t, "https://hooks.example.test/in", body["url"])
			require.NotContains(t, body, "signing_secret")
		})
		t.Run("EnablingClearsReason", func(t *testing.T) {
			resp := fx.do("PATCH", path, fx.admin, map[string]any{"enabled": true})
			require.Equal(t, http.StatusOK, resp.status)
			require.Equal(t, "", resp.object(t)["disabled_reason"])
		})
		t.Run("PutRequiresAllFields", func(t *testing.T) {
			resp := fx.do("PUT", path, fx.admin, map[string]any{"url": "https://a.test/"})
			require.Equal(t, http.StatusBadRequest, resp.status)
			body := resp.object(t)
			require.Contains(t, body, "account_id")
			require.Contains(t, body, "http_method")
			require.Contains(t, body, "headers")
		})
		t.Run("PutReplaces", func(t *testing.T) {
			body := validDestination(fx.account.AccountID)
			body["http_method"] = "put"
			resp := fx.do("PUT", path, fx.admin, body)
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			require.Equal(t, "PUT", resp.object(t)["http_method"])
			require.Equal(t, "https://hooks.example.test/new", resp.object(t)["url"])
		})
		t.Run("CannotMoveAccount", func(t *testing.T) {
			other := fx.createAccount(fx.admin, "Second")
			resp := fx.do("PATCH", path, fx.admin, map[string]any{"account_id": other.AccountID})
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.Contains(t, resp.object(t), "account_id")
		})
		t.Run("ValidatesHeaders", func(t *testing.T) {
			resp := fx.do("PATCH", path, fx.normal, map[string]any{"headers": map[string]string{"Content-Length": "1"}})
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.Contains(t, resp.object(t), "headers")
		})
		t.Run("OutsiderNotFound", func(t *testing.T) {
			resp := fx.do("PATCH", path, fx.outsider, map[string]any{"enabled": false})
			require.Equal(t, http.StatusNotFound, resp.status)
		})
	})
}

func TestRotateSigningSecret(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		d := fx.createDestination(fx.account)
		path := "/api/destinations/" + d.ID + "/rotate-secret/"
		require.Equal(t, http.StatusForbidden, fx.do("POST", path, fx.normal, nil).status)
		require.Equal(t, http.StatusNotFound, fx.do("POST", path, fx.outsider, nil).status)

		resp := fx.do("POST", path, fx.admin, nil)
		require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
		secret := resp.object(t)["signing_secret"].(string)
		require.NotEqual(t, d.SigningSecret, secret)

		stored, err := fx.store.Destination(context.Background(), d.ID)
		require.NoError(t, err)
		require.Equal(t, []string{secret, d.SigningSecret}, stored.SigningSecrets(time.Now()))
		require.Equal(t, []string{secret}, stored.SigningSecrets(time.Now().Add(25*time.Hour)))
	})
}

func TestDeleteDestination(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		d := fx.createDestination(fx.account)
		path := "/api/destinations/" + d.ID + "/"
		require.Equal(t, http.StatusForbidden, fx.do("DELETE", path, fx.normal, nil).status)
		require.Equal(t, http.StatusNotFound, fx.do("DELETE", path, fx.outsider, nil).status)
		require.Equal(t, http.StatusNoContent, fx.do("DELETE", path, fx.admin, nil).status)
		_, err := fx.store.Destination(context.Background(), d.ID)
		require.Equal(t, datapusher.ENOTFOUND, datapusher.ErrorCode(err))
	})
}

func TestDestinationEnabled(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		d := fx.createDestination(fx.account)
		path := "/api/destinations/" + d.ID + "/"
		stored := func() *datapusher.Destination {
			t.Helper()
			got, err := fx.store.Destination(ctx, d.ID)
			require.NoError(t, err)
			return got
		}

		for _, p := range []*persona{fx.admin, fx.normal} {
			t.Run(p.name+"Disables", func(t *testing.T) {
				resp := fx.do("PATCH", path, p, map[string]any{"enabled": false, "disabled_reason": "by " + p.name})
				require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
				require.Equal(t, false, resp.object(t)["enabled"])
				require.Equal(t, "by "+p.name, resp.object(t)["disabled_reason"])
				require.False(t, stored().Enabled)
				require.Equal(t, "by "+p.name, stored().DisabledReason)
			})
			t.Run(p.name+"EnablesAndClearsReason", func(t *testing.T) {
				resp := fx.do("PATCH", path, p, map[string]any{"enabled": true})
				require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
				require.Equal(t, true, resp.object(t)["enabled"])
				require.Equal(t, "", resp.object(t)["disabled_reason"])
				require.True(t, stored().Enabled)
				require.Equal(t, "", stored().DisabledReason)
			})
		}
		t.Run("ReasonGivenWithEnableIsKept", func(t *testing.T) {
			require.Equal(t, http.StatusOK, fx.do("PATCH", path, fx.normal, map[string]any{"enabled": false}).status)
			resp := fx.do("PATCH", path, fx.normal, map[string]any{"enabled": true, "disabled_reason": "was down"})
			require.Equal(t, http.StatusOK, resp.status)
			require.Equal(t, "was down", stored().DisabledReason)
		})
		t.Run("ReasonKeptWhileDisabled", func(t *testing.T) {
			resp := fx.do("PATCH", path, fx.admin, map[string]any{"enabled": false, "disabled_reason": "paused"})
			require.Equal(t, http.StatusOK, resp.status)
			resp = fx.do("PATCH", path, fx.normal, map[string]any{"url": "https://hooks.example.test/other"})
			require.Equal(t, http.StatusOK, resp.status)
			require.Equal(t, "paused", stored().DisabledReason)
			require.False(t, stored().Enabled)
		})
		t.Run("RejectsNonBoolean", func(t *testing.T) {
			resp := fx.do("PATCH", path, fx.normal, map[string]any{"enabled": "yes"})
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.Contains(t, resp.object(t), "enabled")
		})
		t.Run("OutsiderNotFound", func(t *testing.T) {
			require.Equal(t, http.StatusNotFound, fx.do("PATCH", path, fx.outsider, map[string]any{"enabled": true}).status)
		})
	})
}

func TestRecoverDestination(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		base := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
		d := fx.createDestination(fx.account)
		logAt := func(eventID string, receivedAt time.Time, status string) string {
			t.Helper()
			fx.store.Now = func() time.Time { return receivedAt }
			l := fx.createEvent(fx.account, eventID, d)[0]
			code := 502
			require.NoError(t, fx.store.RecordAttempt(ctx, l.ID, sqlstore.AttemptOutcome{
				Attempt: &datapusher.Attempt{StartedAt: receivedAt, RequestURL: d.URL, ResponseStatus: &code},
				Status:  status, Final: true,
			}))
			return l.ID
		}
		logAt("before", base.Add(-3*time.Hour), datapusher.StatusFailed)
		early := logAt("early", base.Add(-2*time.Hour), datapusher.StatusFailed)
		logAt("delivered", base.Add(-time.Hour), datapusher.StatusSuccess)
		late := logAt("late", base.Add(-30*time.Minute), datapusher.StatusFailed)
		fx.store.Now = func() time.Time { return base }
		path := "/api/destinations/" + d.ID + "/recover/"
		since := base.Add(-150 * time.Minute).Format(time.RFC3339)

		t.Run("NormalUserForbidden", func(t *testing.T) {
			resp := fx.do("POST", path, fx.normal, map[string]any{"since": since})
			require.Equal(t, http.StatusForbidden, resp.status)
		})
		t.Run("OutsiderNotFound", func(t *testing.T) {
			resp := fx.do("POST", path, fx.outsider, map[string]any{"since": since})
			require.Equal(t, http.StatusNotFound, resp.status)
		})
		t.Run("UnknownDestination", func(t *testing.T) {
			resp := fx.do("POST", "/api/destinations/00000000-0000-0000-0000-000000000000/recover/", fx.super,
				map[string]any{"since": since})
			require.Equal(t, http.StatusNotFound, resp.status)
		})
		cases := map[string]struct {
			body  map[string]any
			field string
		}{
			"MissingSince":     {map[string]any{}, "since"},
			"NullSince":        {map[string]any{"since": nil}, "since"},
			"SinceNotText":     {map[string]any{"since": 1712000000}, "since"},
			"SinceNotRFC3339":  {map[string]any{"since": "2026-04-01 10:00"}, "since"},
			"SinceDateOnly":    {map[string]any{"since": "2026-04-01"}, "since"},
			"UntilNotRFC3339":  {map[string]any{"since": since, "until": "tomorrow"}, "until"},
			"UntilBeforeSince": {map[string]any{"since": since, "until": base.Add(-3 * time.Hour).Format(time.RFC3339)}, "until"},
			"UntilEqualsSince": {map[string]any{"since": since, "until": since}, "until"},
		}
		for name, tc := range cases {
			t.Run("Rejects"+name, func(t *testing.T) {
				resp := fx.do("POST", path, fx.admin, tc.body)
				require.Equal(t, http.StatusBadRequest, resp.status, "%s", resp.body)
				require.Contains(t, resp.object(t), tc.field)
				require.Empty(t, fx.enqueued.all())
			})
		}
		t.Run("Window", func(t *testing.T) {
			until := base.Add(-time.Hour).Format(time.RFC3339)
			resp := fx.do("POST", path, fx.admin, map[string]any{"since": since, "until": until})
			require.Equal(t, http.StatusAccepted, resp.status, "%s", resp.body)
			require.Equal(t, map[string]any{"queued": float64(1)}, resp.object(t))
			require.Equal(t, []string{early}, fx.enqueued.all())
			require.Equal(t, "pending", fx.do("GET", "/api/logs/"+early+"/", fx.admin, nil).object(t)["status"])
		})
		t.Run("OpenEnded", func(t *testing.T) {
			fx.enqueued.reset()
			resp := fx.do("POST", path, fx.super, map[string]any{"since": "2026-04-01T09:30:00.000+00:00"})
			require.Equal(t, http.StatusAccepted, resp.status, "%s", resp.body)
			require.Equal(t, map[string]any{"queued": float64(1)}, resp.object(t), "only failed logs are queued")
			require.Equal(t, []string{late}, fx.enqueued.all())
		})
		t.Run("NothingToQueue", func(t *testing.T) {
			resp := fx.do("POST", path, fx.admin, map[string]any{"since": base.Format(time.RFC3339)})
			require.Equal(t, http.StatusAccepted, resp.status)
			require.Equal(t, map[string]any{"queued": float64(0)}, resp.object(t))
		})
		t.Run("NoQueue", func(t *testing.T) {
			s := NewServer(Config{SecretKey: testSecretKey}, fx.store, fx.events, slog.New(slog.DiscardHandler))
			resp := doRequest(t, s.Handler(), "POST", path, fx.admin, map[string]any{"since": since})
			require.Equal(t, http.StatusServiceUnavailable, resp.status)
		})
	})
}
