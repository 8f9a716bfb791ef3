#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The Python reference for corio's benchmarks: the workloads of bench_core.cpp and
bench_sync.cpp with asyncio, and again with uvloop when it is importable.

    python3 asyncio_bench.py [--loop asyncio|uvloop|all] [--group core|sync|all]
                             [--repetitions 5] [--json FILE] [--only NAME,...]
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

The concurrency toolkit (bench_sync.cpp, issue 3):
  gather            asyncio.gather(*[empty() for _ in range(1000)]) (per task)
  gather_window20   the same, each coroutine wrapped in `async with Semaphore(20)` (per task)
  sem_uncontended   `await sem.acquire(); sem.release()` on an idle Semaphore(20) (per pair)
  sem_contended     100 tasks, `async with sem: await asyncio.sleep(0)` on Semaphore(20)
                    (per acquire)
  mutex_handoff_2   2 tasks (and mutex_handoff_10: 10), `async with lock: await
                    asyncio.sleep(0)` on one asyncio.Lock (per lock)
  queue_5x5         asyncio.Queue(100), 5 producers and 5 consumers, 10,000 items (per item)
  queue_1x1         the same with one producer and one consumer
  rate_try_ok       RateLimiter.try_acquire() that always succeeds (a huge rate)
  rate_try_full     RateLimiter.try_acquire() on a full window (always fails)
  rate_try_*_vclock the same two on a virtual clock advanced 1 ns per call (no clock read)
  rate_acquire_100  10 tasks acquiring from RateLimiter(100 per 1 ms) on a virtual clock
                    (rate_acquire_1: 1 per 1 ms, every acquire waits)
  await_plain       `await ready()` (the baseline of the timeout rows; = await_ready)
  wait_for          `await asyncio.wait_for(ready(), 1)`
  timeout_cm        `async with asyncio.timeout(1): await ready()` (Python 3.11+)
"""

import argparse
import asyncio
import collections
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


# --- the concurrency toolkit (issue 3) ---------------------------------------------------------

GATHER_WIDTH = 1000


async def bench_gather(n):
    gather = asyncio.gather
    rounds = n // GATHER_WIDTH
    t0 = time.perf_counter_ns()
    for _ in range(rounds):
        await gather(*[empty() for _ in range(GATHER_WIDTH)])
    t1 = time.perf_counter_ns()
    return (t1 - t0) / (rounds * GATHER_WIDTH)


async def bench_gather_window20(n):
    gather = asyncio.gather
    sem = asyncio.Semaphore(20)

    async def limited():
        async with sem:
            return await empty()

    rounds = n // GATHER_WIDTH
    t0 = time.perf_counter_ns()
    for _ in range(rounds):
        await gather(*[limited() for _ in range(GATHER_WIDTH)])
    t1 = time.perf_counter_ns()
    return (t1 - t0) / (rounds * GATHER_WIDTH)


async def bench_sem_uncontended(n):
    sem = asyncio.Semaphore(20)
    acquire, release = sem.acquire, sem.release
    t0 = time.perf_counter_ns()
    for _ in range(n):
        await acquire()
        release()
    t1 = time.perf_counter_ns()
    return (t1 - t0) / n


async def bench_sem_contended(n, tasks=100, permits=20):
    sem = asyncio.Semaphore(permits)
    sleep = asyncio.sleep
    per_task = n // tasks

    async def worker():
        for _ in range(per_task):
            async with sem:
                await sleep(0)  # hold the permit across a suspension: others queue up

    t0 = time.perf_counter_ns()
    await asyncio.gather(*[worker() for _ in range(tasks)])
    t1 = time.perf_counter_ns()
    return (t1 - t0) / (per_task * tasks)


async def bench_mutex_handoff(n, tasks):
    lock = asyncio.Lock()
    sleep = asyncio.sleep
    per_task = n // tasks

    async def worker():
        for _ in range(per_task):
            async with lock:
                await sleep(0)  # hold it across a suspension: the others queue behind

    t0 = time.perf_counter_ns()
    await asyncio.gather(*[worker() for _ in range(tasks)])
    t1 = time.perf_counter_ns()
    return (t1 - t0) / (per_task * tasks)


async def bench_queue(n, producers, consumers, capacity=100):
    q = asyncio.Queue(capacity)

    async def producer(count):
        put = q.put
        for i in range(count):
            await put(i)

    async def consumer(count):
        get = q.get
        total = 0
        for _ in range(count):
            total += await get()
        return total

    t0 = time.perf_counter_ns()
    await asyncio.gather(*[producer(n // producers) for _ in range(producers)],
                         *[consumer(n // consumers) for _ in range(consumers)])
    t1 = time.perf_counter_ns()
    return (t1 - t0) / n


class VirtualClock:
    """Time in integer nanoseconds (exact, unlike float seconds) that moves only when a waiter
    asks it to: `sleep(d)` jumps the clock to now + d (never backwards) and yields once, so a
    rate limiter's waits cost no real time."""

    def __init__(self):
        self.t = 0

    def now(self):
        return self.t

    async def sleep(self, delay):
        target = self.t + delay
        if target > self.t:
            self.t = target
        await asyncio.sleep(0)


class RateLimiter:
    """The guide's exercise, done the straightforward way: a sliding log of the completion times
    of the last `rate` acquisitions; an acquisition completes once fewer than `rate` of them are
    younger than `period`. `clock`/`sleep` default to the loop's time and asyncio.sleep (the
    period is in the clock's unit)."""

    def __init__(self, rate=10, period=1.0, clock=None, sleep=None):
        self.rate = rate
        self.period = period
        self.clock = clock or asyncio.get_running_loop().time
        self.sleep = sleep or asyncio.sleep
        self.log = collections.deque()

    def try_acquire(self):
        now = self.clock()
        log = self.log
        edge = now - self.period
        while log and log[0] <= edge:
            log.popleft()
        if len(log) < self.rate:
            log.append(now)
            return True
        return False

    async def acquire(self):
        while not self.try_acquire():
            await self.sleep(self.log[0] + self.period - self.clock())

    async def __aenter__(self):
        await self.acquire()
        return self

    async def __aexit__(self, *exc):
        return False


async def bench_rate_try(n, succeed, virtual=False):
    """virtual=False: time.monotonic() per call (the real thing); True: a VirtualClock advanced
    by 1 ns per call, i.e. the limiter's own logic without a clock read."""
    vclock = VirtualClock()
    if virtual:
        clock, second, hour = vclock.now, 1_000_000_000, 3600 * 1_000_000_000
    else:
        clock, second, hour = time.monotonic, 1.0, 3600.0
    if succeed:
        # A "huge rate": 65,536 per ns; every stamp leaves the window at once, like corio's.
        lim = RateLimiter(1 << 16, second / 1_000_000_000, clock=clock)
    else:
        lim = RateLimiter(1, hour, clock=clock)
        assert lim.try_acquire()
    try_acquire = lim.try_acquire
    ok = 0
    t0 = time.perf_counter_ns()
    if virtual:
        for _ in range(n):
            vclock.t += 1
            if try_acquire():
                ok += 1
    else:
        for _ in range(n):
            if try_acquire():
                ok += 1
    t1 = time.perf_counter_ns()
    assert ok == (n if succeed else 0), ok
    return (t1 - t0) / n


async def bench_rate_acquire(n, rate, tasks=10):
    clock = VirtualClock()
    lim = RateLimiter(rate, 1_000_000, clock=clock.now, sleep=clock.sleep)  # per 1 ms, in ns
    per_task = n // tasks

    async def worker():
        for _ in range(per_task):
            async with lim:
                pass

    t0 = time.perf_counter_ns()
    await asyncio.gather(*[worker() for _ in range(tasks)])
    t1 = time.perf_counter_ns()
    acquires = per_task * tasks
    # Sanity: the virtual time must be about one period per `rate` acquisitions.
    assert clock.t >= (acquires // rate - 1) * 1_000_000, (clock.t, acquires, rate)
    return (t1 - t0) / acquires


async def bench_wait_for(n):
    wait_for = asyncio.wait_for
    total = 0
    t0 = time.perf_counter_ns()
    for _ in range(n):
        total += await wait_for(ready(), 1)
    t1 = time.perf_counter_ns()
    assert total == n
    return (t1 - t0) / n


async def bench_timeout_cm(n):
    timeout = asyncio.timeout
    total = 0
    t0 = time.perf_counter_ns()
    for _ in range(n):
        async with timeout(1):
            total += await ready()
    t1 = time.perf_counter_ns()
    assert total == n
    return (t1 - t0) / n


WORKLOADS = {
    "await_ready": (bench_await_ready, 1_000_000),
    "spawn_join": (bench_spawn_join, 200_000),
    "yield_pingpong": (bench_yield_pingpong, 200_000),
    "sleep0": (bench_sleep0, 200_000),
    "post": (bench_post, 200_000),
}

SYNC_WORKLOADS = {
    "gather": (bench_gather, 100_000),
    "gather_window20": (bench_gather_window20, 50_000),
    "sem_uncontended": (bench_sem_uncontended, 500_000),
    "sem_contended": (bench_sem_contended, 100_000),
    "mutex_handoff_2": (lambda n: bench_mutex_handoff(n, 2), 100_000),
    "mutex_handoff_10": (lambda n: bench_mutex_handoff(n, 10), 100_000),
    "queue_5x5": (lambda n: bench_queue(n, 5, 5), 200_000),
    "queue_1x1": (lambda n: bench_queue(n, 1, 1), 200_000),
    "rate_try_ok": (lambda n: bench_rate_try(n, True), 500_000),
    "rate_try_full": (lambda n: bench_rate_try(n, False), 500_000),
    "rate_try_ok_vclock": (lambda n: bench_rate_try(n, True, True), 500_000),
    "rate_try_full_vclock": (lambda n: bench_rate_try(n, False, True), 500_000),
    "rate_acquire_100": (lambda n: bench_rate_acquire(n, 100), 200_000),
    "rate_acquire_1": (lambda n: bench_rate_acquire(n, 1), 100_000),
    "await_plain": (bench_await_ready, 1_000_000),
    "wait_for": (bench_wait_for, 200_000),
}
if hasattr(asyncio, "timeout"):  # Python 3.11+
    SYNC_WORKLOADS["timeout_cm"] = (bench_timeout_cm, 200_000)

GROUPS = {"core": WORKLOADS, "sync": SYNC_WORKLOADS}


def new_loop(kind):
    if kind == "uvloop":
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run_workloads(kind, repetitions, workloads):
    results = {}
    for name, (fn, n) in workloads.items():
        runs = []
        for _ in range(repetitions):
            loop = new_loop(kind)
            try:
                runs.append(loop.run_until_complete(fn(n)))
            finally:
                loop.close()
        results[name] = {"ns_per_op": statistics.median(runs), "runs": runs, "n": n}
        print(f"{kind:8s} {name:20s} {statistics.median(runs):10.1f} ns/op", flush=True)
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
    parser.add_argument("--group", default="all", choices=["core", "sync", "all"],
                        help="core: bench_core's workloads; sync: the concurrency toolkit's")
    parser.add_argument("--only", help="comma-separated workload names (a subset of --group)")
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
    workloads = {}
    for group in (["core", "sync"] if args.group == "all" else [args.group]):
        workloads.update(GROUPS[group])
    if args.only:
        wanted = args.only.split(",")
        unknown = [w for w in wanted if w not in workloads]
        if unknown:
            sys.exit(f"unknown workloads: {', '.join(unknown)}")
        workloads = {k: v for k, v in workloads.items() if k in wanted}
    figures = {"python": sys.version.split()[0],
               "uvloop": getattr(uvloop, "__version__", None)}
    for kind in kinds:
        figures[kind] = run_workloads(kind, args.repetitions, workloads)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)


if __name__ == "__main__":
    main()
