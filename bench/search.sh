#!/usr/bin/env bash
# `/search` latency with 100,000 stored plans: release api against its own database
# (eye_bench_search), seeded by bench/search_seed.sql, then oha at a fixed rate on a one-day
# and a one-week window. Knobs: RATE, SECS, CONNS.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-200}
SECS=${SECS:-20}
CONNS=${CONNS:-16}
PORT=${BENCH_PORT:-8101}
BIN=${CARGO_TARGET_DIR:-target}/release
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/eye_bench_search
export EYE_AMQP_NAMESPACE=bench-search EYE_LOG=warn EYE_HTTP_ADDR=127.0.0.1:$PORT EYE_METRICS_ADDR=127.0.0.1:0
cargo build --release -p eye-api -p eye-migrations --bins
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS eye_bench_search WITH (FORCE)"
"$BIN/eye-migrate" up >/dev/null
psql -h 127.0.0.1 -U postgres -q eye_bench_search -f bench/search_seed.sql
"$BIN/eye-api" serve & API=$!
trap 'kill $API' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
for window in "2021-06-01T00:00:00&ends_at=2021-06-02T00:00:00" "2021-06-01T00:00:00&ends_at=2021-06-08T00:00:00"; do
  url="http://127.0.0.1:$PORT/search?starts_at=$window"
  echo "$url: $(curl -s "$url" | grep -o '"id"' | wc -l) plans"
  oha -q "$RATE" -z "${SECS}s" -c "$CONNS" --latency-correction --no-tui "$url" \
    | grep -E "Requests/sec|Success rate|50.00%|99.00%|99.90%|\[200\]"
done
