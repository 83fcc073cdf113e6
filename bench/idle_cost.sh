#!/usr/bin/env bash
# CPU cost of the api and the worker at a low fixed rate (default 100 req/s for 30 s):
# `bench/idle_cost.sh [RATE] [SECS]` against binaries started like `make bench` does.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-100}; SECS=${2:-30}; PORT=${BENCH_PORT:-8100}
BIN=${CARGO_TARGET_DIR:-target}/release
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/eye_bench
# Capacity is measured here, not quotas (README: rate limits).
export EYE_RATE_LIMIT_PER_SEC=100000000 EYE_RATE_LIMIT_BURST=100000000
export EYE_AMQP_NAMESPACE=bench EYE_LOG=warn EYE_HTTP_ADDR=127.0.0.1:$PORT EYE_METRICS_ADDR=127.0.0.1:0 EYE_WORKER_METRICS_ADDR=127.0.0.1:9109
"$BIN/eye-migrate" up >/dev/null
"$BIN/eye-api" serve >/dev/null 2>&1 & API=$!
"$BIN/eye-worker" >/dev/null 2>&1 & WORKER=$!
trap 'kill $API $WORKER 2>/dev/null || true' EXIT
sleep 2
TOKEN=$("$BIN/eye-api" token --app bench | tail -1)
sleep 2 # the api learns of the new application at its next reload (1 s)
BODY=$(sed -n "s/^wrk.body = '\(.*\)'$/\1/p" bench/post.lua)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
a0=$(ticks $API); w0=$(ticks $WORKER)
oha -z "${SECS}s" -q "$RATE" -c 4 --no-tui --output-format json -m POST -T application/json \
  -H "Authorization: Bearer $TOKEN" -d "$BODY" "http://127.0.0.1:$PORT/events" 2>/dev/null |
  python3 bench/oha_summary.py
a1=$(ticks $API); w1=$(ticks $WORKER)
hz=$(getconf CLK_TCK)
awk -v a="$((a1 - a0))" -v w="$((w1 - w0))" -v hz="$hz" -v s="$SECS" -v r="$RATE" 'BEGIN {
  printf "at %d req/s: api %.2f%% of one core, worker %.2f%%\n", r, 100 * a / hz / s, 100 * w / hz / s }'
echo "api RSS: $(awk '/VmHWM/ {printf "%.0f MB", $2 / 1024}' /proc/$API/status)"
