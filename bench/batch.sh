#!/usr/bin/env bash
# `make bench-batch`: POST /events/batch (batches of BATCH events) against POST /events, in
# the same run, on the same api and worker (release build, own database and namespace).
#
# For each mode: the events are made before the clock starts (examples/throughput.rs, through
# eye-client), sent over CONC connections; "accepted/s" is events answered accepted (the
# broker confirmed them) per second of sending; "stored/s" is events per second from the
# first request until the events table holds them all (end to end). Ledger by count: every
# accepted event must be stored (lost = accepted - stored).
#
# Knobs: SINGLE_EVENTS (40000), SINGLE_CONC (64), BATCH_EVENTS (300000), BATCH (500),
# BATCH_CONC (8), BENCH_BATCH_PORT (8300); WORKER_BIN (the worker binary to run, for an A/B of
# two builds of the worker against the same api; default the release build's).
set -euo pipefail
cd "$(dirname "$0")/.."

SINGLE_EVENTS=${SINGLE_EVENTS:-40000}
SINGLE_CONC=${SINGLE_CONC:-64}
BATCH_EVENTS=${BATCH_EVENTS:-300000}
BATCH=${BATCH:-500}
BATCH_CONC=${BATCH_CONC:-8}
PORT=${BENCH_BATCH_PORT:-8300}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=$TARGET_DIR/release
OUT=$TARGET_DIR/bench-batch
WORKER_BIN=${WORKER_BIN:-$BIN/eye-worker}
DB=eye_bench_batch
mkdir -p "$OUT"

export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB
export EYE_RATE_LIMIT_PER_SEC=100000000 EYE_RATE_LIMIT_BURST=100000000
export EYE_AMQP_NAMESPACE=bench-batch EYE_LOG=warn EYE_HTTP_ADDR=127.0.0.1:$PORT EYE_METRICS_ADDR=127.0.0.1:0
export EYE_WORKER_METRICS_ADDR=127.0.0.1:$((PORT + 1))
HOST=http://127.0.0.1:$PORT

cargo build --release --workspace --bins
cargo build --release -p eye-client --example throughput
rabbitmqctl -q delete_queue "$EYE_AMQP_NAMESPACE.events.ingest" >/dev/null 2>&1 || true
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
"$BIN/eye-migrate" up >/dev/null
"$BIN/eye-api" serve >"$OUT/api.log" 2>&1 & API=$!
"$WORKER_BIN" >"$OUT/worker.log" 2>&1 & WORKER=$!
cleanup() {
  kill $API $WORKER 2>/dev/null || true
  rabbitmqctl -q delete_queue "$EYE_AMQP_NAMESPACE.events.ingest" >/dev/null 2>&1 || true
  rabbitmqctl -q delete_queue "$EYE_AMQP_NAMESPACE.events.poison" >/dev/null 2>&1 || true
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -sf "$HOST/readyz" >/dev/null && break; sleep 0.1; done
TOKEN=$("$BIN/eye-api" token --app bench | tail -1)
sleep 2 # the api learns of the new application at its next reload (1 s)

stored() { psql -h 127.0.0.1 -U postgres $DB -Atc "SELECT count(*) FROM events"; }
now() { date +%s.%N; }

# run MODE EVENTS CONC: prints "accepted accepted_per_sec stored_per_sec lost"
run() {
  local mode=$1 events=$2 conc=$3 before target started line accepted secs n waited
  before=$(stored)
  started=$(now)
  line=$("$TARGET_DIR/release/examples/throughput" "$HOST" "$TOKEN" "$mode" "$events" "$conc" "$BATCH")
  echo "$line" >>"$OUT/runs.jsonl"
  accepted=$(sed -E 's/.*"accepted":([0-9]+).*/\1/' <<<"$line")
  secs=$(sed -E 's/.*"secs":([0-9.]+).*/\1/' <<<"$line")
  target=$((before + accepted))
  waited=0
  while n=$(stored); [ "$n" -lt "$target" ] && [ $waited -lt 600 ]; do sleep 0.1; waited=$((waited + 1)); done
  local e2e
  e2e=$(awk -v s="$started" -v e="$(now)" -v a="$accepted" 'BEGIN {printf "%.0f", a / (e - s)}')
  echo "$accepted $(awk -v a="$accepted" -v s="$secs" 'BEGIN {printf "%.0f", a / s}') $e2e $((target - n))"
}

echo "== single events: $SINGLE_EVENTS events over $SINGLE_CONC connections"
read -r s_acc s_rate s_e2e s_lost < <(run single "$SINGLE_EVENTS" "$SINGLE_CONC")
echo "accepted=$s_acc accepted/s=$s_rate stored/s (end to end)=$s_e2e lost=$s_lost"
echo "== batches of $BATCH: $BATCH_EVENTS events over $BATCH_CONC connections"
read -r b_acc b_rate b_e2e b_lost < <(run batch "$BATCH_EVENTS" "$BATCH_CONC")
echo "accepted=$b_acc accepted/s=$b_rate stored/s (end to end)=$b_e2e lost=$b_lost"
awk -v b="$b_rate" -v s="$s_rate" -v be="$b_e2e" -v se="$s_e2e" \
  'BEGIN {printf "ratio batch/single: accepted %.1fx, stored %.1fx\n", b / s, be / se}'
[ "$s_lost" -eq 0 ] && [ "$b_lost" -eq 0 ] || { echo "events lost (by count)"; exit 1; }
