package httpapi

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWithETag(t *testing.T) {
	t.Parallel()
	body := `{"count":1}`
	handler := withETag(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("fail") != "" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"detail":"Not found."}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}))
	get := func(target, ifNoneMatch string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, target, nil)
		if ifNoneMatch != "" {
			req.Header.Set("If-None-Match", ifNoneMatch)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		return rec
	}

	first := get("/", "")
	require.Equal(t, http.StatusOK, first.Code)
	require.Equal(t, body, first.Body.String())
	tag := first.Header().Get("ETag")
	require.NotEmpty(t, tag)

	t.Run("MatchingTagIsNotModified", func(t *testing.T) {
		rec := get("/", tag)
		require.Equal(t, http.StatusNotModified, rec.Code)
		require.Empty(t, rec.Body.String())
		require.Equal(t, tag, rec.Header().Get("ETag"))
	})
	t.Run("ListAndWeakFormMatch", func(t *testing.T) {
		require.Equal(t, http.StatusNotModified, get("/", `"other", W/`+tag).Code)
		require.Equal(t, http.StatusNotModified, get("/", "*").Code)
	})
	t.Run("OtherTagGetsBody", func(t *testing.T) {
		rec := get("/", `"stale"`)
		require.Equal(t, http.StatusOK, rec.Code)
		require.Equal(t, body, rec.Body.String())
	})
	t.Run("ChangedBodyChangesTag", func(t *testing.T) {
		body = `{"count":2}`
		rec := get("/", tag)
		require.Equal(t, http.StatusOK, rec.Code)
		require.NotEqual(t, tag, rec.Header().Get("ETag"))
	})
	t.Run("ErrorsHaveNoTag", func(t *testing.T) {
		rec := get("/?fail=1", "*")
		require.Equal(t, http.StatusNotFound, rec.Code)
		require.Empty(t, rec.Header().Get("ETag"))
		require.JSONEq(t, `{"detail":"Not found."}`, rec.Body.String())
	})
}

func TestETagOnAPIReads(t *testing.T) {
	t.Parallel()
	forEachDialect(t, func(t *testing.T, fx *fixture) {
		first := fx.do("GET", "/api/accounts/", fx.admin, nil)
		require.Equal(t, http.StatusOK, first.status)
		tag := first.header.Get("ETag")
		require.NotEmpty(t, tag)

		req := httptest.NewRequest("GET", "/api/accounts/", nil)
		req.Header.Set("Authorization", "Bearer "+fx.admin.access)
		req.Header.Set("If-None-Match", tag)
		resp := serveRequest(t, fx.server.Handler(), req, nil)
		require.Equal(t, http.StatusNotModified, resp.status)
		require.Empty(t, resp.body)
		require.Equal(t, tag, resp.header.Get("ETag"))
	})
}
