#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""asyncpg's side of the PostgreSQL benchmarks of issue 15 (bench/pg.sh): the same cases as
pg_corio.cpp, one per process, one JSON line per run (Debian's python3-asyncpg, plain asyncio).

    pg_asyncpg.py --case select --conninfo CI [--via pool|held] [--queries 50000] [--pool 10]
                  [--inflight 100] [--ids 100000]
        --via pool: asyncpg.create_pool(min_size=max_size=10); --inflight worker tasks
        (asyncio.gather), each taking the next id and running `await pool.fetchrow(sql, id)`
        until all are done. --via held: 10 connections acquired once, one task per connection.
        asyncpg prepares every statement it runs (its per-connection statement cache), so this
        is pgbench's -M prepared, whatever the call looks like.
    pg_asyncpg.py --case fetch --conninfo CI --mode whole|stream [--rows 1000000]
        whole: `await conn.fetch(sql)` (a list of Records); stream: `async for r in
        conn.cursor(sql, prefetch=1000)` in a transaction (a portal, 1,000 rows a round trip).
    pg_asyncpg.py --case insert --conninfo CI --mode one|many [--inserts 100000]
        one: `await conn.execute(sql, ...)` per row; many: one `await conn.executemany(sql,
        rows)` (asyncpg pipelines its Bind/Execute messages).

Every value of every row is read (ids and scores summed, names and emails measured). The JSON
line has the timed part's wall and CPU time (getrusage, every thread) and ru_maxrss before and
after it.
"""
import argparse
import asyncio
import json
import random
import resource
import sys
import time

import asyncpg

SELECT = "SELECT id, name, email, score FROM users WHERE id = $1"
FETCH = "SELECT id, name, email, score FROM rows_1m"
INSERT = "INSERT INTO inserts (id, name, email, score) VALUES ($1, $2, $3, $4)"


def dsn_params(conninfo: str) -> dict:
    """A libpq key=value string as asyncpg.connect's keyword arguments."""
    kw = dict(part.split("=", 1) for part in conninfo.split())
    names = {"host": "host", "port": "port", "dbname": "database", "user": "user",
             "password": "password"}
    return {names[k]: (int(v) if k == "port" else v) for k, v in kw.items() if k in names}


def usage_now():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), ru.ru_utime + ru.ru_stime, ru.ru_nvcsw, ru.ru_nivcsw


def report(args, variant, ops, begin, end, rss_base):
    wall, cpu = end[0] - begin[0], end[1] - begin[1]
    print(json.dumps({
        "impl": "asyncpg", "case": args.case, "variant": variant, "ops": ops,
        "wall_s": wall, "cpu_s": cpu, "per_s": ops / wall, "cpu_us_per_op": cpu * 1e6 / ops,
        "vcsw": end[2] - begin[2], "ivcsw": end[3] - begin[3], "rss_base_kib": rss_base,
        "rss_peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "proc_cpu_s": end[1]}), flush=True)


def random_ids(count, ids, seed):
    r = random.Random(seed)
    return [r.randint(1, ids) for _ in range(count)]


class Pass:
    """The ids of one select pass, the next to take, and what came back."""

    def __init__(self, ids):
        self.ids, self.next, self.sum_ids, self.rest = ids, 0, 0, 0

    def take(self, row):
        self.sum_ids += row[0]
        self.rest += len(row[1]) + len(row[2]) + row[3]


async def pool_worker(pool, p):
    while p.next < len(p.ids):
        i = p.ids[p.next]
        p.next += 1
        p.take(await pool.fetchrow(SELECT, i))


async def held_worker(conn, p):
    while p.next < len(p.ids):
        i = p.ids[p.next]
        p.next += 1
        p.take(await conn.fetchrow(SELECT, i))


async def select_pass(args, pool, held, ids):
    p = Pass(ids)
    if args.via == "pool":
        await asyncio.gather(*(pool_worker(pool, p) for _ in range(args.inflight)))
    else:
        await asyncio.gather(*(held_worker(c, p) for c in held))
    if p.sum_ids != sum(ids):
        raise RuntimeError("the rows' ids do not match the ids looked up")


async def select_main(args):
    pool = await asyncpg.create_pool(**dsn_params(args.conninfo), min_size=args.pool,
                                     max_size=args.pool)
    held = [await pool.acquire() for _ in range(args.pool)] if args.via == "held" else []
    await select_pass(args, pool, held, random_ids(args.queries // 25 + args.pool, args.ids, 7))
    ids = random_ids(args.queries, args.ids, 42)
    rss_base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    begin = usage_now()
    await select_pass(args, pool, held, ids)
    end = usage_now()
    report(args, f"{args.via}-prepared", args.queries, begin, end, rss_base)
    for c in held:
        await pool.release(c)
    await pool.close()


async def fetch_rows(conn, sql, stream):
    n = sum_ids = rest = 0
    if stream:
        async with conn.transaction():
            async for r in conn.cursor(sql, prefetch=1000):
                sum_ids += r[0]
                rest += len(r[1]) + len(r[2]) + r[3]
                n += 1
    else:
        for r in await conn.fetch(sql):
            sum_ids += r[0]
            rest += len(r[1]) + len(r[2]) + r[3]
            n += 1
    return n, sum_ids


async def fetch_main(args):
    stream = args.mode == "stream"
    conn = await asyncpg.connect(**dsn_params(args.conninfo))
    await fetch_rows(conn, FETCH + " LIMIT 1000", stream)
    rss_base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    begin = usage_now()
    n, sum_ids = await fetch_rows(conn, f"{FETCH} LIMIT {args.rows}", stream)
    end = usage_now()
    # The ids are 1..1,000,000; a partial scan may start anywhere (synchronized seq scans).
    if n != args.rows or (n == 1_000_000 and sum_ids != n * (n + 1) // 2):
        raise RuntimeError(f"fetched {n} rows of {args.rows}")
    report(args, args.mode, n, begin, end, rss_base)
    await conn.close()


def rows_of(first, count):
    return [(i, f"user {i}", f"user{i}@example.com", i % 1000) for i in range(first, first + count)]


async def insert_range(conn, first, count, many):
    if many:
        await conn.executemany(INSERT, rows_of(first, count))
        return
    for i in range(first, first + count):
        await conn.execute(INSERT, i, f"user {i}", f"user{i}@example.com", i % 1000)


async def insert_main(args):
    many = args.mode == "many"
    conn = await asyncpg.connect(**dsn_params(args.conninfo))
    await conn.execute("TRUNCATE inserts")
    await insert_range(conn, -1000, 1000, many)
    rss_base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    begin = usage_now()
    await insert_range(conn, 1, args.inserts, many)
    end = usage_now()
    n = await conn.fetchval("SELECT count(*) FROM inserts WHERE id > 0")
    if n != args.inserts:
        raise RuntimeError(f"{n} rows inserted of {args.inserts}")
    report(args, "executemany" if many else "one", args.inserts, begin, end, rss_base)
    await conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", required=True, choices=["select", "fetch", "insert"])
    ap.add_argument("--conninfo", required=True)
    ap.add_argument("--via", default="pool", choices=["pool", "held"])
    ap.add_argument("--mode", default="whole", choices=["whole", "stream", "one", "many"])
    ap.add_argument("--queries", type=int, default=50_000)
    ap.add_argument("--pool", type=int, default=10)
    ap.add_argument("--inflight", type=int, default=100)
    ap.add_argument("--ids", type=int, default=100_000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--inserts", type=int, default=100_000)
    ap.add_argument("--uvloop", action="store_true", help="run on uvloop (python3-uvloop)")
    args = ap.parse_args()
    if args.uvloop:
        import uvloop
        uvloop.install()
    run = {"select": select_main, "fetch": fetch_main, "insert": insert_main}[args.case]
    asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
