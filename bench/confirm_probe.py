#!/usr/bin/env python3
"""The broker's own floor for the fixed-rate table of `make bench`: persistent 400-byte messages
into a fresh quorum queue at a fixed rate, one at a time, each awaiting its confirm (pika from
PyPI). Prints two distributions of the same run:

- per message: publish to confirm (what a probe that only times each publish reports);
- open loop: intended send time to confirm, i.e. coordinated-omission corrected like oha's
  `--latency-correction`: a message that had to wait behind a slow confirm counts its wait.
  This is the latency a client sending at that rate would see from the broker alone.

usage: confirm_probe.py RATE SECONDS
  ->  "RATE per-msg p50 p99 max open-loop p50 p99 p999 max achieved-rate" (ms, msg/s)
"""

import sys
import time

import pika

rate, secs = int(sys.argv[1]), int(sys.argv[2])
conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1"))
ch = conn.channel()
queue = "eye-bench-confirm-probe"
ch.queue_delete(queue)
ch.queue_declare(queue, durable=True, arguments={"x-queue-type": "quorum"})
ch.confirm_delivery()
body = b"x" * 400
props = pika.BasicProperties(delivery_mode=2)
per_msg, open_loop = [], []
interval = 1.0 / rate
t_next = time.perf_counter()
end = t_next + secs
while time.perf_counter() < end:  # a broker that cannot keep up ends the run anyway
    now = time.perf_counter()
    if now < t_next:
        time.sleep(t_next - now)
    t0 = time.perf_counter()
    ch.basic_publish("", queue, body, props, mandatory=True)
    t1 = time.perf_counter()
    per_msg.append((t1 - t0) * 1000)
    open_loop.append((t1 - t_next) * 1000)
    t_next += interval
ch.queue_delete(queue)
conn.close()


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


print(
    f"{rate} {pct(per_msg, 0.5):.2f} {pct(per_msg, 0.99):.2f} {max(per_msg):.2f}"
    f" {pct(open_loop, 0.5):.2f} {pct(open_loop, 0.99):.2f} {pct(open_loop, 0.999):.2f}"
    f" {max(open_loop):.2f} {len(per_msg) / secs:.0f}"
)
