package httpapi

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher"
)

func TestCreateMember(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		t.Run("ByUserID", func(t *testing.T) {
			resp := fx.do("POST", "/api/account-members/", fx.admin, map[string]any{
				"account_id": fx.account.AccountID, "user_id": fx.outsider.user.ID, "role_id": 2,
			})
			require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
			body := resp.object(t)
			require.Equal(t, "outsider@example.com", body["email"])
			require.Equal(t, float64(2), body["role_id"])
			require.NotContains(t, body, "invitation_token", "the user has a password")
		})
		t.Run("ByExistingEmail", func(t *testing.T) {
			other := fx.createAccount(fx.admin, "Second")
			resp := fx.do("POST", "/api/account-members/", fx.admin, map[string]any{
				"account_id": other.AccountID, "email": "NORMAL@example.com", "role_id": 1,
			})
			require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
			require.Equal(t, fx.normal.user.ID, resp.object(t)["user_id"])
			require.NotContains(t, resp.object(t), "invitation_token")
		})
		t.Run("AlreadyMember", func(t *testing.T) {
			resp := fx.do("POST", "/api/account-members/", fx.admin, map[string]any{
				"account_id": fx.account.AccountID, "user_id": fx.normal.user.ID, "role_id": 2,
			})
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.Contains(t, resp.object(t), "user_id")
		})
		cases := map[string]struct {
			body  map[string]any
			field string
		}{
			"NoUser":        {map[string]any{"role_id": 2}, "non_field_errors"},
			"BadRole":       {map[string]any{"role_id": 7, "email": "x@example.com"}, "role_id"},
			"MissingRole":   {map[string]any{"email": "x@example.com"}, "role_id"},
			"BadEmail":      {map[string]any{"role_id": 2, "email": "x"}, "email"},
			"BadUserID":     {map[string]any{"role_id": 2, "user_id": "x"}, "user_id"},
			"UnknownUserID": {map[string]any{"role_id": 2, "user_id": "00000000-0000-0000-0000-000000000000"}, "user_id"},
		}
		for name, tc := range cases {
			t.Run(name, func(t *testing.T) {
				tc.body["account_id"] = fx.account.AccountID
				resp := fx.do("POST", "/api/account-members/", fx.admin, tc.body)
				require.Equal(t, http.StatusBadRequest, resp.status, "%s", resp.body)
				require.Contains(t, resp.object(t), tc.field)
			})
		}
		t.Run("NormalUserForbidden", func(t *testing.T) {
			resp := fx.do("POST", "/api/account-members/", fx.normal, map[string]any{
				"account_id": fx.account.AccountID, "email": "y@example.com", "role_id": 2,
			})
			require.Equal(t, http.StatusForbidden, resp.status)
		})
		t.Run("OutsiderNotFound", func(t *testing.T) {
			other := fx.createAccount(fx.admin, "Private")
			resp := fx.do("POST", "/api/account-members/", fx.outsider, map[string]any{
				"account_id": other.AccountID, "email": "y@example.com", "role_id": 1,
			})
			require.Equal(t, http.StatusNotFound, resp.status)
		})
	})
}

func TestInvitation(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		invite := func(email string) string {
			resp := fx.do("POST", "/api/account-members/", fx.admin, map[string]any{
				"account_id": fx.account.AccountID, "email": email, "role_id": 2,
			})
			require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
			token, _ := resp.object(t)["invitation_token"].(string)
			require.NotEmpty(t, token)
			return token
		}

		t.Run("TokenWorksOnce", func(t *testing.T) {
			token := invite("new.hire@example.com")
			resp := fx.do("POST", "/api/users/accept-invite/", nil, map[string]any{"token": token, "password": "brand new secret"})
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			require.Equal(t, "new.hire@example.com", resp.object(t)["email"])

			resp = fx.do("POST", "/api/token/", nil, map[string]any{"email": "new.hire@example.com", "password": "brand new secret"})
			require.Equal(t, http.StatusOK, resp.status)

			resp = fx.do("POST", "/api/users/accept-invite/", nil, map[string]any{"token": token, "password": "another secret"})
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.Contains(t, resp.object(t), "token")
		})
		t.Run("TokenExpires", func(t *testing.T) {
			token := invite("late@example.com")
			fx.store.Now = func() time.Time { return time.Now().UTC().Add(DefaultInvitationTTL + time.Minute) }
			defer func() { fx.store.Now = func() time.Time { return time.Now().UTC() } }()
			resp := fx.do("POST", "/api/users/accept-invite/", nil, map[string]any{"token": token, "password": "brand new secret"})
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.Contains(t, resp.object(t), "token")
		})
		t.Run("UnknownToken", func(t *testing.T) {
			resp := fx.do("POST", "/api/users/accept-invite/", nil, map[string]any{"token": "nope", "password": "brand new secret"})
			require.Equal(t, http.StatusBadRequest, resp.status)
		})
		t.Run("WeakPassword", func(t *testing.T) {
			token := invite("weak@example.com")
			resp := fx.do("POST", "/api/users/accept-invite/", nil, map[string]any{"token": token, "password": "short"})
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.Contains(t, resp.object(t), "password")
			resp = fx.do("POST", "/api/users/accept-invite/", nil, map[string]any{"token": token, "password": "long enough now"})
			require.Equal(t, http.StatusOK, resp.status, "a rejected password does not use the token up")
		})
		t.Run("PendingUserCannotBeInvitedAgain", func(t *testing.T) {
			token := invite("pending@example.com")
			other := fx.createAccount(fx.outsider, "Second")
			resp := fx.do("POST", "/api/account-members/", fx.outsider, map[string]any{
				"account_id": other.AccountID, "email": "pending@example.com", "role_id": 1,
			})
			require.Equal(t, http.StatusBadRequest, resp.status, "a second invitation could take the user over")
			require.Contains(t, resp.object(t), "email")
			require.NotContains(t, string(resp.body), "invitation_token")

			resp = fx.do("POST", "/api/users/accept-invite/", nil, map[string]any{"token": token, "password": "first and only"})
			require.Equal(t, http.StatusOK, resp.status)
			resp = fx.do("POST", "/api/account-members/", fx.outsider, map[string]any{
				"account_id": other.AccountID, "email": "pending@example.com", "role_id": 2,
			})
			require.Equal(t, http.StatusCreated, resp.status, "once the password is set the user can be added")
			require.NotContains(t, resp.object(t), "invitation_token")
		})

		// members lists the emails of the members of an account.
		members := func(accountID string) []string {
			resp := fx.do("GET", "/api/account-members/?account_id="+accountID, fx.admin, nil)
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			var emails []string
			for _, m := range resp.object(t)["results"].([]any) {
				emails = append(emails, m.(map[string]any)["email"].(string))
			}
			return emails
		}
		// The personas' access tokens are valid only at the real time.
		realTime := func() { fx.store.Now = func() time.Time { return time.Now().UTC() } }
		afterExpiry := func() {
			fx.store.Now = func() time.Time { return time.Now().UTC().Add(DefaultInvitationTTL + time.Minute) }
		}
		defer realTime()

		t.Run("ExpiredInvitationFreesEmailForInvite", func(t *testing.T) {
			invite("lapsed@example.com")
			other := fx.createAccount(fx.outsider, "Third")
			afterExpiry()
			access, _ := fx.signIn(t, "outsider@example.com")
			resp := fx.do("POST", "/api/account-members/", &persona{access: access}, map[string]any{
				"account_id": other.AccountID, "email": "lapsed@example.com", "role_id": 2,
			})
			realTime()
			require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
			require.NotEmpty(t, resp.object(t)["invitation_token"])
			require.NotContains(t, members(fx.account.AccountID), "lapsed@example.com",
				"the new invitation must not reach the expired one's membership")
		})
		t.Run("ExpiredInviteeByIDRejected", func(t *testing.T) {
			resp := fx.do("POST", "/api/account-members/", fx.admin, map[string]any{
				"account_id": fx.account.AccountID, "email": "by-id@example.com", "role_id": 2,
			})
			require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
			userID := resp.object(t)["user_id"].(string)
			other := fx.createAccount(fx.admin, "Fourth")
			afterExpiry()
			access, _ := fx.signIn(t, "admin@example.com")
			resp = fx.do("POST", "/api/account-members/", &persona{access: access}, map[string]any{
				"account_id": other.AccountID, "user_id": userID, "role_id": 2,
			})
			realTime()
			require.Equal(t, http.StatusBadRequest, resp.status, "%s", resp.body)
			require.Contains(t, string(resp.body), "invite them again by email")
		})
		t.Run("ExpiredInvitationFreesEmailForRegister", func(t *testing.T) {
			invite("squatted@example.com")
			afterExpiry()
			registered := fx.do("POST", "/api/users/register/", nil, map[string]any{
				"email": "squatted@example.com", "password": "my own password",
			})
			realTime()
			require.Equal(t, http.StatusCreated, registered.status, "%s", registered.body)
			require.NotContains(t, members(fx.account.AccountID), "squatted@example.com")
		})
		t.Run("OpenInvitationKeepsEmail", func(t *testing.T) {
			token := invite("awaited@example.com")
			resp := fx.do("POST", "/api/users/register/", nil, map[string]any{
				"email": "Awaited@Example.com ", "password": "my own password",
			})
			require.Equal(t, http.StatusBadRequest, resp.status, "%s", resp.body)
			require.Contains(t, string(resp.body), "open invitation")
			resp = fx.do("POST", "/api/users/accept-invite/", nil, map[string]any{"token": token, "password": "the invitee's"})
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			require.Contains(t, members(fx.account.AccountID), "awaited@example.com")
		})
		t.Run("InvitedAdminDoesNotCountAsAdmin", func(t *testing.T) {
			solo := fx.createAccount(fx.outsider, "Solo")
			resp := fx.do("POST", "/api/account-members/", fx.outsider, map[string]any{
				"account_id": solo.AccountID, "email": "heir@example.com", "role_id": 1,
			})
			require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
			resp = fx.do("GET", "/api/account-members/?account_id="+solo.AccountID+"&user_id="+fx.outsider.user.ID,
				fx.outsider, nil)
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			own := resp.object(t)["results"].([]any)[0].(map[string]any)["id"].(string)
			resp = fx.do("DELETE", "/api/account-members/"+own+"/", fx.outsider, nil)
			require.Equal(t, http.StatusBadRequest, resp.status,
				"the only Admin who can sign in left an account whose other Admin has not accepted yet")
		})
	})
}

func TestReadMembers(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		t.Run("ListFilters", func(t *testing.T) {
			resp := fx.do("GET", "/api/account-members/?account_id="+fx.account.AccountID, fx.normal, nil)
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			require.Equal(t, float64(2), resp.object(t)["count"])
			resp = fx.do("GET", "/api/account-members/?role_id=1&account_id="+fx.account.AccountID, fx.normal, nil)
			require.Equal(t, float64(1), resp.object(t)["count"])
			require.Equal(t, fx.admin.user.ID, resp.results(t)[0]["user_id"])
			resp = fx.do("GET", "/api/account-members/?user_id="+fx.normal.user.ID, fx.super, nil)
			require.Equal(t, float64(1), resp.object(t)["count"])
		})
		t.Run("ListHidesOtherAccounts", func(t *testing.T) {
			resp := fx.do("GET", "/api/account-members/", fx.outsider, nil)
			require.Equal(t, float64(1), resp.object(t)["count"], "only the outsider's own account")
		})
		for name, query := range map[string]string{"role_id": "role_id=3", "user_id": "user_id=me", "account_id": "account_id=1"} {
			t.Run("Rejects_"+name, func(t *testing.T) {
				resp := fx.do("GET", "/api/account-members/?"+query, fx.admin, nil)
				require.Equal(t, http.StatusBadRequest, resp.status)
				require.Contains(t, resp.object(t), name)
			})
		}
		t.Run("Detail", func(t *testing.T) {
			m := memberOf(t, fx, fx.normal)
			resp := fx.do("GET", "/api/account-members/"+m.ID+"/", fx.normal, nil)
			require.Equal(t, http.StatusOK, resp.status)
			require.Equal(t, "normal@example.com", resp.object(t)["email"])
			require.Equal(t, http.StatusNotFound, fx.do("GET", "/api/account-members/"+m.ID+"/", fx.outsider, nil).status)
		})
	})
}

// memberOf returns the persona's membership of the fixture account.
func memberOf(t *testing.T, fx *fixture, p *persona) *datapusher.Member {
	t.Helper()
	members, _, err := fx.store.Members(t.Context(), datapusher.MemberFilter{
		AccountID: &fx.account.AccountID, UserID: &p.user.ID,
	})
	require.NoError(t, err)
	require.Len(t, members, 1)
	return members[0]
}

func TestUpdateMember(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		adminMembership := memberOf(t, fx, fx.admin)
		normalMembership := memberOf(t, fx, fx.normal)
		adminPath := "/api/account-members/" + adminMembership.ID + "/"
		normalPath := "/api/account-members/" + normalMembership.ID + "/"

		t.Run("LastAdminCannotBeDemoted", func(t *testing.T) {
			resp := fx.do("PATCH", adminPath, fx.admin, map[string]any{"role_id": 2})
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.Equal(t, map[string]any{"role_id": []any{"An account must keep at least one Admin who has set a password."}}, resp.object(t))
		})
		t.Run("LastAdminCannotBeRemoved", func(t *testing.T) {
			resp := fx.do("DELETE", adminPath, fx.admin, nil)
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.Contains(t, resp.object(t), "role_id")
		})
		t.Run("NormalUserCannotChangeRoles", func(t *testing.T) {
			resp := fx.do("PATCH", normalPath, fx.normal, map[string]any{"role_id": 1})
			require.Equal(t, http.StatusForbidden, resp.status)
		})
		t.Run("ImmutableFields", func(t *testing.T) {
			resp := fx.do("PATCH", normalPath, fx.admin, map[string]any{"user_id": fx.outsider.user.ID})
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.Contains(t, resp.object(t), "user_id")
			resp = fx.do("PUT", normalPath, fx.admin, map[string]any{"role_id": 2, "account_id": fx.outsider.user.ID})
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.Contains(t, resp.object(t), "account_id")
		})
		t.Run("PutRequiresRole", func(t *testing.T) {
			resp := fx.do("PUT", normalPath, fx.admin, map[string]any{})
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.Contains(t, resp.object(t), "role_id")
		})
		t.Run("PromoteThenDemote", func(t *testing.T) {
			resp := fx.do("PUT", normalPath, fx.admin, map[string]any{
				"role_id": 1, "user_id": fx.normal.user.ID, "account_id": fx.account.AccountID,
			})
			require.Equal(t, http.StatusOK, resp.status, "%s", resp.body)
			require.Equal(t, float64(1), resp.object(t)["role_id"])

			resp = fx.do("PATCH", adminPath, fx.normal, map[string]any{"role_id": 2})
			require.Equal(t, http.StatusOK, resp.status, "a second Admin exists now")
			resp = fx.do("DELETE", normalPath, fx.normal, nil)
			require.Equal(t, http.StatusBadRequest, resp.status, "the last Admin cannot remove themselves")
		})
		t.Run("DeleteMember", func(t *testing.T) {
			m := fx.addMember(fx.account, fx.outsider, datapusher.RoleIDNormalUser)
			require.Equal(t, http.StatusNoContent, fx.do("DELETE", "/api/account-members/"+m.ID+"/", fx.normal, nil).status)
			require.Equal(t, http.StatusNotFound, fx.do("GET", "/api/account-members/"+m.ID+"/", fx.normal, nil).status)
		})
	})
}
