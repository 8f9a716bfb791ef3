#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The cross-loop hand-off benchmarks of issue 14: corio's channel between two loops against Go's
# buffered channels (GOMAXPROCS=2) and Asio's concurrent_channel between two io_contexts;
# spawn_on's round trip to another loop against Asio's co_spawn onto another io_context; and a
# CPU-bound worker pool on 1 and 2 loops (Go: 1 and 2 workers under GOMAXPROCS 1 and 2). Builds
# them in Release, then for each round, each case and each implementation (their order rotating
# from round to round, so that noise hits all alike) runs one process, which prints one JSON
# line (handoff_corio.cpp, handoff_go.go, handoff_asio.cpp). Prints the medians over the rounds
# and the ratios of the same rounds as tables (handoff_report.py; bench/README.md, "Hand-off
# across loops (issue 14)"). About two minutes with the defaults.
# Run from anywhere:  bench/handoff.sh
#
# Environment knobs:
#   ROUNDS=3                           rounds
#   CASES="channel-1x1 channel-4x4 spawn pool-1 pool-2"
#                                      channel-PxC: P producers on loop 0, C consumers on loop 1;
#                                      pool-T: the worker pool on T loops (and T Go workers)
#   IMPLS="corio go asio"              the absent ones are skipped (Go: `go` on PATH, Debian's
#                                      golang-go; Asio: CMake found Boost)
#   MESSAGES=5000000  CAPACITY=1024    channel: messages per run, the channel's capacity
#   ROUND_TRIPS=100000                 spawn: round trips per run
#   ITEMS=50000  WORK_US=20  POOL_CAPACITY=256
#                                      pool: items per run, the CPU work per item (the busy
#                                      loop is calibrated once, by handoff_corio, and every pool
#                                      run, Go's included, does the same iterations per item)
#   PIN=0                              1: corio's loops and Asio's threads pinned, loop i to
#                                      CPU i (Go's threads cannot be; so off by default)
#   TIMEOUT=60                         seconds a run may take before it is killed
#   DISTURBED=0.15  RETRIES=2          a run is "disturbed" when other processes took more than
#                                      DISTURBED cores on average during it (all CPUs' user and
#                                      system time from /proc/stat minus the run's own CPU time,
#                                      set-up and warm-up included: proc_cpu_s); it is then
#                                      repeated, up to RETRIES times. The report takes the
#                                      undisturbed run of each round where there is one
#   QUIET=0.10  QUIET_WAIT=30          before each run, wait (up to QUIET_WAIT seconds) until
#                                      the machine is idle but for QUIET (busy fraction of all
#                                      CPUs over half a second): other work skews runs
#   BUILD_DIR=build/bench-handoff  OUT=$BUILD_DIR/handoff-results.jsonl  GO=go  PYTHON=python3
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
CASES=${CASES:-channel-1x1 channel-4x4 spawn pool-1 pool-2}
IMPLS=${IMPLS:-corio go asio}
MESSAGES=${MESSAGES:-5000000}
CAPACITY=${CAPACITY:-1024}
ROUND_TRIPS=${ROUND_TRIPS:-100000}
ITEMS=${ITEMS:-50000}
WORK_US=${WORK_US:-20}
POOL_CAPACITY=${POOL_CAPACITY:-256}
PIN=${PIN:-0}
TIMEOUT=${TIMEOUT:-60}
DISTURBED=${DISTURBED:-0.15}
RETRIES=${RETRIES:-2}
QUIET=${QUIET:-0.10}
QUIET_WAIT=${QUIET_WAIT:-30}
BUILD_DIR=${BUILD_DIR:-build/bench-handoff}
OUT=${OUT:-$BUILD_DIR/handoff-results.jsonl}
GO=${GO:-go}
PYTHON=${PYTHON:-python3}

# --- build ----------------------------------------------------------------------------------
# The release preset (Release, -O3, benchmarks on) in a directory of its own.
cmake --preset release -B "$BUILD_DIR" -DCORIO_BUILD_TESTS=OFF -DCORIO_BUILD_EXAMPLES=OFF \
    >/dev/null
BIN=$BUILD_DIR/bench
targets="handoff_corio"
have_impl() { [[ " $IMPLS " == *" $1 "* ]]; }
drop_impl() { # impl, why
    IMPLS=$(echo "$IMPLS" | tr ' ' '\n' | grep -vx "$1" | tr '\n' ' ')
    echo "handoff.sh: $2, no $1" >&2
}
if have_impl asio; then
    if cmake --build "$BUILD_DIR" --target help | grep -w handoff_asio >/dev/null; then
        targets+=" handoff_asio"
    else
        drop_impl asio "Boost not found"
    fi
fi
# shellcheck disable=SC2086
cmake --build "$BUILD_DIR" --target $targets -j"$(nproc)"
if have_impl go; then
    if command -v "$GO" >/dev/null; then
        (cd bench && GOFLAGS=-mod=mod "$GO" build -o "../$BIN/handoff_go" handoff_go.go)
    else
        drop_impl go "$GO is not installed (scripts/ensure-deps golang-go)"
    fi
fi

# --- runs -----------------------------------------------------------------------------------
# -> "busy total" jiffies of all CPUs; busy: user, nice and system time, not the interrupts'
# (the wake-ups that a run's threads send each other are handled in interrupts of the woken CPU,
# which its process's CPU time does not count)
cpu_jiffies() {
    awk '$1 == "cpu" { t = 0; for (i = 2; i <= 9; i++) t += $i; print $2 + $3 + $4, t }' /proc/stat
}
wait_quiet() { # waits until the machine is (nearly) idle, at most QUIET_WAIT seconds
    local start=$SECONDS b0 t0 b1 t1
    while :; do
        read -r b0 t0 <<<"$(cpu_jiffies)"
        sleep 0.5
        read -r b1 t1 <<<"$(cpu_jiffies)"
        if awk -v q="$QUIET" -v b=$((b1 - b0)) -v t=$((t1 - t0)) \
            'BEGIN { exit !(t > 0 && b / t <= q) }'; then
            return
        fi
        if ((SECONDS - start >= QUIET_WAIT)); then
            echo "handoff.sh: the machine stayed busy for ${QUIET_WAIT}s; running anyway" >&2
            return
        fi
    done
}

# The busy loop's iterations per item: the median of three calibrations (each the fastest of
# 20 timings), by the C++ program; Go's loop is the same chain of multiplies and adds.
WORK_ITERS=$(for _ in 1 2 3; do "$BIN/handoff_corio" --case calibrate --work-us "$WORK_US"; done |
    sort -n | sed -n 2p)

# case -> the implementations that have it (those of IMPLS), as "impl" or "impl:threads"
runs_of() {
    local impl out=()
    for impl in $IMPLS; do
        case $1:$impl in
        channel-*:corio | channel-*:go | channel-*:asio | spawn:corio | spawn:asio | \
            pool-*:corio | pool-*:go) out+=("$impl") ;;
        esac
    done
    echo "${out[*]}"
}
# case impl -> the command line
run_cmd() {
    local flags
    case $1 in
    channel-*)
        local pc=${1#channel-}
        flags="--case channel --producers ${pc%x*} --consumers ${pc#*x} --messages $MESSAGES"
        flags+=" --capacity $CAPACITY" ;;
    spawn) flags="--case spawn --round-trips $ROUND_TRIPS" ;;
    pool-*)
        flags="--case pool --threads ${1#pool-} --items $ITEMS --work-iters $WORK_ITERS"
        flags+=" --pool-capacity $POOL_CAPACITY" ;;
    *) echo "handoff.sh: unknown case $1" >&2; exit 2 ;;
    esac
    case $2 in
    corio) echo "$BIN/handoff_corio $flags --pin $PIN" ;;
    asio) echo "$BIN/handoff_asio $flags --pin $PIN" ;;
    go)
        local procs=2
        [[ $1 == pool-* ]] && procs=${1#pool-}
        echo "env GOMAXPROCS=$procs $BIN/handoff_go $flags" ;;
    esac
}
# One run: case impl round attempt. Appends its JSON line to $OUT, plus the CPU other processes
# took meanwhile (foreign_cores); fails when the run should be repeated (disturbed).
HZ=$(getconf CLK_TCK)
measure() {
    local b0 b1 w0 w1 line proc_cpu=0 extra
    wait_quiet
    read -r b0 _ <<<"$(cpu_jiffies)"
    w0=$EPOCHREALTIME
    # shellcheck disable=SC2046
    if ! line=$(timeout "$TIMEOUT" $(run_cmd "$1" "$2")); then
        echo "handoff.sh: $2 $1 failed or took over ${TIMEOUT}s" >&2
        return 0 # not worth repeating
    fi
    w1=$EPOCHREALTIME
    read -r b1 _ <<<"$(cpu_jiffies)"
    if [[ $line =~ \"proc_cpu_s\":([0-9.]+) ]]; then proc_cpu=${BASH_REMATCH[1]}; fi
    extra=$(awk -v b=$((b1 - b0)) -v hz="$HZ" -v p="$proc_cpu" -v w0="$w0" -v w1="$w1" \
        -v limit="$DISTURBED" 'BEGIN {
            f = (b / hz - p) / (w1 - w0)
            printf "\"foreign_cores\":%.3f,\"disturbed\":%s", f, (f > limit) ? "true" : "false" }')
    line="${line%\}},\"label\":\"$1\",\"round\":$3,\"attempt\":$4,$extra}"
    echo "$line" | tee -a "$OUT"
    [[ $line != *'"disturbed":true'* ]]
}
trap 'exit 130' INT TERM

echo "== machine"
lscpu | grep -m1 'Model name' || true
echo "kernel $(uname -r), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
if have_impl go; then
    go_iters=$("$BIN/handoff_go" --case calibrate --work-us "$WORK_US")
    echo "$("$GO" version); Go's own calibration of the busy loop: $go_iters iterations"
fi
echo "$ROUNDS rounds; implementations: $IMPLS; pinned: $PIN;" \
    "busy loop: $WORK_ITERS iterations = ${WORK_US} us (calibrated)"
: >"$OUT"

for round in $(seq "$ROUNDS"); do
    echo "== round $round/$ROUNDS"
    for case in $CASES; do
        read -r -a impls <<<"$(runs_of "$case")"
        n=${#impls[@]}
        for ((k = 0; k < n; k++)); do
            impl=${impls[$(((k + round - 1) % n))]}
            for ((attempt = 1; attempt <= 1 + RETRIES; attempt++)); do
                if measure "$case" "$impl" "$round" "$attempt"; then break; fi
            done
        done
    done
done

echo
"$PYTHON" bench/handoff_report.py "$OUT" | tee "${OUT%.jsonl}.md"
