#!/usr/bin/env bash
# Erasure under load: a million-event session erased while a fixed rate of POST /events runs.
#
# 1. Starts the api and one worker (release binaries when built, else debug: BIN=...) on their
#    own database (eye_erasebench) and broker namespace (erasebench).
# 2. Seeds ERASE_EVENTS (1,000,000) events of one session of application `bench` by SQL.
# 3. Baseline: eye-loadtest at RATE req/s for BASE_SECS (same application, other sessions).
# 4. The same load for LOAD_SECS, with the session erased (POST /erasures, confirm) after 5 s;
#    prints the time the deleter took, the deleted counts, and the load's p99 against the
#    baseline's, and the loadtest's own ledger (every accepted id stored).
#
# Knobs: ERASE_EVENTS, RATE (500), BASE_SECS (30), LOAD_SECS (90), USERS (20), BIN.
# Figures are indicative: everything shares this machine's cores.
set -euo pipefail
cd "$(dirname "$0")/.."

ERASE_EVENTS=${ERASE_EVENTS:-1000000}
RATE=${RATE:-500}
BASE_SECS=${BASE_SECS:-30}
LOAD_SECS=${LOAD_SECS:-90}
USERS=${USERS:-20}
PORT=${BENCH_PORT:-8300}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
if [ -z "${BIN:-}" ]; then
  BIN=$TARGET_DIR/release
  [ -x "$BIN/eye-loadtest" ] && [ -x "$BIN/eye-worker" ] || BIN=$TARGET_DIR/debug
fi
OUT=$TARGET_DIR/bench-erasure
mkdir -p "$OUT"

export DATABASE_URL=postgres://postgres@127.0.0.1:5432/eye_erasebench
export EYE_RATE_LIMIT_PER_SEC=100000000 EYE_RATE_LIMIT_BURST=100000000
export EYE_AMQP_NAMESPACE=erasebench EYE_LOG=warn EYE_HTTP_ADDR=127.0.0.1:$PORT EYE_METRICS_ADDR=127.0.0.1:0
export EYE_WORKER_METRICS_ADDR=127.0.0.1:$((PORT + 1)) EYE_ERASURE_POLL_MS=200
HOST=http://127.0.0.1:$PORT
PSQL=(psql -h 127.0.0.1 -U postgres -d eye_erasebench -qAt)

echo "binaries: $BIN"
rabbitmqctl -q delete_queue erasebench.events.ingest >/dev/null 2>&1 || true
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS eye_erasebench WITH (FORCE)"
"$BIN/eye-migrate" up >/dev/null
"$BIN/eye-api" serve >"$OUT/api.log" 2>&1 &
API=$!
"$BIN/eye-worker" >"$OUT/worker.log" 2>&1 &
WORKER=$!
cleanup() {
  kill $API $WORKER 2>/dev/null || true
  rabbitmqctl -q delete_queue erasebench.events.ingest >/dev/null 2>&1 || true
  rabbitmqctl -q delete_queue erasebench.events.poison >/dev/null 2>&1 || true
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -sf "$HOST/readyz" >/dev/null && break; sleep 0.1; done
TOKEN=$("$BIN/eye-api" token --app bench --scopes events:write,events:read,events:erase | tail -1)
export EYE_TOKEN=$TOKEN
sleep 2 # the api learns of the new application at its next reload (1 s)

SESSION=$(python3 -c 'import uuid; print(uuid.uuid4())')
echo "== seeding $ERASE_EVENTS events of session $SESSION"
start=$(date +%s)
"${PSQL[@]}" <<SQL
INSERT INTO events (app_id, id, session_id, category, name, data, "timestamp", source, received_at)
SELECT 'bench', gen_random_uuid(), '$SESSION', 'page interaction', 'pageview',
       '{"host": "www.example.com", "path": "/"}',
       timestamptz '2021-01-01 00:00:00+00' + i * interval '10 ms', 'http', now()
FROM generate_series(1, $ERASE_EVENTS) AS i;
VACUUM ANALYZE events;
SQL
echo "seeded in $(( $(date +%s) - start )) s"

load() { # secs, log
  "$BIN/eye-loadtest" --host "$HOST" --rate "$RATE" --duration "$1" --users "$USERS" \
    --report-dir "$OUT/loadtest" >"$2" 2>&1
}
p99_of() { grep -m1 '^POST /events:' "$1" | grep -o 'p99 [0-9.]* ms' | head -1; }
summary() { grep -E '^POST /events:|^note:|^accepted=' "$1" | tail -3; }

echo "== baseline: $RATE req/s for $BASE_SECS s"
load "$BASE_SECS" "$OUT/base.log"
summary "$OUT/base.log"

echo "== the same load for $LOAD_SECS s, the session erased after 5 s"
load "$LOAD_SECS" "$OUT/during.log" &
LOAD=$!
sleep 5
auth=(-H "Authorization: Bearer $TOKEN")
pending=$(curl -sf "${auth[@]}" -H 'Content-Type: application/json' -X POST "$HOST/erasures" \
  -d "{\"session_id\": \"$SESSION\", \"reason\": \"bench\"}")
id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$pending")
echo "dry run: $(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["dry_run"])' "$pending")"
confirm_start=$(date +%s.%N)
curl -sf "${auth[@]}" -X POST "$HOST/erasures/$id/confirm" >/dev/null
status=""
while [ "$status" != "done" ]; do
  sleep 1
  erasure=$(curl -sf "${auth[@]}" "$HOST/erasures/$id")
  status=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["status"])' "$erasure")
done
took=$(python3 -c "import time; print(round(time.time() - $confirm_start, 1))")
echo "erasure done ${took} s after the confirmation: $(python3 -c 'import json,sys; e=json.loads(sys.argv[1]); print("deleted", e["deleted"], "suppressed", e["suppressed"], "started", e["started_at"], "completed", e["completed_at"])' "$erasure")"
wait $LOAD || true
summary "$OUT/during.log"
echo "rows of the session left: $("${PSQL[@]}" -c "SELECT count(*) FROM events WHERE session_id = '$SESSION'")"
echo "p99 baseline: $(p99_of "$OUT/base.log"); p99 during the erasure: $(p99_of "$OUT/during.log")"
echo "machine: $(nproc) cores, shared with other builds and tests (figures indicative)"
