#!/usr/bin/env bash
# `make bench-import`: a 500,000-row CSV imported end to end (POST /imports, staged with COPY,
# run by one eye-worker), release build, own database.
#
# The file (made before the clock starts, python3): ROWS rows, 5% duplicates that differ from
# an earlier row's natural key (sku) only in case, 1% rows with an invalid timestamp.
# Reports: seconds from the first byte uploaded to state `done` (and the upload alone),
# the gaps between progress events (GET /imports/{id}/events, max must be <= 500 ms), the
# final counts against the ledger the generator wrote, and the peak RSS of the api and the
# worker (VmHWM). Knobs: ROWS (500000), BENCH_IMPORT_PORT (8320), WORKER_BIN (A/B), EYE_IMPORT_CHUNK,
# PROFILE (release; `debug` for a quick check of the script itself, not a measurement).
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${ROWS:-500000}
PORT=${BENCH_IMPORT_PORT:-8320}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
PROFILE=${PROFILE:-release}
BIN=$TARGET_DIR/$PROFILE
OUT=$TARGET_DIR/bench-import
DB=eye_bench_import
mkdir -p "$OUT"

export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB
export EYE_AMQP_NAMESPACE=bench-import EYE_LOG=warn EYE_HTTP_ADDR=127.0.0.1:$PORT EYE_METRICS_ADDR=127.0.0.1:0
export EYE_WORKER_METRICS_ADDR=127.0.0.1:$((PORT + 1)) EYE_IMPORT_POLL_MS=50
HOST=http://127.0.0.1:$PORT

if [ "$PROFILE" = release ]; then
  cargo build --release --workspace --bins
else
  cargo build -p eye-api -p eye-worker -p eye-migrations --bins
fi
python3 - "$ROWS" "$OUT/file.csv" "$OUT/ledger.json" <<'PY'
import json, random, sys, uuid
rows, path, ledger = int(sys.argv[1]), sys.argv[2], sys.argv[3]
random.seed(14)
sessions = [str(uuid.UUID(int=random.getrandbits(128), version=4)) for _ in range(1000)]
unique = dup = bad = 0
with open(path, "w") as f:
    f.write("sid,category,name,ts,sku,price,qty\n")
    for i in range(rows):
        r = i % 100
        if r == 99:
            bad += 1
            f.write(f"{sessions[i % 1000]},shop,order,not a time,SKU-{i},1.{i % 100:02d},{i % 7}\n")
        elif r >= 94 and i > 0:
            dup += 1
            # The key of a row two before (never a bad or duplicate row), its case swapped.
            f.write(f"{sessions[i % 1000]},shop,order,2024-05-01 10:00:00,sku-{i - 6},2.00,{i % 7}\n")
        else:
            unique += 1
            f.write(f"{sessions[i % 1000]},shop,order,2024-05-01 10:{i % 60:02d}:00,SKU-{i},1.{i % 100:02d},{i % 7}\n")
json.dump({"rows": rows, "unique": unique, "duplicates": dup, "refused": bad}, open(ledger, "w"))
PY
rabbitmqctl -q delete_queue "$EYE_AMQP_NAMESPACE.events.ingest" >/dev/null 2>&1 || true
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
"$BIN/eye-migrate" up >/dev/null
"$BIN/eye-api" serve >"$OUT/api.log" 2>&1 & API=$!
"${WORKER_BIN:-$BIN/eye-worker}" >"$OUT/worker.log" 2>&1 & WORKER=$!
cleanup() {
  kill $API $WORKER 2>/dev/null || true
  rabbitmqctl -q delete_queue "$EYE_AMQP_NAMESPACE.events.ingest" >/dev/null 2>&1 || true
  rabbitmqctl -q delete_queue "$EYE_AMQP_NAMESPACE.events.poison" >/dev/null 2>&1 || true
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -sf "$HOST/readyz" >/dev/null && break; sleep 0.1; done
TOKEN=$("$BIN/eye-api" token --app bench | tail -1)
sleep 2 # the api learns of the new application at its next reload (1 s)

started=$(date +%s.%N)
curl -sf -X POST "$HOST/imports?session_id=sid&timestamp=ts&dedup_key=sku&case_insensitive=true" \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: text/csv' --data-binary @"$OUT/file.csv" >"$OUT/created.json"
staged=$(date +%s.%N)
ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$OUT/created.json")
# Follow the progress events until `end`, stamping each line's arrival.
curl -sN "$HOST/imports/$ID/events" -H "Authorization: Bearer $TOKEN" |
  python3 -c '
import sys, time, json
out = open(sys.argv[1], "w")
for line in sys.stdin:
    if line.startswith("event:"):
        kind = line.split(":", 1)[1].strip()
        out.write(json.dumps({"t": time.time(), "event": kind}) + "\n"); out.flush()
        if kind == "end":
            break
' "$OUT/events.jsonl"
finished=$(date +%s.%N)
rss() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
API_RSS=$(rss $API); WORKER_RSS=$(rss $WORKER)
curl -sf "$HOST/imports/$ID" -H "Authorization: Bearer $TOKEN" >"$OUT/final.json"
python3 - "$OUT" "$started" "$staged" "$finished" "$API_RSS" "$WORKER_RSS" "$DB" <<'PY'
import json, subprocess, sys
out, started, staged, finished, api_rss, worker_rss, db = sys.argv[1], *map(float, sys.argv[2:5]), int(sys.argv[5]), int(sys.argv[6]), sys.argv[7]
ledger = json.load(open(f"{out}/ledger.json"))
final = json.load(open(f"{out}/final.json"))
times = [json.loads(l)["t"] for l in open(f"{out}/events.jsonl")]
gaps = [b - a for a, b in zip(times, times[1:])]
rows = int(subprocess.check_output(["psql", "-h", "127.0.0.1", "-U", "postgres", db, "-Atc", "SELECT count(*) FROM events"]).strip())
expected = {"rows_read": ledger["rows"], "refused": ledger["refused"], "stored": ledger["unique"],
            "duplicates": ledger["duplicates"], "accepted": ledger["rows"] - ledger["refused"]}
exact = all(final[k] == v for k, v in expected.items()) and rows == ledger["unique"]
total = finished - started
print(json.dumps({"rows": ledger["rows"], "seconds": round(total, 2), "upload_seconds": round(staged - started, 2),
                  "rows_per_sec": round(ledger["rows"] / total), "progress_events": len(times),
                  "max_gap_ms": round(max(gaps) * 1000) if gaps else None, "state": final["state"],
                  "counts": {k: final[k] for k in expected}, "events_rows": rows, "exact": exact,
                  "peak_rss_kb": {"api": api_rss, "worker": worker_rss},
                  "target_10s": "met" if total <= 10 else "not met"}, indent=1))
sys.exit(0 if exact else 1)
PY
