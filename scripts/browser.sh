#!/usr/bin/env bash
# `make browser-test`: the admin console in a real browser. Installs Debian's chromium if it is
# missing and playwright-core from tests/browser/package-lock.json (npm ci; no browser
# download), starts migrate + api + worker on a private database and queue namespace, and runs
# tests/browser/console.mjs: sign in, create an application, issue a token, post events, see
# them, refuse one by a rule, change the rule, replay, revoke, CSRF refusal, subscribe a webhook
# to a local receiver and send it a test, queue an export to a folder (run by eye-exporter),
# sign out.
# Screenshots land in docs/console/.
set -euo pipefail
cd "$(dirname "$0")/.."
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_port() { # a port with its neighbour (the worker's metrics) free too
  local p
  while :; do
    p=$((20000 + RANDOM % 20000))
    port_open "$p" || port_open $((p + 1)) || { echo "$p"; return; }
  done
}
PORT=${BROWSER_PORT:-$(free_port)}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=$TARGET_DIR/debug
DB=eye_browser_$PORT

if ! command -v chromium >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
(cd tests/browser && npm ci --no-audit --no-fund --silent)

export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB
export EYE_AMQP_NAMESPACE=browser-$$ EYE_LOG=warn EYE_HTTP_ADDR=127.0.0.1:$PORT EYE_METRICS_ADDR=127.0.0.1:0
export EYE_WORKER_METRICS_ADDR=127.0.0.1:$((PORT + 1))
# The webhook receiver below is on loopback: the api's test sends may reach it (only it).
export EYE_WEBHOOK_ALLOW_NETS=127.0.0.1/32
cargo build -q -p eye-api -p eye-worker -p eye-fetcher -p eye-exporter -p eye-migrations --bins
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null
"$BIN/eye-migrate" up >/dev/null

WORK=$(mktemp -d)
# The rule change of the scenario: the same rules with pageview_schema switched off.
sed '/^id = "pageview_schema"/a mode = "off"' rules.toml >"$WORK/lenient.toml"
grep -q 'mode = "off"' "$WORK/lenient.toml"
export EYE_WORKER_PIDFILE=$WORK/worker.pid EYE_WORKER_LOG=$TARGET_DIR/browser-worker.log
"$BIN/eye-api" serve >"$TARGET_DIR/browser-api.log" 2>&1 & API=$!
EYE_RULES_FILE=rules.toml "$BIN/eye-worker" >"$EYE_WORKER_LOG" 2>&1 & echo $! >"$EYE_WORKER_PIDFILE"
# A JSON provider for the "Provider plans" history and the "JSON records" page: the
# JSONPlaceholder-shaped fixtures served by python's http.server as /posts, /comments, /users,
# pulled every 2 s by eye-fetcher (adapter json).
mkdir "$WORK/json"
for r in posts comments users; do cp "testkit/tests/fixtures/jsonplaceholder/$r.json" "$WORK/json/$r"; done
JSON_PORT=$(free_port)
python3 -m http.server "$JSON_PORT" --bind 127.0.0.1 --directory "$WORK/json" >/dev/null 2>&1 & JSON_API=$!
EYE_FETCH_PROVIDER=json EYE_FETCH_URL=http://127.0.0.1:$JSON_PORT EYE_FETCH_INTERVAL_SECS=2 \
  EYE_FETCH_MIN_GAP_MS=0 EYE_FETCH_METRICS_ADDR=127.0.0.1:0 \
  "$BIN/eye-fetcher" >"$TARGET_DIR/browser-fetcher.log" 2>&1 & FETCHER=$!
# A webhook receiver (answers every POST 200 "received") and an exporter writing to a folder.
HOOK_PORT=$(free_port)
python3 - "$HOOK_PORT" >/dev/null 2>&1 <<'PY' & HOOK=$!
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer
class Hook(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "text/plain")
        self.end_headers()
        self.wfile.write(b"received")
HTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
PY
mkdir "$WORK/feeds"
EYE_EXPORT_POLL_SECS=1 "$BIN/eye-exporter" >"$TARGET_DIR/browser-exporter.log" 2>&1 & EXPORTER=$!
cleanup() {
  kill $API "$(cat "$EYE_WORKER_PIDFILE")" $FETCHER $JSON_API $HOOK $EXPORTER 2>/dev/null || true
  rabbitmqctl -q delete_queue "$EYE_AMQP_NAMESPACE.events.ingest" >/dev/null 2>&1 || true
  rabbitmqctl -q delete_queue "$EYE_AMQP_NAMESPACE.events.poison" >/dev/null 2>&1 || true
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
for _ in $(seq 1 150); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "the api is not ready:" >&2; tail -20 "$TARGET_DIR/browser-api.log" >&2; exit 1; }

EYE_ADMIN_TOKEN=$("$BIN/eye-api" token --app console-ops --scopes admin | tail -1)
EYE_CONSOLE_USER=alice EYE_CONSOLE_PASSWORD="browser-test-$$-password"
EYE_CONSOLE_PASSWORD=$EYE_CONSOLE_PASSWORD "$BIN/eye-api" users create "$EYE_CONSOLE_USER" >/dev/null
sleep 1.2 # the api learns of the new application at its next reload (1 s)

EYE_BASE=http://127.0.0.1:$PORT EYE_SHOTS=docs/console EYE_CHROMIUM_PROFILE=$WORK/profile \
  EYE_ADMIN_TOKEN=$EYE_ADMIN_TOKEN EYE_CONSOLE_USER=$EYE_CONSOLE_USER \
  EYE_CONSOLE_PASSWORD=$EYE_CONSOLE_PASSWORD EYE_WORKER_PID="$(cat "$EYE_WORKER_PIDFILE")" \
  EYE_WORKER_BIN=$BIN/eye-worker EYE_LENIENT_RULES=$WORK/lenient.toml \
  EYE_HOOK_URL=http://127.0.0.1:$HOOK_PORT/hook EYE_EXPORT_DIR=$WORK/feeds \
  node tests/browser/console.mjs
