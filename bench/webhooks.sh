#!/usr/bin/env bash
# `make bench-webhooks`: stored-to-first-attempt latency of webhook deliveries at RATE events/s
# (default 1,000) into 10 endpoints, one of which answers after 2 s and one of which always
# fails (500); the 8 others are healthy. Each event's name picks one endpoint (filters
# `name = eN`), so deliveries/s = events/s. Receivers: Python threaded HTTP servers on this
# host (allowed by EYE_WEBHOOK_ALLOW_NETS=127.0.0.1/32). Events go in through POST
# /events/batch (batches of RATE/10 every 100 ms).
#
# Reported from the database (webhook_deliveries.first_attempt_at - created_at, created_at
# being the storing transaction's start): p50/p99/max per endpoint kind, deliveries/s
# succeeded, and the dispatcher's CPU (utime+stime from /proc) per attempt.
#
# Knobs: RATE (1000), DURATION (60 s), PROFILE (release; debug only to check the script),
# BENCH_WEBHOOKS_PORT (8400).
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-1000}
DURATION=${DURATION:-60}
PROFILE=${PROFILE:-release}
PORT=${BENCH_WEBHOOKS_PORT:-8400}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=$TARGET_DIR/$PROFILE
OUT=$TARGET_DIR/bench-webhooks
DB=eye_bench_webhooks
mkdir -p "$OUT"

export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB
export EYE_RATE_LIMIT_PER_SEC=100000000 EYE_RATE_LIMIT_BURST=100000000
export EYE_AMQP_NAMESPACE=bench-webhooks EYE_LOG=warn EYE_HTTP_ADDR=127.0.0.1:$PORT EYE_METRICS_ADDR=127.0.0.1:0
export EYE_WORKER_METRICS_ADDR=127.0.0.1:$((PORT + 1)) EYE_DISPATCHER_METRICS_ADDR=127.0.0.1:$((PORT + 2))
export EYE_WEBHOOK_ALLOW_NETS=127.0.0.1/32 EYE_WEBHOOK_REFRESH_MS=200
HOST=http://127.0.0.1:$PORT
RECV_BASE=$((PORT + 10))

if [ "$PROFILE" = release ]; then
  cargo build --release --workspace --bins
fi
rabbitmqctl -q delete_queue "$EYE_AMQP_NAMESPACE.events.ingest" >/dev/null 2>&1 || true
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
"$BIN/eye-migrate" up >/dev/null
python3 bench/webhook_receivers.py "$RECV_BASE" >"$OUT/receivers.log" 2>&1 & RECV=$!
"$BIN/eye-api" serve >"$OUT/api.log" 2>&1 & API=$!
"$BIN/eye-worker" >"$OUT/worker.log" 2>&1 & WORKER=$!
DISPATCHER=
cleanup() {
  kill $API $WORKER $RECV ${DISPATCHER:-} ${MONITOR:-} 2>/dev/null || true
  rabbitmqctl -q delete_queue "$EYE_AMQP_NAMESPACE.events.ingest" >/dev/null 2>&1 || true
  rabbitmqctl -q delete_queue "$EYE_AMQP_NAMESPACE.events.poison" >/dev/null 2>&1 || true
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -sf "$HOST/readyz" >/dev/null && break; sleep 0.1; done
TOKEN=$("$BIN/eye-api" token --app bench --scopes events:write,webhooks:write | tail -1)
sleep 1.5 # the api learns of the new application at its next reload

# Endpoint 0 is slow (2 s), endpoint 1 fails, 2..9 are healthy.
for i in $(seq 0 9); do
  curl -sf -X POST "$HOST/webhooks" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d "{\"url\": \"http://127.0.0.1:$((RECV_BASE + i))/hook\", \"filters\": [{\"name\": \"e$i\"}]}" >/dev/null
done
"$BIN/eye-dispatcher" >"$OUT/dispatcher.log" 2>&1 & DISPATCHER=$!
sleep 2
cpu() { awk '{print $14 + $15}' "/proc/$DISPATCHER/stat"; }
CPU0=$(cpu)
START=$(date +%s.%N)
# Every 10 s: the healthy endpoints' backlog (due, not yet attempted) and the table's row
# versions (a work queue's dead versions are what slows its claims if nothing removes them).
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8, $2 + $3 + $4 + $5 + $6 + $7 + $8}' /proc/stat; }
monitor() {
  echo "time healthy_backlog live dead updates hot_updates autovacuums cpu_busy_%"
  read -r b0 t0 <<<"$(busy)"
  while sleep 10; do
    read -r b1 t1 <<<"$(busy)"
    pct=$(( (b1 - b0) * 100 / (t1 - t0 > 0 ? t1 - t0 : 1) )); b0=$b1 t0=$t1
    psql -h 127.0.0.1 -U postgres -d "$DB" -At -F ' ' -c "
      SELECT to_char(now(), 'HH24:MI:SS'),
        (SELECT count(*) FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id
          WHERE d.status = 'pending' AND d.first_attempt_at IS NULL AND d.next_attempt_at <= now()
            AND s.url NOT LIKE '%:$RECV_BASE/%' AND s.url NOT LIKE '%:$((RECV_BASE + 1))/%'),
        n_live_tup, n_dead_tup, n_tup_upd, n_tup_hot_upd, autovacuum_count
      FROM pg_stat_user_tables WHERE relname = 'webhook_deliveries'" | tr '\n' ' ' || true
    echo "$pct"
  done
}
# Written straight to its file (not through a pipe), so stopping it leaves no writer behind.
monitor >"$OUT/timeline.txt" 2>/dev/null & MONITOR=$!
python3 - "$HOST" "$TOKEN" "$RATE" "$DURATION" <<'PY'
import json, sys, time, urllib.request, uuid
host, token, rate, duration = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
per_tick = max(1, rate // 10)
session = str(uuid.uuid4())
start = time.monotonic()
n = 0
for tick in range(duration * 10):
    batch = [{"session_id": session, "category": "bench", "name": f"e{(n + i) % 10}",
              "data": {"i": n + i}, "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
             for i in range(per_tick)]
    n += per_tick
    req = urllib.request.Request(host + "/events/batch", data=json.dumps(batch).encode(),
                                 headers={"Authorization": "Bearer " + token,
                                          "Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()
    delay = start + (tick + 1) / 10 - time.monotonic()
    if delay > 0:
        time.sleep(delay)
print(f"sent {n} events in {time.monotonic() - start:.1f} s")
PY
sleep 5 # the last deliveries' first attempts
END=$(date +%s.%N)
kill $MONITOR 2>/dev/null || true
CPU1=$(cpu)
TICKS=$(getconf CLK_TCK)
psql -h 127.0.0.1 -U postgres -d "$DB" -At -F ' ' <<SQL | tee "$OUT/result.txt"
WITH k AS (
  SELECT CASE WHEN s.url LIKE '%:$RECV_BASE/%' THEN 'slow (2 s)'
              WHEN s.url LIKE '%:$((RECV_BASE + 1))/%' THEN 'failing (500)'
              ELSE 'healthy (8)' END AS kind,
         extract(epoch FROM d.first_attempt_at - d.created_at) * 1000 AS ms
  FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id)
SELECT kind, count(*) AS deliveries, count(ms) AS attempted,
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p50_ms,
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1) AS p99_ms,
       round(max(ms)::numeric, 1) AS max_ms
FROM k GROUP BY kind ORDER BY kind;
-- The healthy endpoints' p99 per 10 s of the run (by created_at): flat while the dispatcher
-- keeps up.
SELECT 'healthy p99 per 10 s (ms):', string_agg(round(p99::numeric)::text, ' ' ORDER BY w) FROM (
  SELECT w, percentile_cont(0.99) WITHIN GROUP (ORDER BY ms) AS p99 FROM (
    SELECT floor(extract(epoch FROM d.created_at - (SELECT min(created_at) FROM webhook_deliveries))
                 / 10) AS w,
           extract(epoch FROM d.first_attempt_at - d.created_at) * 1000 AS ms
    FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id
    WHERE s.url NOT LIKE '%:$RECV_BASE/%' AND s.url NOT LIKE '%:$((RECV_BASE + 1))/%') k
  GROUP BY w) p;
SELECT 'succeeded', count(*) FROM webhook_deliveries WHERE status = 'succeeded';
SELECT 'attempts', count(*) FROM webhook_attempts;
SQL
ATTEMPTS=$(psql -h 127.0.0.1 -U postgres -d "$DB" -Atc "SELECT count(*) FROM webhook_attempts")
SUCCEEDED=$(psql -h 127.0.0.1 -U postgres -d "$DB" -Atc "SELECT count(*) FROM webhook_deliveries WHERE status = 'succeeded'")
python3 - "$START" "$END" "$CPU0" "$CPU1" "$TICKS" "$ATTEMPTS" "$SUCCEEDED" <<'PY' | tee -a "$OUT/result.txt"
import sys
start, end, c0, c1, ticks, attempts, ok = map(float, sys.argv[1:])
secs = end - start
cpu = (c1 - c0) / ticks
print(f"wall {secs:.1f} s; deliveries succeeded {ok / secs:.0f}/s; attempts {attempts / secs:.0f}/s; "
      f"dispatcher CPU {cpu:.2f} s ({cpu / secs:.2f} of a core), {cpu / max(attempts, 1) * 1e6:.0f} us per attempt")
PY
echo "every 10 s during the run:" | tee -a "$OUT/result.txt"
column -t "$OUT/timeline.txt" | tee -a "$OUT/result.txt"
