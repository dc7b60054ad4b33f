package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRegister(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		t.Run("CreatesUser", func(t *testing.T) {
			resp := fx.do("POST", "/api/users/register/", nil, map[string]any{
				"email": "New.User@Example.com", "password": "a long password", "username": "newbie", "extra": 1,
			})
			require.Equal(t, http.StatusCreated, resp.status, "%s", resp.body)
			body := resp.object(t)
			require.Equal(t, "new.user@example.com", body["email"])
			require.Equal(t, "newbie", body["username"])
			require.Equal(t, false, body["is_superuser"])
			require.NotEmpty(t, body["id"])
			require.NotEmpty(t, body["created_at"])
			require.NotContains(t, string(resp.body), "password")
		})
		t.Run("RejectsDuplicateEmail", func(t *testing.T) {
			resp := fx.do("POST", "/api/users/register/", nil, map[string]any{
				"email": "ADMIN@example.com", "password": "a long password",
			})
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.Contains(t, resp.object(t), "email")
		})
		cases := map[string]struct {
			body  any
			field string
		}{
			"MissingEmail":    {map[string]any{"password": "a long password"}, "email"},
			"InvalidEmail":    {map[string]any{"email": "not-an-email", "password": "a long password"}, "email"},
			"EmailWithName":   {map[string]any{"email": "Bob <bob@example.com>", "password": "a long password"}, "email"},
			"ShortPassword":   {map[string]any{"email": "a@example.com", "password": "short"}, "password"},
			"NumericPassword": {map[string]any{"email": "a@example.com", "password": "1234567890"}, "password"},
			"LongPassword":    {map[string]any{"email": "a@example.com", "password": strings.Repeat("x", 73)}, "password"},
			"MissingPassword": {map[string]any{"email": "a@example.com"}, "password"},
			"PasswordNotText": {map[string]any{"email": "a@example.com", "password": 12345678}, "password"},
			"NullEmail":       {map[string]any{"email": nil, "password": "a long password"}, "email"},
		}
		for name, tc := range cases {
			t.Run(name, func(t *testing.T) {
				resp := fx.do("POST", "/api/users/register/", nil, tc.body)
				require.Equal(t, http.StatusBadRequest, resp.status, "%s", resp.body)
				messages, ok := resp.object(t)[tc.field].([]any)
				require.True(t, ok, "body: %s", resp.body)
				require.NotEmpty(t, messages)
			})
		}
		t.Run("MalformedJSON", func(t *testing.T) {
			resp := fx.do("POST", "/api/users/register/", nil, `{"email": `)
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.True(t, strings.HasPrefix(resp.object(t)["detail"].(string), "JSON parse error - "))
		})
		t.Run("NotAnObject", func(t *testing.T) {
			resp := fx.do("POST", "/api/users/register/", nil, `[1, 2]`)
			require.Equal(t, http.StatusBadRequest, resp.status)
			require.Contains(t, resp.object(t), "non_field_errors")
		})
		t.Run("BodyTooLarge", func(t *testing.T) {
			big := `{"email": "` + strings.Repeat("a", DefaultMaxBodyBytes) + `"}`
			resp := fx.do("POST", "/api/users/register/", nil, big)
			require.Equal(t, http.StatusRequestEntityTooLarge, resp.status)
			require.Contains(t, resp.object(t), "detail")
		})
	})
}

func TestMe(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		t.Run("ReturnsUser", func(t *testing.T) {
			resp := fx.do("GET", "/api/users/me/", fx.normal, nil)
			require.Equal(t, http.StatusOK, resp.status)
			require.Equal(t, fx.normal.user.ID, resp.object(t)["id"])
			require.Equal(t, "normal@example.com", resp.object(t)["email"])
		})
		t.Run("SuperuserFlag", func(t *testing.T) {
			resp := fx.do("GET", "/api/users/me/", fx.super, nil)
			require.Equal(t, true, resp.object(t)["is_superuser"])
		})
		t.Run("RequiresToken", func(t *testing.T) {
			resp := fx.do("GET", "/api/users/me/", nil, nil)
			require.Equal(t, http.StatusUnauthorized, resp.status)
			require.Equal(t, `Bearer realm="api"`, resp.header.Get("WWW-Authenticate"))
			require.Equal(t, map[string]any{"detail": msgNotAuthenticated}, resp.object(t))
		})
		t.Run("RejectsGarbageToken", func(t *testing.T) {
			resp := fx.do("GET", "/api/users/me/", &persona{access: "garbage"}, nil)
			require.Equal(t, http.StatusUnauthorized, resp.status)
			require.Equal(t, map[string]any{"detail": msgTokenNotValid, "code": "token_not_valid"}, resp.object(t))
		})
	})
}

func TestRoles(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		resp := fx.do("GET", "/api/roles/", fx.outsider, nil)
		require.Equal(t, http.StatusOK, resp.status)
		roles := resp.list(t)
		require.Len(t, roles, 2)
		require.Equal(t, "Admin", roles[0]["role_name"])
		require.Equal(t, float64(1), roles[0]["id"])
		require.Equal(t, "Normal user", roles[1]["role_name"])
	})
}
