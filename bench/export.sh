#!/usr/bin/env bash
# Export benchmark (issue 17): N events (default 100,000) exported as N/100 chunk files of
# 100 records to a local moto S3 server and to a folder, with the release `eye-exporter`:
# wall time, records/s, files/s and peak RSS (getrusage of the child, via /usr/bin/time).
# A second, 5x smaller run to a folder shows the memory stays flat with the export's size.
# `bench/export.sh [N]`; uses its own database (eye_bench_export) and a moto on a free port.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
DB=eye_bench_export
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB EYE_LOG=warn
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
# EXPORT_BENCH_PROFILE=debug measures the debug build (indicative only: unoptimized gzip).
PROFILE=${EXPORT_BENCH_PROFILE:-release}
if [ "$PROFILE" = release ]; then
  cargo build -q --release -p eye-exporter --bin eye-exporter
else
  cargo build -q -p eye-exporter --bin eye-exporter
fi
cargo build -q -p eye-migrations --bin eye-migrate
EXPORTER=$TARGET_DIR/$PROFILE/eye-exporter
echo "eye-exporter ($PROFILE build), $N events, chunks of 100; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
MOTO=$(scripts/moto.sh)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/eye-bench-export.XXXXXX")
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$MOTO" -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 & MOTO_PID=$!
trap 'kill $MOTO_PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
"$TARGET_DIR/debug/eye-migrate" up >/dev/null
psql -h 127.0.0.1 -U postgres -d "$DB" -qc "
  INSERT INTO events (app_id, id, session_id, category, name, data, \"timestamp\", source, received_at)
  SELECT 'bench', gen_random_uuid(), gen_random_uuid(), 'page', 'view',
         jsonb_build_object('host', 'shop.example', 'path', '/item/' || i, 'referrer', 'https://search.example/?q=' || i),
         '2026-01-01T00:00:00Z'::timestamptz + i * interval '1 second', 'http', now()
  FROM generate_series(1, $N) AS i"
psql -h 127.0.0.1 -U postgres -d "$DB" -qc "VACUUM ANALYZE events"
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/" >/dev/null && break; sleep 0.1; done
curl -sf -X PUT "http://127.0.0.1:$PORT/bench" >/dev/null

measure() { # label, then the export's arguments
  local label=$1; shift
  /usr/bin/time -f '%e %M' -o "$WORK/time" "$EXPORTER" export run --name bench --chunk-size 100 "$@" >"$WORK/out"
  read -r secs kb <"$WORK/time"
  awk -v l="$label" -v s="$secs" -v kb="$kb" -v out="$(cat "$WORK/out")" 'BEGIN {
    split(out, w, " "); files = w[4]; recs = w[6];
    printf "%-22s %7d records %5d files in %6.2f s: %8.0f records/s %6.0f files/s, peak RSS %.1f MB\n",
      l, recs, files, s, recs / s, files / s, kb / 1024 }'
}
export EYE_S3_ENDPOINT=http://127.0.0.1:$PORT EYE_S3_MAX_RETRIES=0
measure "S3 (moto)" --to s3://bench/feeds
measure "folder" --to "$WORK/out-folder"
# Flat memory: the same export of a fifth of the records.
psql -h 127.0.0.1 -U postgres -d "$DB" -qc "DELETE FROM events WHERE ctid IN (SELECT ctid FROM events LIMIT $((N * 4 / 5)))"
measure "folder (1/5 of them)" --to "$WORK/out-small"
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
