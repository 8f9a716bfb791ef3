#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""redis-py's side of the Redis benchmarks of issue 16 (bench/redis.sh), one JSON line per run.

    redis_py.py --case get|set --mode single|pipeline [--address 127.0.0.1:6379] [--tasks 100]
                [--depth 16] [--seconds 3 | --requests N] [--warmup 2000] [--value-size 3]
                [--server-pid PID]

redis-py's asyncio client (`redis.asyncio.Redis`, one client and its connection pool: a
connection per task in flight, as redis-py gives them), --tasks tasks, on redis-benchmark's key
("key:__rand_int__") and value (--value-size bytes of 'x'):
  single    each task sends single commands one after the other: `await r.get(key)` (checked:
            the value SET before) or `await r.set(key, value)`
  pipeline  each task sends explicit pipelines of --depth commands one after the other:
            `p = r.pipeline(transaction=False)`, --depth `p.get(key)`, `await p.execute()`
The timed part runs for --seconds (the requests in flight then finish) or --requests requests in
all, after an untimed warm-up of --warmup requests (which opens the connections). Figures:
requests/s (commands, not pipelines), client CPU per request (resource.getrusage, user +
system), and, with --server-pid, the server's CPU time over the timed part (/proc/PID/stat).
"""
import argparse
import asyncio
import json
import os
import platform
import resource
import sys
import time

import redis
import redis.asyncio

KEY = "key:__rand_int__"  # redis-benchmark's, without -r
TICK = os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """The CPU time of process `pid` so far (utime + stime), 0 when it is not given or gone."""
    if pid <= 0:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def usage():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), ru.ru_utime + ru.ru_stime, ru.ru_nvcsw, ru.ru_nivcsw


class Pass:
    """What the tasks of one pass share: the requests to send (0: until stop), those sent."""

    def __init__(self, limit: int):
        self.limit = limit
        self.sent = 0
        self.stop = False
        self.wrong = 0

    def more(self) -> bool:
        return not self.stop and (self.limit == 0 or self.sent < self.limit)


async def single_worker(r, p: Pass, case: str, value: bytes):
    while p.more():
        p.sent += 1
        if case == "get":
            v = await r.get(KEY)
            if v != value:
                p.wrong += 1
        else:
            await r.set(KEY, value)


async def pipeline_worker(r, p: Pass, case: str, value: bytes, depth: int):
    while p.more():
        p.sent += depth
        pipe = r.pipeline(transaction=False)
        for _ in range(depth):
            if case == "get":
                pipe.get(KEY)
            else:
                pipe.set(KEY, value)
        results = await pipe.execute()
        if case == "get":
            p.wrong += sum(1 for v in results if v != value)


async def run_pass(args, r, value: bytes, limit: int, seconds: float) -> int:
    p = Pass(limit)
    loop = asyncio.get_running_loop()
    timer = loop.call_later(seconds, setattr, p, "stop", True) if limit == 0 else None
    if args.mode == "single":
        workers = [single_worker(r, p, args.case, value) for _ in range(args.tasks)]
    else:
        workers = [pipeline_worker(r, p, args.case, value, args.depth) for _ in range(args.tasks)]
    await asyncio.gather(*workers)
    if timer:
        timer.cancel()
    if p.wrong:
        raise RuntimeError(f"redis_py: {p.wrong} GETs did not return the value SET")
    return p.sent


async def amain(args) -> int:
    host, port = args.address.rsplit(":", 1)
    r = redis.asyncio.Redis(host=host, port=int(port))
    value = b"x" * args.value_size
    await r.set(KEY, value)
    await run_pass(args, r, value, max(args.warmup, args.tasks * args.depth), 0)
    server0 = process_cpu_s(args.server_pid)
    t0, cpu0, vcsw0, ivcsw0 = usage()
    ops = await run_pass(args, r, value, 0 if args.seconds > 0 else args.requests, args.seconds)
    t1, cpu1, vcsw1, ivcsw1 = usage()
    server1 = process_cpu_s(args.server_pid)
    pool = r.connection_pool
    connections = len(getattr(pool, "_available_connections", [])) + \
        len(getattr(pool, "_in_use_connections", []))
    await r.close()
    await pool.disconnect()
    wall, cpu = t1 - t0, cpu1 - cpu0
    variant = "single" if args.mode == "single" else f"pipeline-{args.depth}"
    print(json.dumps({
        "impl": "redis-py", "case": args.case, "variant": variant, "tasks": args.tasks,
        "connections_open": connections, "ops": ops, "wall_s": wall, "cpu_s": cpu,
        "per_s": ops / wall, "cpu_us_per_op": cpu * 1e6 / ops, "vcsw": vcsw1 - vcsw0,
        "ivcsw": ivcsw1 - ivcsw0, "server_cpu_timed_s": server1 - server0,
        "redis_py": redis.__version__, "hiredis_parser": bool(redis.utils.HIREDIS_AVAILABLE),
        "python": platform.python_version(),
    }), flush=True)
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", choices=["get", "set"], required=True)
    ap.add_argument("--mode", choices=["single", "pipeline"], default="single")
    ap.add_argument("--address", default="127.0.0.1:6379")
    ap.add_argument("--tasks", type=int, default=100)
    ap.add_argument("--depth", type=int, default=16, help="commands per pipeline")
    ap.add_argument("--seconds", type=float, default=3.0, help="0: --requests instead")
    ap.add_argument("--requests", type=int, default=50_000)
    ap.add_argument("--warmup", type=int, default=2_000)
    ap.add_argument("--value-size", type=int, default=3)
    ap.add_argument("--server-pid", type=int, default=0)
    args = ap.parse_args()
    if args.mode == "single":
        args.depth = 1
    return asyncio.run(amain(args))


if __name__ == "__main__":
    sys.exit(main())
