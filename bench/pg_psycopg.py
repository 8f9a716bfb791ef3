#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""psycopg 3's side of the PostgreSQL benchmarks of issue 15 (bench/pg.sh): the same cases as
pg_corio.cpp, one per process, one JSON line per run (Debian's python3-psycopg and
python3-psycopg-pool, psycopg's pure-Python implementation over libpq: Debian has no
psycopg-c; plain asyncio).

    pg_psycopg.py --case select --conninfo CI [--via pool] [--queries 50000] [--pool 10] [--inflight 100]
                  [--ids 100000]
        psycopg_pool.AsyncConnectionPool(min_size=max_size=10); --inflight worker tasks
        (asyncio.gather), each taking the next id and running `async with pool.connection() as
        conn: cur = await conn.execute(sql, (id,)); await cur.fetchone()`. psycopg sends an
        unnamed statement, and prepares a query once a connection has run it prepare_threshold
        (5) times: after the warm-up, every connection runs it prepared.
    pg_psycopg.py --case fetch --conninfo CI --mode whole|stream [--rows 1000000]
        whole: `await cur.fetchall()`; stream: `async for r in cur.stream(sql)` (libpq's
        single-row mode, as corio's stream).
    pg_psycopg.py --case insert --conninfo CI --mode one|many [--inserts 100000]
        one: `await conn.execute(sql, ...)` per row (autocommit); many: one `await
        cur.executemany(sql, rows)` (pipeline mode with libpq >= 14).
"""
import argparse
import asyncio
import json
import random
import resource
import sys
import time

import psycopg
import psycopg_pool

SELECT = "SELECT id, name, email, score FROM users WHERE id = %s"
FETCH = "SELECT id, name, email, score FROM rows_1m"
INSERT = "INSERT INTO inserts (id, name, email, score) VALUES (%s, %s, %s, %s)"


def usage_now():
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), ru.ru_utime + ru.ru_stime, ru.ru_nvcsw, ru.ru_nivcsw


def report(args, variant, ops, begin, end, rss_base):
    wall, cpu = end[0] - begin[0], end[1] - begin[1]
    print(json.dumps({
        "impl": "psycopg", "case": args.case, "variant": variant, "ops": ops,
        "wall_s": wall, "cpu_s": cpu, "per_s": ops / wall, "cpu_us_per_op": cpu * 1e6 / ops,
        "vcsw": end[2] - begin[2], "ivcsw": end[3] - begin[3], "rss_base_kib": rss_base,
        "rss_peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "proc_cpu_s": end[1]}), flush=True)


def random_ids(count, ids, seed):
    r = random.Random(seed)
    return [r.randint(1, ids) for _ in range(count)]


class Pass:
    def __init__(self, ids):
        self.ids, self.next, self.sum_ids, self.rest = ids, 0, 0, 0


async def pool_worker(pool, p):
    while p.next < len(p.ids):
        i = p.ids[p.next]
        p.next += 1
        async with pool.connection() as conn:
            cur = await conn.execute(SELECT, (i,))
            row = await cur.fetchone()
        p.sum_ids += row[0]
        p.rest += len(row[1]) + len(row[2]) + row[3]


async def select_pass(args, pool, ids):
    p = Pass(ids)
    await asyncio.gather(*(pool_worker(pool, p) for _ in range(args.inflight)))
    if p.sum_ids != sum(ids):
        raise RuntimeError("the rows' ids do not match the ids looked up")


async def select_main(args):
    pool = psycopg_pool.AsyncConnectionPool(args.conninfo, min_size=args.pool,
                                            max_size=args.pool, open=False)
    await pool.open(wait=True)
    await select_pass(args, pool, random_ids(args.queries // 25 + args.pool, args.ids, 7))
    ids = random_ids(args.queries, args.ids, 42)
    rss_base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    begin = usage_now()
    await select_pass(args, pool, ids)
    end = usage_now()
    report(args, "pool", args.queries, begin, end, rss_base)
    await pool.close()


async def fetch_rows(conn, sql, stream):
    n = sum_ids = rest = 0
    cur = conn.cursor()
    if stream:
        async for r in cur.stream(sql):
            sum_ids += r[0]
            rest += len(r[1]) + len(r[2]) + r[3]
            n += 1
    else:
        await cur.execute(sql)
        for r in await cur.fetchall():
            sum_ids += r[0]
            rest += len(r[1]) + len(r[2]) + r[3]
            n += 1
    return n, sum_ids


async def fetch_main(args):
    stream = args.mode == "stream"
    conn = await psycopg.AsyncConnection.connect(args.conninfo, autocommit=True)
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


async def insert_range(conn, first, count, many):
    if many:
        async with conn.cursor() as cur:
            await cur.executemany(INSERT, [(i, f"user {i}", f"user{i}@example.com", i % 1000)
                                           for i in range(first, first + count)])
        return
    for i in range(first, first + count):
        await conn.execute(INSERT, (i, f"user {i}", f"user{i}@example.com", i % 1000))


async def insert_main(args):
    many = args.mode == "many"
    conn = await psycopg.AsyncConnection.connect(args.conninfo, autocommit=True)
    await conn.execute("TRUNCATE inserts")
    await insert_range(conn, -1000, 1000, many)
    rss_base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    begin = usage_now()
    await insert_range(conn, 1, args.inserts, many)
    end = usage_now()
    cur = await conn.execute("SELECT count(*) FROM inserts WHERE id > 0")
    n = (await cur.fetchone())[0]
    if n != args.inserts:
        raise RuntimeError(f"{n} rows inserted of {args.inserts}")
    report(args, "executemany" if many else "one", args.inserts, begin, end, rss_base)
    await conn.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", required=True, choices=["select", "fetch", "insert"])
    ap.add_argument("--conninfo", required=True)
    ap.add_argument("--via", default="pool", choices=["pool"])
    ap.add_argument("--mode", default="whole", choices=["whole", "stream", "one", "many"])
    ap.add_argument("--queries", type=int, default=50_000)
    ap.add_argument("--pool", type=int, default=10)
    ap.add_argument("--inflight", type=int, default=100)
    ap.add_argument("--ids", type=int, default=100_000)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--inserts", type=int, default=100_000)
    args = ap.parse_args()
    run = {"select": select_main, "fetch": fetch_main, "insert": insert_main}[args.case]
    asyncio.run(run(args))


if __name__ == "__main__":
    sys.exit(main())
