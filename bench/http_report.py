# SPDX-License-Identifier: MIT
"""Tables of bench/http.sh's results (JSON lines): medians over the rounds per server and
connection count, the ratios of issue 5's targets, and the idle-connection memory.

    python3 bench/http_report.py build/bench-http/http-results.jsonl
"""
import json
import statistics
import sys
from collections import defaultdict

NAMES = {
    "corio": "corio",
    "corio-epoll": "corio on epoll (CORIO_BACKEND=epoll)",
    "uring": "raw liburing",
    "nginx": "nginx (1 process)",
    "beast": "Boost.Beast (C++20 coroutines)",
    "go": "Go net/http (GOMAXPROCS=1)",
    "fastapi": "uvicorn+FastAPI (uvloop, httptools)",
    "aiohttp": "aiohttp (uvloop)",
    # Every core (issue 14; bench/http_cores.sh): N loops, workers, threads or Ps.
    "corio-2": "corio, 2 loops (runtime)",
    "nginx-2": "nginx (2 worker processes)",
    "go-2": "Go net/http (GOMAXPROCS=2)",
    "beast-2": "Boost.Beast (2 threads on one io_context)",
}


def median(values):
    return statistics.median(values) if values else float("nan")


def fmt_int(v):
    return "–" if v != v else f"{v:,.0f}"


def fmt_lat(us):
    if us != us:
        return "–"
    if us >= 1000:
        return f"{us / 1000:.2f} ms"
    return f"{us:.0f} µs"


def ratio(a, b):
    return "–" if not (a == a and b == b) or b == 0 else f"{a / b:.2f}x"


def main(path):
    loads = defaultdict(list)
    idle = {}
    sizes = {}
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line:
            continue
        r = json.loads(line)
        if r["kind"] == "load":
            loads[(r["server"], r["conns"])].append(r)
        elif r["kind"] == "idle":
            idle[r["server"]] = r
        elif r["kind"] == "response":
            sizes[r["server"]] = r["head_bytes"] + r["body_bytes"]

    servers = [s for s in NAMES if any(k[0] == s for k in loads)]
    conns_list = sorted({k[1] for k in loads})
    med = {}
    dropped = {}
    for key, all_runs in loads.items():
        # Runs that other work disturbed were repeated: keep the clean ones (all, if none is).
        runs = [r for r in all_runs if not r.get("disturbed", False)] or all_runs
        dropped[key] = len(all_runs) - len(runs)
        m = {f: median([r[f] for r in runs]) for f in (
            "rps", "p50_us", "p99_us", "server_core_busy", "load_core_busy")}
        # Per run: requests per server-CPU-second and the server's busy fraction, then medians.
        m["per_cpu"] = median([r["requests"] / r["cpu_s"] for r in runs if r["cpu_s"] > 0])
        m["busy"] = median([r["cpu_s"] / r["wall_s"] for r in runs if r["wall_s"] > 0])
        m["wrk_busy"] = median([r.get("wrk_cpu_s", float("nan")) / r["wall_s"] for r in runs])
        m["clean"] = all(not r.get("disturbed", False) for r in runs)
        m["runs"] = len(runs)
        m["errors"] = sum(r["socket_errors"] + r["non2xx"] for r in runs)
        m["rps_range"] = (min(r["rps"] for r in runs), max(r["rps"] for r in runs))
        med[key] = m

    out = []
    for conns in conns_list:
        out.append(f"### {conns} connection{'s' if conns != 1 else ''} (medians of the rounds; "
                   "runs disturbed by other work were repeated and are left out)")
        out.append("")
        out.append("| server | runs (repeated) | req/s (min–max) | server CPU busy "
                   "| req/s per server-CPU-s | p50 | p99 | wrk CPU busy | errors |")
        out.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        for s in servers:
            m = med.get((s, conns))
            if m is None:
                continue
            lo, hi = m["rps_range"]
            runs = f"{m['runs']} ({dropped[(s, conns)]})" + ("" if m["clean"] else " disturbed")
            out.append(
                f"| {NAMES[s]} | {runs} | {fmt_int(m['rps'])} ({fmt_int(lo)}–{fmt_int(hi)}) "
                f"| {m['busy'] * 100:.0f} % | {fmt_int(m['per_cpu'])} | {fmt_lat(m['p50_us'])} "
                f"| {fmt_lat(m['p99_us'])} | {m['wrk_busy'] * 100:.0f} % | {m['errors']} |")
        out.append("")

    def get(s, c, f):
        m = med.get((s, c))
        return m[f] if m else float("nan")

    # Per-round ratios: the last attempt of each server in each round (the two runs of a ratio
    # were minutes apart at most, so slow drift of the machine cancels).
    final = {}
    for (s, c), runs in loads.items():
        for r in runs:
            k = (s, c, r["round"])
            if k not in final or r.get("attempt", 1) > final[k].get("attempt", 1):
                final[k] = r

    def per_cpu(r):
        return r["requests"] / r["cpu_s"] if r["cpu_s"] > 0 else float("nan")

    def round_ratio(c, subject, other, what):
        rs = []
        for (s, cc, rnd), r in final.items():
            if s == subject and cc == c and (other, c, rnd) in final:
                rs.append(what(r) / what(final[(other, c, rnd)]))
        if not rs:
            return "–"
        return f"{min(rs):.2f}–{max(rs):.2f}"

    targets = [
        ("vs raw liburing, req/s per server-CPU-s (target ≥ 0.9x)", "corio", "uring", per_cpu),
        ("vs nginx, req/s per server-CPU-s (≥ 1.0x)", "corio", "nginx", per_cpu),
        ("vs uvicorn+FastAPI, req/s (≥ 20x)", "corio", "fastapi", lambda r: r["rps"]),
        ("p99, corio / nginx (≤ 1.0x)", "corio", "nginx", lambda r: r["p99_us"]),
        ("vs raw liburing, req/s", "corio", "uring", lambda r: r["rps"]),
        ("vs nginx, req/s", "corio", "nginx", lambda r: r["rps"]),
        ("vs Boost.Beast, req/s per server-CPU-s", "corio", "beast", per_cpu),
        ("corio-epoll vs nginx, req/s per server-CPU-s (≥ 0.9x)", "corio-epoll", "nginx",
         per_cpu),
        ("p99, corio-epoll / nginx", "corio-epoll", "nginx", lambda r: r["p99_us"]),
        ("io_uring over epoll: corio / corio-epoll, req/s per server-CPU-s", "corio",
         "corio-epoll", per_cpu),
        ("every core: corio 2 loops vs nginx 2 workers, req/s (≥ 1.0x)", "corio-2", "nginx-2",
         lambda r: r["rps"]),
        ("every core: corio 2 loops vs nginx 2 workers, req/s per server-CPU-s (≥ 1.0x)",
         "corio-2", "nginx-2", per_cpu),
        ("every core: corio 2 loops vs Go GOMAXPROCS=2, req/s", "corio-2", "go-2",
         lambda r: r["rps"]),
        ("every core: corio 2 loops vs Beast 2 threads, req/s", "corio-2", "beast-2",
         lambda r: r["rps"]),
        ("every core: corio 2 loops vs corio 1 loop, req/s", "corio-2", "corio",
         lambda r: r["rps"]),
    ]
    out.append("### Ratios, corio / other (of the medians above; in parentheses the range of "
               "the per-round ratios)")
    out.append("")
    out.append("| ratio | " + " | ".join(f"{c} conn." for c in conns_list) + " |")
    out.append("|---|" + "---:|" * len(conns_list))
    for label, subject, other, what in targets:
        if not any(s == subject for (s, _) in med) or not any(s == other for (s, _) in med):
            continue
        cells = []
        for c in conns_list:
            key = "per_cpu" if what is per_cpu else ("p99_us" if "p99" in label else "rps")
            cells.append(f"{ratio(get(subject, c, key), get(other, c, key))} "
                         f"({round_ratio(c, subject, other, what)})")
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    out.append("")

    if idle:
        out.append("### Memory per idle keep-alive connection")
        out.append("")
        out.append("| server | connections (failed) | still open at the end | VmRSS before | "
                   "VmRSS after | per connection |")
        out.append("|---|---:|---:|---:|---:|---:|")
        for s in [s for s in NAMES if s in idle]:
            r = idle[s]
            n = r["conns"]
            per = (r["rss_after_kib"] - r["rss_before_kib"]) / n if n else float("nan")
            out.append(f"| {NAMES[s]} | {n:,} ({r['failed']}) | {r['still_open']:,} "
                       f"| {r['rss_before_kib']:,} KiB | {r['rss_after_kib']:,} KiB "
                       f"| {per:.2f} KiB |")
        out.append("")

    if sizes:
        out.append("Response sizes (head + body bytes): " + ", ".join(
            f"{NAMES[s].split(' ')[0]} {sizes[s]}" for s in NAMES if s in sizes) + ".")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
