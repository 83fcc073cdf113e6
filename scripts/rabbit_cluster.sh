#!/usr/bin/env bash
# A three-node RabbitMQ cluster on this machine, for the scale-out shape (`make run-cluster`,
# `make chaos-cluster`): three nodes of Debian's rabbitmq-server (installed here if missing),
# eye1@localhost .. eye3@localhost, on their own AMQP ports (5701-5703), their own
# distribution ports (25701-25703) and their own epmd (port 4371), with management off, data
# and logs under target/cluster/ and an Erlang cookie shared by these three only. A system
# RabbitMQ on 5672 and its epmd on 4369 are never touched.
#
#   scripts/rabbit_cluster.sh start          start the nodes (forming the cluster on first use)
#   scripts/rabbit_cluster.sh stop           stop the three nodes and their epmd
#   scripts/rabbit_cluster.sh status         running nodes, as the cluster sees them
#   scripts/rabbit_cluster.sh urls           the AMQP_URL value for the services (3 URLs)
#   scripts/rabbit_cluster.sh stop-node N    stop node N (1-3) cleanly
#   scripts/rabbit_cluster.sh kill N         kill -9 node N
#   scripts/rabbit_cluster.sh start-node N   start node N again (it rejoins and catches up)
#   scripts/rabbit_cluster.sh queues         queues with their members and leader
#   scripts/rabbit_cluster.sh reset          stop, then delete target/cluster/ (fresh cluster)
#   scripts/rabbit_cluster.sh ctl N ARGS...  rabbitmqctl ARGS against node N
#
# Settings: EYE_CLUSTER_DIR (state, default target/cluster), EYE_CLUSTER_AMQP_BASE (5700: node
# N listens on BASE+N), EYE_CLUSTER_DIST_BASE (25700), EYE_CLUSTER_EPMD_PORT (4371).
set -euo pipefail
cd "$(dirname "$0")/.."

STATE=${EYE_CLUSTER_DIR:-target/cluster}
AMQP_BASE=${EYE_CLUSTER_AMQP_BASE:-5700}
DIST_BASE=${EYE_CLUSTER_DIST_BASE:-25700}
export ERL_EPMD_PORT=${EYE_CLUSTER_EPMD_PORT:-4371}
export ERL_EPMD_ADDRESS=127.0.0.1
NODES=(1 2 3)
RMQ=/usr/lib/rabbitmq/bin

mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
# The CLI and the nodes read the cookie from $HOME: ours, so only these three share it.
export HOME=$STATE
# Nothing from the system's /etc/rabbitmq/rabbitmq-env.conf (its node name, its flags).
: > "$STATE/rabbitmq-env.conf"
export RABBITMQ_CONF_ENV_FILE=$STATE/rabbitmq-env.conf
if [ ! -s "$STATE/.erlang.cookie" ]; then
    (umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$STATE/.erlang.cookie")
fi
chmod 400 "$STATE/.erlang.cookie"

node_name() { echo "eye$1@localhost"; }
amqp_port() { echo $((AMQP_BASE + $1)); }

install() {
    [ -x "$RMQ/rabbitmq-server" ] && return
    echo "rabbit_cluster: installing rabbitmq-server from Debian's packages" >&2
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    # A clean machine may have no package lists yet: update once, then try again.
    $sudo apt-get -o DPkg::Lock::Timeout=600 install -y rabbitmq-server >&2 ||
        { $sudo apt-get -o DPkg::Lock::Timeout=600 update >&2 &&
            $sudo apt-get -o DPkg::Lock::Timeout=600 install -y rabbitmq-server >&2; }
}

# Writes node N's files and exports its environment: everything of its own, nothing read
# from /etc/rabbitmq. Called in a subshell.
node_env() {
    local n=$1 dir="$STATE/eye$1"
    mkdir -p "$dir/data" "$dir/log"
    cat > "$dir/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$(amqp_port "$n")
loopback_users.guest = true
log.file.level = info
log.console = false
vm_memory_high_watermark.relative = 0.2
disk_free_limit.absolute = 200MB
cluster_partition_handling = pause_minority
EOF
    echo "[]." > "$dir/enabled_plugins"
    unset ERL_FLAGS
    export RABBITMQ_NODENAME RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT \
        RABBITMQ_DIST_PORT=$((DIST_BASE + n)) RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
        RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$dir/enabled_plugins" \
        RABBITMQ_MNESIA_BASE="$dir/data" RABBITMQ_LOG_BASE="$dir/log" \
        RABBITMQ_PID_FILE="$dir/pid" \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    RABBITMQ_NODENAME=$(node_name "$n")
    RABBITMQ_NODE_PORT=$(amqp_port "$n")
}

ctl() { # ctl N ARGS...: rabbitmqctl against node N
    local n=$1
    shift
    "$RMQ/rabbitmqctl" -q -n "$(node_name "$n")" "$@"
}

running() { ctl "$1" status >/dev/null 2>&1; }

start_node() {
    local n=$1 dir="$STATE/eye$1"
    if running "$n"; then
        return
    fi
    (
        node_env "$n"
        cd "$dir"
        setsid "$RMQ/rabbitmq-server" > "$dir/log/startup.log" 2>&1 < /dev/null &
    )
}

wait_node() {
    local n=$1
    for _ in $(seq 1 120); do
        if ctl "$n" await_startup --timeout 1 >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.5
    done
    echo "rabbit_cluster: node $(node_name "$n") did not start; see $STATE/eye$n/log/" >&2
    return 1
}

members() { # cluster members node N knows (running or not)
    ctl "$1" eval 'io:format("~s", [string:join([atom_to_list(N) || N <- rabbit_nodes:all()], " ")]).' 2>/dev/null | sed 's/ok$//'
}

start() {
    install
    for n in "${NODES[@]}"; do start_node "$n"; done
    for n in "${NODES[@]}"; do wait_node "$n"; done
    # First use: every node came up alone; 2 and 3 join 1 (from then on they restart as one).
    for n in 2 3; do
        if ! members "$n" | grep -q "$(node_name 1)"; then
            echo "rabbit_cluster: $(node_name "$n") joins $(node_name 1)" >&2
            ctl "$n" stop_app
            ctl "$n" reset
            ctl "$n" join_cluster "$(node_name 1)"
            ctl "$n" start_app
            wait_node "$n"
        fi
    done
    status
}

stop_node() {
    local n=$1
    if running "$n"; then
        ctl "$n" stop >/dev/null 2>&1 || true
    fi
    local pid
    pid=$(cat "$STATE/eye$n/pid" 2>/dev/null || true)
    if [ -n "$pid" ]; then
        for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
    fi
}

kill_node() {
    local pid
    pid=$(cat "$STATE/eye$1/pid" 2>/dev/null || true)
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
}

stop() {
    for n in "${NODES[@]}"; do stop_node "$n" & done
    wait
    # Our own epmd only (its port is ours); the system one on 4369 is another process.
    epmd -port "$ERL_EPMD_PORT" -kill >/dev/null 2>&1 || true
}

status() {
    local up=()
    for n in "${NODES[@]}"; do
        if running "$n"; then up+=("$(node_name "$n"):$(amqp_port "$n")"); fi
    done
    echo "running: ${up[*]:-none}"
    for n in "${NODES[@]}"; do
        if running "$n"; then
            echo "cluster (seen from $(node_name "$n")): $(members "$n")"
            return 0
        fi
    done
    return 1
}

urls() {
    local out=()
    for n in "${NODES[@]}"; do out+=("amqp://guest:guest@127.0.0.1:$(amqp_port "$n")/%2f"); done
    (IFS=,; echo "${out[*]}")
}

queues() {
    for n in "${NODES[@]}"; do
        if running "$n"; then
            ctl "$n" list_queues name type leader members messages
            return 0
        fi
    done
    echo "rabbit_cluster: no node is running" >&2
    return 1
}

node_arg() {
    case "${1:-}" in 1|2|3) echo "$1" ;; *) echo "usage: $0 $2 1|2|3" >&2; exit 2 ;; esac
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    urls) urls ;;
    queues) queues ;;
    stop-node) stop_node "$(node_arg "${2:-}" stop-node)" ;;
    kill) kill_node "$(node_arg "${2:-}" kill)" ;;
    start-node) n=$(node_arg "${2:-}" start-node); start_node "$n"; wait_node "$n" ;;
    reset) stop; rm -rf "$STATE" ;;
    ctl) n=$(node_arg "${2:-}" ctl); shift 2; ctl "$n" "$@" ;;
    *) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
