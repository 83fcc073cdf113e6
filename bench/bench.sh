#!/usr/bin/env bash
# `make bench`: the ingestion path's figures on this machine.
#
# 1. Builds release binaries, starts the API (with the benchmark-only /bench/noop route) and
#    one worker against their own database (eye_bench) and broker namespace (bench).
# 2. Ceiling: wrk at full speed on /bench/noop (same request, same auth, nothing published)
#    and on /events; prints both and their ratio.
# 3. Rate search: the goose load test at rising fixed rates (STEP_SECS each) until p99 >= the
#    target, a request fails, or the achieved rate falls short; keeps the highest passing rate.
# 4. Hold: that rate for HOLD_SECS, with accepted/s, stored/s, p50/p99/p999, CPU and peak RSS
#    of each process, and the loss ledger (lost/duplicated).
#
# Knobs (environment): RATES, STEP_SECS, HOLD_SECS, USERS, P99_MS, CONNS.
set -euo pipefail
cd "$(dirname "$0")/.."

RATES=${RATES:-"1000 2500 5000 7500 10000 12500 15000 17500 20000 25000 30000"}
STEP_SECS=${STEP_SECS:-10}
HOLD_SECS=${HOLD_SECS:-60}
USERS=${USERS:-256}
P99_MS=${P99_MS:-10}
CONNS=${CONNS:-64}
PORT=${BENCH_PORT:-8100}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
BIN=$TARGET_DIR/release
OUT=$TARGET_DIR/bench
mkdir -p "$OUT"

export DATABASE_URL=postgres://postgres@127.0.0.1:5432/eye_bench
export EYE_AMQP_NAMESPACE=bench EYE_LOG=warn EYE_HTTP_ADDR=127.0.0.1:$PORT
export EYE_WORKER_METRICS_ADDR=127.0.0.1:9109 EYE_BENCH_NOOP_ROUTE=true
HOST=http://127.0.0.1:$PORT

command -v wrk >/dev/null || { echo "installing wrk (Debian package)"; apt-get install -y wrk >/dev/null; }
cargo build --release --workspace --bins
psql -h 127.0.0.1 -U postgres -qc "DROP DATABASE IF EXISTS eye_bench WITH (FORCE)"
"$BIN/eye-migrate" up >/dev/null

"$BIN/eye-api" serve >"$OUT/api.log" 2>&1 &
API=$!
"$BIN/eye-worker" >"$OUT/worker.log" 2>&1 &
WORKER=$!
trap 'kill $API $WORKER 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -sf "$HOST/readyz" >/dev/null && break; sleep 0.1; done
sleep 0.5
for pid in $API $WORKER; do
  kill -0 "$pid" 2>/dev/null || { echo "a service did not start; see $OUT/api.log and $OUT/worker.log"; exit 1; }
done
EYE_TOKEN=$("$BIN/eye-api" token --app bench | tail -1)
export EYE_TOKEN

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
peak_rss_mb() { awk '/VmHWM/ {printf "%.0f", $2 / 1024}' "/proc/$1/status"; }
group_ticks() { # total CPU ticks of every process whose command matches $1
  local total=0 pid
  for pid in $(pgrep -f "$1"); do total=$((total + $(cpu_ticks "$pid" 2>/dev/null || echo 0))); done
  echo $total
}
stored() { psql -h 127.0.0.1 -U postgres eye_bench -Atc "SELECT count(*) FROM events"; }

echo "== ceiling: wrk -c$CONNS, 15 s each, single-event POST"
export TOKEN=$EYE_TOKEN
rps() {
  local out
  out=$(wrk -t2 -c"$CONNS" -d15s --latency -s bench/post.lua "$HOST$1")
  echo "$out" >>"$OUT/wrk.txt"
  if grep -q Non-2xx <<<"$out"; then echo "$1 answered errors: see $OUT/wrk.txt" >&2; exit 1; fi
  awk '/Requests\/sec/ {print $2}' <<<"$out"
}
noop=$(rps /bench/noop)
sleep 2
events=$(rps /events)
echo "noop (HTTP + auth + checks, nothing published): $noop req/s"
echo "events (published, confirmed):                  $events req/s"
echo "ratio events/noop: $(awk -v a="$events" -v b="$noop" 'BEGIN {printf "%.2f", a / b}')"
sleep 5

loadtest() { # rate secs -> prints the summary and ledger lines
  "$BIN/eye-loadtest" --host "$HOST" --rate "$1" --duration "$2" --users "$USERS" \
    --report-dir "$OUT/goose-$1" 2>/dev/null | grep -E '^(POST|accepted=)'
}

echo "== rate search: ${STEP_SECS}s steps, pass = p99 < ${P99_MS} ms, 0 failed, >= 90% of the rate"
best=0
for rate in $RATES; do
  line=$(loadtest "$rate" "$STEP_SECS" | head -1)
  achieved=$(sed -E 's/.* ([0-9.]+) req\/s.*/\1/' <<<"$line")
  p99=$(sed -E 's/.*p99 ([0-9.]+) ms, p999.*/\1/' <<<"$line" | head -1)
  failed=$(sed -E 's/.*\(([0-9]+) failed\).*/\1/' <<<"$line")
  pass=$(awk -v a="$achieved" -v r="$rate" -v p="$p99" -v f="$failed" -v t="$P99_MS" \
    'BEGIN {print (f == 0 && p < t && a >= 0.9 * r) ? "pass" : "fail"}')
  echo "rate $rate: achieved $achieved req/s, p99 $p99 ms, failed $failed -> $pass"
  [ "$pass" = pass ] || break
  best=$rate
done
[ "$best" -gt 0 ] || { echo "no rate passed"; exit 1; }

echo "== hold: $best req/s for ${HOLD_SECS}s"
a0=$(cpu_ticks $API); w0=$(cpu_ticks $WORKER)
r0=$(group_ticks beam.smp); p0=$(group_ticks "postgres: ")
s0=$(stored); t0=$(date +%s.%N)
hold=$(loadtest "$best" "$HOLD_SECS")
t1=$(date +%s.%N); s1=$(stored)
a1=$(cpu_ticks $API); w1=$(cpu_ticks $WORKER)
r1=$(group_ticks beam.smp); p1=$(group_ticks "postgres: ")
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')
hz=$(getconf CLK_TCK)
pct() { awk -v d="$(($2 - $1))" -v hz="$hz" -v s="$secs" 'BEGIN {printf "%.0f%%", 100 * d / hz / s}'; }
echo "$hold"
echo "stored/s over the hold and its drain: $(awk -v d="$((s1 - s0))" -v s="$secs" 'BEGIN {printf "%.0f", d / s}')"
printf '%-10s %-22s %s\n' process "CPU (of one core)" "peak RSS"
printf '%-10s %-22s %s MB\n' api "$(pct "$a0" "$a1")" "$(peak_rss_mb $API)"
printf '%-10s %-22s %s MB\n' worker "$(pct "$w0" "$w1")" "$(peak_rss_mb $WORKER)"
printf '%-10s %-22s\n' rabbitmq "$(pct "$r0" "$r1")"
printf '%-10s %-22s\n' postgres "$(pct "$p0" "$p1")"
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo), $(lscpu | awk -F: '/Model name/ {gsub(/^ +/, "", $2); print $2}')"
