#!/usr/bin/env bash
# Read-side benchmark: 10,000,000 events (ROWS) over 100 sessions and 20 types, stored over
# 13 weekly partitions (bench/reads_seed.sql; seeding takes minutes, once per database), then
# four reads through the api under load (wrk, CONNS connections, SECS seconds each):
# p50/p95/p99 and req/s per read.
#   bench/reads.sh                                   # release binaries (built if needed)
#   API_BINS="before=/path/eye-api after=target/release/eye-api" ROUNDS=3 bench/reads.sh
# API_BINS compares builds on the same rows, alternating them each round. BENCH_DB names the
# database (default eye_bench_reads).
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${BENCH_PORT:-8110}
BIN=${CARGO_TARGET_DIR:-target}/release
ROWS=${ROWS:-10000000}
DB=${BENCH_DB:-eye_bench_reads}
SECS=${SECS:-20}
CONNS=${CONNS:-8}
ROUNDS=${ROUNDS:-1}
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB
# Capacity is measured here, not quotas (README: rate limits), and every connection's read
# runs (past EYE_READ_CONCURRENCY a read is refused at once with 503 busy, which would mix
# fast refusals into the latencies).
export EYE_RATE_LIMIT_PER_SEC=100000000 EYE_RATE_LIMIT_BURST=100000000
export EYE_READ_CONCURRENCY=$CONNS EYE_DATABASE_MAX_CONNECTIONS=$((CONNS + 2))
export EYE_AMQP_NAMESPACE=bench-reads EYE_LOG=warn EYE_HTTP_ADDR=127.0.0.1:$PORT EYE_METRICS_ADDR=127.0.0.1:0
command -v wrk >/dev/null || { echo "installing wrk (Debian package)"; apt-get install -y wrk >/dev/null; }
if [ -z "${API_BINS:-}" ]; then
  cargo build --release --workspace --bins
  API_BINS="current=$BIN/eye-api"
fi
psql -h 127.0.0.1 -U postgres -qc "CREATE DATABASE $DB" 2>/dev/null || true
"${MIGRATE:-$BIN/eye-migrate}" up >/dev/null
have=$(psql -h 127.0.0.1 -U postgres "$DB" -Atc "SELECT count(*) FROM events")
if [ "$have" != "$ROWS" ]; then
  echo "loading $ROWS events"
  psql -h 127.0.0.1 -U postgres "$DB" -q -v rows="$ROWS" -f bench/reads_seed.sql >/dev/null
fi
lua=$(mktemp --suffix .lua)
trap 'rm -f "$lua"' EXIT
cat >"$lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("  %.0f req/s, p50 %.2f ms, p95 %.2f ms, p99 %.2f ms, errors %d, non-2xx %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
LUA
SESSION=00000000-0000-4000-8000-000000000007
for round in $(seq 1 "$ROUNDS"); do
  for entry in $API_BINS; do
    label=${entry%%=*} api=${entry#*=}
    "$api" serve >/dev/null 2>&1 & API=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.1; done
    TOKEN=$("$api" token --app bench | tail -1)
    sleep 2 # the api learns of the new application at its next reload (1 s)
    # A page in the middle of the range, where a cursor would take a client.
    CURSOR=$(curl -s -H "Authorization: Bearer $TOKEN" \
      "http://127.0.0.1:$PORT/sessions/$SESSION/events?limit=1000&from=2024-01-04T00:00:00Z" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["next_cursor"])')
    echo "round $round, $label ($(uptime | sed 's/.*load/load/'))"
    for path in \
      "/sessions/$SESSION/events?limit=100" \
      "/sessions/$SESSION/events?limit=100&cursor=$CURSOR" \
      "/events?category=category%202&name=name%203&limit=100&from=2024-01-05T00:00:00Z" \
      "/events?limit=100&from=2024-01-06T00:00:00Z&to=2024-01-07T00:00:00Z"; do
      echo " GET $path"
      wrk -t 2 -c "$CONNS" -d "${SECS}s" -s "$lua" -H "Authorization: Bearer $TOKEN" \
        "http://127.0.0.1:$PORT$path" | grep 'req/s'
    done
    kill $API; wait $API 2>/dev/null || true
  done
done
