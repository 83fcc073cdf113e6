#!/usr/bin/env python3
"""The disk's floor for the fixed-rate table of `make bench`: what one durable write costs on
the filesystem that holds RabbitMQ's and PostgreSQL's data. A quorum queue confirms a message
once its write-ahead log is fsynced, so no confirmed publish is faster than this, and a stall
here delays every confirm behind it. Appends 4 KiB and fdatasyncs it at a fixed cadence (one
at a time, like a WAL writer whose next batch waits for the current sync) in DIR, then removes
the file.

usage: fsync_probe.py DIR SECONDS [PER_SECOND]
  ->  "fdatasync p50 p99 p999 max (ms) and the share of wall time spent syncing"
"""

import os
import sys
import time

where, secs = sys.argv[1], float(sys.argv[2])
per_second = int(sys.argv[3]) if len(sys.argv) > 3 else 500
path = os.path.join(where, f"fsync-probe-{os.getpid()}")
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
block = b"x" * 4096
took = []
start = time.perf_counter()
next_at = start
try:
    while time.perf_counter() - start < secs:
        now = time.perf_counter()
        if now < next_at:
            time.sleep(next_at - now)
        os.write(fd, block)
        t0 = time.perf_counter()
        os.fdatasync(fd)
        took.append((time.perf_counter() - t0) * 1000)
        next_at += 1.0 / per_second
finally:
    os.close(fd)
    os.unlink(path)

took.sort()


def pct(p):
    return took[min(len(took) - 1, int(len(took) * p))]


busy = sum(took) / 1000 / (time.perf_counter() - start)
print(
    f"fdatasync of 4 KiB: p50 {pct(0.5):.2f} ms, p99 {pct(0.99):.2f} ms, p999 {pct(0.999):.2f} ms,"
    f" max {took[-1]:.2f} ms over {len(took)} syncs; syncing {100 * busy:.0f}% of the time"
)
