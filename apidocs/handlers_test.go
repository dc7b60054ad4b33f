package apidocs

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// serve sends a request to h and returns the response with its body read.
func serve(t *testing.T, h http.Handler, method, target string, header http.Header) (*http.Response, []byte) {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for name, values := range header {
		req.Header[name] = values
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, body
}

func TestSchemaHandlerFormats(t *testing.T) {
	tests := []struct {
		name        string
		query       string
		accept      string
		contentType string
	}{
		{"DefaultIsYAML", "", "", contentTypeYAML},
		{"FormatJSON", "?format=json", "", contentTypeJSON},
		{"FormatJSONUpperCase", "?format=JSON", "", contentTypeJSON},
		{"FormatYAML", "?format=yaml", "application/json", contentTypeYAML},
		{"AcceptJSON", "", "application/json", contentTypeJSON},
		{"AcceptOpenAPIJSON", "", "application/vnd.oai.openapi+json", contentTypeJSON},
		{"AcceptJSONOrAnything", "", "application/json, */*;q=0.8", contentTypeJSON},
		{"AcceptAnything", "", "*/*", contentTypeYAML},
		{"AcceptBrowser", "", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", contentTypeYAML},
		{"AcceptYAML", "", "application/yaml", contentTypeYAML},
		{"AcceptYAMLOverJSON", "", "application/json;q=0.5, application/yaml", contentTypeYAML},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			header := http.Header{}
			if tt.accept != "" {
				header.Set("Accept", tt.accept)
			}
			resp, body := serve(t, SchemaHandler(), http.MethodGet, SchemaPath+tt.query, header)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			require.Equal(t, tt.contentType, resp.Header.Get("Content-Type"))
			assert.Equal(t, "no-cache", resp.Header.Get("Cache-Control"))
			assert.Equal(t, "Accept", resp.Header.Get("Vary"))
			assert.NotEmpty(t, resp.Header.Get("ETag"))

			var doc map[string]any
			if tt.contentType == contentTypeJSON {
				require.NoError(t, json.Unmarshal(body, &doc), "body is not JSON")
			} else {
				require.Equal(t, YAML(), body)
				require.NoError(t, yaml.Unmarshal(body, &doc), "body is not YAML")
			}
			assert.Equal(t, "3.1.0", doc["openapi"])
		})
	}
}

func TestSchemaHandlerJSONIsValidJSON(t *testing.T) {
	resp, body := serve(t, SchemaHandler(), http.MethodGet, SchemaPath+"?format=json", nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.True(t, json.Valid(body))
	want, err := JSON()
	require.NoError(t, err)
	require.Equal(t, want, body)
}

func TestSchemaHandlerInvalidFormat(t *testing.T) {
	resp, body := serve(t, SchemaHandler(), http.MethodGet, SchemaPath+"?format=xml", nil)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.JSONEq(t, `{"detail": "Invalid format \"xml\". Use format=json or format=yaml."}`, string(body))
}

func TestSchemaHandlerConditionalGet(t *testing.T) {
	for _, query := range []string{"", "?format=json"} {
		first, _ := serve(t, SchemaHandler(), http.MethodGet, SchemaPath+query, nil)
		etag := first.Header.Get("ETag")
		require.NotEmpty(t, etag, query)

		resp, body := serve(t, SchemaHandler(), http.MethodGet, SchemaPath+query, http.Header{"If-None-Match": {etag}})
		assert.Equal(t, http.StatusNotModified, resp.StatusCode, query)
		assert.Empty(t, body, query)
	}
	yamlResp, _ := serve(t, SchemaHandler(), http.MethodGet, SchemaPath, nil)
	jsonResp, _ := serve(t, SchemaHandler(), http.MethodGet, SchemaPath+"?format=json", nil)
	assert.NotEqual(t, yamlResp.Header.Get("ETag"), jsonResp.Header.Get("ETag"), "each form has its own ETag")
}

func TestReadOnlyMethods(t *testing.T) {
	for name, h := range map[string]http.Handler{SchemaPath: SchemaHandler(), SwaggerUIPath: SwaggerUIHandler()} {
		t.Run(name, func(t *testing.T) {
			resp, body := serve(t, h, http.MethodHead, name, nil)
			assert.Equal(t, http.StatusOK, resp.StatusCode, "HEAD")
			assert.Empty(t, body, "HEAD body")
			assert.NotEmpty(t, resp.Header.Get("Content-Length"), "HEAD Content-Length")

			resp, body = serve(t, h, http.MethodPost, name, nil)
			assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode, "POST")
			assert.Equal(t, "GET, HEAD, OPTIONS", resp.Header.Get("Allow"), "POST Allow")
			assert.JSONEq(t, `{"detail": "Method \"POST\" not allowed."}`, string(body), "POST body")

			resp, _ = serve(t, h, http.MethodOptions, name, nil)
			assert.Equal(t, http.StatusOK, resp.StatusCode, "OPTIONS")
			assert.Equal(t, "GET, HEAD, OPTIONS", resp.Header.Get("Allow"), "OPTIONS Allow")
		})
	}
}

// attributeURL matches the src and href attributes of an HTML page.
var attributeURL = regexp.MustCompile(`(?:src|href)="([^"]*)"`)

func TestSwaggerUIIndex(t *testing.T) {
	h := SwaggerUIHandler()
	for _, target := range []string{SwaggerUIPath, SwaggerUIPath + "index.html"} {
		resp, body := serve(t, h, http.MethodGet, target, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, target)
		assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"), target)
		assert.Equal(t, "no-cache", resp.Header.Get("Cache-Control"), target)
		assert.Equal(t, swaggerUIPolicy, resp.Header.Get("Content-Security-Policy"), target)
		assert.Equal(t, swaggerIndex.body, body, target)
	}

	page := string(swaggerIndex.body)
	assert.NotContains(t, page, "http://")
	assert.NotContains(t, page, "https://")
	assert.NotContains(t, page, "//", "no protocol-relative URL")
	assert.NotRegexp(t, `<script>|<script [^>]*>[^<\s]`, page, "no inline script")

	// Every file the page references is one that this handler serves.
	references := attributeURL.FindAllStringSubmatch(page, -1)
	require.NotEmpty(t, references)
	for _, match := range references {
		ref := match[1]
		if ref == "../api/schema/" {
			continue
		}
		require.True(t, strings.HasPrefix(ref, "assets/"), "%s is not a local asset", ref)
		resp, _ := serve(t, h, http.MethodGet, SwaggerUIPath+ref, nil)
		assert.Equal(t, http.StatusOK, resp.StatusCode, ref)
	}
}

func TestSwaggerUIInitializerLoadsLocalDocument(t *testing.T) {
	script := string(swaggerAssets["swagger-initializer.js"].body)
	assert.Contains(t, script, `url: "`+SchemaPath+`?format=json"`)
	assert.Contains(t, script, "validatorUrl: null", "the validator badge would load an image from another host")
	assert.NotContains(t, script, "http://")
	assert.NotContains(t, script, "https://")
}

func TestSwaggerUIAssets(t *testing.T) {
	wantTypes := map[string]string{
		"swagger-ui.css":         "text/css; charset=utf-8",
		"index.css":              "text/css; charset=utf-8",
		"swagger-ui-bundle.js":   "text/javascript; charset=utf-8",
		"swagger-initializer.js": "text/javascript; charset=utf-8",
		"favicon-32x32.png":      "image/png",
		"favicon-16x16.png":      "image/png",
	}
	require.Len(t, swaggerAssets, len(wantTypes))
	h := SwaggerUIHandler()
	for name, contentType := range wantTypes {
		t.Run(name, func(t *testing.T) {
			resp, body := serve(t, h, http.MethodGet, SwaggerUIPath+"assets/"+name, nil)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, contentType, resp.Header.Get("Content-Type"))
			assert.Equal(t, "public, max-age=86400", resp.Header.Get("Cache-Control"))
			assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
			assert.NotEmpty(t, body)
			assert.Equal(t, http.DetectContentType(body) == "image/png", contentType == "image/png",
				"PNG content")

			etag := resp.Header.Get("ETag")
			require.NotEmpty(t, etag)
			resp, _ = serve(t, h, http.MethodGet, SwaggerUIPath+"assets/"+name, http.Header{"If-None-Match": {etag}})
			assert.Equal(t, http.StatusNotModified, resp.StatusCode)
		})
	}
}

func TestSwaggerUINotFound(t *testing.T) {
	h := SwaggerUIHandler()
	for _, target := range []string{
		SwaggerUIPath + "assets/",
		SwaggerUIPath + "assets/LICENSE",
		SwaggerUIPath + "assets/missing.js",
		SwaggerUIPath + "assets/sub/swagger-ui.css",
		SwaggerUIPath + "assets/..%2fopenapi.yaml",
		SwaggerUIPath + "swagger-ui.css",
		SwaggerUIPath + "other",
	} {
		resp, body := serve(t, h, http.MethodGet, target, nil)
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, target)
		assert.JSONEq(t, `{"detail": "Not found."}`, string(body), target)
	}
}

func TestSwaggerUIRedirectsToTrailingSlash(t *testing.T) {
	resp, _ := serve(t, SwaggerUIHandler(), http.MethodGet, "/swagger", nil)
	require.Equal(t, http.StatusMovedPermanently, resp.StatusCode)
	require.Equal(t, SwaggerUIPath, resp.Header.Get("Location"))
}

func TestHandlerRoutes(t *testing.T) {
	h := Handler()
	tests := []struct {
		target      string
		status      int
		contentType string
	}{
		{SchemaPath, http.StatusOK, contentTypeYAML},
		{SchemaPath + "?format=json", http.StatusOK, contentTypeJSON},
		{SwaggerUIPath, http.StatusOK, "text/html; charset=utf-8"},
		{SwaggerUIPath + "assets/swagger-ui-bundle.js", http.StatusOK, "text/javascript; charset=utf-8"},
		{"/swagger", http.StatusTemporaryRedirect, ""},
		{"/api/schema", http.StatusTemporaryRedirect, ""},
		{SchemaPath + "extra", http.StatusNotFound, "application/json"},
		{"/api/accounts/", http.StatusNotFound, "application/json"},
		{"/", http.StatusNotFound, "application/json"},
	}
	// ServeMux itself redirects a path without its trailing slash, with 307.
	for _, tt := range tests {
		resp, _ := serve(t, h, http.MethodGet, tt.target, nil)
		assert.Equal(t, tt.status, resp.StatusCode, tt.target)
		if tt.status == http.StatusTemporaryRedirect {
			assert.Equal(t, tt.target+"/", resp.Header.Get("Location"), tt.target)
		}
		if tt.contentType != "" {
			assert.Equal(t, tt.contentType, resp.Header.Get("Content-Type"), tt.target)
		}
	}
}

func TestPrefersJSON(t *testing.T) {
	tests := []struct {
		accept []string
		want   bool
	}{
		{nil, false},
		{[]string{""}, false},
		{[]string{"*/*"}, false},
		{[]string{"application/*"}, false},
		{[]string{"application/json"}, true},
		{[]string{"APPLICATION/JSON; charset=utf-8"}, true},
		{[]string{"application/vnd.oai.openapi+json;version=3.1"}, true},
		{[]string{"application/json", "application/yaml"}, false},
		{[]string{"application/yaml;q=0.5, application/json"}, true},
		{[]string{"application/json;q=0", "*/*"}, false},
		{[]string{"application/json;q=0.9, */*;q=1"}, false},
		{[]string{"application/json, */*"}, true},
		{[]string{"application/json;q=bad"}, false},
		{[]string{"text/yaml, application/*;q=0.2"}, false},
		{[]string{"garbage, application/json"}, true},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, prefersJSON(tt.accept), "Accept: %q", tt.accept)
	}
}
