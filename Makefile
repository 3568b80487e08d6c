# gridlake — the two commands a newcomer needs are `make run` and `make test`.

GO            ?= go
BIN           := $(CURDIR)/bin
MINIO_MODULE  := github.com/minio/minio
# Pinned MinIO server release (DESIGN.md §2); built from the Go module proxy.
MINIO_VERSION := v0.0.0-20260212201848-7aac2a2c5b7c
RUN_FLAGS     ?= --simulate
# Pinned node-postgres for the real-client test.
NODE_PG_VERSION := 8.23.1
NODE_PG       := $(BIN)/node/node_modules/pg/package.json

.PHONY: all build run test deps psql chromium jdbc bench bench-layers lint fuzz clean help

all: build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-8s %s\n", $$1, $$2}'

build: ## build bin/gridlake
	$(GO) build -o $(BIN)/gridlake ./cmd/gridlake

run: build ## start the whole pipeline with simulated devices (Ctrl-C stops it)
	$(BIN)/gridlake up $(RUN_FLAGS)

deps: $(BIN)/minio psql chromium jdbc $(NODE_PG) ## install what the tests need (a pinned MinIO server in ./bin, psql, headless Chromium, the PostgreSQL JDBC driver, node-postgres)

# psql is the PostgreSQL client the serving tests connect with.
psql:
	@command -v psql >/dev/null 2>&1 || { echo "installing postgresql-client (psql)"; \
		SUDO=$$(command -v sudo >/dev/null 2>&1 && [ "$$(id -u)" != 0 ] && echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq postgresql-client; }

# Chromium runs headless in the dashboard's browser test.
chromium:
	@command -v chromium >/dev/null 2>&1 || { echo "installing chromium (headless browser for the dashboard test)"; \
		SUDO=$$(command -v sudo >/dev/null 2>&1 && [ "$$(id -u)" != 0 ] && echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }

# The PostgreSQL JDBC driver (and a JDK to compile the test's client) for
# the real-client test.
jdbc:
	@[ -f /usr/share/java/postgresql.jar ] || { echo "installing the PostgreSQL JDBC driver (libpostgresql-jdbc-java)"; \
		SUDO=$$(command -v sudo >/dev/null 2>&1 && [ "$$(id -u)" != 0 ] && echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq libpostgresql-jdbc-java; }
	@command -v javac >/dev/null 2>&1 || { echo "installing a JDK (javac)"; \
		SUDO=$$(command -v sudo >/dev/null 2>&1 && [ "$$(id -u)" != 0 ] && echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq default-jdk-headless; }

# node-postgres, pinned, in ./bin/node for the real-client test (Node.js
# and npm from Debian if the machine has none).
$(NODE_PG):
	@command -v npm >/dev/null 2>&1 || { echo "installing Node.js and npm"; \
		SUDO=$$(command -v sudo >/dev/null 2>&1 && [ "$$(id -u)" != 0 ] && echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq nodejs npm; }
	@echo "installing node-postgres $(NODE_PG_VERSION) into $(BIN)/node"
	npm install --prefix $(BIN)/node --no-save --no-audit --no-fund --loglevel=error pg@$(NODE_PG_VERSION)

$(BIN)/minio:
	@echo "installing MinIO $(MINIO_VERSION) into $(BIN) (a few minutes the first time)"
	GOBIN=$(BIN) $(GO) install $(MINIO_MODULE)@$(MINIO_VERSION)

test: deps ## install what is missing, then run every test
	$(GO) test -count=1 -timeout 30m ./...

bench: ## micro-benchmarks of the hot paths
	$(GO) test -run '^$$' -bench . -benchmem ./schemas ./simulate

bench-layers: build deps ## the end-to-end benchmarks, one JSON line each (several minutes)
	$(BIN)/gridlake bench speed
	$(BIN)/gridlake bench compact
	$(BIN)/gridlake bench recompute
	$(BIN)/gridlake bench serve

FUZZTIME ?= 60s

fuzz: ## fuzz every parser of outside bytes, FUZZTIME (60s) each: Kafka events, PostgreSQL messages, /v1 parameters, the SQL sandbox, S3 signatures, auth headers and cookies, Flight SQL handles and filters, dead letters' headers, alert silences, the speed source interface's parameters
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -parallel 1 ./schemas
	$(GO) test -run '^$$' -fuzz '^FuzzPGMessages$$' -fuzztime $(FUZZTIME) -parallel 1 ./serving/pgwire
	$(GO) test -run '^$$' -fuzz '^FuzzHTTPParams$$' -fuzztime $(FUZZTIME) -parallel 1 ./serving
	$(GO) test -run '^$$' -fuzz '^FuzzSQLSandbox$$' -fuzztime $(FUZZTIME) -parallel 1 ./serving
	$(GO) test -run '^$$' -fuzz '^FuzzAuthInputs$$' -fuzztime $(FUZZTIME) -parallel 1 ./auth
	$(GO) test -run '^$$' -fuzz '^FuzzSigV4$$' -fuzztime $(FUZZTIME) -parallel 1 ./objstore/s3server
	$(GO) test -run '^$$' -fuzz '^FuzzFlightInputs$$' -fuzztime $(FUZZTIME) -parallel 1 ./serving/flightsql
	$(GO) test -run '^$$' -fuzz '^FuzzReadLetter$$' -fuzztime $(FUZZTIME) -parallel 1 ./kafkaio
	$(GO) test -run '^$$' -fuzz '^FuzzSilenceBody$$' -fuzztime $(FUZZTIME) -parallel 1 ./alertd
	$(GO) test -run '^$$' -fuzz '^FuzzSourceParams$$' -fuzztime $(FUZZTIME) -parallel 1 ./speed

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean: ## remove build output and the local data directory
	rm -rf $(BIN)/gridlake ./data
