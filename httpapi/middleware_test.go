package httpapi

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/datapusher/datapusher/internal/testdb"
)

func TestRequestID(t *testing.T) {
	t.Parallel()
	cases := map[string]bool{
		"abc-123":                true,
		strings.Repeat("x", 128): true,
		strings.Repeat("x", 129): false,
		"":                       false,
		"has space":              false,
		"tab\there":              false,
		"caf\u00e9":              false,
		"new\nline":              false,
		"req_01HZX!#$%&'*+.^`|~": true,
	}
	for header, valid := range cases {
		got := requestID(header)
		if valid {
			require.Equal(t, header, got)
		} else {
			require.NotEqual(t, header, got)
			_, err := uuid.Parse(got)
			require.NoError(t, err, "a generated id is a UUID")
		}
	}
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	fx := newFixture(t, testdb.Open(t, testdb.Dialects[0]), Config{})

	t.Run("EchoesRequestID", func(t *testing.T) {
		req := httptest.NewRequest("GET", "/api/users/me/", nil)
		req.Header.Set("X-Request-ID", "trace-42")
		req.Header.Set("Authorization", "Bearer "+fx.admin.access)
		resp := serveRequest(t, fx.server.Handler(), req, nil)
		require.Equal(t, http.StatusOK, resp.status)
		require.Equal(t, "trace-42", resp.header.Get("X-Request-ID"))
	})
	t.Run("GeneratesRequestID", func(t *testing.T) {
		resp := fx.do("GET", "/api/users/me/", fx.admin, nil)
		_, err := uuid.Parse(resp.header.Get("X-Request-ID"))
		require.NoError(t, err)
	})
	t.Run("LogsOneLinePerRequest", func(t *testing.T) {
		req := httptest.NewRequest("GET", "/api/accounts/"+fx.account.AccountID+"/", nil)
		req.Header.Set("X-Request-ID", "log-line-check")
		req.Header.Set("Authorization", "Bearer "+fx.normal.access)
		serveRequest(t, fx.server.Handler(), req, nil)

		var lines []map[string]any
		for _, line := range strings.Split(strings.TrimSpace(fx.logs.String()), "\n") {
			if strings.Contains(line, "log-line-check") {
				var entry map[string]any
				require.NoError(t, json.Unmarshal([]byte(line), &entry))
				lines = append(lines, entry)
			}
		}
		require.Len(t, lines, 1)
		require.Equal(t, "request", lines[0]["msg"])
		require.Equal(t, "GET", lines[0]["method"])
		require.Equal(t, "GET /api/accounts/{account_id}/", lines[0]["route"])
		require.Equal(t, float64(200), lines[0]["status"])
		require.Contains(t, lines[0], "duration_ms")
		require.Equal(t, fx.account.AccountID, lines[0]["account_id"], "the account the request concerns")
		require.NotContains(t, fx.logs.String(), fx.normal.access)
	})
	t.Run("NotFound", func(t *testing.T) {
		for _, path := range []string{"/nowhere", "/api/accountsx/", "/api/accounts/x/y/z/", "/api/logs/1/attempts/more/"} {
			resp := fx.do("GET", path, fx.admin, nil)
			require.Equal(t, http.StatusNotFound, resp.status, path)
			require.Equal(t, map[string]any{"detail": "Not found."}, resp.object(t))
		}
	})
	t.Run("RedirectsToTrailingSlash", func(t *testing.T) {
		resp := fx.do("GET", "/api/accounts", fx.admin, nil)
		require.Equal(t, http.StatusTemporaryRedirect, resp.status)
		require.Equal(t, "/api/accounts/", resp.header.Get("Location"))
	})
	t.Run("MethodNotAllowed", func(t *testing.T) {
		resp := fx.do("DELETE", "/api/accounts/", fx.admin, nil)
		require.Equal(t, http.StatusMethodNotAllowed, resp.status)
		require.Equal(t, map[string]any{"detail": `Method "DELETE" not allowed.`}, resp.object(t))
		require.Equal(t, "POST, GET, HEAD, OPTIONS", resp.header.Get("Allow"))

		resp = fx.do("POST", "/api/logs/x/attempts/", nil, nil)
		require.Equal(t, http.StatusMethodNotAllowed, resp.status)
		require.Equal(t, "GET, HEAD, OPTIONS", resp.header.Get("Allow"))
	})
	t.Run("Options", func(t *testing.T) {
		resp := fx.do("OPTIONS", "/api/destinations/x/", nil, nil)
		require.Equal(t, http.StatusOK, resp.status)
		require.Equal(t, "GET, PUT, PATCH, DELETE, HEAD, OPTIONS", resp.header.Get("Allow"))
	})
}

func TestPanicRecovery(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	s := &Server{logger: slog.New(slog.NewJSONHandler(logs, nil))}
	h := s.middleware(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	require.Equal(t, http.StatusInternalServerError, rec.Code)
	require.JSONEq(t, `{"detail": "Internal error."}`, rec.Body.String())
	require.Contains(t, logs.String(), `"error":"panic: boom"`)
	require.Contains(t, logs.String(), `"status":500`)
}
