#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turns the results bench/run.sh collected into Markdown tables (printed on stdout).

    python3 report.py RESULTS_DIR

RESULTS_DIR holds core.json and asio.json (Google Benchmark JSON with median aggregates),
python.json (asyncio_bench.py --json) and sleepers.jsonl (one JSON line per sleepers run).
Missing pieces (no Boost, no uvloop) show as "n/a".
"""

import json
import os
import statistics
import sys


def load_gbench(path):
    """{benchmark name: ns per operation (median of the repetitions)}"""
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return {}
    with open(path) as f:
        data = json.load(f)
    out = {}
    medians = [b for b in data.get("benchmarks", []) if b.get("aggregate_name") == "median"]
    rows = medians or [b for b in data.get("benchmarks", []) if b.get("run_type") == "iteration"]
    for b in rows:
        name = b.get("run_name", b["name"])
        if name.endswith("/real_time"):
            name = name[: -len("/real_time")]
        if "per_op" in b:
            out[name] = b["per_op"] * 1e9
        elif "items_per_second" in b:
            out[name] = 1e9 / b["items_per_second"]
    return out


def load_python(path):
    if not os.path.exists(path):
        return {}, {}
    with open(path) as f:
        data = json.load(f)
    get = lambda kind: {k: v["ns_per_op"] for k, v in data.get(kind, {}).items()}
    return get("asyncio"), get("uvloop")


def load_sleepers(path):
    runs = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    r = json.loads(line)
                    runs.setdefault(r["runtime"], []).append(r)
    return runs


def ns(v):
    if v is None:
        return "n/a"
    if v >= 10_000:
        return f"{v / 1000:,.1f} µs"
    return f"{v:,.1f} ns" if v < 100 else f"{v:,.0f} ns"


def ratio(reference, corio):
    """How many times faster corio is than the reference (reference time / corio time)."""
    if reference is None or corio is None or corio == 0:
        return "n/a"
    return f"{reference / corio:,.1f}x"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    d = sys.argv[1]
    core = load_gbench(os.path.join(d, "core.json"))
    asio = load_gbench(os.path.join(d, "asio.json"))
    asyncio_, uvloop_ = load_python(os.path.join(d, "python.json"))
    sleepers = load_sleepers(os.path.join(d, "sleepers.jsonl"))

    rows = [
        ("1. await a ready task (per await)", "BM_corio_await_ready", "BM_asio_await_ready",
         "await_ready"),
        ("2. spawn + join an empty task", "BM_corio_spawn_join", "BM_asio_spawn_join",
         "spawn_join"),
        ("3. yield ping-pong (per switch)", "BM_corio_yield_pingpong", "BM_asio_yield_pingpong",
         "yield_pingpong"),
        ("4. sleep_for(0) round trip", "BM_corio_sleep0", "BM_asio_timer0", "sleep0"),
        ("6. post() from another thread", "BM_corio_post", "BM_asio_post", "post"),
    ]
    print("### Primitives (median ns per operation; ratios = other's time / corio's time)\n")
    print("| workload | corio | Asio | asyncio | uvloop | vs Asio | vs asyncio | vs uvloop |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, c, a, p in rows:
        cv, av, pv, uv = core.get(c), asio.get(a), asyncio_.get(p), uvloop_.get(p)
        print(f"| {label} | {ns(cv)} | {ns(av)} | {ns(pv)} | {ns(uv)} | {ratio(av, cv)} | "
              f"{ratio(pv, cv)} | {ratio(uv, cv)} |")

    print("\n### 5. NOP through the loop vs raw liburing (median ns per NOP)\n")
    print("| variant | corio | raw liburing, corio's flags | raw liburing, no flags | "
          "corio throughput / raw (same flags) |")
    print("|---|---:|---:|---:|---:|")
    for k, label in ((1, "single (K=1, one io_uring_enter per NOP)"),
                     (64, "batched (K=64 tasks / batches of 64)")):
        cv = core.get(f"BM_corio_nop/K:{k}")
        rv = core.get(f"BM_raw_nop/K:{k}/flags:1")
        r0 = core.get(f"BM_raw_nop/K:{k}/flags:0")
        tput = f"{rv / cv:.2f}x" if cv and rv else "n/a"
        print(f"| {label} | {ns(cv)} | {ns(rv)} | {ns(r0)} | {tput} |")

    print("\n### 7. Concurrently sleeping tasks (median of the runs)\n")
    print("| runtime | runs | tasks | sleep | spawn all | first spawn → last wake-up | "
          "peak RSS per task |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for rt in ("corio", "asio", "asyncio", "asyncio (gc off)", "uvloop", "uvloop (gc off)"):
        runs = sleepers.get(rt)
        if not runs:
            print(f"| {rt} | 0 | | | n/a | n/a | n/a |")
            continue
        med = lambda key: statistics.median(r[key] for r in runs)
        print(f"| {rt} | {len(runs)} | {runs[0]['tasks']:,} | {runs[0]['sleep_ms']:g} ms | "
              f"{med('spawn_ms'):,.0f} ms | {med('first_spawn_to_last_wake_ms'):,.0f} ms | "
              f"{med('bytes_per_task'):,.0f} B |")


if __name__ == "__main__":
    main()
