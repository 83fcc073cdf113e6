#!/usr/bin/env bash
# The console's list pages at 1,000,000 stored events: p50/p95 per page. A private database
# gets 1,000,000 events (generate_series: 900,000 in application `big`, 100,000 in `small`,
# 50,000 sessions, a week of timestamps, the last hour's stored_at included) and 20,000 dead
# letters, 10 webhook subscriptions (one of them with a delivery for each of `big`'s 900,000
# events: 880,000 succeeded, 15,000 pending, 5,000 failed, and 100,000 attempts) and 100 export
# runs of 100 files each; an api signs in with an admin token and each page is fetched REQUESTS times, one at a
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
INSERT INTO webhook_subscriptions (id, app_id, url, description, filters, secret, created_at)
SELECT md5('w' || i)::uuid, 'big', 'https://hooks.example.com/' || i, 'subscription ' || i,
       CASE WHEN i = 1 THEN '[]'::jsonb ELSE '[{"category": "form interaction"}]'::jsonb END,
       'whsec_' || md5('secret' || i), now() - make_interval(mins => i)
FROM generate_series(1, 10) AS i;
INSERT INTO webhook_deliveries (subscription_id, event_id, app_id, status, attempts, created_at)
SELECT md5('w1')::uuid, e.id, e.app_id,
       CASE WHEN n % 60 = 0 THEN 'pending' WHEN n % 180 = 1 THEN 'failed' ELSE 'succeeded' END,
       1, e.stored_at
FROM (SELECT id, app_id, stored_at, row_number() OVER (ORDER BY stored_at) AS n
      FROM events WHERE app_id = 'big') AS e;
INSERT INTO webhook_attempts (subscription_id, event_id, webhook_id, trigger, attempted_at, status_code, latency_ms, response)
SELECT md5('w1')::uuid, md5('e' || i)::uuid, 'msg_' || md5('a' || i), 'delivery',
       now() - make_interval(secs => (100000 - i)), 200, 20 + i % 50, 'ok'
FROM generate_series(1, 100000) AS i;
INSERT INTO exports (id, name, spec, state, snapshot_at, generation, files_written, records, created_at, finished_at, descriptor_key)
SELECT md5('x' || i)::uuid, 'feed',
       '{"name": "feed", "shape": "events", "filter": {}, "chunk_size": 100, "destination": {"kind": "folder", "path": "/srv/feeds"}}',
       'succeeded', now() - make_interval(hours => i), 'g' || lpad(i::text, 4, '0'), 100, 10000,
       now() - make_interval(hours => i), now() - make_interval(hours => i) + interval '3 seconds',
       'feed/g' || lpad(i::text, 4, '0') || '/descriptor.json'
FROM generate_series(1, 100) AS i;
INSERT INTO export_files (export_id, seq, file_name, records, bytes, sha256, last_key)
SELECT md5('x' || i)::uuid, f, 'data-' || lpad(f::text, 5, '0') || '.json.gz', 100, 9000 + f,
       md5('f' || i || '-' || f) || md5('g' || i || '-' || f), '["k"]'
FROM generate_series(1, 100) AS i, generate_series(1, 100) AS f;
VACUUM ANALYZE events;
VACUUM ANALYZE dead_letters;
VACUUM ANALYZE webhook_deliveries;
VACUUM ANALYZE webhook_attempts;
VACUUM ANALYZE export_files;
SQL
echo "loaded 1,000,000 events, 20,000 dead letters, 900,000 webhook deliveries and 100 exports in ${SECONDS}s"

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

HOOK=$(psql -h 127.0.0.1 -U postgres -d $DB -Atc "SELECT md5('w1')::uuid")
EXPORT=$(psql -h 127.0.0.1 -U postgres -d $DB -Atc "SELECT md5('x1')::uuid")
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
  "/admin/webhooks"
  "/admin/webhooks/$HOOK"
  "/admin/webhooks/$HOOK?status=failed"
  "/admin/webhooks/$HOOK?status=pending"
  "/admin/exports"
  "/admin/exports/$EXPORT"
)
[ -n "$CURSOR" ] || { echo "no next page on the events list" >&2; exit 1; }
printf '%-70s %8s %8s %8s\n' page p50_ms p95_ms max_ms
for p in "${pages[@]}"; do
  [[ -z "${ONLY:-}" || "$p" =~ $ONLY ]] || continue # ONLY=webhooks: just those pages
  code=$(curl -s -b "$JAR" -o /dev/null -w '%{http_code}' "$BASE$p")
  [ "$code" = 200 ] || { echo "$p answered $code" >&2; exit 1; }
  for _ in $(seq 1 "$REQUESTS"); do
    curl -s -b "$JAR" -o /dev/null -w '%{time_total}\n' "$BASE$p"
  done | sort -n | awk -v page="$p" '{ t[NR] = $1 * 1000 } END {
      printf "%-70s %8.1f %8.1f %8.1f\n", substr(page, 1, 70), t[int(NR * 0.5)], t[int(NR * 0.95)], t[NR] }'
done
