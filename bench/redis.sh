#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The Redis benchmarks of issue 16: corio::redis's client against redis-benchmark (Redis's own C
# client: -P 1 is the floor for a client that waits for each reply, -P 16 the server's own
# pipelined limit) and redis-py's asyncio client, against one local redis-server pinned to
# SERVER_CPU, every client pinned to CLIENT_CPU, over TCP on 127.0.0.1:
#   get, set  100 tasks sending single commands through ONE corio::redis::client (automatic
#             pipelining; max_connections 1 and 4), redis-benchmark -c 100 -P 1 and -P 16, and
#             redis-py asyncio with 100 tasks, single commands and explicit pipelines of 16:
#             requests/s, client CPU per request, server CPU per request
#   limiter   corio::redis::rate_limiter on one key across 4 forked processes, a rate that never
#             denies (1e9 per 60 s): acquisitions/s, client CPU and script calls (the server's
#             INFO commandstats, evalsha + eval) per acquisition; with acquire() and with
#             try_acquire()
#   queue     corio::redis::work_queue: a forked producer puts QUEUE_ITEMS items from 100 tasks
#             (puts/s), then 4 forked consumer processes of 100 tasks each drain them with
#             get() and ack(), each its share: items/s, client CPU, script calls (evalsha +
#             eval) and server commands (commandstats, the scripts' own included) per item
# Builds redis_corio in Release, starts its own redis-server (a temporary directory, a free
# port, persistence off), then for each round, each case and each run of it (their order
# rotating from round to round), waits for a quiet machine and runs one client process through
# redis_report.py run, which appends one JSON line with the server's CPU time and the CPU that
# other processes took meanwhile; a disturbed run is repeated. Prints the medians, the ratios of
# the same rounds and the targets (redis_report.py report; bench/README.md, "Redis (issue 16)").
# About three and a half minutes with the defaults.
# Run from anywhere:  bench/redis.sh
#
# Environment knobs:
#   ROUNDS=3                       rounds
#   CASES="get set limiter queue"
#   COMMAND_RUNS="corio:conns-1 corio:conns-4 redis-benchmark:P1 redis-benchmark:P16
#                 redis-py:single redis-py:pipeline-16"
#                                  the runs of get and set: corio:conns-N (max_connections N;
#                                  corio:conns-N-tMS: command_timeout MS, 0 for none),
#                                  redis-benchmark:PN (-P N), redis-py:single,
#                                  redis-py:pipeline-N (explicit pipelines of N)
#   LIMITER_RUNS="corio:acquire corio:try"
#   QUEUE_RUNS="corio:drain"       corio:drain (TASKS tasks in each process), corio:drain-N (N)
#   QUEUE_ITEMS=100000             items put, then drained (the queue's runs have no duration)
#   SECONDS_PER_RUN=3              each run's timed part (redis-benchmark: -n from a short
#                                  calibration run of each -P, its requests/s times this)
#   TASKS=100                      tasks (redis-benchmark: connections, -c)
#   PROCESSES=4                    limiter processes, queue consumer processes
#   SERVER_CPU=0  CLIENT_CPU=1     the cores (taskset): the server, and the client
#   TIMEOUT=60                     seconds a run may take before it is killed
#   DISTURBED=0.10  RETRIES=2      a run is "disturbed" when processes other than the client
#                                  and the server took more than DISTURBED cores on average
#                                  during it (all CPUs' user, nice, system, irq and softirq
#                                  time from /proc/stat, less the client's and the server's
#                                  own); it is repeated then, up to RETRIES times, and the
#                                  report takes each round's undisturbed attempt
#   QUIET=0.10  QUIET_WAIT=30      before each run, wait (up to QUIET_WAIT seconds) until the
#                                  machine is idle but for QUIET (busy fraction of all CPUs
#                                  over half a second)
#   WAIT_BUDGET=90                 seconds in all that waiting for quiet and repeating
#                                  disturbed runs may add; past it, runs go ahead at once and
#                                  are not repeated (the report counts them as disturbed)
#   BUILD_DIR=build/bench-redis  OUT=$BUILD_DIR/redis-results.jsonl
#   PYTHON=/usr/bin/python3 (when it has redis, else python3)
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
CASES=${CASES:-get set limiter queue}
COMMAND_RUNS=${COMMAND_RUNS:-corio:conns-1 corio:conns-4 redis-benchmark:P1 redis-benchmark:P16 \
redis-py:single redis-py:pipeline-16}
LIMITER_RUNS=${LIMITER_RUNS:-corio:acquire corio:try}
QUEUE_RUNS=${QUEUE_RUNS:-corio:drain}
QUEUE_ITEMS=${QUEUE_ITEMS:-100000}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-3}
TASKS=${TASKS:-100}
PROCESSES=${PROCESSES:-4}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
TIMEOUT=${TIMEOUT:-60}
DISTURBED=${DISTURBED:-0.10}
RETRIES=${RETRIES:-2}
QUIET=${QUIET:-0.10}
QUIET_WAIT=${QUIET_WAIT:-30}
WAIT_BUDGET=${WAIT_BUDGET:-90}
BUILD_DIR=${BUILD_DIR:-build/bench-redis}
OUT=${OUT:-$BUILD_DIR/redis-results.jsonl}
if [[ -z ${PYTHON:-} ]]; then
    PYTHON=python3
    if /usr/bin/python3 -c 'import redis.asyncio' 2>/dev/null; then
        PYTHON=/usr/bin/python3 # Debian's python3-redis lives there, not in a pyenv
    fi
fi
REDIS_SERVER=$(command -v redis-server || echo /usr/bin/redis-server)
REDIS_BENCHMARK=$(command -v redis-benchmark || echo /usr/bin/redis-benchmark)
REDIS_CLI=$(command -v redis-cli || echo /usr/bin/redis-cli)
if [[ ! -x $REDIS_SERVER || ! -x $REDIS_CLI ]]; then
    echo "redis.sh: no redis-server (scripts/ensure-deps redis-server)" >&2
    exit 1
fi

# --- build ----------------------------------------------------------------------------------
# The release preset (Release, -O3) in a directory of its own.
cmake --preset release -B "$BUILD_DIR" -DCORIO_BUILD_TESTS=OFF -DCORIO_BUILD_EXAMPLES=OFF \
    >/dev/null
if ! cmake --build "$BUILD_DIR" --target help | grep -w redis_corio >/dev/null; then
    echo "redis.sh: corio::redis is not built here (scripts/ensure-deps libhiredis-dev)" >&2
    exit 1
fi
cmake --build "$BUILD_DIR" --target redis_corio -j"$(nproc)"
BIN=$BUILD_DIR/bench

# --- which clients are here -----------------------------------------------------------------
available() { # impl -> exit status
    case $1 in
    corio) [[ -x $BIN/redis_corio ]] ;;
    redis-benchmark) [[ -x $REDIS_BENCHMARK ]] ;;
    redis-py) "$PYTHON" -c 'import redis.asyncio' 2>/dev/null ;;
    *) return 1 ;;
    esac
}
filter_runs() { # runs... -> those whose client is here (the others named on stderr)
    local r out=()
    for r in "$@"; do
        if available "${r%%:*}"; then
            out+=("$r")
        else
            echo "redis.sh: ${r%%:*} is not installed, no $r (scripts/ensure-deps" \
                "redis-tools python3-redis)" >&2
        fi
    done
    echo "${out[*]}"
}
# shellcheck disable=SC2086
{
    COMMAND_RUNS=$(filter_runs $COMMAND_RUNS)
    LIMITER_RUNS=$(filter_runs $LIMITER_RUNS)
    QUEUE_RUNS=$(filter_runs $QUEUE_RUNS)
}

# --- the server -----------------------------------------------------------------------------
TMP=$(mktemp -d /tmp/corio-redis-bench.XXXXXX)
SERVER_PID=''
cleanup() {
    if [[ -n $SERVER_PID ]]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ADDRESS=127.0.0.1:$PORT
# taskset execs redis-server: $! is the server's PID.
taskset -c "$SERVER_CPU" "$REDIS_SERVER" --bind 127.0.0.1 --port "$PORT" --dir "$TMP" \
    --save '' --appendonly no --daemonize no --logfile "$TMP/server.log" &
SERVER_PID=$!
for _ in $(seq 100); do
    if [[ $("$REDIS_CLI" -h 127.0.0.1 -p "$PORT" ping 2>/dev/null) == PONG ]]; then break; fi
    sleep 0.05
done
if [[ $("$REDIS_CLI" -h 127.0.0.1 -p "$PORT" ping 2>/dev/null) != PONG ]]; then
    echo "redis.sh: redis-server did not start:" >&2
    cat "$TMP/server.log" >&2
    exit 1
fi
# The key every client reads and writes (redis-benchmark's without -r, its 3-byte value).
"$REDIS_CLI" -h 127.0.0.1 -p "$PORT" set key:__rand_int__ xxx >/dev/null

# --- runs -----------------------------------------------------------------------------------
cpu_jiffies() { # -> "busy total" jiffies of all CPUs (busy: user, nice, system)
    awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i; print $2 + $3 + $4, t }' /proc/stat
}
WAITED=0 # seconds spent waiting for quiet and repeating disturbed runs
wait_quiet() { # waits until the machine is (nearly) idle, at most QUIET_WAIT seconds
    local start=$SECONDS b0 t0 b1 t1
    while ((WAITED < WAIT_BUDGET)); do
        read -r b0 t0 <<<"$(cpu_jiffies)"
        sleep 0.5
        read -r b1 t1 <<<"$(cpu_jiffies)"
        if awk -v q="$QUIET" -v b=$((b1 - b0)) -v t=$((t1 - t0)) \
            'BEGIN { exit !(t > 0 && b / t <= q) }'; then
            return
        fi
        WAITED=$((WAITED + 1)) # about a second a probe, with the awk and the reads
        if ((SECONDS - start >= QUIET_WAIT)); then
            echo "redis.sh: the machine stayed busy for ${QUIET_WAIT}s; running anyway" >&2
            return
        fi
    done
}

# redis-benchmark has no duration: -n is its requests/s in a short run of each -P (GET) times
# SECONDS_PER_RUN.
declare -A BENCH_N=()
calibrate() { # pipeline depth: sets BENCH_N[depth] the first time
    local p=$1 probe rate
    if [[ -z ${BENCH_N[$p]:-} ]]; then
        probe=$((p == 1 ? 20000 : 200000))
        rate=$(taskset -c "$CLIENT_CPU" "$PYTHON" bench/redis_report.py rps -- \
            "$REDIS_BENCHMARK" -h 127.0.0.1 -p "$PORT" -c "$TASKS" -P "$p" -n "$probe" -t get \
            --csv)
        BENCH_N[$p]=$(awk -v r="$rate" -v s="$SECONDS_PER_RUN" 'BEGIN { printf "%d", r * s }')
        echo "redis.sh: redis-benchmark -P $p: $rate requests/s, -n ${BENCH_N[$p]}" >&2
    fi
}

# case run -> the client's command line
run_cmd() {
    local impl=${2%%:*} variant=${2#*:}
    case $1:$impl in
    get:corio | set:corio)
        local conns=${variant#conns-} timeout=5000
        if [[ $conns == *-t* ]]; then
            timeout=${conns#*-t}
            conns=${conns%%-t*}
        fi
        echo "$BIN/redis_corio --case $1 --address $ADDRESS --tasks $TASKS --connections $conns" \
            "--command-timeout-ms $timeout --seconds $SECONDS_PER_RUN --server-pid $SERVER_PID" ;;
    get:redis-benchmark | set:redis-benchmark)
        echo "$REDIS_BENCHMARK -h 127.0.0.1 -p $PORT -c $TASKS -P ${variant#P}" \
            "-n ${BENCH_N[${variant#P}]} -t $1 --csv" ;;
    get:redis-py | set:redis-py)
        local mode=(--mode single)
        if [[ $variant == pipeline-* ]]; then mode=(--mode pipeline --depth "${variant#pipeline-}"); fi
        echo "$PYTHON bench/redis_py.py --case $1 ${mode[*]} --address $ADDRESS --tasks $TASKS" \
            "--seconds $SECONDS_PER_RUN --server-pid $SERVER_PID" ;;
    limiter:corio)
        echo "$BIN/redis_corio --case limiter --address $ADDRESS --processes $PROCESSES" \
            "--tasks $TASKS --method $variant --seconds $SECONDS_PER_RUN --server-pid $SERVER_PID" ;;
    queue:corio)
        local tasks=$TASKS
        if [[ $variant == drain-* ]]; then tasks=${variant#drain-}; fi
        echo "$BIN/redis_corio --case queue --address $ADDRESS --processes $PROCESSES" \
            "--tasks $tasks --items $QUEUE_ITEMS --server-pid $SERVER_PID" ;;
    esac
}
# One run: case run round. Repeats a disturbed run up to RETRIES times.
measure() {
    local attempt rc cmd extra=()
    if [[ $2 == redis-benchmark:* ]]; then
        calibrate "${2#redis-benchmark:P}"
        extra=(--redis-benchmark --ops "${BENCH_N[${2#redis-benchmark:P}]}")
    fi
    read -r -a cmd <<<"$(run_cmd "$1" "$2")"
    local started
    for ((attempt = 1; attempt <= 1 + RETRIES; attempt++)); do
        wait_quiet
        rc=0
        started=$SECONDS
        taskset -c "$CLIENT_CPU" "$PYTHON" bench/redis_report.py run --out "$OUT" --case "$1" \
            --name "$2" --round "$3" --attempt "$attempt" --server-pid "$SERVER_PID" \
            --disturbed "$DISTURBED" --timeout "$TIMEOUT" "${extra[@]}" -- "${cmd[@]}" || rc=$?
        [[ $rc == 3 ]] || break
        if ((WAITED >= WAIT_BUDGET)); then break; fi
        WAITED=$((WAITED + SECONDS - started)) # the repeat is extra time
    done
    if [[ $rc != 0 && $rc != 3 ]]; then echo "redis.sh: $1 $2 failed (exit $rc)" >&2; fi
}

echo "== machine"
lscpu | grep -m1 'Model name' || true
echo "kernel $(uname -r), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$("$REDIS_SERVER" --version | cut -d' ' -f1-3);" \
    "$("$REDIS_BENCHMARK" --version 2>/dev/null || echo 'no redis-benchmark');" \
    "Python $("$PYTHON" -c 'import platform; print(platform.python_version())')," \
    "redis-py $("$PYTHON" -c 'import redis; print(redis.__version__)' 2>/dev/null || echo -)" \
    "(hiredis parser: $("$PYTHON" -c 'import redis.utils; print(redis.utils.HIREDIS_AVAILABLE)' 2>/dev/null || echo -))"
echo "$ROUNDS rounds of ${SECONDS_PER_RUN}s runs; server on CPU $SERVER_CPU (port $PORT)," \
    "clients on CPU $CLIENT_CPU"
mkdir -p "$(dirname "$OUT")"
: >"$OUT"

for round in $(seq "$ROUNDS"); do
    echo "== round $round/$ROUNDS"
    for case in $CASES; do
        case $case in
        get | set) read -r -a runs <<<"$COMMAND_RUNS" ;;
        limiter) read -r -a runs <<<"$LIMITER_RUNS" ;;
        queue) read -r -a runs <<<"$QUEUE_RUNS" ;;
        *) echo "redis.sh: unknown case $case" >&2; exit 2 ;;
        esac
        n=${#runs[@]}
        for ((k = 0; k < n; k++)); do
            measure "$case" "${runs[$(((k + round - 1) % n))]}" "$round"
        done
    done
done

echo
"$PYTHON" bench/redis_report.py report "$OUT" | tee "${OUT%.jsonl}.md"
