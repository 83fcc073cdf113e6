#!/usr/bin/env bash
# `make run-cluster`: The Eye scaled out on this machine. Starts the three-node RabbitMQ
# cluster (scripts/rabbit_cluster.sh), migrates, then runs HAProxy on 127.0.0.1:8100 in front of
# two api replicas (8101, 8102; health-checked on /readyz), two workers, and the provider
# fetcher when one is configured (EYE_FETCH_URL or EYE_FETCH_PROVIDERS_FILE). The database is
# DATABASE_URL's (.env or the default), as for `make run`. Ctrl-C stops all, the RabbitMQ
# nodes too (EYE_CLUSTER_KEEP_RABBIT=1 leaves them running). Logs in target/cluster/run/.
# HAProxy's stats page: http://127.0.0.1:8109/stats. Ports: EYE_CLUSTER_PORT_BASE (8100).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=$TARGET_DIR/debug
WORK=target/cluster/run
mkdir -p "$WORK"
# shellcheck source=scripts/cluster_lib.sh
. scripts/cluster_lib.sh
[ -f .env ] && { set -a; . ./.env; set +a; }
AMQP_URL=$(scripts/rabbit_cluster.sh urls) # the cluster's, whatever .env says
FETCH=0
[ -n "${EYE_FETCH_URL:-}${EYE_FETCH_PROVIDERS_FILE:-}" ] && FETCH=1

stop_all() {
  trap - INT TERM EXIT
  echo "run-cluster: stopping" >&2
  shape_stop
  [ -n "${EYE_CLUSTER_KEEP_RABBIT:-}" ] || scripts/rabbit_cluster.sh stop
}
trap stop_all INT TERM EXIT

PACKAGES=(-p eye-api -p eye-worker -p eye-migrations)
[ "$FETCH" = 1 ] && PACKAGES+=(-p eye-fetcher)
cargo build -q "${PACKAGES[@]}" --bins
scripts/rabbit_cluster.sh start
"$BIN/eye-migrate" up
[ "$FETCH" = 1 ] || echo "run-cluster: eye-fetcher not started: no provider configured" \
  "(set EYE_FETCH_URL or EYE_FETCH_PROVIDERS_FILE)" >&2
shape_start
echo "run-cluster: ready on http://127.0.0.1:$CLUSTER_HTTP_PORT (2 api replicas, 2 workers," \
  "RabbitMQ eye1-3 on 5701-5703); logs in $WORK; Ctrl-C stops all" >&2
wait
