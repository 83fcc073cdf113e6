#!/usr/bin/env bash
# The worker's insert path before and after the partitioning (issue 18, part 3), A/B in the
# same run: pgbench transactions shaped like one worker commit of BATCH rows (the erasure
# lock, the tombstone lookup, then the insert), against two databases: `old` migrated up to
# the migration before m20261203_233000_partitioned_events (one `events` table, ON CONFLICT
# on its primary key), `new` migrated fully (`event_ids` claimed with ON CONFLICT DO NOTHING
# RETURNING, then the rows into the partitioned `events`). Runs alternate old/new ROUNDS
# times, SECS seconds each, CONC connections (the worker's commits in flight), and print
# rows/s. Needs a built eye-migrate (debug is fine): `cargo build -p eye-migrations`.
set -euo pipefail
cd "$(dirname "$0")/.."
BATCH=${BATCH:-1000}
SECS=${SECS:-20}
CONC=${CONC:-2}
ROUNDS=${ROUNDS:-3}
MIGRATE=${CARGO_TARGET_DIR:-target}/debug/eye-migrate
PG="-h 127.0.0.1 -U postgres"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
before=$(( $(grep -c 'Box::new(m' migrations/src/lib.rs) - 1 ))
for db in old new; do
  psql $PG -qc "DROP DATABASE IF EXISTS eye_bench_ins_$db WITH (FORCE)"
done
DATABASE_URL=postgres://postgres@127.0.0.1:5432/eye_bench_ins_old "$MIGRATE" up -n "$before" >/dev/null
DATABASE_URL=postgres://postgres@127.0.0.1:5432/eye_bench_ins_new "$MIGRATE" up >/dev/null
head="BEGIN;
SELECT pg_advisory_xact_lock_shared(4242);
SELECT erasure_id FROM erasure_tombstones WHERE (app_id, session_id) IN (('bench', gen_random_uuid()));"
rows="SELECT 'bench', gen_random_uuid(), gen_random_uuid(), 'page', 'view',
  '{\"host\": \"www.example.com\", \"path\": \"/a/b\"}'::jsonb, now(), 'http', now()
  FROM generate_series(1, $BATCH)"
cols='(app_id, id, session_id, category, name, data, "timestamp", source, received_at)'
cat >"$dir/old.sql" <<SQL
$head
INSERT INTO events $cols $rows ON CONFLICT (app_id, id) DO NOTHING;
COMMIT;
SQL
cat >"$dir/new.sql" <<SQL
$head
INSERT INTO event_ids (app_id, id) SELECT 'bench', gen_random_uuid() FROM generate_series(1, $BATCH)
  ON CONFLICT DO NOTHING RETURNING app_id, id;
INSERT INTO events $cols $rows;
COMMIT;
SQL
for round in $(seq 1 "$ROUNDS"); do
  for db in old new; do
    tps=$(pgbench $PG -n -f "$dir/$db.sql" -T "$SECS" -c "$CONC" -j "$CONC" "eye_bench_ins_$db" 2>/dev/null |
      sed -nE 's/^tps = ([0-9.]+).*/\1/p')
    total=$(psql $PG -Atc "SELECT count(*) FROM events" "eye_bench_ins_$db")
    awk -v r="$round" -v d="$db" -v t="$tps" -v b="$BATCH" -v n="$total" \
      'BEGIN {printf "round %d %-3s %8.0f rows/s (table now %d rows)\n", r, d, t * b, n}'
  done
done
