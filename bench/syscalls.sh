#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The system calls per echoed message of each echo server, and its messages per server
# CPU-second, counted by perf's syscall tracepoints over a window in the middle of an echo_load
# run: the low-noise complement of echo.sh (a count of system calls does not move with the
# machine's speed the way a throughput does). Servers and load are pinned as in echo.sh, and the
# servers alternate within each round, so that a pair measured back to back compares fairly.
# Run from anywhere, as root (perf reads tracepoints):  bench/syscalls.sh
#
# Environment knobs:
#   ROUNDS=3  WINDOW=3                    rounds; seconds counted per run (the load runs
#                                         WINDOW + 4 s around the window)
#   SERVERS="corio-epoll asio corio"      as echo.sh's (corio: io_uring)
#   CASES="1x64 100x64 1x16384 100x16384" connections x message bytes
#   SERVER_CPU=0  LOAD_CPU=1  PORT=7600
#   BUILD_DIR=build/bench-echo  OUT=$BUILD_DIR/syscalls-results.jsonl  PYTHON=python3
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
WINDOW=${WINDOW:-3}
SERVERS=${SERVERS:-corio-epoll asio corio}
CASES=${CASES:-1x64 100x64 1x16384 100x16384}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PORT=${PORT:-7600}
BUILD_DIR=${BUILD_DIR:-build/bench-echo}
OUT=${OUT:-$BUILD_DIR/syscalls-results.jsonl}
PYTHON=${PYTHON:-python3}

if ! perf stat -e syscalls:sys_enter_sendto -- true >/dev/null 2>&1; then
    echo "syscalls.sh: perf cannot read syscall tracepoints here (apt-get install linux-perf;" \
        "run as root)" >&2
    exit 2
fi
cmake --preset release -B "$BUILD_DIR" -DCORIO_BUILD_TESTS=OFF -DCORIO_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$BUILD_DIR" --target echo_load echo_corio echo_asio -j"$(nproc)"
BIN=$BUILD_DIR/bench

# shellcheck source=bench/echo_servers.sh
source bench/echo_servers.sh # (the working directory is the repository)

# The system calls an echo server makes per message, whichever backend.
EVENTS=task-clock,raw_syscalls:sys_enter
for call in recvfrom sendto epoll_wait epoll_pwait2 epoll_ctl io_uring_enter; do
    EVENTS+=,syscalls:sys_enter_$call
done

: >"$OUT"
for round in $(seq 1 "$ROUNDS"); do
    echo "== round $round/$ROUNDS" >&2
    for c in $CASES; do
        conns=${c%x*}
        size=${c#*x}
        for server in $SERVERS; do
            PORT=$((PORT + 1))
            # shellcheck disable=SC2046
            taskset -c "$SERVER_CPU" $(server_cmd "$server") --port "$PORT" >/dev/null &
            server_pid=$!
            sleep 0.5
            load=$(mktemp)
            taskset -c "$LOAD_CPU" "$BIN/echo_load" --port "$PORT" --conns "$conns" \
                --size "$size" --duration $((WINDOW + 3)) --warmup 1 >"$load" &
            load_pid=$!
            sleep 2.5 # connected and warm: the window is inside the measured run
            counts=$(perf stat -x, -e "$EVENTS" -p "$server_pid" -- sleep "$WINDOW" 2>&1 >/dev/null)
            wait "$load_pid"
            stop_server
            "$PYTHON" - "$load" "$server" "$round" "$WINDOW" "$counts" >>"$OUT" <<'PY'
import json, sys
load, server, rnd, window, counts = sys.argv[1:6]
row = json.load(open(load))
row.update(server=server, round=int(rnd), window_s=float(window))
for line in counts.splitlines():
    f = line.split(",")
    if len(f) > 2 and f[0].replace(".", "", 1).isdigit():
        row[f[2].split(":")[-1].replace("sys_enter_", "")] = float(f[0])
print(json.dumps(row))
PY
            rm -f "$load"
        done
    done
done

"$PYTHON" - "$OUT" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
cases = sorted({(r["conns"], r["size"]) for r in rows})
servers = list(dict.fromkeys(r["server"] for r in rows))
print("\n| case | server | msgs per server CPU-s | syscalls / msg | recv | send | epoll_wait | "
      "epoll_ctl | io_uring_enter |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
med = lambda xs: statistics.median(xs)
for conns, size in cases:
    for s in servers:
        rs = [r for r in rows if (r["conns"], r["size"], r["server"]) == (conns, size, s)]
        if not rs:
            continue
        msgs = lambda r: r["msgs_per_s"] * r["window_s"]
        per = lambda key: med([r.get(key, 0) / msgs(r) for r in rs])
        cpu = med([msgs(r) / (r["task-clock"] / 1000) for r in rs])
        size_s = f"{size // 1024} KiB" if size >= 1024 else f"{size} B"
        waits = med([(r.get("epoll_wait", 0) + r.get("epoll_pwait2", 0)) / msgs(r) for r in rs])
        print(f"| {conns} x {size_s} | {s} | {cpu:,.0f} | {per('sys_enter'):.2f} | "
              f"{per('recvfrom'):.2f} | {per('sendto'):.2f} | {waits:.3f} | "
              f"{per('epoll_ctl'):.3f} | {per('io_uring_enter'):.3f} |")
PY
