package apidocs

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"
)

// Media types of the two forms of the OpenAPI document.
const (
	contentTypeYAML = "application/yaml"
	contentTypeJSON = "application/json"
)

// Cache policies. The document and index.html are revalidated on every
// request, because a deploy changes them under the same URL. Swagger UI
// files change only when apidocs/swagger is updated, so browsers may keep
// them for a day and then revalidate them by ETag.
const (
	cacheRevalidate = "no-cache"
	cacheAssets     = "public, max-age=86400"
)

// swaggerUIPolicy is the Content-Security-Policy of the Swagger UI page. It
// allows scripts, styles, images and requests from this origin only, so the
// page cannot load anything from another host. Swagger UI sets inline style
// attributes, hence 'unsafe-inline' for styles, and embeds icons as data:
// URLs.
const swaggerUIPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

//go:embed web/index.html web/index.css web/swagger-initializer.js
//go:embed swagger/swagger-ui.css swagger/swagger-ui-bundle.js swagger/favicon-32x32.png swagger/favicon-16x16.png
var files embed.FS

// asset is one embedded file with the headers it is served with.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// swaggerAssets maps the names under /swagger/assets/ to their embedded
// files. Only these files are served.
var swaggerAssets = map[string]*asset{
	"swagger-ui.css":         mustAsset("swagger/swagger-ui.css", "text/css; charset=utf-8"),
	"swagger-ui-bundle.js":   mustAsset("swagger/swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
	"favicon-32x32.png":      mustAsset("swagger/favicon-32x32.png", "image/png"),
	"favicon-16x16.png":      mustAsset("swagger/favicon-16x16.png", "image/png"),
	"index.css":              mustAsset("web/index.css", "text/css; charset=utf-8"),
	"swagger-initializer.js": mustAsset("web/swagger-initializer.js", "text/javascript; charset=utf-8"),
}

var swaggerIndex = mustAsset("web/index.html", "text/html; charset=utf-8")

// mustAsset reads an embedded file. The go:embed lines above list every
// name passed here, so a failure is a mistake in this file.
func mustAsset(name, contentType string) *asset {
	body, err := files.ReadFile(name)
	if err != nil {
		panic(fmt.Sprintf("apidocs: read embedded %s: %v", name, err))
	}
	return &asset{body: body, contentType: contentType, etag: etagOf(body)}
}

// etagOf returns a strong ETag built from the SHA-256 of body.
func etagOf(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// Handler returns a handler that serves SchemaHandler at SchemaPath and
// SwaggerUIHandler at SwaggerUIPath and below. Every other path is 404.
func Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle(SchemaPath+"{$}", SchemaHandler())
	// ServeMux redirects "/swagger" to this pattern by itself.
	mux.Handle(SwaggerUIPath, SwaggerUIHandler())
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		writeDetail(w, http.StatusNotFound, "Not found.")
	})
	return mux
}

// SchemaHandler returns a handler that serves the OpenAPI document, meant
// for SchemaPath. It serves YAML by default and JSON when the query has
// format=json or the Accept header prefers application/json. format=yaml
// forces YAML, and any other format gets 400.
func SchemaHandler() http.Handler {
	yamlDoc := &asset{body: documentYAML, contentType: contentTypeYAML, etag: etagOf(documentYAML)}
	var jsonDoc *asset
	jsonBody, jsonErr := JSON()
	if jsonErr == nil {
		jsonDoc = &asset{body: jsonBody, contentType: contentTypeJSON, etag: etagOf(jsonBody)}
	} else {
		// The tests convert the embedded document, so this happens only if
		// openapi.yaml changed without running them.
		slog.Error("apidocs: convert the OpenAPI document to JSON failed, run go test ./apidocs for details", "error", jsonErr)
	}

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowRead(w, r) {
			return
		}
		format, ok := schemaFormat(r)
		if !ok {
			writeDetail(w, http.StatusBadRequest,
				fmt.Sprintf("Invalid format %q. Use format=json or format=yaml.", r.URL.Query().Get("format")))
			return
		}
		w.Header().Add("Vary", "Accept")
		if format == "yaml" {
			serveAsset(w, r, yamlDoc, cacheRevalidate)
			return
		}
		if jsonErr != nil {
			// SchemaHandler logged jsonErr once when it was created.
			writeDetail(w, http.StatusInternalServerError, "Internal error.")
			return
		}
		serveAsset(w, r, jsonDoc, cacheRevalidate)
	})
}

// schemaFormat returns "yaml" or "json": the format query parameter if
// present, otherwise the form the Accept header prefers. ok is false for
// an unknown format.
func schemaFormat(r *http.Request) (format string, ok bool) {
	switch strings.ToLower(r.URL.Query().Get("format")) {
	case "json":
		return "json", true
	case "yaml", "yml":
		return "yaml", true
	case "":
		if prefersJSON(r.Header.Values("Accept")) {
			return "json", true
		}
		return "yaml", true
	}
	return "", false
}

// SwaggerUIHandler returns a handler that serves Swagger UI, meant for
// SwaggerUIPath and every path below it. The page at SwaggerUIPath loads
// the document from SchemaPath with format=json, and its scripts and
// styles from SwaggerUIPath + "assets/". A request for SwaggerUIPath
// without its trailing slash is redirected to it, so that the page's
// relative asset URLs resolve.
func SwaggerUIHandler() http.Handler {
	assetsPath := SwaggerUIPath + "assets/"
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowRead(w, r) {
			return
		}
		switch p := r.URL.Path; {
		case p == strings.TrimSuffix(SwaggerUIPath, "/"):
			http.Redirect(w, r, SwaggerUIPath, http.StatusMovedPermanently)
		case p == SwaggerUIPath || p == SwaggerUIPath+"index.html":
			w.Header().Set("Content-Security-Policy", swaggerUIPolicy)
			w.Header().Set("Referrer-Policy", "no-referrer")
			serveAsset(w, r, swaggerIndex, cacheRevalidate)
		case strings.HasPrefix(p, assetsPath):
			a, ok := swaggerAssets[path.Base(p)]
			if !ok || path.Dir(p)+"/" != assetsPath {
				writeDetail(w, http.StatusNotFound, "Not found.")
				return
			}
			serveAsset(w, r, a, cacheAssets)
		default:
			writeDetail(w, http.StatusNotFound, "Not found.")
		}
	})
}

// allowRead reports whether the request is a GET or HEAD. Otherwise it
// writes the response, as the API's other paths do: 200 with an Allow
// header for OPTIONS, and 405 for every other method.
func allowRead(w http.ResponseWriter, r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		return true
	case http.MethodOptions:
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		w.WriteHeader(http.StatusOK)
		return false
	default:
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		writeDetail(w, http.StatusMethodNotAllowed, fmt.Sprintf("Method %q not allowed.", r.Method))
		return false
	}
}

// serveAsset writes a with its content type, ETag and cacheControl.
// http.ServeContent handles HEAD, If-None-Match and Range requests.
func serveAsset(w http.ResponseWriter, r *http.Request, a *asset, cacheControl string) {
	h := w.Header()
	h.Set("Content-Type", a.contentType)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", cacheControl)
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// writeDetail writes status and a DRF-style {"detail": message} body, like
// the rest of the API.
func writeDetail(w http.ResponseWriter, status int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"detail": message})
}
