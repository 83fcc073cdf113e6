#!/usr/bin/env bash
# PostgreSQL's CPU per 1,000-row batch for the worker's statement shapes (README, "Storage
# profile"): a scratch database of the current schema, the same bench-shaped batch written
# RUNS times per shape by one psql session, the backend's CPU time read from /proc (so the
# figure holds on a busy machine, unlike wall time). Shapes: `before` (claim in event_ids
# with RETURNING, then a VALUES list into events), `after` (the single jsonb_to_recordset
# statement of worker/src/storage/events.rs). Literals, not bind parameters. With PERF=1, a
# `perf record -e cpu-clock -g` of the backend for `after` (report printed). Needs the
# eye-migrate binary (PROFILE: debug or release) and PostgreSQL on this host (for /proc).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-15}
ROUNDS=${ROUNDS:-2}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
PROFILE=${PROFILE:-debug}
DB=eye_bench_storage
OUT=$TARGET_DIR/bench-storage
mkdir -p "$OUT"
PSQL="psql -h 127.0.0.1 -U postgres"
$PSQL -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB "$TARGET_DIR/$PROFILE/eye-migrate" up >/dev/null
# Time-ordered ids like the clients' UUIDv7 (the primary keys grow on the right).
$PSQL $DB -qc "CREATE SEQUENCE profile_ids"
python3 - "$OUT" <<'PY'
import json, sys, uuid
out = sys.argv[1]
rows = [dict(app_id="bench", session_id=str(uuid.uuid4()), category="page", name="view",
             data={"host": "www.consumeraffairs.com", "path": f"/p/{i}"},
             timestamp="2026-12-03T12:00:%02d.%06dZ" % (i % 60, i), source="http",
             received_at="2026-12-03T12:00:00Z") for i in range(1000)]
q = lambda s: "'" + s.replace("'", "''") + "'"
ID = "lpad(to_hex(nextval('profile_ids')), 32, '0')::uuid"
cols = 'app_id, id, session_id, category, name, data, "timestamp", source, received_at'
with open(f"{out}/before.sql", "w") as f:
    vals = ",".join(f"({q(r['app_id'])}, {ID}, {q(r['session_id'])}::uuid, {q(r['category'])}, "
                    f"{q(r['name'])}, {q(json.dumps(r['data']))}::jsonb, {q(r['timestamp'])}::timestamptz, "
                    f"{q(r['source'])}, {q(r['received_at'])}::timestamptz)" for r in rows)
    f.write("BEGIN;\n")
    f.write(f"INSERT INTO event_ids (app_id, id) SELECT 'bench', {ID} FROM generate_series(1, {len(rows)}) "
            "ON CONFLICT DO NOTHING RETURNING app_id, id;\n")
    f.write(f"INSERT INTO events ({cols}) VALUES {vals};\nCOMMIT;\n")
with open(f"{out}/after.sql", "w") as f:
    doc = json.dumps(rows)
    f.write("BEGIN;\n")
    f.write(f"""WITH input AS MATERIALIZED (SELECT t.app_id, {ID} AS id, t.session_id, t.category, t.name,
  t.data, t."timestamp", t.source, t.received_at FROM jsonb_to_recordset({q(doc)}::jsonb) AS t(app_id text,
  session_id uuid, category text, name text, data jsonb, "timestamp" timestamptz, source text, received_at timestamptz)),
claimed AS (INSERT INTO event_ids (app_id, id) SELECT app_id, id FROM input ON CONFLICT DO NOTHING RETURNING app_id, id)
INSERT INTO events ({cols}) SELECT i.* FROM input i JOIN claimed c USING (app_id, id);
COMMIT;
""")
PY
# cpu FILE: the backend's CPU milliseconds per run of FILE.
cpu() {
  local script=$OUT/run.sql
  {
    echo "SELECT pg_backend_pid() AS pid \\gset"
    echo "\\setenv PID :pid"
    echo "\\! awk '{print \"before\", \$14 + \$15}' /proc/\$PID/stat"
    for _ in $(seq "$RUNS"); do echo "\\i $1"; done
    echo "\\! awk '{print \"after\", \$14 + \$15}' /proc/\$PID/stat"
  } >"$script"
  $PSQL $DB -q -o /dev/null -f "$script" |
    awk -v f="$(basename "$1" .sql)" -v n="$RUNS" '/before/ {b = $2} /after/ {a = $2}
      END {printf "%-7s %.1f ms of PostgreSQL CPU per 1,000-row batch\n", f, (a - b) * 1000 / 100 / n}'
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for _ in $(seq "$ROUNDS"); do cpu "$OUT/before.sql"; cpu "$OUT/after.sql"; done
echo "rows in events: $($PSQL $DB -Atc 'SELECT count(*) FROM events')"
if [ "${PERF:-0}" = 1 ]; then
  script=$OUT/perf.sql
  {
    echo "SELECT pg_backend_pid() AS pid \\gset"
    echo "\\setenv PID :pid"
    echo "\\! perf record -q -e cpu-clock -g -o $OUT/perf.data -p \$PID >/dev/null 2>&1 & echo \$! > $OUT/perf.pid; sleep 1"
    for _ in $(seq "$RUNS"); do echo "\\i $OUT/after.sql"; done
    echo "\\! kill -INT \$(cat $OUT/perf.pid); sleep 2"
  } >"$script"
  $PSQL $DB -q -o /dev/null -f "$script"
  perf report -i "$OUT/perf.data" --children --sort symbol -g none 2>/dev/null | grep '%' | head -40
fi
