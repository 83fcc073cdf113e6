#!/usr/bin/env bash
# `make chaos`: the promise under faults. Starts its own PostgreSQL and RabbitMQ (never the
# shared ones: a temporary data directory, free ports, node eye-chaos-<pid>), migrates, runs
# the api and two workers (debug build), and drives them with eye-loadtest: valid events plus
# CHAOS_HOSTILE_PERCENT hostile ones, each retried with its own id while the answer is 503 or
# none. Every CHAOS_FAULT_EVERY seconds it breaks something, in turn: kill -9 a worker (started
# again 2 s later), restart RabbitMQ, restart PostgreSQL (an immediate stop: a crash), and a
# database blip followed by a SIGTERM to a worker (a graceful restart while a batch may still
# be retrying its commit). Once the load is over and the queue drained, the ledger by id, read
# from the database:
#   accepted=N stored=N refused=N lost=0 duplicated=0 undecodable=0
# and the exit status is non-zero unless lost, duplicated and undecodable are all 0.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${CHAOS_DURATION:-300}
RATE=${CHAOS_RATE:-100}
USERS=${CHAOS_USERS:-20}
HOSTILE=${CHAOS_HOSTILE_PERCENT:-1}
FAULT_EVERY=${CHAOS_FAULT_EVERY:-20}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=$TARGET_DIR/debug
PGBIN=${CHAOS_PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
NODE=eye-chaos-$$@localhost

log() { printf '%s chaos: %s\n' "$(date +%T)" "$*" >&2; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
[ -x "$PGBIN/initdb" ] || { log "no PostgreSQL server binaries (initdb) found: set CHAOS_PGBIN"; exit 1; }

# Six free ports in a row from a random base: database, AMQP, Erlang distribution, api, and
# the two workers' metrics.
for _ in $(seq 1 50); do
  base=$((20000 + RANDOM % 20000))
  busy=0
  for p in $(seq "$base" $((base + 5))); do port_open "$p" && busy=1; done
  [ "$busy" = 0 ] && break
done
PG_PORT=$base AMQP_PORT=$((base + 1)) DIST_PORT=$((base + 2)) API_PORT=$((base + 3))
METRICS_PORTS=($((base + 4)) $((base + 5)))

WORK=$(mktemp -d "${TMPDIR:-/tmp}/eye-chaos.XXXXXX")
chmod 755 "$WORK" # PostgreSQL and RabbitMQ run as their own users when this runs as root
mkdir -p "$WORK/pg" "$WORK/rabbit"

# As root (CI, this VM) the servers must run as their own users; otherwise as the caller.
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$WORK/pg"
  chown rabbitmq: "$WORK/rabbit"
  as_postgres() { runuser -u postgres -- "$@"; }
  RABBITMQ_SERVER=rabbitmq-server RABBITMQCTL=rabbitmqctl # the wrappers switch to rabbitmq
else
  as_postgres() { "$@"; }
  RABBITMQ_SERVER=$(command -v /usr/lib/rabbitmq/bin/rabbitmq-server || command -v rabbitmq-server)
  RABBITMQCTL=$(command -v /usr/lib/rabbitmq/bin/rabbitmqctl || command -v rabbitmqctl)
fi

# --- the private PostgreSQL ---------------------------------------------------------------
pg_start() {
  as_postgres "$PGBIN/pg_ctl" -D "$WORK/pg/data" -l "$WORK/pg/server.log" -w -s \
    -o "-p $PG_PORT -k $WORK/pg -c listen_addresses=127.0.0.1 -c fsync=off" start
}
pg_stop() { as_postgres "$PGBIN/pg_ctl" -D "$WORK/pg/data" -m "$1" -w -s stop; }

# --- the private RabbitMQ node: its own name, ports, files and (no) plugins ---------------
export RABBITMQ_NODENAME=$NODE RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT=$AMQP_PORT \
  RABBITMQ_DIST_PORT=$DIST_PORT RABBITMQ_MNESIA_BASE=$WORK/rabbit/mnesia \
  RABBITMQ_LOG_BASE=$WORK/rabbit/log RABBITMQ_PID_FILE=$WORK/rabbit/pid \
  RABBITMQ_CONFIG_FILE=$WORK/rabbit/rabbitmq.conf \
  RABBITMQ_ADVANCED_CONFIG_FILE=$WORK/rabbit/advanced.config \
  RABBITMQ_ENABLED_PLUGINS_FILE=$WORK/rabbit/enabled_plugins \
  RABBITMQ_CONF_ENV_FILE=$WORK/rabbit/rabbitmq-env.conf \
  RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
echo "listeners.tcp.local = 127.0.0.1:$AMQP_PORT" >"$WORK/rabbit/rabbitmq.conf"
echo "[]." >"$WORK/rabbit/enabled_plugins"
: >"$WORK/rabbit/rabbitmq-env.conf"
[ "$(id -u)" = 0 ] && chown -R rabbitmq: "$WORK/rabbit"

rabbit_start() {
  "$RABBITMQ_SERVER" -detached
  # The node registers with epmd a moment after -detached returns.
  for _ in $(seq 1 60); do
    "$RABBITMQCTL" -n "$NODE" -q await_startup >/dev/null 2>&1 && return 0
    sleep 1
  done
  log "RabbitMQ node $NODE did not start (logs: $WORK/rabbit/log)"
  return 1
}
# Given the pid file, `stop` returns once the node's process is gone.
rabbit_stop() { "$RABBITMQCTL" -n "$NODE" -q stop "$WORK/rabbit/pid" >/dev/null; }

# --- the system under test ------------------------------------------------------------------
export DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/eye_chaos
export AMQP_URL=amqp://guest:guest@127.0.0.1:$AMQP_PORT/%2f
export EYE_AMQP_NAMESPACE=chaos EYE_HTTP_ADDR=127.0.0.1:$API_PORT EYE_RULES_FILE=rules.toml
API_PID="" LOAD_PID=""
WORKERS=("" "")
api_start() { "$BIN/eye-api" serve >>"$WORK/api.log" 2>&1 & API_PID=$!; }
worker_start() {
  EYE_WORKER_METRICS_ADDR=127.0.0.1:${METRICS_PORTS[$1]} \
    "$BIN/eye-worker" >>"$WORK/worker$1.log" 2>&1 &
  WORKERS[$1]=$!
}

cleanup() {
  local rc=$?
  for pid in $LOAD_PID $API_PID "${WORKERS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rabbit_stop 2>/dev/null || true
  pg_stop fast 2>/dev/null || true
  if [ "$rc" = 0 ] && [ -z "${CHAOS_KEEP:-}" ]; then
    rm -rf "$WORK"
  else
    log "logs kept in $WORK"
  fi
}
trap cleanup EXIT

log "building the debug binaries"
cargo build -q --workspace --bins
log "PostgreSQL on $PG_PORT, RabbitMQ $NODE on $AMQP_PORT, api on $API_PORT, work dir $WORK"
as_postgres "$PGBIN/initdb" -D "$WORK/pg/data" -A trust -U postgres -E UTF8 --no-sync >/dev/null
pg_start
rabbit_start
"$BIN/eye-migrate" up >"$WORK/migrate.log" 2>&1
api_start
worker_start 0
worker_start 1
for _ in $(seq 1 100); do
  curl -sf "http://127.0.0.1:$API_PORT/readyz" >/dev/null && break
  sleep 0.2
done
TOKEN=$("$BIN/eye-api" token --app chaos | tail -1)

# --- faults, in turn, while the load runs --------------------------------------------------
KILLS=0 RABBIT_RESTARTS=0 PG_RESTARTS=0 TERMS=0 UNEXPECTED=0
kill_worker() {
  local i=$((KILLS % 2))
  kill -9 "${WORKERS[$i]}"
  wait "${WORKERS[$i]}" 2>/dev/null || true
  log "killed worker $i (kill -9); starting it again in 2 s"
  sleep 2
  worker_start "$i"
  KILLS=$((KILLS + 1))
}
restart_rabbit() {
  log "restarting RabbitMQ"
  local t0=$SECONDS
  rabbit_stop
  sleep 2
  rabbit_start
  log "RabbitMQ back after $((SECONDS - t0)) s"
  RABBIT_RESTARTS=$((RABBIT_RESTARTS + 1))
}
restart_pg() {
  log "restarting PostgreSQL (immediate stop)"
  pg_stop immediate
  sleep 2
  pg_start
  PG_RESTARTS=$((PG_RESTARTS + 1))
}
blip_then_term() {
  local i=$((TERMS % 2))
  log "PostgreSQL down for 2 s (immediate stop), then SIGTERM to worker $i"
  pg_stop immediate
  sleep 2
  pg_start
  kill -TERM "${WORKERS[$i]}"
  wait "${WORKERS[$i]}" 2>/dev/null || true
  worker_start "$i"
  TERMS=$((TERMS + 1))
}
# A supervisor's job: a process that died without being killed is reported and started again.
supervise() {
  local status
  for i in 0 1; do
    if ! kill -0 "${WORKERS[$i]}" 2>/dev/null; then
      status=0
      wait "${WORKERS[$i]}" || status=$?
      log "worker $i exited by itself (status $status; see $WORK/worker$i.log): started again"
      UNEXPECTED=$((UNEXPECTED + 1))
      worker_start "$i"
    fi
  done
  if ! kill -0 "$API_PID" 2>/dev/null; then
    status=0
    wait "$API_PID" || status=$?
    log "api exited by itself (status $status; see $WORK/api.log): started again"
    UNEXPECTED=$((UNEXPECTED + 1))
    api_start
  fi
}

log "load: $RATE req/s for $DURATION s, $HOSTILE % hostile; a fault every $FAULT_EVERY s"
EYE_TOKEN=$TOKEN "$BIN/eye-loadtest" --host "http://127.0.0.1:$API_PORT" --rate "$RATE" \
  --duration "$DURATION" --users "$USERS" --invalid-percent 0 --hostile-percent "$HOSTILE" \
  --retry-secs 120 --drain-timeout 300 --report-dir "$WORK/loadtest" \
  >"$WORK/loadtest.out" 2>&1 &
LOAD_PID=$!
FAULTS=(kill_worker restart_rabbit restart_pg blip_then_term)
start=$SECONDS n=0 next=$FAULT_EVERY
while kill -0 "$LOAD_PID" 2>/dev/null; do
  # No fault in the last 10 s of the load, so the last one is recovered from under load.
  if [ $((SECONDS - start)) -ge "$next" ] && [ $((SECONDS - start)) -lt $((DURATION - 10)) ]; then
    "${FAULTS[$((n % ${#FAULTS[@]}))]}"
    n=$((n + 1))
    # A slow restart does not squeeze the next fault into its heels.
    next=$((next + FAULT_EVERY))
    [ "$next" -lt $((SECONDS - start + FAULT_EVERY / 2)) ] && next=$((SECONDS - start + FAULT_EVERY / 2))
  fi
  supervise
  sleep 1
done
rc=0
wait "$LOAD_PID" || rc=$?
LOAD_PID=""

grep -E '^(POST |note:|not accepted:|load done:)' "$WORK/loadtest.out" >&2 || true
echo "faults: worker kill -9=$KILLS, RabbitMQ restarts=$RABBIT_RESTARTS, PostgreSQL restarts=$PG_RESTARTS," \
  "database blip then worker SIGTERM=$TERMS; processes that exited by themselves=$UNEXPECTED"
ledger=$(grep '^accepted=' "$WORK/loadtest.out" | tail -1)
echo "${ledger:-no ledger: the load test failed (see $WORK/loadtest.out)}"
exit "$rc"
