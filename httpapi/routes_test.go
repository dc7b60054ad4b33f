package httpapi

import (
	"log/slog"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher/internal/testdb"
)

func TestOperationalRoutes(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, testdb.Open(t, testdb.Dialects[0]), Config{})

	t.Run("ServedWithoutJWT", func(t *testing.T) {
		for path, stub := range map[string]string{
			"/healthz":                    "health",
			"/readyz":                     "ready",
			"/metrics":                    "metrics",
			"/api/schema/":                "schema",
			"/swagger/":                   "docs",
			"/swagger/swagger-ui.css":     "docs",
			"/swagger/assets/favicon.png": "docs",
			"/swagger/index.html?url=a":   "docs",
		} {
			resp := fx.do("GET", path, nil, nil)
			require.Equal(t, http.StatusOK, resp.status, path)
			require.Equal(t, map[string]any{"stub": stub}, resp.object(t), path)
		}
	})
	t.Run("JWTNotChecked", func(t *testing.T) {
		resp := fx.do("GET", "/healthz", &persona{access: "not a jwt"}, nil)
		require.Equal(t, http.StatusOK, resp.status)
	})
	t.Run("MethodNotAllowed", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/metrics", "/api/schema/", "/swagger/", "/swagger/a.js"} {
			resp := fx.do("POST", path, nil, nil)
			require.Equal(t, http.StatusMethodNotAllowed, resp.status, path)
			require.Equal(t, "GET, HEAD, OPTIONS", resp.header.Get("Allow"), path)
		}
	})
	t.Run("Head", func(t *testing.T) {
		resp := fx.do("HEAD", "/readyz", nil, nil)
		require.Equal(t, http.StatusOK, resp.status)
	})
	t.Run("NilHandlerNotFound", func(t *testing.T) {
		s := NewServer(Config{SecretKey: testSecretKey}, fx.store, fx.events, slog.New(slog.DiscardHandler))
		for _, path := range []string{"/healthz", "/readyz", "/metrics", "/api/schema/", "/swagger/", "/swagger/x.css"} {
			resp := doRequest(t, s.Handler(), "GET", path, nil, nil)
			require.Equal(t, http.StatusNotFound, resp.status, path)
			require.Equal(t, map[string]any{"detail": "Not found."}, resp.object(t), path)
		}
	})
}

func TestCoveredByRest(t *testing.T) {
	t.Parallel()
	paths := []string{"/swagger/", "/swagger/{path...}", "/api/logs/", "/api/logs/{id}/", "/a/{x}"}
	require.True(t, coveredByRest("/swagger/", paths))
	require.False(t, coveredByRest("/api/logs/", paths), "{id}/ is no rest wildcard")
	require.False(t, coveredByRest("/a/", paths), "{x} is no rest wildcard")
	require.False(t, coveredByRest("/swagger/{path...}", paths))
}
