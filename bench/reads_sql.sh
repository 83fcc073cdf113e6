#!/usr/bin/env bash
# The read queries of bench/reads.sh at the database alone, before and after the partitioning
# (issue 18, part 3), same rows: `old` migrated up to the migration before
# m20261203_233000_partitioned_events (one `events` table), `new` fully migrated and laid out
# in 13 weekly partitions plus events_initial (bench/reads_seed.sql). Each query runs SECS
# seconds over CONC connections (pgbench, prepared statements as the api's driver uses);
# p50/p99 from pgbench's per-transaction log. ROWS (10,000,000) are seeded once per
# database (KEEP=1 reuses them). Needs a built eye-migrate (`cargo build -p eye-migrations`).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-10000000}
SECS=${SECS:-20}
CONC=${CONC:-4}
MIGRATE=${CARGO_TARGET_DIR:-target}/debug/eye-migrate
PG="-h 127.0.0.1 -U postgres"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
before=$(( $(grep -c 'Box::new(m' migrations/src/lib.rs) - 1 ))
for db in old new; do
  name=eye_bench_reads_$db
  have=$(psql $PG -Atc "SELECT count(*) FROM events" "$name" 2>/dev/null || echo none)
  if [ "$have" != "$ROWS" ]; then
    psql $PG -qc "DROP DATABASE IF EXISTS $name WITH (FORCE)"
    n=$([ "$db" = old ] && echo "-n $before" || true)
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/$name "$MIGRATE" up $n >/dev/null
    start=$(date +%s)
    psql $PG -q -v rows="$ROWS" -f bench/reads_seed.sql "$name" >/dev/null
    echo "$db: seeded $ROWS rows in $(( $(date +%s) - start )) s"
  fi
done
cols='id, app_id, session_id, category, name, data::text, "timestamp", source, received_at'
# The same four reads as bench/reads.sh: a session's first page, a session page after a
# cursor in the middle, a filtered page, a time window.
cat >"$dir/session.sql" <<SQL
SELECT $cols FROM events WHERE app_id = 'bench' AND session_id = '00000000-0000-4000-8000-000000000007'
ORDER BY "timestamp", id LIMIT 101;
SQL
cat >"$dir/cursor.sql" <<SQL
SELECT $cols FROM events WHERE app_id = 'bench' AND session_id = '00000000-0000-4000-8000-000000000007'
AND ("timestamp", id) > ('2024-03-01T00:00:00Z', '00000000-0000-0000-0000-000000000000')
ORDER BY "timestamp", id LIMIT 101;
SQL
cat >"$dir/type.sql" <<SQL
SELECT $cols FROM events WHERE app_id = 'bench' AND category = 'category 2' AND name = 'name 3'
AND "timestamp" >= '2024-01-05T00:00:00Z' ORDER BY "timestamp", id LIMIT 101;
SQL
cat >"$dir/window.sql" <<SQL
SELECT $cols FROM events WHERE app_id = 'bench' AND "timestamp" >= '2024-01-06T00:00:00Z'
AND "timestamp" < '2024-01-07T00:00:00Z' ORDER BY "timestamp", id LIMIT 101;
SQL
for q in session cursor type window; do
  for db in old new; do
    rm -f "$dir"/pgbench_log.*
    (cd "$dir" && pgbench $PG -n -M prepared -f "$q.sql" -T "$SECS" -c "$CONC" -j "$CONC" -l \
      "eye_bench_reads_$db" >/dev/null 2>&1)
    cat "$dir"/pgbench_log.* | awk '{print $3}' | sort -n | awk -v q="$q" -v d="$db" -v s="$SECS" '
      { v[NR] = $1 } END { printf "%-7s %-3s %6.0f q/s  p50 %6.2f ms  p99 %6.2f ms\n", q, d, NR / s,
        v[int(NR * 0.5)] / 1000, v[int(NR * 0.99)] / 1000 }'
  done
done
