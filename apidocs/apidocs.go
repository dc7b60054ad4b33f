// Package apidocs serves the OpenAPI 3.1 document of Data Pusher's public
// API at /api/schema/ and Swagger UI for it at /swagger/. The document and
// every Swagger UI file are embedded in the binary, so the pages work
// without access to any other host.
package apidocs

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
)

// Paths that the handlers serve.
const (
	// SchemaPath is where SchemaHandler serves the OpenAPI document.
	SchemaPath = "/api/schema/"

	// SwaggerUIPath is where SwaggerUIHandler serves Swagger UI. Its files
	// are under SwaggerUIPath + "assets/".
	SwaggerUIPath = "/swagger/"
)

//go:embed openapi.yaml
var documentYAML []byte

// documentJSON converts the embedded document to indented JSON once.
var documentJSON = sync.OnceValues(func() ([]byte, error) {
	return yamlToJSON(documentYAML)
})

// YAML returns the OpenAPI document as written in openapi.yaml.
func YAML() []byte {
	return bytes.Clone(documentYAML)
}

// JSON returns the OpenAPI document converted to JSON, with object keys in
// the order of openapi.yaml.
func JSON() ([]byte, error) {
	data, err := documentJSON()
	if err != nil {
		return nil, err
	}
	return bytes.Clone(data), nil
}

// Document loads the embedded OpenAPI document with kin-openapi and
// validates it, including every example against its schema. Each call
// returns a new *openapi3.T, so callers may change it.
func Document() (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(documentYAML)
	if err != nil {
		return nil, fmt.Errorf("load openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("validate openapi.yaml: %w", err)
	}
	return doc, nil
}
