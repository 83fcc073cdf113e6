"""Reads oha's JSON report on stdin and prints one line for bench.sh:
achieved-rps p50-ms p99-ms p999-ms ok(202) non-202 errors (requests cut at the deadline
are not errors: the load simply stopped)."""
import json
import sys

report = json.load(sys.stdin)
summary, pct = report["summary"], report["latencyPercentiles"]
codes = {int(k): v for k, v in report["statusCodeDistribution"].items()}
errors = sum(
    v for k, v in (report.get("errorDistribution") or {}).items() if "deadline" not in k
)


def ms(seconds):
    return 1000 * (seconds or 0)


ok = codes.get(202, 0)
other = sum(v for k, v in codes.items() if k != 202)
print(
    f"{summary['requestsPerSec']:.0f} {ms(pct['p50']):.2f} {ms(pct['p99']):.2f} "
    f"{ms(pct['p99.9']):.2f} {ok} {other} {errors}"
)
