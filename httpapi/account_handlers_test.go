package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/datapusher/datapusher"
)

func TestCreateAccount(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		t.Run("ReturnsTokenOnce", func(t *testing.T) {
			resp := fx.do("POST", "/api/accounts/", fx.outsider, map[string]any{
				"account_name": "  New Co ", "email": "ops@newco.test", "website": "https://newco.test",
				"rate_limit_per_second": 10,
			})
			require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
			body := resp.object(t)
			token := body["app_secret_token"].(string)
			require.Len(t, token, 43, "32 bytes in unpadded base64url")
			require.Equal(t, "New Co", body["account_name"])
			require.Equal(t, "ops@newco.test", body["email"])
			require.Equal(t, float64(10), body["rate_limit_per_second"])
			require.Equal(t, fx.outsider.user.ID, body["created_by"])
			id := body["account_id"].(string)

			current, _, err := fx.store.AccountTokenHashes(ctx, id)
			require.NoError(t, err)
			require.Equal(t, hashToken(token), current, "only the hash is stored")
			role, err := fx.store.MemberRole(ctx, id, fx.outsider.user.ID)
			require.NoError(t, err)
			require.Equal(t, datapusher.RoleIDAdmin, role)

			resp = fx.do("GET", "/api/accounts/"+id+"/", fx.outsider, nil)
			require.Equal(t, http.StatusOK, resp.status)
			require.NotContains(t, resp.object(t), "app_secret_token")
		})
		t.Run("OptionalFieldsMayBeNull", func(t *testing.T) {
			resp := fx.do("POST", "/api/accounts/", fx.normal, map[string]any{
				"account_name": "Bare", "email": nil, "website": "", "rate_limit_per_second": nil,
			})
			require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
			body := resp.object(t)
			require.Nil(t, body["email"])
			require.Nil(t, body["website"])
			require.Nil(t, body["rate_limit_per_second"])
		})
		cases := map[string]struct {
			body  map[string]any
			field string
		}{
			"MissingName":       {map[string]any{}, "account_name"},
			"BlankName":         {map[string]any{"account_name": "  "}, "account_name"},
			"LongName":          {map[string]any{"account_name": strings.Repeat("n", 256)}, "account_name"},
			"NameNotText":       {map[string]any{"account_name": 5}, "account_name"},
			"NameWithNUL":       {map[string]any{"account_name": "a\x00b"}, "account_name"},
			"InvalidEmail":      {map[string]any{"account_name": "A", "email": "nope"}, "email"},
			"FTPWebsite":        {map[string]any{"account_name": "A", "website": "ftp://a.test"}, "website"},
			"RelativeWebsite":   {map[string]any{"account_name": "A", "website": "/home"}, "website"},
			"ZeroRateLimit":     {map[string]any{"account_name": "A", "rate_limit_per_second": 0}, "rate_limit_per_second"},
			"HugeRateLimit":     {map[string]any{"account_name": "A", "rate_limit_per_second": 1001}, "rate_limit_per_second"},
			"FractionRateLimit": {map[string]any{"account_name": "A", "rate_limit_per_second": 1.5}, "rate_limit_per_second"},
		}
		for name, tc := range cases {
			t.Run(name, func(t *testing.T) {
				resp := fx.do("POST", "/api/accounts/", fx.admin, tc.body)
				require.Equal(t, http.StatusBadRequest, resp.status, "%s", resp.body)
				require.Contains(t, resp.object(t), tc.field)
			})
		}
		t.Run("DuplicateEmail", func(t *testing.T) {
			body := map[string]any{"account_name": "One", "email": "same@dup.test"}
			require.Equal(t, http.StatusCreated, fx.do("POST", "/api/accounts/", fx.admin, body).status)
			resp := fx.do("POST", "/api/accounts/", fx.admin, body)
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.Contains(t, resp.object(t), "email")
		})
		t.Run("RequiresSignIn", func(t *testing.T) {
			resp := fx.do("POST", "/api/accounts/", nil, map[string]any{"account_name": "A"})
			require.Equal(t, http.StatusUnauthorized, resp.status)
		})
	})
}

func TestListAccounts(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
		fx.store.Now = func() time.Time { return base }
		for _, name := range []string{"Gamma", "Alpha", "Beta"} {
			fx.createAccount(fx.admin, name)
			base = base.Add(time.Hour)
		}

		names := func(resp *response) []string {
			var out []string
			for _, a := range resp.results(t) {
				out = append(out, a["account_name"].(string))
			}
			return out
		}
		t.Run("OnlyMemberAccounts", func(t *testing.T) {
			resp := fx.do("GET", "/api/accounts/", fx.normal, nil)
			require.Equal(t, http.StatusOK, resp.status)
			require.Equal(t, []string{"Acme"}, names(resp))
			require.Equal(t, float64(1), resp.object(t)["count"])
		})
		t.Run("SuperuserSeesAll", func(t *testing.T) {
			resp := fx.do("GET", "/api/accounts/?page_size=100", fx.super, nil)
			require.Equal(t, float64(5), resp.object(t)["count"])
		})
		t.Run("Ordering", func(t *testing.T) {
			resp := fx.do("GET", "/api/accounts/?ordering=account_name&search=a", fx.admin, nil)
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			require.Equal(t, []string{"Acme", "Alpha", "Beta", "Gamma"}, names(resp))
			resp = fx.do("GET", "/api/accounts/?ordering=-account_name", fx.admin, nil)
			require.Equal(t, []string{"Gamma", "Beta", "Alpha", "Acme"}, names(resp))
		})
		t.Run("Search", func(t *testing.T) {
			resp := fx.do("GET", "/api/accounts/?search=ALP", fx.admin, nil)
			require.Equal(t, []string{"Alpha"}, names(resp))
		})
		t.Run("SearchLengthLimit", func(t *testing.T) {
			// Percent signs are escaped in the LIKE pattern, which doubles
			// its length; 30,000 of them exceed SQLite's pattern limit.
			for _, path := range []string{"/api/accounts/", "/api/destinations/"} {
				longest := url.Values{"search": {strings.Repeat("%", 2048)}}
				resp := fx.do("GET", path+"?"+longest.Encode(), fx.admin, nil)
				require.Equal(t, http.StatusOK, resp.status, "%s: %s", path, resp.body)

				for _, length := range []int{2049, 30000} {
					tooLong := url.Values{"search": {strings.Repeat("%", length)}}
					resp = fx.do("GET", path+"?"+tooLong.Encode(), fx.admin, nil)
					require.Equal(t, http.StatusBadRequest, resp.status, "%s: %s", path, resp.body)
					require.Equal(t, []any{"Ensure this field has no more than 2048 characters."},
						resp.object(t)["search"], path)
				}
			}
		})
		t.Run("CreatedAtRange", func(t *testing.T) {
			query := url.Values{
				"created_at__gte": {"2026-03-01T00:30:00Z"}, "created_at__lte": {"2026-03-01T01:30:00+00:00"},
			}
			resp := fx.do("GET", "/api/accounts/?"+query.Encode(), fx.admin, nil)
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			require.Equal(t, []string{"Alpha"}, names(resp))
		})
		t.Run("PageLinks", func(t *testing.T) {
			resp := fx.do("GET", "/api/accounts/?ordering=account_name&page_size=2", fx.admin, nil)
			body := resp.object(t)
			require.Equal(t, float64(4), body["count"])
			require.Nil(t, body["previous"])
			require.Equal(t, "http://example.com/api/accounts/?ordering=account_name&page=2&page_size=2", body["next"])

			resp = fx.do("GET", "/api/accounts/?ordering=account_name&page_size=2&page=2", fx.admin, nil)
			body = resp.object(t)
			require.Nil(t, body["next"])
			require.Equal(t, "http://example.com/api/accounts/?ordering=account_name&page_size=2", body["previous"])
			require.Equal(t, []string{"Beta", "Gamma"}, names(resp))
		})
		t.Run("PagePastEnd", func(t *testing.T) {
			resp := fx.do("GET", "/api/accounts/?page=9", fx.admin, nil)
			require.Equal(t, http.StatusNotFound, resp.status)
		})
		for name, query := range map[string]string{
			"ordering":        "ordering=secret",
			"created_at__gte": "created_at__gte=yesterday",
			"page":            "page=0",
			"page_size":       "page_size=501",
		} {
			t.Run("Rejects_"+name, func(t *testing.T) {
				resp := fx.do("GET", "/api/accounts/?"+query, fx.admin, nil)
				require.Equal(t, http.StatusBadRequest, resp.status, "%s", resp.body)
				require.Contains(t, resp.object(t), name)
			})
		}
	})
}

func TestUpdateAccount(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		path := "/api/accounts/" + fx.account.AccountID + "/"
		t.Run("PatchChangesGivenFields", func(t *testing.T) {
			resp := fx.do("PATCH", path, fx.normal, map[string]any{"website": "https://acme.test"})
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			body := resp.object(t)
			require.Equal(t, "https://acme.test", body["website"])
			require.Equal(t, "Acme", body["account_name"])
			require.Equal(t, fx.normal.user.ID, body["updated_by"])
		})
		t.Run("PutRequiresName", func(t *testing.T) {
			resp := fx.do("PUT", path, fx.admin, map[string]any{"website": "https://acme.test"})
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.Contains(t, resp.object(t), "account_name")
		})
		t.Run("PutReplaces", func(t *testing.T) {
			resp := fx.do("PUT", path, fx.admin, map[string]any{"account_name": "Acme Inc", "website": nil})
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			require.Equal(t, "Acme Inc", resp.object(t)["account_name"])
			require.Nil(t, resp.object(t)["website"])
		})
		t.Run("RateLimitIsAdminOnly", func(t *testing.T) {
			resp := fx.do("PATCH", path, fx.normal, map[string]any{"rate_limit_per_second": 5})
			require.Equal(t, http.StatusForbidden, resp.status)
			require.Equal(t, map[string]any{"detail": msgForbidden}, resp.object(t))

			resp = fx.do("PATCH", path, fx.admin, map[string]any{"rate_limit_per_second": 5})
			require.Equal(t, http.StatusOK, resp.status)
			require.Equal(t, float64(5), resp.object(t)["rate_limit_per_second"])

			resp = fx.do("PATCH", path, fx.normal, map[string]any{"rate_limit_per_second": 5, "account_name": "Same limit"})
			require.Equal(t, http.StatusOK, resp.status, "an unchanged limit is allowed")
		})
		t.Run("OutsiderGetsNotFound", func(t *testing.T) {
			resp := fx.do("PATCH", path, fx.outsider, map[string]any{"account_name": "Mine"})
			require.Equal(t, http.StatusNotFound, resp.status)
			require.Equal(t, map[string]any{"detail": msgNotFound}, resp.object(t))
		})
		t.Run("UnknownAccount", func(t *testing.T) {
			resp := fx.do("GET", "/api/accounts/00000000-0000-0000-0000-000000000000/", fx.super, nil)
			require.Equal(t, http.StatusNotFound, resp.status)
			resp = fx.do("GET", "/api/accounts/not-a-uuid/", fx.super, nil)
			require.Equal(t, http.StatusNotFound, resp.status)
		})
	})
}

func TestDeleteAccount(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		path := "/api/accounts/" + fx.account.AccountID + "/"
		require.Equal(t, http.StatusForbidden, fx.do("DELETE", path, fx.normal, nil).status)
		require.Equal(t, http.StatusNotFound, fx.do("DELETE", path, fx.outsider, nil).status)
		resp := fx.do("DELETE", path, fx.admin, nil)
		require.Equal(t, http.StatusNoContent, resp.status)
		require.Empty(t, resp.body)
		require.Equal(t, http.StatusNotFound, fx.do("GET", path, fx.admin, nil).status)
	})
}

func TestRotateAccountToken(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		create := fx.do("POST", "/api/accounts/", fx.admin, map[string]any{"account_name": "Rotating"})
		require.Equal(t, http.StatusCreated, create.status)
		id := create.object(t)["account_id"].(string)
		oldToken := create.object(t)["app_secret_token"].(string)
		path := "/api/accounts/" + id + "/rotate-token/"

		t.Run("WithGracePeriod", func(t *testing.T) {
			resp := fx.do("POST", path, fx.admin, map[string]any{"grace_period_seconds": 3600})
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			newToken := resp.object(t)["app_secret_token"].(string)
			require.NotEqual(t, oldToken, newToken)

			a, _, err := fx.store.AccountByTokenHash(ctx, hashToken(oldToken))
			require.NoError(t, err, "the old token works during the grace period")
			require.Equal(t, id, a.AccountID)
			_, _, err = fx.store.AccountByTokenHash(ctx, hashToken(newToken))
			require.NoError(t, err)
			oldToken = newToken
		})
		t.Run("WithoutGracePeriod", func(t *testing.T) {
			resp := fx.do("POST", path, fx.admin, nil)
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			newToken := resp.object(t)["app_secret_token"].(string)

			_, _, err := fx.store.AccountByTokenHash(ctx, hashToken(oldToken))
			require.Equal(t, datapusher.EUNAUTHORIZED, datapusher.ErrorCode(err))
			_, _, err = fx.store.AccountByTokenHash(ctx, hashToken(newToken))
			require.NoError(t, err)
		})
		for name, seconds := range map[string]any{"Negative": -1, "OverOneDay": 86401, "Text": "60"} {
			t.Run("Rejects"+name, func(t *testing.T) {
				resp := fx.do("POST", path, fx.admin, map[string]any{"grace_period_seconds": seconds})
				require.Equal(t, http.StatusBadRequest, resp.status)
				require.Contains(t, resp.object(t), "grace_period_seconds")
			})
		}
		t.Run("NormalUserForbidden", func(t *testing.T) {
			fx.addMember(&datapusher.Account{AccountID: id, CreatedBy: &fx.admin.user.ID}, fx.normal, datapusher.RoleIDNormalUser)
			resp := fx.do("POST", path, fx.normal, nil)
			require.Equal(t, http.StatusForbidden, resp.status)
		})
	})
}

func TestAccountRetention(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		ctx := context.Background()
		path := "/api/accounts/" + fx.account.AccountID + "/"
		stored := func() *int {
			t.Helper()
			days, err := fx.store.AccountRetention(ctx, fx.account.AccountID)
			require.NoError(t, err)
			return days
		}

		t.Run("NullByDefault", func(t *testing.T) {
			body := fx.do("GET", path, fx.normal, nil).object(t)
			require.Contains(t, body, "log_retention_days")
			require.Nil(t, body["log_retention_days"])
		})
		t.Run("NormalUserForbidden", func(t *testing.T) {
			resp := fx.do("PATCH", path, fx.normal, map[string]any{"log_retention_days": 30})
			require.Equal(t, http.StatusForbidden, resp.status)
			require.Equal(t, map[string]any{"detail": msgForbidden}, resp.object(t))
			require.Nil(t, stored())
		})
		t.Run("AdminSets", func(t *testing.T) {
			resp := fx.do("PATCH", path, fx.admin, map[string]any{"log_retention_days": 30})
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			require.Equal(t, float64(30), resp.object(t)["log_retention_days"])
			require.Equal(t, 30, *stored())
		})
		t.Run("MembersRead", func(t *testing.T) {
			require.Equal(t, float64(30), fx.do("GET", path, fx.normal, nil).object(t)["log_retention_days"])
			for _, a := range fx.do("GET", "/api/accounts/?page_size=100", fx.super, nil).results(t) {
				if a["account_id"] == fx.account.AccountID {
					require.Equal(t, float64(30), a["log_retention_days"])
				} else {
					require.Contains(t, a, "log_retention_days")
					require.Nil(t, a["log_retention_days"])
				}
			}
		})
		t.Run("UnchangedValueAllowed", func(t *testing.T) {
			resp := fx.do("PATCH", path, fx.normal, map[string]any{"log_retention_days": 30, "account_name": "Acme"})
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			require.Equal(t, float64(30), resp.object(t)["log_retention_days"])
		})
		t.Run("PutWithoutFieldKeepsIt", func(t *testing.T) {
			resp := fx.do("PUT", path, fx.normal, map[string]any{"account_name": "Acme"})
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			require.Equal(t, float64(30), resp.object(t)["log_retention_days"])
			require.Equal(t, 30, *stored())
		})
		t.Run("PutSets", func(t *testing.T) {
			resp := fx.do("PUT", path, fx.admin, map[string]any{"account_name": "Acme", "log_retention_days": 36500})
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			require.Equal(t, 36500, *stored())
		})
		t.Run("NullResets", func(t *testing.T) {
			resp := fx.do("PATCH", path, fx.normal, map[string]any{"log_retention_days": nil})
			require.Equal(t, http.StatusForbidden, resp.status, "clearing is a change too")
			resp = fx.do("PATCH", path, fx.admin, map[string]any{"log_retention_days": nil})
			require.Equal(t, http.StatusOK, resp.status)
			require.Nil(t, resp.object(t)["log_retention_days"])
			require.Nil(t, stored())
		})
		for name, value := range map[string]any{"Zero": 0, "Negative": -1, "TooLong": 36501, "Fraction": 1.5, "Text": "30"} {
			t.Run("Rejects"+name, func(t *testing.T) {
				resp := fx.do("PATCH", path, fx.admin, map[string]any{"log_retention_days": value})
				require.Equal(t, http.StatusBadRequest, resp.status, "%s", resp.body)
				require.Contains(t, resp.object(t), "log_retention_days")
				require.Nil(t, stored())
			})
		}
		t.Run("IgnoredOnCreate", func(t *testing.T) {
			resp := fx.do("POST", "/api/accounts/", fx.admin, map[string]any{"account_name": "New", "log_retention_days": 5})
			require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
			body := resp.object(t)
			require.Contains(t, body, "log_retention_days")
			require.Nil(t, body["log_retention_days"])
		})
		t.Run("InRotateTokenResponse", func(t *testing.T) {
			seven := 7
			require.NoError(t, fx.store.SetAccountRetention(ctx, fx.account.AccountID, &seven))
			resp := fx.do("POST", path+"rotate-token/", fx.admin, nil)
			require.Equal(t, http.StatusOK, resp.status)
			require.Equal(t, float64(7), resp.object(t)["log_retention_days"])
		})
	})
}

func TestOnAccountChange(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		a := fx.createAccount(fx.admin, "Changing")
		fx.addMember(a, fx.normal, datapusher.RoleIDNormalUser)
		d := fx.createDestination(a)
		l := fx.createEvent(a, "evt-1", d)[0]
		accountPath := "/api/accounts/" + a.AccountID + "/"
		destinationPath := "/api/destinations/" + d.ID + "/"

		steps := []struct {
			name         string
			method, path string
			as           *persona
			body         any
			status       int
			notified     bool
		}{
			{"PatchAccount", "PATCH", accountPath, fx.normal, map[string]any{"website": "https://c.test"}, 200, true},
			{"PutAccount", "PUT", accountPath, fx.admin, map[string]any{"account_name": "Changed", "rate_limit_per_second": 3}, 200, true},
			{"SetRetention", "PATCH", accountPath, fx.admin, map[string]any{"log_retention_days": 9}, 200, true},
			{"InvalidUpdate", "PATCH", accountPath, fx.admin, map[string]any{"account_name": ""}, 400, false},
			{"ForbiddenUpdate", "PATCH", accountPath, fx.normal, map[string]any{"rate_limit_per_second": 4}, 403, false},
			{"RotateToken", "POST", accountPath + "rotate-token/", fx.admin, nil, 200, true},
			{"CreateDestination", "POST", "/api/destinations/", fx.admin, validDestination(a.AccountID), 201, true},
			{"PatchDestination", "PATCH", destinationPath, fx.normal, map[string]any{"enabled": false}, 200, true},
			{"PutDestination", "PUT", destinationPath, fx.admin, validDestination(a.AccountID), 200, true},
			{"InvalidDestination", "PATCH", destinationPath, fx.admin, map[string]any{"url": "ftp://x.test"}, 400, false},
			{"RotateSecret", "POST", destinationPath + "rotate-secret/", fx.admin, nil, 200, true},
			{"Recover", "POST", destinationPath + "recover/", fx.admin, map[string]any{"since": "2026-01-01T00:00:00Z"}, 202, false},
			{"RetryLog", "POST", "/api/logs/" + l.ID + "/retry/", fx.admin, nil, 202, false},
			{"ReadAccount", "GET", accountPath, fx.admin, nil, 200, false},
			{"AddMember", "POST", "/api/account-members/", fx.admin,
				map[string]any{"account_id": a.AccountID, "user_id": fx.outsider.user.ID, "role_id": 2}, 201, false},
			{"DeleteDestination", "DELETE", destinationPath, fx.admin, nil, 204, true},
			{"DeleteAccount", "DELETE", accountPath, fx.admin, nil, 204, true},
		}
		for _, step := range steps {
			fx.changes.reset()
			resp := fx.do(step.method, step.path, step.as, step.body)
			require.Equal(t, step.status, resp.status, "%s: %s", step.name, resp.body)
			if step.notified {
				require.Equal(t, []string{a.AccountID}, fx.changes.all(), step.name)
			} else {
				require.Empty(t, fx.changes.all(), step.name)
			}
		}

		// Without OnAccountChange, changes succeed and nothing is called.
		s := NewServer(Config{SecretKey: testSecretKey, BcryptCost: bcrypt.MinCost}, fx.store, fx.events,
			slog.New(slog.DiscardHandler))
		fx.changes.reset()
		resp := doRequest(t, s.Handler(), "PATCH", "/api/accounts/"+fx.account.AccountID+"/", fx.admin,
			map[string]any{"website": "https://nil.test"})
		require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
		require.Empty(t, fx.changes.all())
	})
}
