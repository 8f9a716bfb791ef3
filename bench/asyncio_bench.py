#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The Python reference for corio's core benchmarks: the workloads of bench_core.cpp with
asyncio, and again with uvloop when it is importable.

    python3 asyncio_bench.py [--loop asyncio|uvloop|all] [--repetitions 5] [--json FILE]
    python3 asyncio_bench.py --sleepers N --loop asyncio|uvloop [--gc-off]   (one process per run)

Prints ns per operation for each workload (the median of the repetitions); --json also writes
them, as {"loop": {"workload": {"ns_per_op": median, "runs": [...]}}}. The sleepers mode prints
one JSON line: time from first spawn to last wake-up and peak RSS (VmHWM) per task.

Workloads (named like the C++ benchmarks):
  await_ready     `await ready()` of a coroutine that returns at once
  spawn_join      `await asyncio.create_task(empty())`
  yield_pingpong  two tasks alternating through `await asyncio.sleep(0)` (per switch)
  sleep0          `await asyncio.sleep(1e-9)`: asyncio.sleep(0) is a bare yield that never
                  touches the timer heap, so the timer path needs a positive delay
  post            loop.call_soon_threadsafe(cb) from another thread (per callback run)
"""

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import threading
import time

try:
    import uvloop
except ImportError:  # pragma: no cover - depends on the machine
    uvloop = None


async def ready():
    return 1


async def bench_await_ready(n):
    total = 0
    t0 = time.perf_counter_ns()
    for _ in range(n):
        total += await ready()
    t1 = time.perf_counter_ns()
    assert total == n
    return (t1 - t0) / n


async def empty():
    return None


async def bench_spawn_join(n):
    create_task = asyncio.create_task
    t0 = time.perf_counter_ns()
    for _ in range(n):
        await create_task(empty())
    t1 = time.perf_counter_ns()
    return (t1 - t0) / n


async def bench_yield_pingpong(n):
    state = {"stop": False, "other": 0}

    async def peer():
        while not state["stop"]:
            await asyncio.sleep(0)
            state["other"] += 1

    task = asyncio.create_task(peer())
    await asyncio.sleep(0)  # let the peer start
    t0 = time.perf_counter_ns()
    for _ in range(n):
        await asyncio.sleep(0)
    t1 = time.perf_counter_ns()
    switches = n + state["other"]
    state["stop"] = True
    await task
    return (t1 - t0) / switches


async def bench_sleep0(n):
    sleep = asyncio.sleep
    t0 = time.perf_counter_ns()
    for _ in range(n):
        await sleep(1e-9)
    t1 = time.perf_counter_ns()
    return (t1 - t0) / n


async def bench_post(n):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    count = [0]

    def callback():
        count[0] += 1
        if count[0] == n:
            done.set_result(None)

    def producer():
        call = loop.call_soon_threadsafe
        for _ in range(n):
            call(callback)

    thread = threading.Thread(target=producer)
    t0 = time.perf_counter_ns()
    thread.start()
    await done
    t1 = time.perf_counter_ns()
    thread.join()
    return (t1 - t0) / n


WORKLOADS = {
    "await_ready": (bench_await_ready, 1_000_000),
    "spawn_join": (bench_spawn_join, 200_000),
    "yield_pingpong": (bench_yield_pingpong, 200_000),
    "sleep0": (bench_sleep0, 200_000),
    "post": (bench_post, 200_000),
}


def new_loop(kind):
    if kind == "uvloop":
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run_workloads(kind, repetitions):
    results = {}
    for name, (fn, n) in WORKLOADS.items():
        runs = []
        for _ in range(repetitions):
            loop = new_loop(kind)
            try:
                runs.append(loop.run_until_complete(fn(n)))
            finally:
                loop.close()
        results[name] = {"ns_per_op": statistics.median(runs), "runs": runs, "n": n}
        print(f"{kind:8s} {name:15s} {statistics.median(runs):10.1f} ns/op", flush=True)
    return results


def vm_hwm_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def sleepers(kind, n, sleep_s, gc_off=False):
    loop = new_loop(kind)
    asyncio.set_event_loop(loop)
    state = {"woke": 0, "last": 0}

    async def sleeper(done):
        await asyncio.sleep(sleep_s)
        state["woke"] += 1
        if state["woke"] == n:
            state["last"] = time.perf_counter_ns()
            done.set_result(None)

    async def main():
        done = loop.create_future()
        hwm_before = vm_hwm_kb()
        t0 = time.perf_counter_ns()
        create_task = loop.create_task
        tasks = [create_task(sleeper(done)) for _ in range(n)]
        t_spawned = time.perf_counter_ns()
        await done
        hwm_after = vm_hwm_kb()
        del tasks
        return {
            "runtime": kind + (" (gc off)" if gc_off else ""),
            "tasks": n,
            "sleep_ms": sleep_s * 1000,
            "spawn_ms": (t_spawned - t0) / 1e6,
            "first_spawn_to_last_wake_ms": (state["last"] - t0) / 1e6,
            "hwm_before_kb": hwm_before,
            "hwm_after_kb": hwm_after,
            "bytes_per_task": (hwm_after - hwm_before) * 1024 / n,
        }

    result = loop.run_until_complete(main())
    loop.close()
    print(json.dumps(result), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--loop", default="all", choices=["asyncio", "uvloop", "all"])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--sleepers", type=int, metavar="N",
                        help="run N concurrently sleeping tasks (one loop kind) and exit")
    parser.add_argument("--sleep-ms", type=float, default=100.0)
    parser.add_argument("--gc-off", action="store_true",
                        help="disable the cyclic garbage collector (sleepers mode): with 1M "
                             "live tasks its collections dominate the spawn time")
    args = parser.parse_args()

    if args.sleepers:
        kind = "asyncio" if args.loop == "all" else args.loop
        if kind == "uvloop" and uvloop is None:
            sys.exit("uvloop is not importable")
        if args.gc_off:
            gc.disable()
        sleepers(kind, args.sleepers, args.sleep_ms / 1000, args.gc_off)
        return

    kinds = ["asyncio", "uvloop"] if args.loop == "all" else [args.loop]
    if "uvloop" in kinds and uvloop is None:
        print("uvloop is not importable: skipping it", file=sys.stderr)
        kinds.remove("uvloop")
    figures = {"python": sys.version.split()[0],
               "uvloop": getattr(uvloop, "__version__", None)}
    for kind in kinds:
        figures[kind] = run_workloads(kind, args.repetitions)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()
