#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The tables of the echo benchmarks (bench/echo.sh) from the JSON lines of echo_load.

    echo_report.py RESULTS.jsonl [SERVER_CPU=0] [LOAD_CPU=1]

Per case and server: medians over the rounds. The ratios are medians of per-round ratios (the
two servers of a ratio ran in the same round, seconds apart, so slow drift of the machine
cancels out), with the range of the per-round ratios in parentheses.
"""
import json
import statistics
import sys

path = sys.argv[1]
server_cpu = int(sys.argv[2]) if len(sys.argv) > 2 else 0
load_cpu = int(sys.argv[3]) if len(sys.argv) > 3 else 1
runs = [json.loads(line) for line in open(path) if line.strip()]
cases = sorted({(r["conns"], r["size"]) for r in runs}, key=lambda c: (c[1], c[0]))
servers = [s for s in ["uring", "uring-wait1", "corio", "corio-epoll", "asio"]
           if any(r["server"] == s for r in runs)]
rate = {(r["server"], r["conns"], r["size"], r["round"]): r["msgs_per_s"] for r in runs}
rounds = sorted({r["round"] for r in runs}, key=int)


def size_name(size):
    return f"{size // 1024} KiB" if size >= 1024 else f"{size} B"


def med(rs, f):
    return statistics.median(f(r) for r in rs)


def ratio(a, b, conns, size):
    rs = [rate[(a, conns, size, rd)] / rate[(b, conns, size, rd)] for rd in rounds
          if (a, conns, size, rd) in rate and (b, conns, size, rd) in rate]
    if not rs:
        return "–"
    return f"{statistics.median(rs):.2f}x ({min(rs):.2f}–{max(rs):.2f})"


print("| case | server | runs | msgs/s | p50 | p99 | server CPU | load CPU | server CPU µs/msg |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
for conns, size in cases:
    for s in servers:
        rs = [r for r in runs if r["server"] == s and r["conns"] == conns and r["size"] == size]
        if not rs:
            continue
        print(f"| {conns} x {size_name(size)} | {s} | {len(rs)} "
              f"| {med(rs, lambda r: r['msgs_per_s']):,.0f} "
              f"| {med(rs, lambda r: r['p50_us']):.1f} µs | {med(rs, lambda r: r['p99_us']):.1f} µs "
              f"| {med(rs, lambda r: r['cpu_busy'][server_cpu]):.0%} "
              f"| {med(rs, lambda r: r['cpu_busy'][load_cpu]):.0%} "
              f"| {med(rs, lambda r: r['cpu_busy'][server_cpu] / r['msgs_per_s'] * 1e6):.2f} |")
print()
pairs = [("corio", "uring"), ("corio", "asio"), ("uring", "asio"), ("uring-wait1", "uring"),
         ("corio-epoll", "asio"), ("corio", "corio-epoll")]
pairs = [p for p in pairs if p[0] in servers and p[1] in servers]
print("| case | " + " | ".join(f"{a}/{b} msgs/s" for a, b in pairs) + " |")
print("|---|" + "---:|" * len(pairs))
for conns, size in cases:
    print(f"| {conns} x {size_name(size)} | "
          + " | ".join(ratio(a, b, conns, size) for a, b in pairs) + " |")
