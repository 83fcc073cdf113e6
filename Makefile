# The Eye: the commands a user needs. `make run` and `make test` work on a fresh machine
# with PostgreSQL and RabbitMQ reachable at the addresses in the settings (.env or defaults).

SHELL := /bin/bash
CARGO ?= cargo
TARGET_DIR := $(or $(CARGO_TARGET_DIR),target)
BIN := $(TARGET_DIR)/debug
app ?= demo

.PHONY: help run runserver runworker migrate generatetoken build test lint fmt test-clean loadtest bench bench-batch openapi fuzz chaos chaos-cluster run-cluster browser-test bench-webhooks bench-import

# A provider is configured when EYE_FETCH_URL or EYE_FETCH_PROVIDERS_FILE is set, in the
# environment or in .env (the binaries read both); without one, the fetcher would poll an
# internet URL by default and log failures forever on a machine that cannot reach it.
FETCH_CONFIGURED = [ -n "$${EYE_FETCH_URL:-}$${EYE_FETCH_PROVIDERS_FILE:-}" ] || \
	grep -qsE '^[[:space:]]*(export[[:space:]]+)?EYE_FETCH_(URL|PROVIDERS_FILE)=.' .env

## help: this list, from the `## target:` comments above each target
help:
	@awk '/^## [a-z-]+( [a-z]+=[A-Z]+)?:/ { sub(/^## /, ""); split($$0, p, ": "); \
		printf "  make %-22s %s\n", p[1], substr($$0, length(p[1]) + 3); next } \
		/^## / { sub(/^## /, ""); printf "  %-27s %s\n", "", $$0 }' $(MAKEFILE_LIST)

## run: migrate, then the API, a worker, an exporter and the webhook dispatcher together, plus the provider fetcher
## when a provider is configured (Ctrl-C stops all)
run: migrate build
	@trap 'kill 0' INT TERM; \
	$(BIN)/eye-api serve & \
	$(BIN)/eye-worker & \
	$(BIN)/eye-exporter & \
	$(BIN)/eye-dispatcher & \
	if $(FETCH_CONFIGURED); then $(BIN)/eye-fetcher & \
	else echo "make run: eye-fetcher not started: no provider configured" \
		"(set EYE_FETCH_URL or EYE_FETCH_PROVIDERS_FILE)" >&2; fi; \
	wait

## build: every binary of the workspace
build:
	$(CARGO) build --workspace --bins

## migrate: create the database if needed and apply the migrations
migrate:
	$(CARGO) run -q -p eye-migrations --bin eye-migrate -- up

## runserver: the API alone
runserver:
	$(CARGO) run -q -p eye-api --bin eye-api -- serve

## runworker: one worker alone (the crate also holds eye-fetcher, hence --bin)
runworker:
	$(CARGO) run -q -p eye-worker --bin eye-worker

## generatetoken app=NAME: register application NAME if needed and print a token for it (last line)
generatetoken:
	@$(CARGO) run -q -p eye-migrations --bin eye-migrate -- up >&2
	@$(CARGO) run -q -p eye-api --bin eye-api -- token --app "$(app)"

## loadtest: RATE req/s for DURATION s against a running API (`make run`), then prove every
## 202 was stored or dead-lettered once; reports in target/loadtest/. EYE_TOKEN, if set, is used
## as is; GOOSE_ARGS are passed to goose (e.g. GOOSE_ARGS="--running-metrics 10").
RATE ?= 100
DURATION ?= 60
USERS ?= 10
HOST ?= http://127.0.0.1:8000
loadtest:
	@set -eo pipefail; \
	if [ -z "$${EYE_TOKEN:-}" ]; then \
		EYE_TOKEN="$$($(CARGO) run -q -p eye-api --bin eye-api -- token --app loadtest | tail -1)"; \
		export EYE_TOKEN; \
	fi; \
	$(CARGO) run -q -p eye-loadtest --bin eye-loadtest -- --host "$(HOST)" --rate "$(RATE)" --duration "$(DURATION)" \
		--users "$(USERS)" --report-dir "$(TARGET_DIR)/loadtest" -- $(GOOSE_ARGS)

## bench: release build; issue 18's hot-path goals side by side: closed-loop ratio to the no-publish
## ceiling, p99 and CPU per stored event by process at fixed rates (beside the broker's own p99),
## a 30 s hold with a ledger by count, and 1 api + 1 worker against 2 + 2 on the same cores
bench:
	bench/bench.sh

## test: unit tests and integration tests against the real PostgreSQL and RabbitMQ (and a moto
## S3 server the export tests start, installed from PyPI by scripts/moto.sh)
test:
	scripts/moto.sh >/dev/null
	$(CARGO) build --workspace --bins
	$(CARGO) test --workspace

## openapi: regenerate api/openapi.json from the code (a test fails while it is stale)
openapi:
	$(CARGO) run -q -p eye-api --bin eye-api -- openapi > api/openapi.json

## browser-test: the admin console (/admin) in headless Chromium (Debian's chromium, driven by
## playwright-core from tests/browser); screenshots to docs/console/
browser-test:
	scripts/browser.sh

## bench-batch: POST /events/batch (batches of 500) against POST /events in the same run:
## accepted/s, stored/s end to end, their ratio (release build, own database and namespace)
bench-batch:
	bench/batch.sh

## bench-webhooks: stored-to-first-attempt p99 at 1,000 events/s into 10 endpoints (one slow,
## one failing), deliveries/s and the dispatcher's CPU per delivery (release build)
bench-webhooks:
	bench/webhooks.sh
## bench-import: a 500,000-row CSV (5% case-only duplicates, 1% invalid) imported end to end:
## seconds, progress-event gaps, exact counts, peak RSS (release build, own database)
bench-import:
	bench/import.sh

## fuzz: schemathesis (PyPI) against a live api over every documented endpoint
fuzz:
	scripts/fuzz.sh

## chaos: CHAOS_DURATION s (300) of load with 1 % hostile events on a private PostgreSQL and
## RabbitMQ while a worker is killed -9 and both are restarted; then the ledger by id (non-zero
## exit on anything lost, doubled or undecodable). CHAOS_RATE, CHAOS_FAULT_EVERY: see the script.
chaos:
	scripts/chaos.sh

## run-cluster: the scale-out shape: a 3-node RabbitMQ cluster (5701-5703), HAProxy on 8100 in
## front of 2 api replicas, 2 workers, the fetcher if configured (Ctrl-C stops all)
run-cluster:
	scripts/run_cluster.sh

## chaos-cluster: CHAOS_DURATION s (240) of load through HAProxy while an api replica, a worker
## and RabbitMQ nodes fail (one, then two: no quorum); the ledger by id, blips per fault
chaos-cluster:
	scripts/chaos_cluster.sh

## lint: formatting and clippy, as before every commit
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## fmt: format every crate
fmt:
	$(CARGO) fmt --all

## test-clean: drop databases and queues left by interrupted test runs
test-clean:
	@for d in $$(psql -h 127.0.0.1 -U postgres -Atc "select datname from pg_database where datname like 'eye_test_%'"); do \
		psql -h 127.0.0.1 -U postgres -qc "drop database \"$$d\" with (force)"; done
	@for q in $$(rabbitmqctl -q list_queues name | grep '^test-'); do rabbitmqctl -q delete_queue "$$q"; done
