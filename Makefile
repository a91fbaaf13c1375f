# prismcache — `make help` lists the targets.

GO       ?= go
BIN      ?= bin/prismcache
PKGS     ?= ./...
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Release binaries: static (no cgo), trimmed of local paths and symbol
# tables, stamped with the version; the same input gives the same bytes.
LDFLAGS  := -s -w -buildid= -X main.version=$(VERSION)
BUILDFLAGS := -trimpath -buildvcs=auto -ldflags "$(LDFLAGS)"
# make release builds these, into dist/.
PLATFORMS ?= linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
# Files go generate writes; make lint fails when they differ from what is committed.
GENERATED := graphql/generated.go internal/prismaticsim/gqlserver

# The race detector needs cgo and a C compiler; on a machine with only Go the
# tests run without it (CI always has one).
RACE := $(shell CGO_ENABLED=1 $(GO) env CC >/dev/null 2>&1 && command -v "$$(CGO_ENABLED=1 $(GO) env CC)" >/dev/null 2>&1 && echo -race)
export CGO_ENABLED := $(if $(RACE),1,$(shell $(GO) env CGO_ENABLED))

.PHONY: help build release run test test-ts generate lint bench bench-hostile bench-million fuzz chaos clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

build: ## build bin/prismcache (static; what the Dockerfile and CI build)
	CGO_ENABLED=0 $(GO) build $(BUILDFLAGS) -o $(BIN) ./cmd/prismcache

release: ## build dist/prismcache-$(VERSION)-<os>-<arch> for linux and darwin, amd64 and arm64, with SHA256SUMS
	@case "$(VERSION)" in *dirty*) echo "release: the tree has uncommitted changes (VERSION=$(VERSION)); commit or pass VERSION=…" >&2; exit 1;; esac
	rm -rf dist && mkdir -p dist
	@set -e; for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; out=dist/prismcache-$(VERSION)-$$os-$$arch; \
		echo "  $$out"; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build $(BUILDFLAGS) -o $$out ./cmd/prismcache; \
	done
	cd dist && sha256sum prismcache-* > SHA256SUMS && cat SHA256SUMS

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
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/prismcache
	$(GO) build -o bin/prismbench ./internal/bench/cmd/prismbench
	./bin/prismbench -daemon $(BIN)

bench-hostile: ## the slow-body attack alone: 1,500 slow connections for 40s beside valid webhooks (docs/security.md)
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/prismcache
	$(GO) build -o bin/prismbench ./internal/bench/cmd/prismbench
	./bin/prismbench -daemon $(BIN) -only hostile

bench-million: ## the daemon's RSS at 1,000,000 cached instances, idle and through a whole resync at the default rate (≈ 25–30 min)
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/prismcache
	$(GO) build -o bin/prismbench ./internal/bench/cmd/prismbench
	./bin/prismbench -daemon $(BIN) -only million -full-pass

fuzz: ## run each fuzz target for a short while (FUZZTIME=30s each)
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime $(or $(FUZZTIME),30s) ./internal/webhook/
	$(GO) test -run '^$$' -fuzz FuzzScanMatchesJSON -fuzztime $(or $(FUZZTIME),30s) ./internal/webhook/
	$(GO) test -run '^$$' -fuzz FuzzIntake -fuzztime $(or $(FUZZTIME),30s) ./internal/server/

chaos: ## two daemon replicas, a real Redis and a faulty simulator: kills, a flush, a 90 s API outage, a Redis restart; checks convergence (needs redis-server)
	$(GO) test -tags chaos -count=1 -v -timeout 15m ./internal/chaos/

clean: ## remove build output
	rm -rf bin dist
