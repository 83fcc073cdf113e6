#!/usr/bin/env bash
# `make chaos-cluster`: the promise on the scale-out shape. Starts the three-node RabbitMQ
# cluster (scripts/rabbit_cluster.sh, if not running) and, on ports of its own, HAProxy in front
# of two api replicas and two workers (scripts/cluster_lib.sh), with a database of its own on
# the PostgreSQL of DATABASE_URL and a queue namespace of its own. eye-loadtest drives HAProxy
# (each event retried with its own id while the answer is 503 or none) and a probe posts one
# event every 100 ms to time the blips. Meanwhile, in turn:
#   kill -9 api replica 0 (started again 5 s later), kill -9 worker 0 (again 2 s later),
#   stop RabbitMQ node 2 cleanly, start it again (it catches up), kill -9 node 1, start it,
#   and, unless CHAOS_NO_QUORUM=0, stop nodes 2 and 3 together for CHAOS_NO_QUORUM_SECS (15):
#   no quorum, so every event is refused with 503 until they are back, and nothing is lost.
# Then the ledger by id (non-zero exit on anything lost or doubled), the probe's own ledger,
# and the longest run of refused probes around each fault:
#   accepted=N stored=N refused=N lost=0 duplicated=0 undecodable=0
# The faults follow each other (a node's start takes 10-60 s on a loaded 2-core machine); the
# no-quorum phase runs only if 75 s of load are left for it. CHAOS_DURATION (240 s),
# CHAOS_NO_QUORUM_SECS (15), CHAOS_RATE (100 req/s),
# CHAOS_USERS (20), CHAOS_KEEP=1 keeps the logs and the database.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${CHAOS_DURATION:-240}
RATE=${CHAOS_RATE:-100}
USERS=${CHAOS_USERS:-20}
NO_QUORUM=${CHAOS_NO_QUORUM:-1}
NO_QUORUM_SECS=${CHAOS_NO_QUORUM_SECS:-15}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=$TARGET_DIR/debug
export EYE_CLUSTER_PORT_BASE=${EYE_CLUSTER_PORT_BASE:-8200}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/eye-chaos-cluster.XXXXXX")
ID=chaoscluster$$
DB_BASE=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/eye}
export DATABASE_URL=${DB_BASE%/*}/eye_$ID EYE_AMQP_NAMESPACE=$ID EYE_RULES_FILE=rules.toml
export EYE_LOG=${EYE_LOG:-warn}
# shellcheck source=scripts/cluster_lib.sh
. scripts/cluster_lib.sh
HOST=http://127.0.0.1:$CLUSTER_HTTP_PORT

log() { printf '%s chaos-cluster: %s\n' "$(date +%T)" "$*" >&2; }
mark() { echo "$(date +%s%3N) $*" >>"$WORK/phases"; log "$*"; }

STARTED_RABBIT="" LOAD_PID="" PROBE_PID=""
cleanup() {
  local rc=$?
  for pid in $LOAD_PID $PROBE_PID; do kill "$pid" 2>/dev/null || true; done
  shape_stop
  for n in 1 2 3; do scripts/rabbit_cluster.sh start-node "$n" >/dev/null 2>&1 || true; done
  for q in "$ID.events.ingest" "$ID.events.poison"; do
    scripts/rabbit_cluster.sh ctl 1 delete_queue "$q" >/dev/null 2>&1 || true
  done
  [ -n "$STARTED_RABBIT" ] && scripts/rabbit_cluster.sh stop
  if [ "$rc" = 0 ] && [ -z "${CHAOS_KEEP:-}" ]; then
    psql "${DB_BASE%/*}/postgres" -qc "drop database if exists eye_$ID" >/dev/null 2>&1 || true
    rm -rf "$WORK"
  else
    log "logs kept in $WORK (database eye_$ID)"
  fi
}
trap cleanup EXIT

log "building the debug binaries"
cargo build -q -p eye-api -p eye-worker -p eye-migrations -p eye-loadtest --bins
scripts/rabbit_cluster.sh status >/dev/null 2>&1 || STARTED_RABBIT=1
scripts/rabbit_cluster.sh start >&2
"$BIN/eye-migrate" up >"$WORK/migrate.log" 2>&1
shape_start
TOKEN=$("$BIN/eye-api" token --app chaos | tail -1)
PROBE_TOKEN=$("$BIN/eye-api" token --app probe | tail -1)
log "HAProxy on $CLUSTER_HTTP_PORT, api replicas, workers, RabbitMQ $(scripts/rabbit_cluster.sh urls | tr ',' ' ' | sed 's#amqp://guest:guest@##g'); work dir $WORK"

# The probe: one event every 100 ms, never retried; "ms status id" per line.
probe() {
  local body status
  while :; do
    body=$(curl -s -m 5 -o - -w ' %{http_code}' -X POST "$HOST/events/" \
      -H "Authorization: Bearer $PROBE_TOKEN" -H 'Content-Type: application/json' \
      -d '{"session_id":"e2085be5-9137-4e4e-80b5-f1ffddc25423","category":"probe","name":"tick","data":{},"timestamp":"2021-01-01 09:15:27.243860"}' || true)
    status=${body##* }
    echo "$(date +%s%3N) ${status:-000} $(sed -nE 's/.*"id":"([0-9a-f-]{36})".*/\1/p' <<<"$body")" >>"$WORK/probe"
    sleep 0.1
  done
}

log "load: $RATE req/s for $DURATION s through HAProxy"
EYE_TOKEN=$TOKEN "$BIN/eye-loadtest" --host "$HOST" --rate "$RATE" --duration "$DURATION" \
  --users "$USERS" --invalid-percent 0 --hostile-percent 0 --retry-secs 120 \
  --drain-timeout 300 --report-dir "$WORK/loadtest" >"$WORK/loadtest.out" 2>&1 &
LOAD_PID=$!
probe &
PROBE_PID=$!

left() { echo $((DURATION - (SECONDS - START))); } # seconds of load left
START=$SECONDS
sleep 10
mark "fault: kill -9 api replica 0"
kill -9 "${API_PIDS[0]}"
sleep 5
api_start 0
mark "api replica 0 started again"
sleep 8
mark "fault: kill -9 worker 0"
kill -9 "${WORKER_PIDS[0]}"
sleep 2
worker_start 0
mark "worker 0 started again"
sleep 8
mark "fault: stop RabbitMQ node 2"
scripts/rabbit_cluster.sh stop-node 2
sleep 15
mark "RabbitMQ node 2 starting again"
scripts/rabbit_cluster.sh start-node 2
mark "RabbitMQ node 2 back"
sleep 10
mark "fault: kill -9 RabbitMQ node 1"
scripts/rabbit_cluster.sh kill 1
sleep 15
mark "RabbitMQ node 1 starting again"
scripts/rabbit_cluster.sh start-node 1
mark "RabbitMQ node 1 back"
# Two nodes down only with time left to come back under load (their starts take 10-60 s).
if [ "$NO_QUORUM" = 1 ] && [ "$(left)" -ge $((NO_QUORUM_SECS + 60)) ]; then
  sleep 10
  mark "fault: stop RabbitMQ nodes 2 and 3 (no quorum)"
  scripts/rabbit_cluster.sh stop-node 2 &
  other=$!
  scripts/rabbit_cluster.sh stop-node 3
  wait "$other" || true
  mark "no quorum from here"
  sleep "$NO_QUORUM_SECS"
  mark "RabbitMQ nodes 2 and 3 starting again"
  scripts/rabbit_cluster.sh start-node 2 &
  other=$!
  scripts/rabbit_cluster.sh start-node 3
  wait "$other" || true
  mark "RabbitMQ nodes 2 and 3 back"
elif [ "$NO_QUORUM" = 1 ]; then
  log "no time left for the no-quorum phase ($(left) s of load left): raise CHAOS_DURATION"
fi
[ "$(left)" -gt 0 ] || log "the faults outlasted the load: raise CHAOS_DURATION so recovery runs under load"
scripts/rabbit_cluster.sh queues >"$WORK/queues" 2>&1 || true
rc=0
wait "$LOAD_PID" || rc=$?
LOAD_PID=""
kill "$PROBE_PID" 2>/dev/null || true
wait "$PROBE_PID" 2>/dev/null || true
PROBE_PID=""
mark "load over"

grep -E '^(POST |note:|not accepted:|load done:)' "$WORK/loadtest.out" >&2 || true
echo "ingest queue after the faults: $(grep "$ID.events.ingest" "$WORK/queues" || echo '?')"
# The probe's own ledger: every 202 it got, stored once (the workers drained with the load).
# A probe answered 503 ("may have been stored") or cut off may be stored too: not retried, it
# is neither lost nor doubled.
psql "$DATABASE_URL" -Atc "select id from events where app_id = 'probe'" >"$WORK/probe.stored"
python3 - "$WORK/probe" "$WORK/probe.stored" <<'EOF' || rc=1
import sys
probes = [l.split(" ") for l in open(sys.argv[1]).read().splitlines()]
accepted = {p[2] for p in probes if len(p) > 2 and p[1] == "202" and p[2]}
rows = open(sys.argv[2]).read().split()
lost = accepted - set(rows)
doubled = len(rows) - len(set(rows))
print(f"probe: sent={len(probes)} accepted={len(accepted)} stored={len(set(rows))} "
      f"(of which answered 503 or cut: {len(set(rows) - accepted)}) lost={len(lost)} duplicated={doubled}")
sys.exit(1 if lost or doubled else 0)
EOF
# The longest run of refused probes from each fault to the next phase.
python3 - "$WORK/phases" "$WORK/probe" <<'EOF'
import sys
phases = [l.split(" ", 1) for l in open(sys.argv[1]).read().splitlines()]
probes = [l.split(" ") for l in open(sys.argv[2]).read().splitlines()]
for i, (t0, name) in enumerate(phases):
    if not name.startswith("fault"):
        continue
    t1 = int(phases[i + 1][0]) + 10000 if i + 1 < len(phases) else 1 << 62
    window = [(int(p[0]), p[1]) for p in probes if int(t0) <= int(p[0]) < t1]
    longest, start, codes = 0, None, {}
    for t, code in window:
        if code != "202":
            codes[code] = codes.get(code, 0) + 1
            start = t if start is None else start
            longest = max(longest, t - start)
        else:
            start = None
    print(f"blip: {name[7:]}: longest refused run {longest / 1000:.1f} s, "
          f"refused probes {sum(codes.values())}/{len(window)} {codes}")
EOF
ledger=$(grep '^accepted=' "$WORK/loadtest.out" | tail -1)
echo "${ledger:-no ledger: the load test failed (see $WORK/loadtest.out)}"
exit "$rc"
