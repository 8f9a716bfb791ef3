#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The runner and the tables of the PostgreSQL benchmarks of issue 15 (bench/pg.sh).

    pg_report.py run --out FILE --case CASE --name IMPL:VARIANT --round R --attempt A
                     --server-pid PID [--disturbed 0.10] [--timeout 120]
                     [--pgbench --connect-cpu S] -- CMD...
        Runs CMD (one client, pinned by the caller), waits for it with os.wait4 and appends one
        JSON line to FILE: the client's own line (pg_corio, pg_asyncpg.py, pg_psycopg.py), or,
        with --pgbench, one made of pgbench's report (transactions processed, tps without the
        initial connection time; CPU: the process's wait4 CPU time less S, what pgbench's start
        and its 10 connections cost, measured apart). Added: the whole process's CPU time
        (wait4), the server's CPU time over the run (the postmaster PID and every process under
        it, those that ended meanwhile included: their time is in the postmaster's cutime and
        cstime; the runner waits 0.2 s after the client's exit for its backends to be reaped),
        and "foreign_cores": the CPU time of everything else (all CPUs' user, nice, system, irq
        and softirq time from /proc/stat, less the client's and the server's), over the run's
        wall time. A run with foreign_cores > DISTURBED is "disturbed". Exit status: the client's,
        or 3 when the run was disturbed. A client still running after TIMEOUT seconds is
        killed.

    pg_report.py cpu -- CMD...
        Runs CMD, its output discarded, and prints its CPU time (wait4), in seconds.

    pg_report.py report FILE
        Prints the tables: medians over the rounds (each round's undisturbed attempt where
        there is one), with the range; ratios as medians of per-round ratios (the two runs of a
        ratio were seconds apart), with their range; the issue's targets, met or missed.
"""
import argparse
import os
import re
import subprocess
import sys

from client_runner import (TICK, add_run_arguments, client_line, k, print_targets, record,
                           results, run_client, us)


def stat_of(pid: str):
    """(ppid, utime + stime, cutime + cstime) in ticks, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[13]) + int(fields[14])


def server_seconds(postmaster: int) -> float:
    """The CPU time of the postmaster and of every process under it, live or ended (an ended
    backend's time went to the postmaster's cutime/cstime when it was reaped)."""
    procs = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            s = stat_of(entry)
            if s:
                procs[int(entry)] = s
    children = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    if postmaster not in procs:
        return 0.0
    total = procs[postmaster][1] + procs[postmaster][2]
    todo = list(children.get(postmaster, []))
    while todo:
        pid = todo.pop()
        total += procs[pid][1]
        todo += children.get(pid, [])
    return total / TICK


def parse_pgbench(text: str, connect_cpu: float, proc_cpu: float) -> dict:
    done = re.search(r"number of transactions actually processed: (\d+)", text)
    tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", text)
    mode = re.search(r"query mode: (\w+)", text)
    if not done or not tps:
        return {}
    ops, per_s = int(done.group(1)), float(tps.group(1))
    cpu = max(proc_cpu - connect_cpu, 0.0)
    return {"impl": "pgbench", "case": "select", "variant": mode.group(1) if mode else "?",
            "ops": ops, "wall_s": ops / per_s, "cpu_s": cpu, "per_s": per_s,
            "cpu_us_per_op": cpu * 1e6 / ops, "cpu_raw_s": proc_cpu, "connect_cpu_s": connect_cpu}


def run(args) -> int:
    # The client's backends end when it does: let the postmaster reap them (their CPU time
    # then moves to its cutime) rather than catch one half-gone in the scan.
    m = run_client(args.command, args.timeout, lambda: server_seconds(args.server_pid),
                   settle=0.2)
    if args.pgbench:
        rec = parse_pgbench(m.out_text, args.connect_cpu, m.proc_cpu)
        if not rec:
            sys.stderr.write(m.out_text)
    else:
        rec = client_line(m.out_text)

    def describe(rec):
        return (f"{rec['per_s']:>11,.0f}/s, client CPU {rec['cpu_us_per_op']:8.2f} us/op, "
                f"server CPU {m.server_cpu:6.2f} s, peak RSS "
                f"{rec.get('rss_peak_kib', m.peak_rss_kib) / 1024:6.1f} MiB")

    return record(args, rec, m, describe)


def cpu(args) -> int:
    child = subprocess.Popen(args.command, stdout=subprocess.DEVNULL)
    _, status, ru = os.wait4(child.pid, 0)
    print(f"{ru.ru_utime + ru.ru_stime:.4f}")
    return os.waitstatus_to_exitcode(status)


# --- the report ----------------------------------------------------------------------------

def report(args) -> int:
    res = results(args.file, ["corio", "pgbench", "asyncpg", "asyncpg-uvloop", "psycopg"])
    by, names = res.by, res.names
    of, med, spread, ratio, runs_cell = res.of, res.med, res.spread, res.ratio, res.runs_cell

    def mib(kib):
        return f"{kib / 1024:,.1f} MiB"

    targets = []  # (target, figure, met)

    # (1) point selects
    sel = names.get("select", [])
    if sel:
        ops = max(r["ops"] for r in by.values() if r["label"] == "select")
        print(f"### (1) Point SELECT by primary key, {ops:,} queries, pool of 10, 100 in flight\n")
        print("| client | mode | runs | queries/s | client CPU per query | server CPU per query "
              "| server cores | vs pgbench, same mode (q/s) | vs asyncpg pool (q/s) "
              "| client CPU vs pgbench | client CPU vs asyncpg pool |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name in sel:
            rs = of("select", name)
            impl, variant = name.split(":", 1)
            same = None
            if variant.endswith("unnamed") or variant == "extended":
                same = "pgbench:extended"
            elif variant.endswith("prepared") or impl in ("asyncpg", "psycopg"):
                same = "pgbench:prepared"  # asyncpg and psycopg prepare by themselves
            vs_pgb = ratio("select", name, "select", same)[0] if same and impl != "pgbench" else ""
            vs_apg = ratio("select", name, "select", "asyncpg:pool")[0] \
                if name != "asyncpg:pool" else ""
            cpu_f = lambda r: r["cpu_us_per_op"]
            cpu_pgb = ratio("select", name, "select", same, cpu_f)[0] \
                if same and impl != "pgbench" else ""
            cpu_apg = ratio("select", name, "select", "asyncpg:pool", cpu_f)[0] \
                if name != "asyncpg:pool" else ""
            print(f"| {impl} | {variant} | {runs_cell('select', name)} "
                  f"| {spread(rs, lambda r: r['per_s'], k)} "
                  f"| {spread(rs, lambda r: r['cpu_us_per_op'], us)} "
                  f"| {us(med(rs, lambda r: r['server_cpu_s'] * 1e6 / r['ops']))} "
                  f"| {med(rs, lambda r: r['server_cpu_s'] / r['ops'] * r['per_s']):.2f} "
                  f"| {vs_pgb} | {vs_apg} | {cpu_pgb} | {cpu_apg} |")
        print("\n(client CPU: the timed part, every thread; pgbench's is its process's CPU time "
              "less what its start and its connections take, measured apart. Server CPU: every "
              "PostgreSQL process over the whole run, connecting and the warm-up included, per "
              "timed query; server cores: that per query times the queries per second, i.e. the "
              "server's load during the timed part, 1.00 being all of its core, a few % high "
              "for the warm-up)\n")
        for variant, mode in (("pool-unnamed", "extended"), ("pool-prepared", "prepared")):
            name = f"corio:{variant}"
            if of("select", name) and of("select", f"pgbench:{mode}"):
                s, m = ratio("select", name, "select", f"pgbench:{mode}")
                targets.append((f"queries/s ≥ 0.9x pgbench -M {mode} (corio {variant})", s,
                                m >= 0.9))
                s, m = ratio("select", name, "select", f"pgbench:{mode}",
                             lambda r: r["cpu_us_per_op"])
                targets.append((f"client CPU per query ≤ 1.5x pgbench -M {mode} "
                                f"(corio {variant})", s, m <= 1.5))
            if of("select", name) and of("select", "asyncpg:pool"):
                s, m = ratio("select", name, "select", "asyncpg:pool")
                targets.append((f"queries/s ≥ 2x asyncpg's pool (corio {variant})", s, m >= 2))

    # (2) fetching a million rows
    fet = names.get("fetch", [])
    if fet:
        ops = max(r["ops"] for r in by.values() if r["label"] == "fetch")
        print(f"### (2) Fetching {ops:,} rows of 4 columns on one connection\n")
        print("| client | mode | runs | rows/s | client CPU | CPU per row | peak RSS "
              "| peak over baseline | vs asyncpg, same mode (rows/s) |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for name in fet:
            rs = of("fetch", name)
            impl, variant = name.split(":", 1)
            ref = f"asyncpg:{variant}"
            vs = ratio("fetch", name, "fetch", ref)[0] if impl != "asyncpg" else ""
            print(f"| {impl} | {variant} | {runs_cell('fetch', name)} "
                  f"| {spread(rs, lambda r: r['per_s'], k)} "
                  f"| {med(rs, lambda r: r['cpu_s']):.2f} s "
                  f"| {med(rs, lambda r: r['cpu_s'] * 1e9 / r['ops']):,.0f} ns "
                  f"| {mib(med(rs, lambda r: r['rss_peak_kib']))} "
                  f"| {mib(med(rs, lambda r: r['rss_peak_kib'] - r['rss_base_kib']))} "
                  f"| {vs} |")
        print()
        for variant in ("whole", "stream"):
            if of("fetch", f"corio:{variant}") and of("fetch", f"asyncpg:{variant}"):
                s, m = ratio("fetch", f"corio:{variant}", "fetch", f"asyncpg:{variant}")
                targets.append((f"rows/s ≥ 2x asyncpg's ({variant})", s, m >= 2))
        rs = of("fetch", "corio:stream")
        if rs:
            over = [(r["rss_peak_kib"] - r["rss_base_kib"]) / 1024 for r in rs]
            targets.append((f"streaming {rs[0]['ops']:,} rows: peak RSS ≤ 16 MiB over the "
                            "baseline",
                            f"{max(over):.1f} MiB at most", max(over) <= 16))

    # (3) inserts
    ins = names.get("insert", [])
    if ins:
        ops = max(r["ops"] for r in by.values() if r["label"] == "insert")
        print(f"### (3) {ops:,} INSERTs on one connection\n")
        print("| client | mode | runs | inserts/s | client CPU per insert "
              "| server CPU per insert | vs corio one by one | vs asyncpg executemany |")
        print("|---|---|---:|---:|---:|---:|---:|---:|")
        for name in ins:
            rs = of("insert", name)
            impl, variant = name.split(":", 1)
            vs_one = ratio("insert", name, "insert", "corio:one")[0] \
                if name != "corio:one" else ""
            vs_many = ratio("insert", name, "insert", "asyncpg:many")[0] \
                if name != "asyncpg:many" else ""
            print(f"| {impl} | {variant} | {runs_cell('insert', name)} "
                  f"| {spread(rs, lambda r: r['per_s'], k)} "
                  f"| {us(med(rs, lambda r: r['cpu_us_per_op']))} "
                  f"| {us(med(rs, lambda r: r['server_cpu_s'] * 1e6 / r['ops']))} "
                  f"| {vs_one} | {vs_many} |")
        print()
        for name in ins:
            if name.startswith("corio:pipeline") and of("insert", "corio:one"):
                s, m = ratio("insert", name, "insert", "corio:one")
                targets.append((f"pipelined inserts ≥ 5x one by one ({name[6:]})", s, m >= 5))

    print_targets(targets)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    add_run_arguments(r, timeout=120.0)
    r.add_argument("--pgbench", action="store_true")
    r.add_argument("--connect-cpu", type=float, default=0.0)
    r.add_argument("command", nargs="+")
    c = sub.add_parser("cpu")
    c.add_argument("command", nargs="+")
    p = sub.add_parser("report")
    p.add_argument("file")
    args = ap.parse_args()
    return {"run": run, "cpu": cpu, "report": report}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
