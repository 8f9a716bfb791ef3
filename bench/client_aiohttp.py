# SPDX-License-Identifier: MIT
"""aiohttp's client for the client benchmarks of issue 6 (bench/client.sh): one ClientSession
with TCPConnector(limit=concurrency), `concurrency` worker tasks that take request numbers from
a shared counter and `await session.get(url)` one after the other, reading each body and
checking each status. On asyncio's default loop, or on uvloop with --uvloop.

    /usr/bin/python3 bench/client_aiohttp.py [--url URL] [--requests 20000]
                                             [--concurrency 100] [--uvloop]

Prints one JSON line like client_corio's: the wall and CPU time (resource.getrusage, utime +
stime) of the request phase, the peak RSS (VmHWM). Exit status 1 when any request failed or did not
answer 200.
"""
import argparse
import asyncio
import json
import resource
import sys
import time

import aiohttp


def peak_rss_kib() -> int:
    """VmHWM of /proc/self/status (ru_maxrss would not do: Linux carries it over an exec)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return -1


def cpu_seconds() -> float:
    u = resource.getrusage(resource.RUSAGE_SELF)
    return u.ru_utime + u.ru_stime


class Counters:
    def __init__(self, total: int) -> None:
        self.total = total
        self.started = 0
        self.ok = 0
        self.bad = 0


async def worker(session: aiohttp.ClientSession, url: str, c: Counters) -> None:
    while c.started < c.total:
        c.started += 1
        async with session.get(url) as r:
            body = await r.read()
            if r.status == 200 and body == b"Hello, World!":
                c.ok += 1
            else:
                c.bad += 1


async def main(args: argparse.Namespace) -> int:
    c = Counters(args.requests)
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        cpu0 = cpu_seconds()
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(session, args.url, c) for _ in range(args.concurrency)))
        wall = time.perf_counter() - t0
        cpu = cpu_seconds() - cpu0
    print(json.dumps({
        "client": "aiohttp-uvloop" if args.uvloop else "aiohttp",
        "requests": args.requests, "ok": c.ok, "bad": c.bad,
        "concurrency": args.concurrency, "wall_s": wall, "cpu_s": cpu,
        "peak_rss_kib": peak_rss_kib(),
        "aiohttp": aiohttp.__version__,
    }), flush=True)
    return 0 if c.ok == args.requests else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8080/hello")
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop
        uvloop.install()
    sys.exit(asyncio.run(main(args)))
