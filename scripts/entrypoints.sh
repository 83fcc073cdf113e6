#!/usr/bin/env bash
# Every `make` target the README names, run as a user types it: the long-running ones until
# they answer (then stopped with SIGTERM), the others to completion with their output checked,
# and the README's first flow (`make -s generatetoken`, then its curl at once) to its 202.
# Each run uses its own database, RabbitMQ vhost and ports, so it never meets another run or
# the services' own data. A README target this script does not know fails it: add it here.
# Run by .ci/run. ENTRYPOINTS_SKIP="lint" skips targets by name (said in the output).
set -euo pipefail
cd "$(dirname "$0")/.."

ID=entry$$
WORK=$(mktemp -d "${TMPDIR:-/tmp}/eye-entrypoints.XXXXXX")
FAILED=()
SKIP=" ${ENTRYPOINTS_SKIP:-} "

ok() { printf 'ok    %s (at %d s)\n' "$*" "$SECONDS"; }
fail() {
  printf 'FAIL  %s (at %d s)\n' "$*" "$SECONDS"
  FAILED+=("$1")
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    port_open "$p" || { echo "$p"; return; }
  done
}
wait_until() { # seconds, command...: true once the command succeeds
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}

# --- the targets the README names (as the before-stop hook reads them) --------------------
TARGETS=$(python3 -c '
import re
text = open("README.md").read()
code = re.findall(r"```.*?```", text, re.S) + re.findall(r"`[^`\n]+`", text)
names = set()
for c in code:
    names.update(m.group(2) for m in re.finditer(r"(^|[\s`(;&|$])make(?:\s+-s)?\s+([a-z][a-z0-9_-]*)", c, re.M))
print(" ".join(sorted(names)))
')
echo "make targets named by README.md: $TARGETS"
declare -A EXEMPT=(
  [test]="the command that runs this check's neighbours: .ci/run runs it first"
  [fuzz]=".ci/run runs it as its own step"
  [browser-test]=".ci/run runs it as its own step (headless Chromium, private database)"
  [chaos]=".ci/run runs it as its own step (CHAOS_DURATION=120)"
  [bench-webhooks]="a release build, receivers and a minute of load: a measurement, not an entry point"
  [bench-batch]="a release build and a minute of load: a measurement, not an entry point"
  [bench-import]="a release build and a 500,000-row import: a measurement, not an entry point"
  [bench]="a release build (about 14 min on the 2-core VM) and minutes of load: a measurement, not an entry point"
  [run-cluster]="starts a three-node RabbitMQ cluster and HAProxy (minutes on the 2-core VM): make chaos-cluster runs the same shape (scripts/cluster_lib.sh) and checks it"
  [chaos-cluster]=".ci/run runs it as its own step (CHAOS_DURATION=150, without the no-quorum phase)"
  [test-clean]="drops every eye_test_* database and test-* queue, those of test runs in progress on a shared machine too"
)
CHECKED=" help migrate generatetoken openapi run loadtest runserver runworker lint "
for t in $TARGETS; do
  make -n "$t" >/dev/null 2>&1 || fail "$t" "README names 'make $t', and the Makefile has no such target"
  if [ -n "${EXEMPT[$t]:-}" ]; then
    echo "skip  make $t: ${EXEMPT[$t]}"
  elif [[ "$SKIP" == *" $t "* ]]; then
    echo "skip  make $t: ENTRYPOINTS_SKIP"
  elif [[ "$CHECKED" != *" $t "* ]]; then
    fail "$t" "README names 'make $t', and scripts/entrypoints.sh does not know how to check it"
  fi
done
wanted() { [[ " $TARGETS " == *" $1 "* && "$SKIP" != *" $1 "* ]]; }

# --- isolation: own database, own vhost, own ports -----------------------------------------
DB_BASE=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/eye}
AMQP_BASE=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672/%2f}
AMQP_USER=$(sed -E 's#^amqps?://([^:@/]*).*#\1#' <<<"$AMQP_BASE")
export DATABASE_URL=${DB_BASE%/*}/eye_$ID
export AMQP_URL=${AMQP_BASE%/*}/$ID
export EYE_AMQP_NAMESPACE=$ID EYE_LOG=warn
API_PORT=$(free_port)
export EYE_HTTP_ADDR=127.0.0.1:$API_PORT EYE_WORKER_METRICS_ADDR=127.0.0.1:$(free_port)
HOST=http://127.0.0.1:$API_PORT
rabbitmqctl -q add_vhost "$ID" >/dev/null
rabbitmqctl -q set_permissions -p "$ID" "$AMQP_USER" '.*' '.*' '.*' >/dev/null

GROUPS_RUNNING=()
# Starts a command in its own session, so it and everything it starts stop together.
start() { # log name, command...
  local name=$1
  shift
  setsid "$@" >"$WORK/$name.log" 2>&1 &
  GROUPS_RUNNING+=($!)
  LAST=$!
}
# SIGTERM to the whole group, as Ctrl-C would; it must be gone within 40 s.
stop() {
  kill -TERM -- "-$1" 2>/dev/null || return 0
  if ! wait_until 40 bash -c "! kill -0 -- -$1"; then
    kill -KILL -- "-$1" 2>/dev/null || true
    return 1
  fi
  wait "$1" 2>/dev/null || true
}
cleanup() {
  for pgid in "${GROUPS_RUNNING[@]}"; do kill -KILL -- "-$pgid" 2>/dev/null || true; done
  rabbitmqctl -q delete_vhost "$ID" >/dev/null 2>&1 || true
  psql "${DB_BASE%/*}/postgres" -qc "DROP DATABASE IF EXISTS \"eye_$ID\" WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# Like wait_until, but gives up at once when the started command (its group) has exited.
wait_started() { # group, seconds, command...
  local group=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@" >/dev/null 2>&1; do
    kill -0 -- "-$group" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
}
ready() { curl -sf "$HOST/readyz"; }
metrics() { curl -sf "http://$1/metrics"; }
stored() { [ "$(psql "$DATABASE_URL" -Atc "SELECT count(*) FROM events WHERE id = '$1'")" = 1 ]; }
post_event() { # token -> the id of the event answered 202, or nothing
  curl -s -X POST "$HOST/events" -H "Authorization: Bearer $1" -H 'Content-Type: application/json' \
    -d '{"session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423", "category": "page interaction",
         "name": "pageview", "data": {"host": "h", "path": "/"}, "timestamp": "2021-01-01 09:15:27"}' \
    -w '\n%{http_code}' | python3 -c 'import json,sys; body, code = sys.stdin.read().rsplit("\n", 1); print(json.loads(body)["id"] if code == "202" else "")'
}

# --- short targets ---------------------------------------------------------------------------
if wanted migrate; then
  if make -s migrate >"$WORK/migrate.log" 2>&1 &&
    psql "$DATABASE_URL" -Atc 'SELECT 1 FROM events LIMIT 1' >/dev/null 2>&1; then
    ok "make migrate: database eye_$ID created and migrated"
  else
    fail migrate "make migrate: $(tail -3 "$WORK/migrate.log")"
  fi
fi
if wanted generatetoken; then
  token=$(make -s generatetoken app=entrypoints 2>"$WORK/generatetoken.log" | tail -1)
  if [[ "$token" =~ ^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$ ]]; then
    ok "make -s generatetoken app=entrypoints: a JWT on the last line"
  else
    fail generatetoken "make -s generatetoken: last line is not a token: ${token:0:80} $(tail -3 "$WORK/generatetoken.log")"
  fi
fi
if wanted help; then
  # Every target named by the README is listed with its description.
  help=$(make -s help 2>&1 || true)
  missing=""
  for t in $TARGETS; do grep -qE "^  make $t( |$)" <<<"$help" || missing="$missing $t"; done
  if [ -z "$help" ] || [ -n "$missing" ]; then
    fail help "make help does not list:$missing"
  else
    ok "make help: lists every target the README names"
  fi
fi

if wanted openapi; then
  if ! make -s openapi 2>"$WORK/openapi.log" || ! python3 -m json.tool api/openapi.json >/dev/null; then
    fail openapi "make openapi: $(tail -3 "$WORK/openapi.log")"
  elif git rev-parse --git-dir >/dev/null 2>&1 && ! git diff --quiet -- api/openapi.json; then
    fail openapi "make openapi changed api/openapi.json: it was stale (commit the new one)"
  else
    ok "make openapi: api/openapi.json regenerated, valid JSON, unchanged"
  fi
fi

# --- make run: the README's first flow, the fetcher left out, make loadtest against it ------
if wanted run; then
  start run make run
  run_group=$LAST
  if ! wait_started "$run_group" 600 ready; then
    fail run "make run: exited, or no /readyz 200 on $HOST within 600 s: $(tail -5 "$WORK/run.log")"
  else
    ok "make run: api ready on $HOST"
    # The README's block, exactly but for the port: the token, then the curl at once.
    flow=$(python3 -c '
import re
section = open("README.md").read().split("## Send an event", 1)[1]
block = re.search(r"```sh\n(.*?)```", section, re.S).group(1)
lines = []
for line in block.splitlines():
    if line.startswith("#"):
        break
    lines.append(line)
print("\n".join(lines))
' | sed "s#127.0.0.1:8000#127.0.0.1:$API_PORT#g")
    answer=$(bash -c "$flow" 2>"$WORK/flow.log" || true)
    id=$(grep -oE '"id" *: *"[0-9a-f-]{36}"' <<<"$answer" | grep -oE '[0-9a-f-]{36}' || true)
    if ! head -1 <<<"$answer" | grep -q '^HTTP/1.1 202'; then
      fail run "README flow (make -s generatetoken app=demo, then curl): $(head -1 <<<"$answer") $(tail -1 <<<"$answer")"
    elif ! wait_until 10 stored "$id"; then
      fail run "README flow: event $id answered 202 but not stored within 10 s by make run's worker"
    else
      ok "README flow: make -s generatetoken app=demo, then curl at once: 202, event $id stored"
    fi
    if pgrep -g "$run_group" -x eye-fetcher >/dev/null; then
      fail run "make run started eye-fetcher with no provider configured"
    elif ! grep -q 'eye-fetcher not started' "$WORK/run.log"; then
      fail run "make run did not say that it left eye-fetcher out"
    else
      ok "make run: eye-fetcher left out (no provider configured), and said so"
    fi
    if wanted loadtest; then
      if make -s loadtest DURATION=5 RATE=20 HOST="$HOST" >"$WORK/loadtest.log" 2>&1; then
        ok "make loadtest DURATION=5 RATE=20: $(grep '^accepted=' "$WORK/loadtest.log")"
      else
        fail loadtest "make loadtest: $(tail -3 "$WORK/loadtest.log")"
      fi
    fi
  fi
  stop "$run_group" || fail run "make run: still running 40 s after SIGTERM"
  # With a provider configured, make run does start the fetcher (here at an unused port).
  EYE_FETCH_URL=http://127.0.0.1:$(free_port)/feed start run-fetcher make run
  if wait_until 120 pgrep -g "$LAST" -x eye-fetcher; then
    ok "make run with EYE_FETCH_URL set: eye-fetcher started"
  else
    fail run "make run with EYE_FETCH_URL set did not start eye-fetcher: $(tail -3 "$WORK/run-fetcher.log")"
  fi
  stop "$LAST" || fail run "make run (with a provider): still running 40 s after SIGTERM"
fi

# --- make runserver, and two make runworker (README: as many workers as you like) -----------
if wanted runserver || wanted runworker; then
  start runserver make runserver
  server=$LAST
  start runworker1 make runworker
  worker1=$LAST
  second_metrics=127.0.0.1:$(free_port)
  EYE_WORKER_METRICS_ADDR=$second_metrics start runworker2 make runworker
  worker2=$LAST
  token=$(make -s generatetoken app=entrypoints 2>/dev/null | tail -1)
  if ! wait_started "$server" 600 ready; then
    fail runserver "make runserver: exited, or no /readyz 200 within 600 s: $(tail -5 "$WORK/runserver.log")"
  elif ! wait_started "$worker1" 600 metrics "$EYE_WORKER_METRICS_ADDR" ||
    ! wait_started "$worker2" 120 metrics "$second_metrics"; then
    fail runworker "make runworker: exited, or its metrics never answered: $(tail -3 "$WORK/runworker1.log") $(tail -3 "$WORK/runworker2.log")"
  else
    id=$(post_event "$token")
    if [ -n "$id" ] && wait_until 10 stored "$id"; then
      ok "make runserver + 2 x make runworker: ready, an event answered 202 and stored"
    else
      fail runworker "make runserver + make runworker: event ${id:-not answered 202} not stored within 10 s"
    fi
  fi
  for group in "$server" "$worker1" "$worker2"; do
    stop "$group" || fail runworker "make runserver/runworker: still running 40 s after SIGTERM"
  done
fi

if wanted lint; then
  if make -s lint >"$WORK/lint.log" 2>&1; then
    ok "make lint: formatted, clippy clean"
  else
    fail lint "make lint: $(tail -5 "$WORK/lint.log")"
  fi
fi

if [ "${#FAILED[@]}" -gt 0 ]; then
  echo "entry points failing: ${FAILED[*]}"
  exit 1
fi
echo "every entry point the README names works"
