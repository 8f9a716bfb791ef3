#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The tables of the hand-off benchmarks (bench/handoff.sh) from the programs' JSON lines.

    handoff_report.py RESULTS.jsonl

Per case and implementation: the median over the rounds, with the range in parentheses. The
ratios are medians of per-round ratios (the two programs of a ratio ran in the same round,
seconds apart, so slow drift of the machine cancels out), with their range; a ratio above 1
means corio did more per second. Runs disturbed by other processes were repeated (handoff.sh):
the report takes each round's undisturbed attempt. CPU is the process's user + system time (every thread) over
the timed part: "cores" is CPU time / wall time, "per CPU-s" the operations per CPU-second.
"""
import json
import statistics
import sys

lines = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
# A run that other processes disturbed was repeated: per case, implementation and round, keep
# the last undisturbed attempt, or the last attempt when all were disturbed.
by = {}
attempts = {}
for r in lines:
    key = (r["label"], r["impl"], r["round"])
    attempts[key] = attempts.get(key, 0) + 1
    if key not in by or not r.get("disturbed") or by[key].get("disturbed"):
        by[key] = r
runs = list(by.values())
rounds = sorted({r["round"] for r in runs})


def of(label, impl):
    return [r for r in runs if r["label"] == label and r["impl"] == impl]


def med(rs, f):
    return statistics.median(f(r) for r in rs)


def spread(rs, f, fmt):
    vals = [f(r) for r in rs]
    return f"{fmt(statistics.median(vals))} ({fmt(min(vals))}–{fmt(max(vals))})"


def ratio(label_a, impl_a, label_b, impl_b):
    rs = [by[(label_a, impl_a, rd)]["per_s"] / by[(label_b, impl_b, rd)]["per_s"]
          for rd in rounds if (label_a, impl_a, rd) in by and (label_b, impl_b, rd) in by]
    if not rs:
        return "–"
    return f"{statistics.median(rs):.2f}x ({min(rs):.2f}–{max(rs):.2f})"


def millions(v):
    return f"{v / 1e6:.2f} M"


def thousands(v):
    return f"{v / 1e3:.1f} k"


def ns(v):
    return f"{v:,.0f} ns" if v >= 100 else f"{v:.1f} ns"


def detail_rows(label, impls, rate_fmt):
    for impl in impls:
        rs = of(label, impl)
        if not rs:
            continue
        repeated = sum(attempts[(label, impl, r["round"])] - 1 for r in rs)
        disturbed = sum(1 for r in rs if r.get("disturbed"))
        count = f"{len(rs)}" + (f" ({repeated} repeated)" if repeated else "") + (
            f", {disturbed} disturbed" if disturbed else "")
        print(f"| {label} | {impl} | {count} | {spread(rs, lambda r: r['per_s'], rate_fmt)} "
              f"| {ns(med(rs, lambda r: r['ns_per_op']))} "
              f"| {med(rs, lambda r: r['cpu_s'] / r['wall_s']):.2f} "
              f"| {rate_fmt(med(rs, lambda r: r['ops'] / r['cpu_s']))} "
              f"| {med(rs, lambda r: r['vcsw'] * 1000 / r['ops']):.1f} |")


detail_header = ("| case | impl | runs | per second | per op | CPU cores | per CPU-s "
                 "| sleeps per 1k ops |\n|---|---|---:|---:|---:|---:|---:|---:|")

channels = sorted({r["label"] for r in runs if r["case"] == "channel"})
if channels:
    print("### Channel throughput across two threads (messages/s, median of the rounds)\n")
    print("| case | corio | Go | Asio | corio/Go | corio/Asio |")
    print("|---|---:|---:|---:|---:|---:|")
    for label in channels:
        cells = [millions(med(of(label, i), lambda r: r["per_s"])) if of(label, i) else "–"
                 for i in ("corio", "go", "asio")]
        print(f"| {label} | {' | '.join(cells)} | {ratio(label, 'corio', label, 'go')} "
              f"| {ratio(label, 'corio', label, 'asio')} |")
    print()

if any(r["case"] == "spawn" for r in runs):
    print("### spawn_on round trip, loop 0 -> loop 1 -> loop 0 (median of the rounds)\n")
    print("| impl | round trips/s | per round trip | corio/Asio |")
    print("|---|---:|---:|---:|")
    for impl in ("corio", "asio"):
        rs = of("spawn", impl)
        if rs:
            print(f"| {impl} | {thousands(med(rs, lambda r: r['per_s']))} "
                  f"| {ns(med(rs, lambda r: r['ns_per_op']))} "
                  f"| {ratio('spawn', 'corio', 'spawn', 'asio') if impl == 'corio' else ''} |")
    print()

pools = sorted({r["label"] for r in runs if r["case"] == "pool"})
if pools:
    iters = sorted({r["work_iters"] for r in runs if r["case"] == "pool"})
    print("### Worker pool, CPU-bound items through a channel (items/s, median of the rounds)\n")
    print(f"Busy-loop iterations per item: {', '.join(map(str, iters))}.\n")
    print("| impl | " + " | ".join(f"{p} items/s" for p in pools) +
          " | pool-2 / pool-1 | work split (pool-2, median) |")
    print("|---|" + "---:|" * len(pools) + "---:|---|")
    for impl in ("corio", "go"):
        if not any(of(p, impl) for p in pools):
            continue
        cells = [thousands(med(of(p, impl), lambda r: r["per_s"])) if of(p, impl) else "–"
                 for p in pools]
        split = "–"
        if of("pool-2", impl):
            per = [sorted(r["per_worker"]) for r in of("pool-2", impl)]
            split = " / ".join(str(statistics.median(w[i] for w in per))
                               for i in range(len(per[0])))
        print(f"| {impl} | {' | '.join(cells)} | {ratio('pool-2', impl, 'pool-1', impl)} "
              f"| {split} |")
    if of("pool-2", "corio") and of("pool-2", "go"):
        print(f"\ncorio/Go: pool-1 {ratio('pool-1', 'corio', 'pool-1', 'go')}, "
              f"pool-2 {ratio('pool-2', 'corio', 'pool-2', 'go')}.")
    print()

print("### Every run (median, with the range of the rounds)\n")
print(detail_header)
for label in channels:
    detail_rows(label, ("corio", "go", "asio"), millions)
detail_rows("spawn", ("corio", "asio"), thousands)
for label in pools:
    detail_rows(label, ("corio", "go"), thousands)
print("\n(runs: the rounds, with the runs repeated because other processes took more than "
      "DISTURBED cores meanwhile, and those still disturbed after the retries; sleeps: voluntary "
      "context switches, a thread blocking: a loop or a Go thread that went to sleep and had to "
      "be woken)")
