#!/usr/bin/env bash
# The fetcher on a large feed, end to end: a generated Fever document (FEED_MB, default 100)
# served over HTTP by python's http.server, one fetch cycle of the release eye-fetcher
# (stream, parse, hash, publish every plan as changed), then its wall time and peak RSS.
# Its own database (eye_bench_fetch) and namespace (bench-fetch), both removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
FEED_MB=${FEED_MB:-100}
PORT=${BENCH_FEED_PORT:-8199}
BIN=${CARGO_TARGET_DIR:-target}/release
DIR=$(mktemp -d)
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/eye_bench_fetch
export EYE_AMQP_NAMESPACE=bench-fetch EYE_LOG=info EYE_FETCH_METRICS_ADDR=127.0.0.1:9108
cargo build --release --workspace --bins
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS eye_bench_fetch WITH (FORCE)"
"$BIN/eye-migrate" up >/dev/null
python3 - "$DIR/events" "$FEED_MB" <<'PY'
import sys
path, mb = sys.argv[1], int(sys.argv[2])
block = """<base_plan base_plan_id="{n}" sell_mode="online" title="Camela en concierto">
<plan plan_start_date="2021-06-30T21:00:00" plan_end_date="2021-06-30T22:00:00" plan_id="{n}" sell_from="2020-07-01T00:00:00" sell_to="2021-06-30T20:00:00" sold_out="false">
<zone zone_id="40" capacity="243" price="20.00" name="Platea" numbered="true" />
<zone zone_id="38" capacity="100" price="15.00" name="Grada 2" numbered="false" />
</plan></base_plan>
"""
with open(path, "w") as f:
    f.write("<planList><output>")
    n = written = 0
    while written < mb * 1024 * 1024:
        text = block.format(n=n)
        f.write(text)
        written += len(text)
        n += 1
    f.write("</output></planList>")
print(f"feed: {written / 1e6:.0f} MB, {n} plans")
PY
(cd "$DIR" && exec python3 -m http.server "$PORT" --bind 127.0.0.1 >/dev/null 2>&1) & SERVER=$!
cleanup() {
  kill "$SERVER" "${FETCHER:-}" 2>/dev/null || true
  rm -rf "$DIR"
  rabbitmqctl -q delete_queue bench-fetch.events.ingest >/dev/null 2>&1 || true
  rabbitmqctl -q delete_queue bench-fetch.events.poison >/dev/null 2>&1 || true
  psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS eye_bench_fetch WITH (FORCE)"
}
trap cleanup EXIT
sleep 1
"$BIN/eye-fetcher" --url "http://127.0.0.1:$PORT/events" --interval-secs 1 \
  --max-bytes $((FEED_MB * 2 * 1024 * 1024)) >"$DIR/log" 2>&1 & FETCHER=$!
# Two cycles: the first publishes every plan, the second finds all of them unchanged.
for cycle in 1 2; do
  until [ "$(grep -c -E 'fetched|fetch cycle failed' "$DIR/log")" -ge "$cycle" ]; do
    kill -0 "$FETCHER" 2>/dev/null || { cat "$DIR/log"; exit 1; }
    sleep 0.2
  done
done
python3 - "$DIR/log" "$FEED_MB" <<'PY'
import re, sys
from datetime import datetime
lines = [l for l in open(sys.argv[1]) if "fetched" in l or "cycle failed" in l]
for n, line in enumerate(lines[:2], 1):
    plain = re.sub(r"\x1b\[[0-9;]*m", "", line)
    took = re.search(r"took_ms=(\d+)", plain)
    report = re.search(r"CycleReport \{[^}]*\}", plain)
    ms = int(took.group(1)) if took else 0
    print(f"cycle {n}: {ms / 1000:.1f} s, {int(sys.argv[2]) * 1.048576 / max(ms, 1) * 1000:.1f} MB/s; {report.group(0) if report else plain.strip()}")
PY
echo "eye-fetcher peak RSS over both: $(awk '/VmHWM/ {printf "%.0f MB", $2 / 1024}' "/proc/$FETCHER/status")"
