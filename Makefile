# prismcache — `make help` lists the targets.

GO       ?= go
BIN      ?= bin/prismcache
PKGS     ?= ./...
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
# Files go generate writes; make lint fails when they differ from what is committed.
GENERATED := graphql/generated.go internal/prismaticsim/gqlserver

# The race detector needs cgo and a C compiler; on a machine with only Go the
# tests run without it (CI always has one).
RACE := $(shell CGO_ENABLED=1 $(GO) env CC >/dev/null 2>&1 && command -v "$$(CGO_ENABLED=1 $(GO) env CC)" >/dev/null 2>&1 && echo -race)
export CGO_ENABLED := $(if $(RACE),1,$(shell $(GO) env CGO_ENABLED))

.PHONY: help build run test test-ts generate lint bench bench-hostile fuzz chaos clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build bin/prismcache
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/prismcache

run: build ## run everything on this machine: embedded Redis + simulator + daemon (prismcache dev)
	./$(BIN) dev

test: ## run every test (against miniredis; also against real Redis when REDIS_URL is set)
	@if [ -z "$(RACE)" ]; then echo "note: no C compiler for cgo, so the tests run without -race"; fi
	@if [ -z "$$REDIS_URL" ]; then echo "note: REDIS_URL is not set, so the Redis suites run against miniredis only"; fi
	$(GO) test $(RACE) -count=1 -timeout 10m $(PKGS)

test-ts: ## the TypeScript reader's tests (clients/typescript; Node 20+; against real Redis when REDIS_URL is set)
	cd clients/typescript && npm ci && npm test

generate: ## regenerate the GraphQL client (graphql/generated.go) and the simulator's server (internal/prismaticsim/gqlserver) from schema.graphql
	$(GO) generate ./...

lint: ## gofmt, go vet, and a check that generated code matches its sources
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>&1); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) generate ./...
	@if [ -n "$$(git status --porcelain -- $(GENERATED))" ]; then echo "generated code does not match its sources (schema.graphql, graphql/operations, internal/prismaticsim/gqlserver/gqlgen.yml): run make generate and commit it"; git status --short -- $(GENERATED); exit 1; fi

bench: ## run the benchmarks
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/prismcache
	$(GO) build -o bin/prismbench ./internal/bench/cmd/prismbench
	./bin/prismbench -daemon $(BIN)

bench-hostile: ## the slow-body attack alone: 1,500 slow connections for 40s beside valid webhooks (docs/security.md)
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/prismcache
	$(GO) build -o bin/prismbench ./internal/bench/cmd/prismbench
	./bin/prismbench -daemon $(BIN) -only hostile

fuzz: ## run each fuzz target for a short while (FUZZTIME=30s each)
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(or $(FUZZTIME),30s) ./internal/webhook/
	$(GO) test -run '^$$' -fuzz FuzzIntake -fuzztime $(or $(FUZZTIME),30s) ./internal/server/

chaos: ## two daemon replicas, a real Redis and a faulty simulator: kills, a flush, a 90 s API outage, a Redis restart; checks convergence (needs redis-server)
	$(GO) test -tags chaos -count=1 -v -timeout 15m ./internal/chaos/

clean: ## remove build output
	rm -rf bin
