package apidocs

import (
	"bytes"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func loadDocument(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := Document()
	require.NoError(t, err)
	return doc
}

func TestDocumentValidates(t *testing.T) {
	doc := loadDocument(t)
	require.Equal(t, "3.1.0", doc.OpenAPI)
	require.True(t, doc.IsOpenAPI31OrLater())
	require.NotEmpty(t, doc.Info.Title)
}

// publicAPI lists every operation of the public API, as "METHOD /path".
var publicAPI = []string{
	"POST /api/users/register/",
	"POST /api/token/",
	"POST /api/token/refresh/",
	"POST /api/users/logout/",
	"GET /api/users/me/",
	"POST /api/users/accept-invite/",
	"GET /api/roles/",
	"POST /api/accounts/",
	"GET /api/accounts/",
	"GET /api/accounts/{account_id}/",
	"PUT /api/accounts/{account_id}/",
	"PATCH /api/accounts/{account_id}/",
	"DELETE /api/accounts/{account_id}/",
	"POST /api/accounts/{account_id}/rotate-token/",
	"GET /api/accounts/{account_id}/destinations/",
	"GET /api/accounts/{account_id}/stats/",
	"POST /api/destinations/",
	"GET /api/destinations/",
	"GET /api/destinations/{id}/",
	"PUT /api/destinations/{id}/",
	"PATCH /api/destinations/{id}/",
	"DELETE /api/destinations/{id}/",
	"POST /api/destinations/{id}/rotate-secret/",
	"POST /api/destinations/{id}/recover/",
	"POST /api/account-members/",
	"GET /api/account-members/",
	"GET /api/account-members/{id}/",
	"PUT /api/account-members/{id}/",
	"PATCH /api/account-members/{id}/",
	"DELETE /api/account-members/{id}/",
	"POST /api/logs/",
	"GET /api/logs/",
	"GET /api/logs/{id}/",
	"GET /api/logs/{id}/attempts/",
	"POST /api/logs/{id}/retry/",
	"POST /server/incoming_data",
	"POST /server/incoming_data/",
	"GET /healthz",
	"GET /readyz",
	"GET /metrics",
}

// operations returns every operation of doc as "METHOD /path", sorted.
func operations(doc *openapi3.T) []string {
	var out []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, method+" "+path)
		}
	}
	sort.Strings(out)
	return out
}

func TestDocumentListsPublicAPI(t *testing.T) {
	want := slices.Clone(publicAPI)
	sort.Strings(want)
	require.Equal(t, want, operations(loadDocument(t)))
}

func TestDocumentOperations(t *testing.T) {
	doc := loadDocument(t)
	operationIDs := map[string]string{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			t.Run(name, func(t *testing.T) {
				assert.NotEmpty(t, op.Summary, "summary")
				assert.Len(t, op.Tags, 1, "tags")
				if assert.NotEmpty(t, op.OperationID, "operationId") {
					assert.NotContains(t, operationIDs, op.OperationID, "operationId %s is also used by %s",
						op.OperationID, operationIDs[op.OperationID])
					operationIDs[op.OperationID] = name
				}
				checkResponses(t, op)
				if op.RequestBody != nil {
					for mediaType, content := range op.RequestBody.Value.Content {
						assert.True(t, hasExamples(content), "request body %s has no example", mediaType)
					}
				}
			})
		}
	}
}

// checkResponses checks that op has a success response, that a 304
// response has no body, and that every error response has a body with an
// example.
func checkResponses(t *testing.T, op *openapi3.Operation) {
	t.Helper()
	successes := 0
	for code, ref := range op.Responses.Map() {
		response := ref.Value
		assert.NotEmpty(t, response.Description, "response %s description", code)
		if strings.HasPrefix(code, "2") {
			successes++
			continue
		}
		if code == "304" {
			assert.Empty(t, response.Content, "response 304 has a body")
			continue
		}
		for mediaType, content := range response.Content {
			assert.True(t, hasExamples(content), "response %s %s has no example", code, mediaType)
		}
		assert.NotEmpty(t, response.Content, "error response %s has no body", code)
	}
	assert.NotZero(t, successes, "no 2xx response")
}

func hasExamples(content *openapi3.MediaType) bool {
	return content.Example != nil || len(content.Examples) > 0
}

// Swagger UI 5.35.0 leaves $ref parameters of a path item unresolved and
// shows them as "any ()", so the document lists parameters per operation.
func TestDocumentHasNoPathLevelParameters(t *testing.T) {
	for path, item := range loadDocument(t).Paths.Map() {
		assert.Empty(t, item.Parameters, "%s: move its parameters into each operation", path)
	}
}

func TestDocumentSecurity(t *testing.T) {
	doc := loadDocument(t)
	require.Equal(t, openapi3.SecurityRequirements{{"bearerAuth": {}}}, doc.Security)

	public := []string{
		"POST /api/users/register/", "POST /api/token/", "POST /api/token/refresh/",
		"POST /api/users/accept-invite/", "GET /healthz", "GET /readyz", "GET /metrics",
	}
	incoming := []string{"POST /server/incoming_data", "POST /server/incoming_data/"}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			name := method + " " + path
			switch {
			case slices.Contains(public, name):
				if assert.NotNil(t, op.Security, name) {
					assert.Empty(t, *op.Security, "%s needs no credentials", name)
				}
			case slices.Contains(incoming, name):
				if assert.NotNil(t, op.Security, name) {
					assert.Equal(t, openapi3.SecurityRequirements{{"appSecretToken": {}}}, *op.Security, name)
				}
			default:
				assert.Nil(t, op.Security, "%s must use the document's bearer token requirement", name)
			}
		}
	}
}

func TestJSONMatchesYAML(t *testing.T) {
	data, err := JSON()
	require.NoError(t, err)
	var fromJSON any
	require.NoError(t, json.Unmarshal(data, &fromJSON))

	// Decode the YAML, then round-trip it through encoding/json so that
	// numbers have the same Go types in both values.
	var fromYAML any
	require.NoError(t, yaml.Unmarshal(YAML(), &fromYAML))
	roundTrip, err := json.Marshal(fromYAML)
	require.NoError(t, err)
	var wantJSON any
	require.NoError(t, json.Unmarshal(roundTrip, &wantJSON))

	require.Equal(t, wantJSON, fromJSON)
}

func TestJSONLoadsAsSameDocument(t *testing.T) {
	data, err := JSON()
	require.NoError(t, err)
	fromJSON, err := openapi3.NewLoader().LoadFromData(data)
	require.NoError(t, err)
	require.Equal(t, operations(loadDocument(t)), operations(fromJSON))
}

func TestYAMLToJSON(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"KeepsKeyOrder", "b: 1\na: 2\nc: 3\n", `{"b":1,"a":2,"c":3}`},
		{"QuotedStatusCodes", "'200': ok\n'404': missing\n", `{"200":"ok","404":"missing"}`},
		{"Scalars", "s: text\ni: 42\nf: 1.5\nb: true\nn: null\n", `{"s":"text","i":42,"f":1.5,"b":true,"n":null}`},
		{"TimestampStaysText", "t: 2026-01-02T15:04:05.000Z\n", `{"t":"2026-01-02T15:04:05.000Z"}`},
		{"Sequences", "list: [1, two, {k: v}]\n", `{"list":[1,"two",{"k":"v"}]}`},
		{"Aliases", "a: &x {k: v}\nb: *x\n", `{"a":{"k":"v"},"b":{"k":"v"}}`},
		{"Unicode", "s: \"caf\\u00e9 \\\"q\\\"\"\n", `{"s":"café \"q\""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := yamlToJSON([]byte(tt.yaml))
			require.NoError(t, err)
			require.JSONEq(t, tt.want, string(got))
			require.Equal(t, tt.want, compactJSON(t, got), "key order")
		})
	}
}

func TestYAMLToJSONRejects(t *testing.T) {
	tests := []struct {
		name string
		yaml string
	}{
		{"MergeKey", "base: &b {k: v}\nderived:\n  <<: *b\n"},
		{"NonScalarKey", "? [a, b]\n: v\n"},
		{"NotANumber", "n: .nan\n"},
		{"CustomTag", "v: !custom x\n"},
		{"InvalidYAML", "a: [1, 2\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := yamlToJSON([]byte(tt.yaml))
			require.Error(t, err)
		})
	}
}

// compactJSON removes the indentation that yamlToJSON adds.
func compactJSON(t *testing.T, data []byte) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, json.Compact(&buf, data))
	return buf.String()
}

func TestPathConstants(t *testing.T) {
	doc := loadDocument(t)
	for _, path := range []string{SchemaPath, SwaggerUIPath} {
		assert.Nil(t, doc.Paths.Value(path), "the document describes the API, not %s", path)
		assert.True(t, strings.HasPrefix(path, "/") && strings.HasSuffix(path, "/"), path)
	}
}
