#!/usr/bin/env bash
# How the worker should write a batch: multi-row INSERT ... ON CONFLICT DO NOTHING (what it
# does, through sea-orm) against COPY into a staging table + INSERT ... SELECT ON CONFLICT
# (COPY alone cannot skip duplicates, and idempotency is not optional). 200,000 events in
# batches of 1,000, one transaction per batch, through psql.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=eye_bench_copy
BATCHES=${BATCHES:-200}
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB "${CARGO_TARGET_DIR:-target}/release/eye-migrate" up >/dev/null
work=$(mktemp -d)
python3 - "$work" "$BATCHES" <<'PY'
import sys, uuid, json
work, batches = sys.argv[1], int(sys.argv[2])
cols = '(app_id, id, session_id, category, name, data, "timestamp", source, received_at)'
with open(f"{work}/insert.sql", "w") as ins, open(f"{work}/copy.sql", "w") as cp:
    for b in range(batches):
        rows = []
        for i in range(1000):
            rows.append(("bench", str(uuid.uuid4()), str(uuid.uuid4()), "page interaction", "pageview",
                         json.dumps({"host": "www.example.com", "path": f"/{b}/{i}"}),
                         "2024-01-01T00:00:00Z", "http", "2024-01-01T00:00:01Z"))
        values = ",".join("('%s','%s','%s','%s','%s','%s','%s','%s','%s')" % r for r in rows)
        ins.write(f"BEGIN; INSERT INTO events {cols} VALUES {values} ON CONFLICT DO NOTHING; COMMIT;\n")
        cp.write("BEGIN; CREATE TEMP TABLE staging (LIKE events INCLUDING DEFAULTS) ON COMMIT DROP;\n")
        cp.write(f"COPY staging {cols} FROM STDIN WITH (FORMAT csv, QUOTE '\"');\n")
        for r in rows:
            cp.write(",".join('"' + v.replace('"', '""') + '"' for v in r) + "\n")
        cp.write("\\.\n")
        cp.write(f"INSERT INTO events SELECT * FROM staging ON CONFLICT DO NOTHING; COMMIT;\n")
PY
run() {
  psql -h 127.0.0.1 -U postgres $DB -qc "TRUNCATE events"
  local t0 t1
  t0=$(date +%s.%N)
  psql -h 127.0.0.1 -U postgres $DB -q -f "$1" >/dev/null
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" -v n="$((BATCHES * 1000))" -v what="$2" \
    'BEGIN {printf "%-45s %7.0f rows/s (%.2f s)\n", what, n / (b - a), b - a}'
}
run "$work/insert.sql" "multi-row INSERT ... ON CONFLICT DO NOTHING"
run "$work/copy.sql" "COPY to staging + INSERT ... ON CONFLICT"
run "$work/insert.sql" "multi-row INSERT (again)"
run "$work/copy.sql" "COPY (again)"
rm -rf "$work"
