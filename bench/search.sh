#!/usr/bin/env bash
# `/search` latency with 100,000 stored plans: release api against its own database
# (eye_bench_search), seeded by bench/search_seed.sql, then oha at a fixed rate on a one-day
# and a one-week window; then the open range (no bounds: all 90,000 plans ever online,
# streamed a page at a time), OPEN_REQS requests OPEN_CONNS at a time (curl), with the api's
# peak RSS before and after. Knobs: RATE, SECS, CONNS; OPEN_REQS, OPEN_CONNS; WINDOWS=0 skips
# the windows (and oha).
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-200}
SECS=${SECS:-20}
CONNS=${CONNS:-16}
PORT=${BENCH_PORT:-8101}
BIN=${CARGO_TARGET_DIR:-target}/release
# A run on another BENCH_PORT gets its own database, so two runs never drop each other's.
DB=eye_bench_search${BENCH_PORT:+_$BENCH_PORT}
export DATABASE_URL=postgres://postgres@127.0.0.1:5432/$DB
export EYE_AMQP_NAMESPACE=bench-search-$PORT EYE_LOG=warn EYE_HTTP_ADDR=127.0.0.1:$PORT EYE_METRICS_ADDR=127.0.0.1:0
cargo build --release --workspace --bins
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
"$BIN/eye-migrate" up >/dev/null
psql -h 127.0.0.1 -U postgres -q "$DB" -f bench/search_seed.sql
"$BIN/eye-api" serve & API=$!
trap 'kill $API' EXIT
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break; sleep 0.2; done
[ "${WINDOWS:-1}" = 0 ] || command -v oha >/dev/null || cargo install oha --locked
[ "${WINDOWS:-1}" = 0 ] || for window in "2021-06-01T00:00:00&ends_at=2021-06-02T00:00:00" "2021-06-01T00:00:00&ends_at=2021-06-08T00:00:00"; do
  url="http://127.0.0.1:$PORT/search?starts_at=$window"
  echo "$url: $(curl -s "$url" | grep -o '"id"' | wc -l) plans"
  oha -q "$RATE" -z "${SECS}s" -c "$CONNS" --latency-correction --no-tui "$url" \
    | grep -E "Requests/sec|Success rate|50.00%|99.00%|99.90%|\[200\]"
done

# The open range: one request's size and times (first byte: the first page is read before
# the status), then OPEN_REQS requests OPEN_CONNS at a time, each's total time. VmHWM is the
# api's peak RSS: it grows with the pages in flight, not with the answer.
OPEN_REQS=${OPEN_REQS:-20}
OPEN_CONNS=${OPEN_CONNS:-4}
hwm() { awk '/VmHWM/ {print $2 " kB"}' "/proc/$API/status"; }
url="http://127.0.0.1:$PORT/search"
echo "api peak RSS before the open range: $(hwm)"
echo "$url: $(curl -s "$url" | grep -o '"id"' | wc -l) plans"
curl -s -o /dev/null -w "$url: %{size_download} bytes, first byte %{time_starttransfer} s, all %{time_total} s\n" "$url"
seq "$OPEN_REQS" | xargs -P "$OPEN_CONNS" -I{} curl -s -o /dev/null -w "%{http_code} %{time_total}\n" "$url" \
  | sort -k2 -n | awk '{ s[NR] = $2; ok += ($1 == 200) } END {
      printf "%d requests, %d at a time: %d answered 200; total time p50 %.2f s, max %.2f s\n",
        NR, '"$OPEN_CONNS"', ok, s[int((NR + 1) / 2)], s[NR] }'
echo "api peak RSS after the open range: $(hwm)"
