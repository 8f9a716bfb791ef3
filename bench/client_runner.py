# SPDX-License-Identifier: MIT
"""What the runners of the benchmarks against a server share (pg_report.py, redis_report.py):
one client process run and accounted for (its CPU, the server's, and everything else's over
the run, to tell a disturbed run), its JSON line appended to the results, and those read back.
"""
import json
import statistics
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

TICK = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """All CPUs' user, nice, system, irq and softirq time so far (not idle, iowait, steal).
    The softirq time counts: the loopback's packet processing runs as softirq in the context
    of the sending process, whose own CPU time includes it."""
    with open("/proc/stat") as f:
        v = f.readline().split()[1:]
    return (int(v[0]) + int(v[1]) + int(v[2]) + int(v[5]) + int(v[6])) / TICK


@dataclass
class client_run:
    out_text: str      # the client's standard output
    code: int          # its exit status
    proc_cpu: float    # its CPU time (wait4: forked children included), seconds
    peak_rss_kib: int  # its peak RSS (wait4)
    wall: float        # the run's wall time, seconds
    server_cpu: float  # the server's CPU time over the run, seconds
    foreign: float     # everything else's CPU over the run, in cores


def run_client(command, timeout: float, server_seconds, settle: float = 0.0) -> client_run:
    """Runs `command` (killed after `timeout` seconds), waits for it with os.wait4, and measures
    around it: `server_seconds()` (the server's CPU time so far) and every CPU's busy time.
    `settle`: seconds to wait after the client's end before the second readings (the server's
    processes that end with the client then have been reaped)."""
    busy0 = busy_seconds()
    server0 = server_seconds()
    t0 = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    killer = threading.Timer(timeout, child.kill)
    killer.start()
    out_text = child.stdout.read()
    _, status, ru = os.wait4(child.pid, 0)
    killer.cancel()
    if settle > 0:
        time.sleep(settle)
    wall = time.perf_counter() - t0
    server_cpu = server_seconds() - server0
    busy = busy_seconds() - busy0
    proc_cpu = ru.ru_utime + ru.ru_stime
    return client_run(out_text, os.waitstatus_to_exitcode(status), proc_cpu, ru.ru_maxrss, wall,
                      server_cpu, (busy - proc_cpu - server_cpu) / wall)


def client_line(out_text: str) -> dict:
    """The JSON line a client printed (the first line starting with "{"), or {}."""
    line = next((l for l in out_text.splitlines() if l.startswith("{")), None)
    return json.loads(line) if line else {}


def record(args, rec: dict, m: client_run, describe) -> int:
    """Completes `rec` (the client's figures) with the run's (args: case, name, round, attempt,
    disturbed, out), appends it to args.out, prints a line (`describe(rec)` when the client
    succeeded) and returns the exit status: the client's, else 1 when it printed no figures,
    else 3 when the run was disturbed."""
    code = m.code if rec or m.code != 0 else 1
    impl, variant = args.name.split(":", 1)
    rec.update({
        "label": args.case, "name": args.name, "impl": impl, "variant": variant,
        "round": args.round, "attempt": args.attempt, "exit": code, "proc_wall_s": m.wall,
        "proc_cpu_s": m.proc_cpu, "server_cpu_s": m.server_cpu, "foreign_cores": m.foreign,
        "disturbed": m.foreign > args.disturbed, "peak_rss_kib_wait4": m.peak_rss_kib,
    })
    with open(args.out, "a") as f:
        f.write(json.dumps(rec) + "\n")
    what = describe(rec) if code == 0 else f"failed (exit {code})"
    print(f"  {args.case:7} {args.name:26} round {args.round}.{args.attempt}: {what}, "
          f"foreign {m.foreign:.2f} cores" + (" DISTURBED" if rec["disturbed"] else ""),
          file=sys.stderr)
    if code != 0:
        return code
    return 3 if rec["disturbed"] else 0


def load(path):
    """The results of `path`: per (case, name, round), the last undisturbed attempt that
    succeeded, else the last that succeeded; and the attempts per (case, name, round)."""
    by, attempts = {}, {}
    for line in open(path):
        if not line.strip():
            continue
        r = json.loads(line)
        if r.get("exit") != 0:
            continue
        key = (r["label"], r["name"], r["round"])
        attempts[key] = attempts.get(key, 0) + 1
        if key not in by or not r.get("disturbed") or by[key].get("disturbed"):
            by[key] = r
    return by, attempts


class results:
    """A results file read for its tables: per case, the names of its runs (in `order` of
    their implementation, then by name), and over the rounds, each run's records, medians with
    their range, and ratios taken within each round."""

    def __init__(self, path, order):
        self.by, self.attempts = load(path)
        self.rounds = sorted({k[2] for k in self.by})
        self.names = {}
        for (label, name, _) in self.by:
            self.names.setdefault(label, [])
            if name not in self.names[label]:
                self.names[label].append(name)
        for label in self.names:
            self.names[label].sort(key=lambda n: (order.index(n.split(":")[0])
                                                  if n.split(":")[0] in order else 99, n))

    def of(self, label, name):
        return [self.by[(label, name, rd)] for rd in self.rounds if (label, name, rd) in self.by]

    @staticmethod
    def med(rs, f):
        return statistics.median(f(r) for r in rs) if rs else None

    @staticmethod
    def spread(rs, f, fmt):
        if not rs:
            return "–"
        vals = [f(r) for r in rs]
        return f"{fmt(statistics.median(vals))} ({fmt(min(vals))}–{fmt(max(vals))})"

    def ratios(self, label_a, a, label_b, b, f):
        return [f(self.by[(label_a, a, rd)]) / f(self.by[(label_b, b, rd)]) for rd in self.rounds
                if (label_a, a, rd) in self.by and (label_b, b, rd) in self.by]

    def ratio(self, label_a, a, label_b, b, f=lambda r: r["per_s"]):
        rs = self.ratios(label_a, a, label_b, b, f)
        if not rs:
            return "–", None
        m = statistics.median(rs)
        return f"{m:.2f}x ({min(rs):.2f}–{max(rs):.2f})", m

    def runs_cell(self, label, name):
        rs = self.of(label, name)
        repeated = sum(self.attempts[(label, name, r["round"])] - 1 for r in rs)
        disturbed = sum(1 for r in rs if r.get("disturbed"))
        return (f"{len(rs)}" + (f" ({repeated} repeated)" if repeated else "")
                + (f", {disturbed} disturbed" if disturbed else ""))


def k(v):
    return f"{v / 1e3:,.1f} k"


def us(v):
    return f"{v:,.1f} µs" if v >= 10 else f"{v:.2f} µs"


def print_targets(targets):
    """The targets table: (target, figure, met) each."""
    if targets:
        print("### Targets\n")
        print("| target | result (median of per-round ratios, range) | |")
        print("|---|---:|---|")
        for t, s, met in targets:
            print(f"| {t} | {s} | {'**met**' if met else '**missed**'} |")
        print()


def add_run_arguments(r, timeout):
    """The arguments of a runner's `run` command but its own flags and the command."""
    r.add_argument("--out", required=True)
    r.add_argument("--case", required=True)
    r.add_argument("--name", required=True)
    r.add_argument("--round", type=int, required=True)
    r.add_argument("--attempt", type=int, default=1)
    r.add_argument("--server-pid", type=int, required=True)
    r.add_argument("--disturbed", type=float, default=0.10)
    r.add_argument("--timeout", type=float, default=timeout, help="seconds before the client "
                   "is killed")
