#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The runner and the tables of the Redis benchmarks of issue 16 (bench/redis.sh).

    redis_report.py run --out FILE --case CASE --name IMPL:VARIANT --round R --attempt A
                        --server-pid PID [--disturbed 0.10] [--timeout 60]
                        [--redis-benchmark --ops N] -- CMD...
        Runs CMD (one client, pinned by the caller), waits for it with os.wait4 and appends one
        JSON line to FILE: the client's own line (redis_corio, redis_py.py), or, with
        --redis-benchmark, one made of redis-benchmark's --csv report (its requests/s; N
        requests; CPU: the process's wait4 CPU time, its 100 connections' set-up included).
        Added: the whole process's CPU time (wait4: forked children included), the server's CPU
        time over the run (/proc/PID/stat), and "foreign_cores": the CPU time of everything
        else (all CPUs' user, nice, system, irq and softirq time from /proc/stat, less the
        client's and the server's) over the run's wall time. A run with foreign_cores >
        DISTURBED is "disturbed". Exit status: the client's, or 3 when the run was disturbed. A
        client still running after TIMEOUT seconds is killed.

    redis_report.py rps -- CMD...
        Runs CMD (redis-benchmark --csv) and prints the requests/s it reports.

    redis_report.py report FILE
        Prints the tables: medians over the rounds (each round's undisturbed attempt where
        there is one), with the range; ratios as medians of per-round ratios (the two runs of a
        ratio were seconds apart), with their range; the issue's targets, met or missed.
"""
import argparse
import csv
import io
import statistics
import subprocess
import sys

from client_runner import (TICK, add_run_arguments, client_line, k, print_targets, record,
                           results, run_client, us)


def process_seconds(pid: int) -> float:
    """utime + stime of `pid` (every thread), 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def parse_benchmark_csv(text: str) -> dict:
    """redis-benchmark --csv: "test","rps","avg_latency_ms",... then one line per test."""
    rows = [r for r in csv.reader(io.StringIO(text)) if r and r[0] != "test"]
    if len(rows) != 1:
        return {}
    out = {"test": rows[0][0], "per_s": float(rows[0][1])}
    if len(rows[0]) > 4:
        out["avg_latency_ms"] = float(rows[0][2])
        out["p50_latency_ms"] = float(rows[0][4])
    return out


def run(args) -> int:
    m = run_client(args.command, args.timeout, lambda: process_seconds(args.server_pid))
    if args.redis_benchmark:
        rec = parse_benchmark_csv(m.out_text)
        if rec:
            rec.update({"ops": args.ops, "wall_s": args.ops / rec["per_s"], "cpu_s": m.proc_cpu,
                        "cpu_us_per_op": m.proc_cpu * 1e6 / args.ops})
        else:
            sys.stderr.write(m.out_text)
    else:
        rec = client_line(m.out_text)

    def describe(rec):
        what = (f"{rec['per_s']:>11,.0f}/s, client CPU {rec['cpu_us_per_op']:7.3f} us/op, "
                f"server CPU {m.server_cpu:5.2f} s")
        if "script_calls_per_op" in rec:
            what += f", {rec['script_calls_per_op']:.3f} script calls/op"
        if "put_per_s" in rec:
            what += f", puts {rec['put_per_s']:,.0f}/s"
        return what

    return record(args, rec, m, describe)


def rps(args) -> int:
    out = subprocess.run(args.command, stdout=subprocess.PIPE, text=True, check=True).stdout
    rec = parse_benchmark_csv(out)
    if not rec:
        sys.stderr.write(out)
        return 1
    print(f"{rec['per_s']:.0f}")
    return 0


# --- the report ----------------------------------------------------------------------------

def server_cpu_per_op(r) -> float:
    """µs of server CPU per request: over the timed part when the client measured it, else
    over the whole run (redis-benchmark: no warm-up, only its connections' set-up)."""
    timed = r.get("server_cpu_timed_s")
    secs = timed if timed is not None else r["server_cpu_s"]
    return secs * 1e6 / r["ops"]


def report(args) -> int:
    res = results(args.file, ["corio", "redis-benchmark", "redis-py"])
    names = res.names
    of, med, spread, ratio, runs_cell = res.of, res.med, res.spread, res.ratio, res.runs_cell

    targets = []  # (target, figure, met)
    best_corio = {}
    for label in ("get", "set"):
        runs = names.get(label, [])
        if not runs:
            continue
        corio = [n for n in runs if n.startswith("corio:")]
        if corio:  # the connection count with the best median requests/s
            best_corio[label] = max(corio, key=lambda n: med(of(label, n), lambda r: r["per_s"]))
        refs = [("redis-benchmark:P16", "vs redis-benchmark -P 16"),
                ("redis-benchmark:P1", "vs redis-benchmark -P 1"),
                ("redis-py:single", "vs redis-py single")]
        refs = [(n, t) for n, t in refs if of(label, n)]
        print(f"### {label.upper()}: 100 tasks or connections, 3-byte values\n")
        print("| client | mode | runs | requests/s | client CPU per request | client cores "
              "| server CPU per request | server cores | "
              + " | ".join(t + " (req/s)" for _, t in refs) + " |")
        print("|---|---|---:|---:|---:|---:|---:|---:|" + "---:|" * len(refs))
        for name in runs:
            rs = of(label, name)
            impl, variant = name.split(":", 1)
            cells = [ratio(label, name, label, ref)[0] if ref != name else "" for ref, _ in refs]
            mark = " (best)" if best_corio.get(label) == name and len(corio) > 1 else ""
            print(f"| {impl} | {variant}{mark} | {runs_cell(label, name)} "
                  f"| {spread(rs, lambda r: r['per_s'], k)} "
                  f"| {spread(rs, lambda r: r['cpu_us_per_op'], us)} "
                  f"| {med(rs, lambda r: r['cpu_us_per_op'] * 1e-6 * r['per_s']):.2f} "
                  f"| {us(med(rs, server_cpu_per_op))} "
                  f"| {med(rs, lambda r: server_cpu_per_op(r) * 1e-6 * r['per_s']):.2f} "
                  f"| " + " | ".join(cells) + " |")
        print("\n(client cores and server cores: CPU per request times requests/s, each side's "
              "load during the timed part, 1.00 being all of its core. Server CPU: over the "
              "timed part for corio and redis-py, over the whole run for redis-benchmark)\n")
        if label == "get" and label in best_corio:
            b = best_corio[label]
            variant = b.split(":", 1)[1]
            if of(label, "redis-benchmark:P16"):
                s, m = ratio(label, b, label, "redis-benchmark:P16")
                targets.append((f"GET requests/s ≥ 0.5x redis-benchmark -P 16 (corio {variant})",
                                s, m >= 0.5))
            if of(label, "redis-py:single"):
                s, m = ratio(label, b, label, "redis-py:single")
                targets.append((f"GET requests/s ≥ 10x redis-py asyncio, single commands "
                                f"(corio {variant})", s, m >= 10))
        if label in best_corio:
            b = best_corio[label]
            rs = of(label, b)
            m = med(rs, lambda r: r["cpu_us_per_op"])
            targets.append((f"{label.upper()}: client CPU per request ≤ 2 µs "
                            f"(corio {b.split(':', 1)[1]})",
                            spread(rs, lambda r: r["cpu_us_per_op"], us), m <= 2))

    lim = names.get("limiter", [])
    if lim:
        r0 = of("limiter", lim[0])[0]
        print(f"### The distributed rate limiter: {r0['processes']} processes, {r0['tasks']} "
              "tasks each, one key, a rate that never denies\n")
        print("| method | runs | acquisitions/s (all processes) | client CPU per acquisition "
              "| script calls per acquisition | script µs per acquisition (commandstats) "
              "| server CPU per acquisition | server cores | denied |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name in lim:
            rs = of("limiter", name)
            variant = name.split(":", 1)[1]
            method = "`acquire()`" if variant == "acquire" else "`try_acquire()`"
            print(f"| {method} | {runs_cell('limiter', name)} "
                  f"| {spread(rs, lambda r: r['per_s'], k)} "
                  f"| {spread(rs, lambda r: r['cpu_us_per_op'], us)} "
                  f"| {med(rs, lambda r: r['script_calls_per_op']):.3f} "
                  f"| {us(med(rs, lambda r: r['script_server_us_per_op']))} "
                  f"| {us(med(rs, server_cpu_per_op))} "
                  f"| {med(rs, lambda r: server_cpu_per_op(r) * 1e-6 * r['per_s']):.2f} "
                  f"| {sum(r['denied'] for r in rs)} |")
            worst = max(r["script_calls_per_op"] for r in rs)
            targets.append((f"limiter, {method}: one script call per acquisition",
                            f"{worst:.3f} at most", worst <= 1.0005))
        print()

    queue = names.get("queue", [])
    if queue:
        r0 = of("queue", queue[0])[0]
        print(f"### The work queue: {r0['items']:,} items put by 1 process, then taken and "
              f"acknowledged by {r0['processes']} processes (`get()`, `ack()`)\n")
        print("| run | runs | tasks per process | items/s (all consumers) "
              "| client CPU per item (get + ack) | script calls per item "
              "| server commands per item (the scripts' own included) "
              "| script µs per call (commandstats) | server CPU per item | server cores "
              "| puts/s (1 process) | client CPU per put | server CPU per put | lapsed acks |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for name in queue:
            rs = of("queue", name)
            print(f"| {name.split(':', 1)[1]} | {runs_cell('queue', name)} | {rs[0]['tasks']} "
                  f"| {spread(rs, lambda r: r['per_s'], k)} "
                  f"| {spread(rs, lambda r: r['cpu_us_per_op'], us)} "
                  f"| {med(rs, lambda r: r['script_calls_per_op']):.3f} "
                  f"| {med(rs, lambda r: r['commands_per_op']):.2f} "
                  f"| {us(med(rs, lambda r: r['script_us_per_call']))} "
                  f"| {us(med(rs, server_cpu_per_op))} "
                  f"| {med(rs, lambda r: server_cpu_per_op(r) * 1e-6 * r['per_s']):.2f} "
                  f"| {spread(rs, lambda r: r['put_per_s'], k)} "
                  f"| {us(med(rs, lambda r: r['put_cpu_us_per_op']))} "
                  f"| {us(med(rs, lambda r: r['put_server_cpu_timed_s'] * 1e6 / r['items']))} "
                  f"| {sum(r['lapsed'] for r in rs)} |")
        print("\n(server commands per item: every command's calls in `INFO commandstats` but "
              "INFO, over the items; a script's `redis.call`s count there one each)\n")
        cmds = {}
        for name in queue:
            for r in of("queue", name):
                for c, (calls, usec) in r.get("server_commands", {}).items():
                    cmds.setdefault((name, c), []).append((calls / r["items"],
                                                           usec / calls if calls else 0))
        if cmds:
            print("| run | command | calls per item | µs per call |")
            print("|---|---|---:|---:|")
            for (name, c), v in cmds.items():
                print(f"| {name.split(':', 1)[1]} | {c} "
                      f"| {statistics.median(x for x, _ in v):.2f} "
                      f"| {us(statistics.median(y for _, y in v))} |")
            print()

    print_targets(targets)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    add_run_arguments(r, timeout=60.0)
    r.add_argument("--redis-benchmark", action="store_true")
    r.add_argument("--ops", type=int, default=0, help="redis-benchmark's -n")
    r.add_argument("command", nargs="+")
    c = sub.add_parser("rps")
    c.add_argument("command", nargs="+")
    p = sub.add_parser("report")
    p.add_argument("file")
    args = ap.parse_args()
    return {"run": run, "rps": rps, "report": report}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
