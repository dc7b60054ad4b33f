# Data Pusher build and development targets. Run "make help" for a list.

GO      ?= go
BIN     := bin/datapusher
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

# The local walkthrough delivers to a receiver on this machine, so "make run"
# opens the loopback range that destinations are otherwise denied.
RUN_ALLOWED_NETWORKS ?= 127.0.0.0/8

.PHONY: help build run sink test test-short vet fmt bench loadbench loadbench-full clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/datapusher
	$(GO) build -ldflags "-X main.Version=$(VERSION)" -o $(BIN) ./cmd/datapusher

run: build ## build, migrate the SQLite database in ./data and serve on 127.0.0.1:8000 with workers
	DATAPUSHER_ALLOWED_DESTINATION_NETWORKS=$${DATAPUSHER_ALLOWED_DESTINATION_NETWORKS:-$(RUN_ALLOWED_NETWORKS)} \
		./$(BIN) serve

sink: build ## run a receiver on 127.0.0.1:9000 that prints what it gets
	./$(BIN) sink

test: vet ## vet, then run every test with the race detector (needs PostgreSQL and Redis)
	$(GO) test -race -count=1 -timeout 30m ./...

test-short: ## run the tests without the race detector
	$(GO) test -count=1 ./...

vet: ## check formatting and run go vet
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); \
		if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')

bench: ## run the Go benchmarks briefly
	$(GO) test -run '^$$' -bench . -benchtime 2s ./...

loadbench: build ## run the load benchmark briefly (2 s per scenario) on SQLite and PostgreSQL
	./$(BIN) bench -quick -concurrency 128 \
		-database-url 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable'

loadbench-full: build ## run the load benchmark that BENCHMARKS.md records, with the latency plot
	./$(BIN) bench -concurrency 128 -duration 10s \
		-database-url 'postgres://postgres@127.0.0.1:5432/test?sslmode=disable' \
		-json bench.json -plot docs/latency.png

clean: ## remove build output
	rm -rf bin
