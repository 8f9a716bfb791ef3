#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The echo benchmarks of issue 4: corio's echo server against a raw liburing one (the practical
# limit) and Boost.Asio's C++20-coroutine one, all measured by one load generator (echo_load,
# plain epoll) in the same run. Builds them in Release, then for each round, each case and each
# server (their order rotating from round to round, so that noise hits all alike): starts the
# server pinned to one core, runs the load pinned to the other, stops the server. Prints the
# medians over the rounds as tables (echo_report.py; bench/README.md, "Echo (issue 4)").
# Run from anywhere:  bench/echo.sh
#
# Environment knobs:
#   ROUNDS=8  DURATION=3  WARMUP=1        rounds; seconds measured and warmed up per run
#   SERVERS="uring corio asio"            also: uring-wait1 (echo_uring --wait-one), corio-epoll
#                                         (echo_corio on the epoll backend: CORIO_BACKEND=epoll)
#   CASES="1x64 100x64 1x16384 100x16384" connections x message bytes
#   SERVER_CPU=0  LOAD_CPU=1              the cores (taskset -c)
#   PORT=7300                             the first port; every server start takes a new one
#                                         (a killed io_uring server's listener can linger a
#                                         moment while the kernel tears its ring down)
#   QUIET=0.10  QUIET_WAIT=120            before each run, wait (up to QUIET_WAIT seconds) until
#                                         both cores are idle but for QUIET (busy fraction over
#                                         half a second): other work on the machine skews runs
#   BUILD_DIR=build/bench-echo  OUT=$BUILD_DIR/echo-results.jsonl  PYTHON=python3
#
# Each JSON line of $OUT is echo_load's, plus server_preempted (the server's involuntary context
# switches over its life) and quiet_wait_s (how long the run waited for quiet cores).
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-8}
DURATION=${DURATION:-3}
WARMUP=${WARMUP:-1}
SERVERS=${SERVERS:-uring corio asio}
CASES=${CASES:-1x64 100x64 1x16384 100x16384}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PORT=${PORT:-7300}
BUILD_DIR=${BUILD_DIR:-build/bench-echo}
OUT=${OUT:-$BUILD_DIR/echo-results.jsonl}
PYTHON=${PYTHON:-python3}
QUIET=${QUIET:-0.10}
QUIET_WAIT=${QUIET_WAIT:-120}

# The release preset (Release, benchmarks on) in a directory of its own; tests and examples are
# not needed here.
cmake --preset release -B "$BUILD_DIR" -DCORIO_BUILD_TESTS=OFF -DCORIO_BUILD_EXAMPLES=OFF >/dev/null
targets="echo_load echo_uring echo_corio"
if cmake --build "$BUILD_DIR" --target help | grep echo_asio >/dev/null; then
    targets+=" echo_asio"
else
    SERVERS=$(echo "$SERVERS" | tr ' ' '\n' | grep -vx asio | tr '\n' ' ')
    echo "echo.sh: Boost not found, no Asio server" >&2
fi
# shellcheck disable=SC2086
cmake --build "$BUILD_DIR" --target $targets -j"$(nproc)"
BIN=$BUILD_DIR/bench

# shellcheck source=bench/echo_servers.sh
source bench/echo_servers.sh # (the working directory is the repository)

cpu_jiffies() { # cpu -> "busy total" (busy: all but idle, iowait, steal)
    awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= 9; i++) t += $i; print t - $5 - $6 - $9, t }' /proc/stat
}
# Waits until the server's and the load's cores are (nearly) idle; prints the seconds waited.
wait_quiet() {
    local start=$SECONDS
    while :; do
        read -r b0 t0 <<<"$(cpu_jiffies "$SERVER_CPU")"
        read -r b1 t1 <<<"$(cpu_jiffies "$LOAD_CPU")"
        sleep 0.5
        read -r b0x t0x <<<"$(cpu_jiffies "$SERVER_CPU")"
        read -r b1x t1x <<<"$(cpu_jiffies "$LOAD_CPU")"
        if awk -v q="$QUIET" -v a=$((b0x - b0)) -v b=$((t0x - t0)) -v c=$((b1x - b1)) \
            -v d=$((t1x - t1)) 'BEGIN { exit !(b > 0 && d > 0 && a / b <= q && c / d <= q) }'; then
            break
        fi
        if ((SECONDS - start >= QUIET_WAIT)); then
            echo "echo.sh: the cores stayed busy for ${QUIET_WAIT}s; running anyway" >&2
            break
        fi
    done
    echo $((SECONDS - start))
}
trap 'exit 130' INT TERM

echo "== machine"
lscpu | grep -m1 'Model name' || true
echo "kernel $(uname -r), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server on CPU $SERVER_CPU, load on CPU $LOAD_CPU; $ROUNDS rounds of ${DURATION}s (+${WARMUP}s warm-up)"
: >"$OUT"
LOG=$BUILD_DIR/echo-servers.log
: >"$LOG"

read -r -a server_list <<<"$SERVERS"
port=$PORT
for round in $(seq "$ROUNDS"); do
    echo "== round $round/$ROUNDS"
    for case in $CASES; do
        conns=${case%x*}
        size=${case#*x}
        n=${#server_list[@]}
        for ((k = 0; k < n; k++)); do
            server=${server_list[$(((k + round - 1) % n))]}
            port=$((port + 1))
            waited=$(wait_quiet)
            # shellcheck disable=SC2046
            taskset -c "$SERVER_CPU" $(server_cmd "$server") --port "$port" 2>>"$LOG" &
            server_pid=$!
            if line=$(taskset -c "$LOAD_CPU" "$BIN/echo_load" --port "$port" --conns "$conns" \
                --size "$size" --duration "$DURATION" --warmup "$WARMUP" \
                --tag server="$server" --tag round="$round"); then
                preempted=$(awk '/^nonvoluntary_ctxt_switches/ { print $2 }' \
                    "/proc/$server_pid/status" 2>/dev/null || echo -1)
                line="${line%\}},\"server_preempted\":${preempted:--1},\"quiet_wait_s\":$waited}"
                echo "$line" | tee -a "$OUT"
            else
                echo "echo.sh: $server $case failed (see $LOG)" >&2
            fi
            if ! kill -0 "$server_pid" 2>/dev/null; then
                echo "echo.sh: $server died during $case (see $LOG)" >&2
            fi
            stop_server
        done
    done
done

echo
"$PYTHON" bench/echo_report.py "$OUT" "$SERVER_CPU" "$LOAD_CPU" | tee "${OUT%.jsonl}.md"
