package httpapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRiverUIAccess(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		get := func(configure func(*http.Request)) *httptest.ResponseRecorder {
			req := httptest.NewRequest(http.MethodGet, "/riverui/api/states", nil)
			configure(req)
			rec := httptest.NewRecorder()
			fx.server.Handler().ServeHTTP(rec, req)
			return rec
		}

		t.Run("AnonymousGetsBasicChallenge", func(t *testing.T) {
			rec := get(func(*http.Request) {})
			require.Equal(t, http.StatusUnauthorized, rec.Code)
			require.Contains(t, rec.Header().Get("WWW-Authenticate"), "Basic")
		})
		t.Run("SuperuserBasicCredentials", func(t *testing.T) {
			rec := get(func(r *http.Request) { r.SetBasicAuth(fx.super.user.Email, testPassword) })
			require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
			rec = get(func(r *http.Request) { r.SetBasicAuth(fx.super.user.Email, testPassword) })
			require.Equal(t, http.StatusOK, rec.Code, "the cached credential works again")
		})
		t.Run("WrongPasswordIsRejected", func(t *testing.T) {
			rec := get(func(r *http.Request) { r.SetBasicAuth(fx.super.user.Email, "wrong password") })
			require.Equal(t, http.StatusUnauthorized, rec.Code)
			require.Contains(t, rec.Header().Get("WWW-Authenticate"), "Basic")
		})
		t.Run("AdminBasicCredentialsAreForbidden", func(t *testing.T) {
			rec := get(func(r *http.Request) { r.SetBasicAuth(fx.admin.user.Email, testPassword) })
			require.Equal(t, http.StatusForbidden, rec.Code)
		})
	})
}

func TestCredentialCache(t *testing.T) {
	t.Parallel()
	var c credentialCache
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	key := [32]byte{1}
	c.put(key, "user-1", now.Add(basicAuthCacheTTL))

	id, ok := c.get(key, now)
	require.True(t, ok)
	require.Equal(t, "user-1", id)
	_, ok = c.get(key, now.Add(basicAuthCacheTTL))
	require.False(t, ok, "an entry expires after the TTL")
	_, ok = c.get([32]byte{2}, now)
	require.False(t, ok)

	c.put([32]byte{3}, "user-3", now.Add(basicAuthCacheTTL))
	c.put([32]byte{4}, "user-4", now.Add(3*basicAuthCacheTTL))
	require.Len(t, c.entries, 1, "expired entries are dropped when a new one arrives")
}
