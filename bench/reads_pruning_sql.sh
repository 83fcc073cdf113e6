#!/usr/bin/env bash
# The four reads of bench/reads.sh at the database (pgbench, prepared statements, CONC
# connections, SECS seconds each, alternating ROUNDS times) on the partitioned 10M-row layout
# of bench/reads_seed.sql (BENCH_DB, seeded by bench/reads.sh): `all` = the query every
# partition answers (before), `pruned` = the first step the api now sends
# (api/src/store/partitions.rs): the partition of the earliest matching timestamps and the
# open ones, by `stored_at` range, up to that partition's last timestamp. Each query's pruned
# step returns the full page on this layout (checked below), so it is the whole read.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${BENCH_DB:-eye_bench_reads}
SECS=${SECS:-10}
CONC=${CONC:-4}
ROUNDS=${ROUNDS:-2}
PG="-h 127.0.0.1 -U postgres"
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
# The earliest partition holding bench rows, its last timestamp, and where the open ones start.
IFS='|' read -r from to horizon open < <(psql $PG -At -F '|' "$DB" -c "
  WITH first AS (SELECT from_at, to_at FROM event_partitions
                 WHERE to_at <= now() - interval '10 minutes' AND from_at IS NOT NULL
                 ORDER BY from_at LIMIT 1)
  SELECT quote_literal(from_at), quote_literal(to_at),
         quote_literal((SELECT max(\"timestamp\") FROM events e WHERE app_id = 'bench'
                        AND e.stored_at >= first.from_at AND e.stored_at < first.to_at)),
         quote_literal((SELECT min(from_at) FROM event_partitions
                        WHERE to_at > now() - interval '10 minutes'))
  FROM first")
cols='id, app_id, session_id, category, name, data::text, "timestamp", source, received_at'
prune="AND ((stored_at >= $from AND stored_at < $to) OR stored_at >= $open)"
declare -A where=(
  [session]="session_id = '00000000-0000-4000-8000-000000000007'"
  [cursor]="session_id = '00000000-0000-4000-8000-000000000007' AND (\"timestamp\", id) > ('2024-01-05T03:46:40Z', '00000000-0000-0000-0000-000000000000')"
  [type]="category = 'category 2' AND name = 'name 3' AND \"timestamp\" >= '2024-01-05T00:00:00Z'"
  [window]="\"timestamp\" >= '2024-01-06T00:00:00Z' AND \"timestamp\" < '2024-01-07T00:00:00Z'"
)
for q in session cursor type window; do
  echo "SELECT $cols FROM events WHERE app_id = 'bench' AND ${where[$q]} ORDER BY \"timestamp\", id LIMIT 101;" >"$dir/$q-all.sql"
  echo "SELECT $cols FROM events WHERE app_id = 'bench' AND ${where[$q]} $prune AND \"timestamp\" <= $horizon ORDER BY \"timestamp\", id LIMIT 101;" >"$dir/$q-pruned.sql"
  a=$(psql $PG -At "$DB" -f "$dir/$q-all.sql" | md5sum)
  b=$(psql $PG -At "$DB" -f "$dir/$q-pruned.sql" | md5sum)
  [ "$a" = "$b" ] || { echo "$q: the pruned step does not return the same page"; exit 1; }
done
for round in $(seq 1 "$ROUNDS"); do
  echo "round $round ($(uptime | sed 's/.*load/load/'))"
  for q in session cursor type window; do
    for kind in all pruned; do
      rm -f "$dir"/pgbench_log.*
      (cd "$dir" && pgbench $PG -n -M prepared -f "$q-$kind.sql" -T "$SECS" -c "$CONC" -j "$CONC" -l \
        "$DB" >/dev/null 2>&1)
      cat "$dir"/pgbench_log.* | awk '{print $3}' | sort -n | awk -v q="$q" -v k="$kind" -v s="$SECS" '
        { v[NR] = $1 } END { printf "  %-7s %-6s %6.0f q/s  p50 %6.2f ms  p95 %6.2f ms  p99 %6.2f ms\n",
          q, k, NR / s, v[int(NR * 0.5)] / 1000, v[int(NR * 0.95)] / 1000, v[int(NR * 0.99)] / 1000 }'
    done
  done
done
