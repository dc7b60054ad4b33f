// Command preview serves only the API documentation, the OpenAPI document
// at /api/schema/ and Swagger UI at /swagger/, so that changes to
// openapi.yaml or to the Swagger UI files can be viewed without a database.
//
//	go run ./apidocs/internal/preview -addr 127.0.0.1:8081
//
// Swagger UI's "Try it out" sends requests to this server, which has no API
// routes, so they get 404.
package main

import (
	"errors"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/datapusher/datapusher/apidocs"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "host:port to listen on")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	server := &http.Server{
		Addr:              *addr,
		Handler:           apidocs.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
	}
	logger.Info("serving API documentation", "swagger_ui", "http://"+*addr+apidocs.SwaggerUIPath,
		"schema", "http://"+*addr+apidocs.SchemaPath)
	if err := server.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("serve API documentation", "error", err)
		os.Exit(1)
	}
}
