# SPDX-License-Identifier: MIT
"""The runner and the tables of the HTTP client benchmarks (issue 6, bench/client.sh).

    client_report.py run --out FILE --name NAME --round R [--server-pid PID]
                         [--disturbed 0.05] -- COMMAND...
        Runs COMMAND (one client, which prints one JSON line), waits for it with os.wait4 and
        appends one JSON line to FILE: the client's own line (with its peak RSS, VmHWM) plus its
        whole process's CPU time (wait4's rusage), the server's CPU time over the run
        (/proc/PID/schedstat), each core's busy and irq fractions (/proc/stat), and "disturbed":
        whether other processes (kernel threads aside) used more CPU time than DISTURBED of the
        run's wall time. Exit status: the client's, or 3 when the run was disturbed.

    client_report.py report FILE
        Prints the tables (medians over the undisturbed runs; ratios as medians of per-round
        ratios, with their range).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

TICK = os.sysconf("SC_CLK_TCK")


def cpu_times() -> dict:
    """Per core: (busy ticks without irq/softirq, irq+softirq ticks, all ticks)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if not line.startswith("cpu") or line.startswith("cpu "):
                continue
            name, *vals = line.split()
            v = [int(x) for x in vals[:8]]
            user, nice, system, idle, iowait, irq, softirq, steal = v
            out[name] = (user + nice + system, irq + softirq, sum(v))
    return out


def proc_cpu_seconds(pid: int) -> float:
    """A process's CPU time: /proc/PID/schedstat's run time (ns), else utime + stime (ticks)."""
    try:
        with open(f"/proc/{pid}/schedstat") as f:
            ns = int(f.read().split()[0])
        if ns > 0:
            return ns / 1e9
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime (fields 14 and 15)
    except OSError:
        return 0.0


def user_processes() -> dict:
    """pid -> (command name, utime + stime ticks) of every process but kernel threads (whose
    work, softirq for the network stack included, belongs to the benchmark)."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                text = f.read()
        except OSError:
            continue
        comm = text[text.index("(") + 1:text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        ppid, flags = int(fields[1]), int(fields[6])
        if flags & 0x00200000 or ppid == 2 or entry == "2":  # PF_KTHREAD
            continue
        out[int(entry)] = (comm, int(fields[11]) + int(fields[12]))
    return out


def run(args: argparse.Namespace) -> int:
    me = os.getpid()
    others0 = user_processes()
    server0 = proc_cpu_seconds(args.server_pid) if args.server_pid else 0.0
    cores0 = cpu_times()
    t0 = time.perf_counter()
    child = subprocess.Popen(args.command, stdout=subprocess.PIPE, text=True)
    out_text = child.stdout.read()
    _, status, ru = os.wait4(child.pid, 0)
    wall = time.perf_counter() - t0
    cores1 = cpu_times()
    server1 = proc_cpu_seconds(args.server_pid) if args.server_pid else 0.0
    others1 = user_processes()
    code = os.waitstatus_to_exitcode(status)
    line = next((l for l in out_text.splitlines() if l.startswith("{")), None)
    rec = json.loads(line) if line else {}
    proc_cpu = ru.ru_utime + ru.ru_stime
    server_cpu = server1 - server0
    rec.update({
        "name": args.name, "round": args.round, "exit": code,
        "proc_wall_s": wall, "proc_cpu_s": proc_cpu, "server_cpu_s": server_cpu,
    })
    for core, (b0, i0, a0) in cores0.items():
        b1, i1, a1 = cores1[core]
        dt = (a1 - a0) / TICK
        rec[f"{core}_busy"] = (b1 - b0) / TICK / dt if dt > 0 else 0.0
        rec[f"{core}_irq"] = (i1 - i0) / TICK / dt if dt > 0 else 0.0
    # Other work: CPU time of the processes that were neither the client, nor the server, nor
    # this runner (a process that started and ended within the run is missed).
    other = {}
    for pid, (comm, ticks) in others1.items():
        if pid in (me, args.server_pid, child.pid):
            continue
        before = others0.get(pid, (comm, 0))[1]
        if ticks > before:
            other[comm] = other.get(comm, 0) + (ticks - before) / TICK
    other_s = sum(other.values())
    disturbed = other_s > args.disturbed * wall + 1.0 / TICK
    rec["other_s"] = other_s
    rec["other"] = dict(sorted(other.items(), key=lambda kv: -kv[1])[:5])
    rec["disturbed"] = disturbed
    with open(args.out, "a") as f:
        f.write(json.dumps(rec) + "\n")
    if "heap_bytes_per_conn" in rec:
        what = (f"{rec['heap_bytes_per_conn']:,.0f} B of heap and "
                f"{rec['rss_bytes_per_conn']:,.0f} B of VmRSS per idle connection")
    else:
        rate = rec.get("requests", 0) / rec["wall_s"] if rec.get("wall_s") else 0
        what = (f"{rate:9,.0f} req/s, "
                f"{1e6 * rec.get('cpu_s', 0) / max(rec.get('requests', 1), 1):7.1f} us CPU/req, "
                f"peak RSS {rec.get('peak_rss_kib', 0) / 1024:.1f} MiB")
    print(f"  {args.name:15} round {args.round}: {what}, exit {code}"
          + (f", DISTURBED by {rec['other']}" if disturbed else ""), file=sys.stderr)
    if code != 0:
        return code
    return 3 if disturbed else 0


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def report(args: argparse.Namespace) -> int:
    recs = [json.loads(l) for l in open(args.file) if l.strip()]
    load = [r for r in recs if r.get("client") != "corio-idle" and r.get("exit") == 0
            and not r.get("disturbed")]
    names = []
    for r in load:
        if r["name"] not in names:
            names.append(r["name"])
    order = ["corio", "beast", "curl", "aiohttp", "aiohttp-uvloop"]
    names.sort(key=lambda n: order.index(n) if n in order else len(order))

    def rps(r):
        return r["requests"] / r["wall_s"]

    def cpu_us(r):
        return 1e6 * r["cpu_s"] / r["requests"]

    def proc_us(r):
        return 1e6 * r["proc_cpu_s"] / r["requests"]

    by = {n: [r for r in load if r["name"] == n] for n in names}
    print("| client | runs | req/s | CPU µs/req | CPU µs/req, whole process | peak RSS | "
          "nginx CPU µs/req |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for n in names:
        rs = by[n]
        print(f"| {n} | {len(rs)} | {median([rps(r) for r in rs]):,.0f} | "
              f"{median([cpu_us(r) for r in rs]):.2f} | {median([proc_us(r) for r in rs]):.2f} | "
              f"{median([r['peak_rss_kib'] for r in rs]) / 1024:.1f} MiB | "
              f"{median([1e6 * r['server_cpu_s'] / r['requests'] for r in rs]):.2f} |")
    print()

    # Per-round ratios: the two runs of a ratio were seconds apart.
    def per_round(a, b, f):
        ra = {r["round"]: r for r in by.get(a, [])}
        rb = {r["round"]: r for r in by.get(b, [])}
        return [f(ra[k], rb[k]) for k in sorted(set(ra) & set(rb))]

    rows = [
        ("CPU per request: Beast's / corio's", "beast", lambda c, o: cpu_us(o) / cpu_us(c),
         "≥ 1.0 (corio ≤ Beast)", 1.0),
        ("req/s: corio's / Beast's", "beast", lambda c, o: rps(c) / rps(o), "–", None),
        ("req/s: corio's / libcurl multi's", "curl", lambda c, o: rps(c) / rps(o), "≥ 2.5", 2.5),
        ("CPU per request: libcurl's / corio's", "curl", lambda c, o: cpu_us(o) / cpu_us(c),
         "–", None),
        ("req/s: corio's / aiohttp's", "aiohttp", lambda c, o: rps(c) / rps(o), "≥ 20", 20.0),
        ("req/s: corio's / aiohttp+uvloop's", "aiohttp-uvloop", lambda c, o: rps(c) / rps(o),
         "≥ 20", 20.0),
        ("CPU per request: aiohttp's / corio's", "aiohttp", lambda c, o: cpu_us(o) / cpu_us(c),
         "–", None),
        ("CPU per request: aiohttp+uvloop's / corio's", "aiohttp-uvloop",
         lambda c, o: cpu_us(o) / cpu_us(c), "–", None),
    ]
    print("| ratio | median (range) | target | met |")
    print("|---|---:|---|---|")
    for label, other, f, target, bound in rows:
        xs = per_round("corio", other, f)
        if not xs:
            continue
        met = "" if bound is None else ("yes" if median(xs) >= bound else "**no**")
        print(f"| {label} | {median(xs):.2f}x ({min(xs):.2f}–{max(xs):.2f}) | {target} | {met} |")
    print()

    idle = [r for r in recs if r.get("client") == "corio-idle" and r.get("exit") == 0
            and not r.get("disturbed")]
    if idle:
        print("| corio, idle pooled connections | runs | conns | heap in use per conn | "
              "VmRSS per conn | VmRSS per conn, cold | kernel: TCP slab per conn | "
              "kernel: sockstat mem per conn |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        print(f"| N requests at once (max_connections = N), then idle in the pool | {len(idle)} | "
              f"{idle[0]['conns']:,} | {median([r['heap_bytes_per_conn'] for r in idle]):,.0f} B | "
              f"{median([r['rss_bytes_per_conn'] for r in idle]):,.0f} B | "
              f"{median([r['cold_rss_bytes_per_conn'] for r in idle]):,.0f} B | "
              f"{median([r['kernel_tcp_slab_bytes_per_conn'] for r in idle]):,.0f} B | "
              f"{median([r['kernel_sockstat_bytes_per_conn'] for r in idle]):,.0f} B |")
        print()
        print(f"(sizeof(client_connection) = {idle[0]['sizeof_client_connection']} B, "
              f"sizeof(tcp_stream) = {idle[0]['sizeof_tcp_stream']} B; the kernel's figures "
              "count both ends of each loopback connection.)")
    dropped = [r for r in recs if r.get("disturbed") or r.get("exit") != 0]
    if dropped:
        print(f"\n({len(dropped)} run(s) left out: disturbed or failed.)")
    return 0


def main() -> int:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--out", required=True)
    r.add_argument("--name", required=True)
    r.add_argument("--round", type=int, default=0)
    r.add_argument("--server-pid", type=int, default=0)
    r.add_argument("--disturbed", type=float, default=0.05)
    r.add_argument("command", nargs=argparse.REMAINDER)
    q = sub.add_parser("report")
    q.add_argument("file")
    args = p.parse_args()
    if args.cmd == "run":
        if args.command and args.command[0] == "--":
            args.command = args.command[1:]
        return run(args)
    return report(args)


if __name__ == "__main__":
    sys.exit(main())
