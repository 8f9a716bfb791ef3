#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Builds corio's benchmarks in Release, runs them with the references (Boost.Asio when CMake
# finds Boost, Python asyncio and uvloop with the system python3), and prints the tables of
# bench/README.md (the core primitives, then the concurrency toolkit of bench_sync.cpp).
# Run from anywhere:  bench/run.sh
#
# Environment knobs:
#   REPS=5              Google Benchmark repetitions and Python repetitions (medians reported)
#   SLEEPERS=1000000    tasks of the sleepers runs;  SLEEP_MS=100  how long each sleeps
#   SLEEPER_REPS=3      sleepers runs per C++ runtime (one process each)
#   PY_SLEEPER_REPS=1   sleepers runs per Python loop, with and without the cyclic GC
#                       (about 25 s and 6 s at 1M tasks)
#   PYTHON=/usr/bin/python3   BUILD_DIR=build/release   OUT_DIR=$BUILD_DIR/bench-results
#   BENCH_FILTER=.      a Google Benchmark --benchmark_filter for quick partial runs
set -euo pipefail

cd "$(dirname "$0")/.."
REPS=${REPS:-5}
SLEEPERS=${SLEEPERS:-1000000}
SLEEP_MS=${SLEEP_MS:-100}
SLEEPER_REPS=${SLEEPER_REPS:-3}
PY_SLEEPER_REPS=${PY_SLEEPER_REPS:-1}
PYTHON=${PYTHON:-/usr/bin/python3}
BUILD_DIR=${BUILD_DIR:-build/release}
OUT_DIR=${OUT_DIR:-$BUILD_DIR/bench-results}
BENCH_FILTER=${BENCH_FILTER:-.}

cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DCORIO_BUILD_BENCH=ON \
    -DCORIO_BUILD_TESTS=OFF -DCORIO_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$BUILD_DIR" --target bench_core bench_sync bench_asio sleepers -j"$(nproc)"

BIN=$BUILD_DIR/bench
mkdir -p "$OUT_DIR"
rm -f "$OUT_DIR"/core.json "$OUT_DIR"/sync.json "$OUT_DIR"/asio.json "$OUT_DIR"/python.json \
    "$OUT_DIR"/sleepers.jsonl

echo "== machine"
lscpu | grep -m1 'Model name' || true
echo "kernel $(uname -r), $(nproc) CPUs; $(c++ --version | head -1)"

gbench() { # name binary
    "$2" --benchmark_filter="$BENCH_FILTER" --benchmark_repetitions="$REPS" \
        --benchmark_report_aggregates_only=true \
        --benchmark_out="$OUT_DIR/$1.json" --benchmark_out_format=json
}

echo "== corio (bench_core)"
gbench core "$BIN/bench_core"
echo "== corio's concurrency toolkit (bench_sync)"
gbench sync "$BIN/bench_sync"
echo "== Boost.Asio (bench_asio)"
gbench asio "$BIN/bench_asio"

echo "== $SLEEPERS sleeping tasks"
for runtime in corio asio; do
    for _ in $(seq "$SLEEPER_REPS"); do
        if ! "$BIN/sleepers" "$runtime" "$SLEEPERS" "$SLEEP_MS" | tee -a "$OUT_DIR/sleepers.jsonl"; then
            echo "sleepers: $runtime unavailable" >&2
            break
        fi
    done
done

if "$PYTHON" -c 'import asyncio' 2>/dev/null; then
    echo "== Python ($("$PYTHON" --version 2>&1))"
    "$PYTHON" bench/asyncio_bench.py --repetitions "$REPS" --json "$OUT_DIR/python.json"
    loops=asyncio
    "$PYTHON" -c 'import uvloop' 2>/dev/null && loops="asyncio uvloop"
    for loop in $loops; do
        for gc in "" --gc-off; do
            for _ in $(seq "$PY_SLEEPER_REPS"); do
                "$PYTHON" bench/asyncio_bench.py --sleepers "$SLEEPERS" --sleep-ms "$SLEEP_MS" \
                    --loop "$loop" $gc | tee -a "$OUT_DIR/sleepers.jsonl"
            done
        done
    done
else
    echo "== $PYTHON not found: skipping the Python references" >&2
fi

echo
"$PYTHON" bench/report.py "$OUT_DIR" | tee "$OUT_DIR/report.md"
