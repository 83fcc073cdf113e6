# The scale-out shape, for scripts/run_cluster.sh and scripts/chaos_cluster.sh (sourced, not
# run): HAProxy on CLUSTER_HTTP_PORT in front of two api replicas, two workers, on the
# three-node RabbitMQ cluster of scripts/rabbit_cluster.sh. The caller sets BIN, WORK (logs,
# haproxy.cfg) and the database settings; ports come from EYE_CLUSTER_PORT_BASE (8100):
#   BASE      HAProxy (the one address clients use)
#   BASE+1,2  the api replicas          BASE+11,12  their metrics
#   BASE+21,22  the workers' metrics    BASE+9      HAProxy's stats page (/stats)

PORT_BASE=${EYE_CLUSTER_PORT_BASE:-8100}
CLUSTER_HTTP_PORT=$PORT_BASE
API_PIDS=("" "") WORKER_PIDS=("" "") HAPROXY_PID="" FETCHER_PID=""

export AMQP_URL
AMQP_URL=$(scripts/rabbit_cluster.sh urls)
# The ingest queue (and the poison queue) replicated on the three nodes.
export EYE_AMQP_QUORUM_SIZE=3
# Each replica enforces its share of the per-application rate limit.
export EYE_API_REPLICAS=2

install_haproxy() {
  command -v haproxy >/dev/null && return
  echo "installing haproxy from Debian's packages" >&2
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo=sudo
  # A clean machine may have no package lists yet: update once, then try again.
    $sudo apt-get -o DPkg::Lock::Timeout=600 install -y haproxy >&2 ||
        { $sudo apt-get -o DPkg::Lock::Timeout=600 update >&2 &&
            $sudo apt-get -o DPkg::Lock::Timeout=600 install -y haproxy >&2; }
}

api_start() { # api_start I (0 or 1)
  EYE_HTTP_ADDR=127.0.0.1:$((PORT_BASE + 1 + $1)) EYE_METRICS_ADDR=127.0.0.1:$((PORT_BASE + 11 + $1)) \
    "$BIN/eye-api" serve >>"$WORK/api$1.log" 2>&1 &
  API_PIDS[$1]=$!
}

worker_start() { # worker_start I (0 or 1)
  EYE_WORKER_METRICS_ADDR=127.0.0.1:$((PORT_BASE + 21 + $1)) \
    "$BIN/eye-worker" >>"$WORK/worker$1.log" 2>&1 &
  WORKER_PIDS[$1]=$!
}

# HAProxy: a replica is checked on /readyz every 500 ms and out after 2 failures; a request
# whose connection fails (a dead replica) is sent to the other one: nothing was sent yet, so
# that is safe for a POST. Requests in flight on a replica that dies get 502/503 or a cut
# connection, as any client of one process would.
haproxy_start() {
  cat >"$WORK/haproxy.cfg" <<EOF
global
  maxconn 4096
defaults
  mode http
  timeout connect 1s
  timeout client 30s
  timeout server 15s
  retries 2
  option redispatch
  retry-on conn-failure
frontend eye
  bind 127.0.0.1:$CLUSTER_HTTP_PORT
  default_backend apis
frontend stats
  bind 127.0.0.1:$((PORT_BASE + 9))
  stats enable
  stats uri /stats
backend apis
  balance roundrobin
  option httpchk GET /readyz
  http-check expect status 200
  default-server inter 500ms fall 2 rise 2 check
  server api0 127.0.0.1:$((PORT_BASE + 1))
  server api1 127.0.0.1:$((PORT_BASE + 2))
EOF
  haproxy -q -f "$WORK/haproxy.cfg" >>"$WORK/haproxy.log" 2>&1 &
  HAPROXY_PID=$!
}

shape_start() { # the replicas, the workers, HAProxy, and the fetcher if FETCH=1
  install_haproxy
  api_start 0
  api_start 1
  worker_start 0
  worker_start 1
  haproxy_start
  if [ "${FETCH:-0}" = 1 ]; then
    EYE_FETCH_METRICS_ADDR=127.0.0.1:$((PORT_BASE + 31)) "$BIN/eye-fetcher" >>"$WORK/fetcher.log" 2>&1 &
    FETCHER_PID=$!
  fi
  for _ in $(seq 1 150); do
    curl -sf "http://127.0.0.1:$CLUSTER_HTTP_PORT/readyz" >/dev/null && return 0
    sleep 0.2
  done
  echo "the cluster shape did not become ready (logs in $WORK)" >&2
  return 1
}

shape_stop() {
  local pid
  for pid in $HAPROXY_PID $FETCHER_PID "${API_PIDS[@]}" "${WORKER_PIDS[@]}"; do
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  done
  wait 2>/dev/null || true
}
