package apidocstest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDocumentedOperations(t *testing.T) {
	operations := DocumentedOperations()
	require.Len(t, operations, 40)
	assert.Contains(t, operations, Operation{Method: "POST", Path: "/server/incoming_data"})
	assert.Contains(t, operations, Operation{Method: "POST", Path: "/server/incoming_data/"})
	assert.Contains(t, operations, Operation{Method: "PATCH", Path: "/api/accounts/{account_id}/"})
	assert.Contains(t, operations, Operation{Method: "GET", Path: "/api/logs/{id}/attempts/"})

	seen := map[Operation]bool{}
	for _, op := range operations {
		assert.Equal(t, strings.ToUpper(op.Method), op.Method, "method of %s", op.Path)
		assert.False(t, seen[op], "%v listed twice", op)
		seen[op] = true
	}
	assert.True(t, slices.IsSortedFunc(operations, func(a, b Operation) int {
		if c := strings.Compare(a.Path, b.Path); c != 0 {
			return c
		}
		return methodRank(a.Method) - methodRank(b.Method)
	}), "sorted by path, then method")
}

// recordingTB records the errors that Check reports instead of failing the
// test.
type recordingTB struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// exchange is one request and its response, for Check.
type exchange struct {
	method, target string
	reqHeader      http.Header
	reqBody        string
	status         int
	respHeader     http.Header
	respBody       string
}

// check runs Check on e and returns the errors it reported.
func check(t *testing.T, v *Validator, e exchange) []string {
	t.Helper()
	req := httptest.NewRequest(e.method, e.target, strings.NewReader(e.reqBody))
	for name, values := range e.reqHeader {
		req.Header[name] = values
	}
	header := http.Header{"X-Request-Id": {"req-1"}}
	if e.respBody != "" {
		header.Set("Content-Type", "application/json")
	}
	for name, values := range e.respHeader {
		header[http.CanonicalHeaderKey(name)] = values
	}
	resp := &http.Response{StatusCode: e.status, Header: header}
	rec := &recordingTB{TB: t}
	v.Check(rec, req, []byte(e.reqBody), resp, []byte(e.respBody))
	return rec.errors
}

const (
	accountID   = "0b8e7c2a-4d1f-4a6e-8b3c-9e5d7f1a2c40"
	userID      = "3f2c1a9e-5b7d-4e8a-9c1f-2a6b8d0e4f71"
	accountJSON = `{"account_id": "` + accountID + `", "account_name": "Acme", "email": null,
		"website": null, "rate_limit_per_second": null, "log_retention_days": null,
		"created_at": "2026-01-02T15:04:05.123456Z",
		"updated_at": "2026-01-02T15:04:05.123456Z", "created_by": "` + userID + `", "updated_by": null`
)

var (
	bearer   = http.Header{"Authorization": {"Bearer token"}}
	appToken = http.Header{"Cl-X-Token": {"secret"}}

	// etag is the ETag header of a 200 response to GET under /api/.
	etag = http.Header{"ETag": {`"mC4bU0jVZ2N3sXk9QeLr7a1T"`}}
)

func TestCheckAcceptsDocumentedExchanges(t *testing.T) {
	v := NewValidator(t)
	tests := map[string]exchange{
		"IncomingAccepted": {
			method: "POST", target: "/server/incoming_data", reqHeader: appToken, reqBody: `{"a": 1}`,
			status: 202, respBody: `{"success": true, "message": "Data Received", "event_id": "e-1"}`,
		},
		"IncomingDuplicateWithSlash": {
			method: "POST", target: "/server/incoming_data/", reqBody: `{}`,
			reqHeader: http.Header{"Cl-X-Token": {"secret"}, "Cl-X-Event-Id": {"order 42"}},
			status:    200, respBody: `{"success": true, "message": "Data Received", "event_id": "order 42", "duplicate": true}`,
		},
		"IncomingThrottled": {
			method: "POST", target: "/server/incoming_data", reqHeader: appToken, reqBody: `{}`,
			status: 429, respBody: `{"success": false, "message": "Too Many Requests"}`,
			respHeader: http.Header{
				"Retry-After": {"1"}, "RateLimit-Limit": {"10"}, "RateLimit-Remaining": {"0"}, "RateLimit-Reset": {"1"},
			},
		},
		"IncomingUnauthenticated": {
			method: "POST", target: "/server/incoming_data", reqBody: `{}`,
			status: 401, respBody: `{"success": false, "message": "Unauthenticated"}`,
		},
		"GetAccount": {
			method: "GET", target: "/api/accounts/" + accountID + "/", reqHeader: bearer,
			status: 200, respBody: accountJSON + `}`, respHeader: etag,
		},
		"CreateAccountWithoutContentType": {
			method: "POST", target: "/api/accounts/", reqHeader: bearer, reqBody: `{"account_name": "Acme"}`,
			status: 201, respBody: accountJSON + `, "app_secret_token": "tok"}`,
		},
		"InvalidRequestGets400": {
			method: "POST", target: "/api/users/register/", reqBody: `{"email": 5}`,
			status: 400, respBody: `{"email": ["Not a valid string."], "password": ["This field is required."]}`,
		},
		"MissingTokenGets401": {
			method: "GET", target: "/api/users/me/",
			status: 401, respBody: `{"detail": "Authentication credentials were not provided."}`,
			respHeader: http.Header{"WWW-Authenticate": {`Bearer realm="api"`}},
		},
		"DeleteHasNoBody": {
			method: "DELETE", target: "/api/destinations/" + accountID + "/", reqHeader: bearer, status: 204,
		},
		"LogoutResetContent": {
			method: "POST", target: "/api/users/logout/", reqHeader: bearer, reqBody: `{"refresh": "r"}`, status: 205,
		},
		"HeadAsGet": {
			method: "HEAD", target: "/api/roles/", reqHeader: bearer, status: 200, respHeader: etag,
		},
		"UnknownPathGets404": {
			method: "GET", target: "/api/unknown/", status: 404, respBody: `{"detail": "Not found."}`,
		},
		"UndocumentedMethodGets405": {
			method: "PATCH", target: "/api/roles/", reqHeader: bearer, status: 405,
			respBody: `{"detail": "Method \"PATCH\" not allowed."}`, respHeader: http.Header{"Allow": {"GET, HEAD, OPTIONS"}},
		},
		"OptionsGets200WithAllow": {
			method: "OPTIONS", target: "/api/destinations/" + accountID + "/", status: 200,
			respHeader: http.Header{"Allow": {"GET, PUT, PATCH, DELETE, HEAD, OPTIONS"}},
		},
		"MissingSlashRedirects": {
			method: "GET", target: "/api/accounts", status: 307,
			respHeader: http.Header{"Location": {"/api/accounts/"}},
		},
		"MissingSlashRedirectsWithQuery": {
			method: "GET", target: "/api/logs?status=failed", status: 307,
			respHeader: http.Header{"Location": {"/api/logs/?status=failed"}},
		},
		"NotModified": {
			method: "GET", target: "/api/roles/", reqHeader: http.Header{
				"Authorization": {"Bearer token"}, "If-None-Match": etag["ETag"],
			},
			status: 304, respHeader: etag,
		},
		"ListWithFilters": {
			method: "GET", target: "/api/logs/?status=failed&page_size=10&ordering=-processed_timestamp", reqHeader: bearer,
			status: 200, respBody: `{"next": null, "previous": null, "results": []}`, respHeader: etag,
		},
	}
	for name, e := range tests {
		t.Run(name, func(t *testing.T) {
			assert.Empty(t, check(t, v, e))
		})
	}
}

func TestCheckAcceptsClientRequest(t *testing.T) {
	v := NewValidator(t)
	req, err := http.NewRequest(http.MethodGet, "http://127.0.0.1:43210/api/users/me/", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer token")
	resp := &http.Response{StatusCode: 200, Header: http.Header{
		"Content-Type": {"application/json"}, "X-Request-Id": {"req-1"}, "Etag": etag["ETag"],
	}}
	body := []byte(`{"id": "` + userID + `", "email": "ada@example.com", "username": "", "is_superuser": false,
		"created_at": "2026-01-02T15:04:05Z", "updated_at": "2026-01-02T15:04:05Z"}`)
	rec := &recordingTB{TB: t}
	v.Check(rec, req, nil, resp, body)
	assert.Empty(t, rec.errors)
}

func TestCheckReportsMismatches(t *testing.T) {
	v := NewValidator(t)
	tests := map[string]struct {
		exchange exchange
		want     string
	}{
		"UndocumentedStatus": {
			exchange{method: "GET", target: "/api/roles/", reqHeader: bearer, status: 418, respBody: `{}`},
			"status is not supported",
		},
		"MissingField": {
			exchange{method: "POST", target: "/api/accounts/", reqHeader: bearer, reqBody: `{"account_name": "A"}`,
				status: 201, respBody: accountJSON + `}`},
			"app_secret_token",
		},
		"ExtraField": {
			exchange{method: "GET", target: "/api/accounts/" + accountID + "/", reqHeader: bearer,
				status: 200, respBody: accountJSON + `, "secret": "x"}`},
			"secret",
		},
		"WrongConstant": {
			exchange{method: "POST", target: "/server/incoming_data", reqHeader: appToken, reqBody: `{}`,
				status: 202, respBody: `{"success": true, "message": "OK", "event_id": "e"}`},
			"message",
		},
		"MissingRequiredHeader": {
			exchange{method: "GET", target: "/api/users/me/", status: 401,
				respBody: `{"detail": "Authentication credentials were not provided."}`},
			"WWW-Authenticate",
		},
		"WrongContentType": {
			exchange{method: "GET", target: "/api/roles/", reqHeader: bearer, status: 200, respBody: `[]`,
				respHeader: http.Header{"Content-Type": {"text/plain"}, "ETag": etag["ETag"]}},
			"text/plain",
		},
		"AcceptedWithoutCredentials": {
			exchange{method: "GET", target: "/api/roles/", status: 200, respBody: `[]`, respHeader: etag},
			"Authorization",
		},
		"AcceptedInvalidBody": {
			exchange{method: "POST", target: "/api/users/register/", reqBody: `{"email": "a@example.com"}`,
				status: 201, respBody: `{"id": "` + userID + `", "email": "a@example.com", "username": "",
				"is_superuser": false, "created_at": "2026-01-02T15:04:05Z", "updated_at": "2026-01-02T15:04:05Z"}`},
			"password",
		},
		"AcceptedInvalidQuery": {
			exchange{method: "GET", target: "/api/logs/?status=done", reqHeader: bearer,
				status: 200, respBody: `{"next": null, "previous": null, "results": []}`, respHeader: etag},
			"status",
		},
		"UndocumentedPath": {
			exchange{method: "GET", target: "/api/unknown/", status: 200, respBody: `{}`},
			"path is not in openapi.yaml",
		},
		"UndocumentedMethod": {
			exchange{method: "PATCH", target: "/api/roles/", reqHeader: bearer, status: 200, respBody: `[]`},
			"method is not in openapi.yaml",
		},
		"MethodNotAllowedWithoutAllow": {
			exchange{method: "PATCH", target: "/api/roles/", status: 405, respBody: `{"detail": "x"}`},
			"Allow",
		},
		"OptionsWithoutAllow": {
			exchange{method: "OPTIONS", target: "/api/roles/", status: 200},
			"Allow",
		},
		"RedirectElsewhere": {
			exchange{method: "GET", target: "/api/accounts", status: 307,
				respHeader: http.Header{"Location": {"/api/roles/"}}},
			"instead of",
		},
		"RedirectToUndocumentedPath": {
			exchange{method: "GET", target: "/api/unknown", status: 307,
				respHeader: http.Header{"Location": {"/api/unknown/"}}},
			"neither is /api/unknown/",
		},
		"NotModifiedWithoutETag": {
			exchange{method: "GET", target: "/api/roles/", reqHeader: bearer, status: 304},
			`response header "ETag" missing`,
		},
		"NotModifiedWithBody": {
			exchange{method: "GET", target: "/api/roles/", reqHeader: bearer, status: 304, respBody: `[]`,
				respHeader: etag},
			"must have no body",
		},
		"UndocumentedNotModified": {
			exchange{method: "POST", target: "/api/accounts/", reqHeader: bearer, reqBody: `{"account_name": "A"}`,
				status: 304, respHeader: etag},
			"status is not supported",
		},
		"UndocumentedRedirect": {
			exchange{method: "GET", target: "/api/roles/", reqHeader: bearer, status: 307,
				respHeader: http.Header{"Location": {"/elsewhere/"}}},
			"status is not supported",
		},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			errors := check(t, v, tt.exchange)
			require.Len(t, errors, 1)
			assert.Contains(t, errors[0], tt.want)
		})
	}
}

func TestCheckConcurrent(t *testing.T) {
	v := NewValidator(t)
	e := exchange{
		method: "GET", target: "/api/accounts/" + accountID + "/", reqHeader: bearer,
		status: 200, respBody: accountJSON + `}`, respHeader: etag,
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				assert.Empty(t, check(t, v, e))
			}
		})
	}
	wg.Wait()
}

func TestCheckLeavesBodiesUnread(t *testing.T) {
	v := NewValidator(t)
	reqBody := `{"account_name": "Acme"}`
	req := httptest.NewRequest(http.MethodPost, "/api/accounts/", strings.NewReader(reqBody))
	req.Header.Set("Authorization", "Bearer token")
	respBody := bytes.NewBufferString("unread")
	resp := &http.Response{
		StatusCode: 201,
		Header:     http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"r"}},
		Body:       &readCloser{respBody},
	}
	rec := &recordingTB{TB: t}
	v.Check(rec, req, []byte(reqBody), resp, []byte(accountJSON+`, "app_secret_token": "tok"}`))
	assert.Empty(t, rec.errors)

	left := new(bytes.Buffer)
	_, err := left.ReadFrom(req.Body)
	require.NoError(t, err)
	assert.Equal(t, reqBody, left.String(), "req.Body")
	assert.Equal(t, "unread", respBody.String(), "resp.Body")
}

type readCloser struct{ *bytes.Buffer }

func (readCloser) Close() error { return nil }
