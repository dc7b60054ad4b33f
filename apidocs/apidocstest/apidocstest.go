// Package apidocstest checks HTTP requests and responses against the
// OpenAPI document of package apidocs, for tests of the API's handlers. It
// is separate from apidocs so that production code does not import it.
package apidocstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/datapusher/datapusher/apidocs"
)

// Operation is one documented method and path. Path has {name} wildcards,
// as in httpapi's routes, such as "/api/accounts/{account_id}/".
type Operation = struct{ Method, Path string }

// methodOrder sorts the methods of one path.
var methodOrder = []string{
	http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
	http.MethodPatch, http.MethodDelete, http.MethodOptions, http.MethodTrace,
}

// DocumentedOperations returns every operation in the OpenAPI document,
// sorted by path and then by method, with upper-case methods. It panics if
// the embedded document does not load, which apidocs' own tests rule out.
func DocumentedOperations() []struct{ Method, Path string } {
	doc, err := apidocs.Document()
	if err != nil {
		panic("apidocstest: " + err.Error())
	}
	var operations []Operation
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			operations = append(operations, Operation{Method: strings.ToUpper(method), Path: path})
		}
	}
	sort.Slice(operations, func(i, j int) bool {
		a, b := operations[i], operations[j]
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return methodRank(a.Method) < methodRank(b.Method)
	})
	return operations
}

func methodRank(method string) int {
	if i := slices.Index(methodOrder, method); i >= 0 {
		return i
	}
	return len(methodOrder)
}

// Validator checks requests and responses against the OpenAPI document.
// It is safe for concurrent use by parallel tests.
type Validator struct {
	router routers.Router
}

// sharedRouter loads the document and builds its router once per test
// binary, because loading and validating the document takes about 0.1 s
// (measured on a 2-core machine without the race detector). Checks on one
// router run safely in parallel, as TestCheckConcurrent shows under the
// race detector, so every Validator shares it.
var sharedRouter = sync.OnceValues(func() (routers.Router, error) {
	doc, err := apidocs.Document()
	if err != nil {
		return nil, err
	}

	// Match every host, so that requests to httptest servers on any port
	// find their operations.
	doc.Servers = openapi3.Servers{{URL: "/"}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("build router for openapi.yaml: %w", err)
	}
	return router, nil
})

// NewValidator returns a Validator for the OpenAPI document. It fails the
// test if the document does not load.
func NewValidator(t testing.TB) *Validator {
	t.Helper()
	router, err := sharedRouter()
	if err != nil {
		t.Fatalf("apidocstest: %v", err)
	}
	return &Validator{router: router}
}

// Check reports a test error for each way in which a request and its
// response differ from the OpenAPI document. reqBody and respBody are the
// bodies that were sent and received, and Check does not read req.Body or
// resp.Body. req may be a client request or a server request.
//
// The response must have a documented status code, and its headers and
// JSON body must match that response's schemas. The request is checked
// (security scheme, parameters, body) only when the response status is
// below 400, because tests send invalid requests on purpose to get errors.
// The server reads bodies as JSON whatever their Content-Type, so a
// request body without one is checked as application/json.
//
// A HEAD request is checked as the GET operation of its path, without a
// response body. A request that matches no operation gets the responses
// that the document's description promises for it. A path that the
// document does not have gets 404. A documented path without its trailing
// slash gets a 307 redirect to the path with it. A method that the path
// does not take gets 405 with an Allow header, and OPTIONS gets 200 with
// an Allow header.
func (v *Validator) Check(t testing.TB, req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) {
	t.Helper()
	name := req.Method + " " + req.URL.Path
	ctx := context.Background()

	routed := req.Clone(ctx)
	if req.Method == http.MethodHead {
		routed.Method = http.MethodGet
	}
	route, pathParams, err := v.router.FindRoute(routed)
	if err != nil {
		if msg := v.checkUnrouted(req, err, resp); msg != "" {
			t.Errorf("%s: %s", name, msg)
		}
		return
	}

	requestOptions := &openapi3filter.Options{AuthenticationFunc: checkCredentials, MultiError: true}
	requestOptions.WithCustomSchemaErrorFunc(schemaErrorMessage)
	requestInput := &openapi3filter.RequestValidationInput{
		Request:    requestWithBody(routed, reqBody),
		PathParams: pathParams,
		Route:      route,
		Options:    requestOptions,
	}
	if resp.StatusCode < http.StatusBadRequest {
		if err := openapi3filter.ValidateRequest(ctx, requestInput); err != nil {
			t.Errorf("%s: request does not match openapi.yaml (response status %d):\n%v",
				name, resp.StatusCode, err)
		}
	}

	responseOptions := &openapi3filter.Options{
		IncludeResponseStatus: true,
		ExcludeResponseBody:   req.Method == http.MethodHead,
		MultiError:            true,
	}
	responseOptions.WithCustomSchemaErrorFunc(schemaErrorMessage)
	responseInput := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: requestInput,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                responseOptions,
	}
	responseInput.SetBodyBytes(respBody)
	if unvalidatedStatuses[resp.StatusCode] {
		if msg := retargetUnvalidatedStatus(responseInput, respBody); msg != "" {
			t.Errorf("%s: response %d does not match openapi.yaml: %s", name, resp.StatusCode, msg)
			return
		}
	}
	if err := openapi3filter.ValidateResponse(ctx, responseInput); err != nil {
		t.Errorf("%s: response %d does not match openapi.yaml:\n%v\nbody: %s",
			name, resp.StatusCode, err, truncate(respBody, 2000))
	}
}

// unvalidatedStatuses are the status codes whose responses
// openapi3filter.ValidateResponse (kin-openapi v0.153.0) accepts without
// looking at them, even when the operation does not document them.
var unvalidatedStatuses = map[int]bool{
	http.StatusMovedPermanently:  true,
	http.StatusNotModified:       true,
	http.StatusTemporaryRedirect: true,
	http.StatusPermanentRedirect: true,
}

// standInStatus is the status code under which retargetUnvalidatedStatus
// files a response, because ValidateResponse checks responses with it.
const standInStatus = 299

// retargetUnvalidatedStatus returns why a response with one of
// unvalidatedStatuses does not match the operation: its status must be
// documented, and a 304 response must have no body. Otherwise it points
// input at a copy of the operation that documents the response under
// standInStatus, so that ValidateResponse checks its headers and body, and
// returns "".
func retargetUnvalidatedStatus(input *openapi3filter.ResponseValidationInput, body []byte) string {
	route := input.RequestValidationInput.Route
	documented := route.Operation.Responses.Status(input.Status)
	if documented == nil {
		return "status is not supported"
	}
	if input.Status == http.StatusNotModified && len(body) > 0 {
		return "a 304 response must have no body"
	}
	operation := *route.Operation
	operation.Responses = openapi3.NewResponses(openapi3.WithStatus(standInStatus, documented))
	standIn := *route
	standIn.Operation = &operation
	input.RequestValidationInput.Route = &standIn
	input.Status = standInStatus
	return ""
}

// schemaErrorMessage formats a schema error as the JSON pointer of the
// invalid value and the reason, without the schema and value that
// kin-openapi prints by default.
func schemaErrorMessage(err *openapi3.SchemaError) string {
	msg := fmt.Sprintf("at /%s: %s", strings.Join(err.JSONPointer(), "/"), err.Reason)
	switch err.SchemaField {
	case "allOf", "anyOf", "oneOf":
		// The origin of a composition failure is the failure inside it.
		if err.Origin != nil {
			msg += " (" + err.Origin.Error() + ")"
		}
	}
	return msg
}

// checkUnrouted returns why a request that matches no operation does not
// match the document, or "" when its response is one that Check accepts
// for such a request.
func (v *Validator) checkUnrouted(req *http.Request, err error, resp *http.Response) string {
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		switch resp.StatusCode {
		case http.StatusNotFound:
			return ""
		case http.StatusTemporaryRedirect:
			return v.checkSlashRedirect(req, resp)
		}
		return fmt.Sprintf("path is not in openapi.yaml, but the response status is %d", resp.StatusCode)
	case errors.Is(err, routers.ErrMethodNotAllowed):
		optionsOK := req.Method == http.MethodOptions && resp.StatusCode == http.StatusOK
		if resp.StatusCode != http.StatusMethodNotAllowed && !optionsOK {
			return fmt.Sprintf("method is not in openapi.yaml for this path, but the response status is %d",
				resp.StatusCode)
		}
		if resp.Header.Get("Allow") == "" {
			return fmt.Sprintf("%d response has no Allow header", resp.StatusCode)
		}
		return ""
	}
	return fmt.Sprintf("find operation in openapi.yaml: %v", err)
}

// checkSlashRedirect returns "" when resp redirects req to its path with a
// trailing slash and the document has that path, and otherwise why not.
func (v *Validator) checkSlashRedirect(req *http.Request, resp *http.Response) string {
	want := req.URL.Path + "/"
	location, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || location.Path != want {
		return fmt.Sprintf("path is not in openapi.yaml, and the 307 response redirects to %q instead of %q",
			resp.Header.Get("Location"), want)
	}
	target := req.Clone(context.Background())
	target.URL.Path, target.URL.RawPath = want, ""
	if _, _, err := v.router.FindRoute(target); errors.Is(err, routers.ErrPathNotFound) {
		return fmt.Sprintf("path is not in openapi.yaml, and neither is %s, which the 307 response redirects to", want)
	}
	return ""
}

// requestWithBody returns a copy of req that reads body, with Content-Type
// application/json when body is not empty and req has none.
func requestWithBody(req *http.Request, body []byte) *http.Request {
	out := req.Clone(context.Background())
	out.Body = io.NopCloser(bytes.NewReader(body))
	out.ContentLength = int64(len(body))
	out.GetBody = func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(body)), nil
	}
	if len(body) > 0 && out.Header.Get("Content-Type") == "" {
		out.Header.Set("Content-Type", "application/json")
	}
	return out
}

// checkCredentials is the openapi3filter.AuthenticationFunc of Check. It
// checks that a request the server accepted carried the credential that
// the document requires. Verifying the token is the handlers' job.
func checkCredentials(_ context.Context, input *openapi3filter.AuthenticationInput) error {
	scheme := input.SecurityScheme
	header := input.RequestValidationInput.Request.Header
	switch {
	case scheme.Type == "http" && strings.EqualFold(scheme.Scheme, "bearer"):
		kind, token, _ := strings.Cut(header.Get("Authorization"), " ")
		if !strings.EqualFold(kind, "Bearer") || strings.TrimSpace(token) == "" {
			return fmt.Errorf("security scheme %s: missing Authorization: Bearer header", input.SecuritySchemeName)
		}
	case scheme.Type == "apiKey" && scheme.In == "header":
		if header.Get(scheme.Name) == "" {
			return fmt.Errorf("security scheme %s: missing %s header", input.SecuritySchemeName, scheme.Name)
		}
	default:
		return fmt.Errorf("security scheme %s: type %q is not supported by apidocstest",
			input.SecuritySchemeName, scheme.Type)
	}
	return nil
}

func truncate(body []byte, limit int) string {
	if len(body) <= limit {
		return string(body)
	}
	return string(body[:limit]) + "..."
}
