#!/usr/bin/env bash
# The console's list pages at 1,000,000 stored events: p50/p95 per page. A private database
# gets 1,000,000 events (generate_series: 900,000 in application `big`, 100,000 in `small`,
# 50,000 sessions, a week of timestamps, the last hour's stored_at included) and 20,000 dead
# letters; an api signs in with an admin token and each page is fetched REQUESTS times, one at a
# time, with curl (time to the last byte). Needs no worker or broker traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${P95_PORT:-8400}
REQUESTS=${REQUESTS:-100}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=$TARGET_DIR/debug
DB=eye_console_p95
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB
export EYE_AMQP_NAMESPACE=p95-$$ EYE_LOG=warn EYE_HTTP_ADDR=127.0.0.1:$PORT EYE_METRICS_ADDR=127.0.0.1:0
cargo build -q -p eye-api -p eye-migrations --bins
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null
"$BIN/eye-migrate" up >/dev/null
SECONDS=0
psql -h 127.0.0.1 -U postgres -d $DB -q <<'SQL'
INSERT INTO applications (id, name) VALUES ('big', 'big'), ('small', 'small');
INSERT INTO events (app_id, id, session_id, category, name, data, "timestamp", source, received_at, stored_at)
SELECT CASE WHEN i % 10 = 0 THEN 'small' ELSE 'big' END,
       md5('e' || i)::uuid,
       md5('s' || (i % 50000))::uuid,
       (ARRAY['page interaction', 'form interaction', 'provider', 'misc'])[1 + i % 4],
       (ARRAY['pageview', 'cta click', 'submit', 'other', 'scroll'])[1 + i % 5],
       jsonb_build_object('host', 'www.example.com', 'path', '/p/' || (i % 1000), 'n', i),
       now() - make_interval(secs => (1000000 - i) * 0.6048),
       'browser',
       now() - make_interval(secs => (1000000 - i) * 0.6048),
       now() - make_interval(secs => (1000000 - i) * 0.6048) + interval '50 milliseconds'
FROM generate_series(1, 1000000) AS i;
INSERT INTO dead_letters (id, kind, app_id, event_id, category, name, validator, field, message, reasons, payload, first_seen, last_seen)
SELECT md5('d' || i)::uuid, 'invalid', 'big', md5('de' || i)::uuid, 'page interaction', 'pageview',
       (ARRAY['pageview_schema', 'timestamp_bounds', 'cta_click_schema', 'form_submit_schema', 'provider_record'])[1 + i % 5],
       '/data/path', 'missing required key', '[{"validator":"pageview_schema","field":"/data/path","message":"missing"}]',
       jsonb_build_object('id', md5('de' || i)::uuid, 'n', i),
       now() - make_interval(secs => i * 30), now() - make_interval(secs => i * 30)
FROM generate_series(1, 20000) AS i;
VACUUM ANALYZE events;
VACUUM ANALYZE dead_letters;
SQL
echo "loaded 1,000,000 events and 20,000 dead letters in ${SECONDS}s"

"$BIN/eye-api" serve >"$TARGET_DIR/p95-api.log" 2>&1 & API=$!
JAR=$(mktemp)
cleanup() {
  kill $API 2>/dev/null || true
  rm -f "$JAR"
  [ -n "${KEEP_DB:-}" ] || psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null && break; sleep 0.1; done
TOKEN=$("$BIN/eye-api" token --app console-ops --scopes admin | tail -1)
sleep 1.2
BASE=http://127.0.0.1:$PORT
CSRF=$(curl -s -c "$JAR" -b "$JAR" "$BASE/admin/login" | grep -o 'name="csrf" value="[^"]*"' | head -1 | cut -d'"' -f4)
curl -s -c "$JAR" -b "$JAR" "$BASE/admin/login" --data-urlencode "csrf=$CSRF" --data-urlencode "token=$TOKEN" -o /dev/null
SESSION=$(psql -h 127.0.0.1 -U postgres -d $DB -Atc "SELECT session_id FROM events WHERE app_id = 'big' LIMIT 1")
# The second page: the cursor the console's "Next page" link carries (keyset: any depth costs
# the same index descent).
CURSOR=$(curl -s -b "$JAR" "$BASE/admin/events?app=big" | grep -o 'cursor=[A-Za-z0-9_-]*' | head -1 | cut -d= -f2)

pages=(
  "/admin"
  "/admin/events?app=big"
  "/admin/events?app=big&cursor=$CURSOR"
  "/admin/events?app=big&category=form+interaction&name=submit"
  "/admin/events?app=big&from=2026-01-01T00:00&to=2030-01-01T00:00"
  "/admin/sessions/big/$SESSION"
  "/admin/dead-letters"
  "/admin/dead-letters/list?kind=invalid&validator=pageview_schema"
  "/admin/apps"
  "/admin/plans"
)
[ -n "$CURSOR" ] || { echo "no next page on the events list" >&2; exit 1; }
printf '%-70s %8s %8s %8s\n' page p50_ms p95_ms max_ms
for p in "${pages[@]}"; do
  code=$(curl -s -b "$JAR" -o /dev/null -w '%{http_code}' "$BASE$p")
  [ "$code" = 200 ] || { echo "$p answered $code" >&2; exit 1; }
  for _ in $(seq 1 "$REQUESTS"); do
    curl -s -b "$JAR" -o /dev/null -w '%{time_total}\n' "$BASE$p"
  done | sort -n | awk -v page="$p" '{ t[NR] = $1 * 1000 } END {
      printf "%-70s %8.1f %8.1f %8.1f\n", substr(page, 1, 70), t[int(NR * 0.5)], t[int(NR * 0.95)], t[NR] }'
done
