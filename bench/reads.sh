#!/usr/bin/env bash
# Read-side benchmark: 10,000,000 events (ROWS) over 100 sessions and 20 types, stored over
# 13 weekly partitions (bench/reads_seed.sql; seeding takes minutes, once), then the session
# query and a filtered page under load (oha, 8 connections, 20 s each).
# `bench/reads.sh` (release binaries; builds them if needed).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${BENCH_PORT:-8110}
BIN=${CARGO_TARGET_DIR:-target}/release
ROWS=${ROWS:-10000000}
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/eye_bench_reads
# Capacity is measured here, not quotas (README: rate limits).
export EYE_RATE_LIMIT_PER_SEC=100000000 EYE_RATE_LIMIT_BURST=100000000
export EYE_AMQP_NAMESPACE=bench-reads EYE_LOG=warn EYE_HTTP_ADDR=127.0.0.1:$PORT EYE_METRICS_ADDR=127.0.0.1:0
command -v oha >/dev/null || cargo install oha --locked
cargo build --release -p eye-api -p eye-migrations
"$BIN/eye-migrate" up >/dev/null
have=$(psql -h 127.0.0.1 -U postgres eye_bench_reads -Atc "SELECT count(*) FROM events")
if [ "$have" != "$ROWS" ]; then
  echo "loading $ROWS events"
  psql -h 127.0.0.1 -U postgres eye_bench_reads -q -v rows="$ROWS" -f bench/reads_seed.sql >/dev/null
fi
"$BIN/eye-api" serve >/dev/null 2>&1 & API=$!
trap 'kill $API 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
TOKEN=$("$BIN/eye-api" token --app bench | tail -1)
sleep 2 # the api learns of the new application at its next reload (1 s)
SESSION=00000000-0000-4000-8000-000000000007
# A page in the middle of the range, where a cursor would take a client.
CURSOR=$(curl -s -H "Authorization: Bearer $TOKEN" \
  "http://127.0.0.1:$PORT/sessions/$SESSION/events?limit=1000&from=2024-01-04T00:00:00Z" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["next_cursor"])')
for path in \
  "/sessions/$SESSION/events?limit=100" \
  "/sessions/$SESSION/events?limit=100&cursor=$CURSOR" \
  "/events?category=category%202&name=name%203&limit=100&from=2024-01-05T00:00:00Z" \
  "/events?limit=100&from=2024-01-06T00:00:00Z&to=2024-01-07T00:00:00Z"; do
  echo "GET $path"
  oha -z 20s -c 8 --no-tui --output-format json -H "Authorization: Bearer $TOKEN" \
    "http://127.0.0.1:$PORT$path" 2>/dev/null | python3 -c '
import json, sys
d = json.load(sys.stdin); p = d["latencyPercentiles"]; c = d["statusCodeDistribution"]
rps, p50, p99 = d["summary"]["requestsPerSec"], 1000 * p["p50"], 1000 * p["p99"]
print(f"  {rps:.0f} req/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms, statuses {c}")' 2>/dev/null ||
  oha -z 20s -c 8 --no-tui -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$PORT$path" | grep -E "Requests/sec|99.00%|50.00%"
done
