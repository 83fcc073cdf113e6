#!/usr/bin/env bash
# `/search` latency with 100,000 stored plans: release api against its own database
# (eye_bench_search), seeded by bench/search_seed.sql, then oha at a fixed rate on a one-day
# and a one-week window; then the open range (no bounds: all 90,000 plans ever online,
# streamed a page at a time) at a low rate, with the api's peak RSS before and after.
# Knobs: RATE, SECS, CONNS; OPEN_RATE, OPEN_SECS, OPEN_CONNS for the open range.
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

# The open range: one request's size and time (first byte: the first page is read before the
# status), then OPEN_RATE req/s. VmHWM is the api's peak RSS: it grows by pages in flight, not
# by the 18 MB answer.
OPEN_RATE=${OPEN_RATE:-2}
OPEN_SECS=${OPEN_SECS:-10}
OPEN_CONNS=${OPEN_CONNS:-4}
hwm() { awk '/VmHWM/ {print $2 " kB"}' "/proc/$API/status"; }
url="http://127.0.0.1:$PORT/search"
echo "api peak RSS before the open range: $(hwm)"
echo "$url: $(curl -s "$url" | grep -o '"id"' | wc -l) plans"
curl -s -o /dev/null -w "$url: %{size_download} bytes, first byte %{time_starttransfer} s, all %{time_total} s\n" "$url"
oha -q "$OPEN_RATE" -z "${OPEN_SECS}s" -c "$OPEN_CONNS" --latency-correction --no-tui "$url" \
  | grep -E "Requests/sec|Success rate|50.00%|99.00%|\[200\]"
echo "api peak RSS after the open range: $(hwm)"
