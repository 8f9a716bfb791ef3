#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The HTTP benchmark of issue 14, every core: wrk -t1 against GET /hello at 50 and 256
# connections, each server given both cores of this machine and wrk sharing them (taskset
# -c 0,1 for both): corio with 2 loops (a runtime, one SO_REUSEPORT listener per loop), nginx
# with 2 worker processes, Go's net/http with GOMAXPROCS=2, Boost.Beast with 2 threads on one
# io_context, and corio with 1 loop. It is bench/http.sh with these defaults (every knob of
# http.sh still applies); the report's "every core" ratios are the issue's targets.
# Run from anywhere:  bench/http_cores.sh
#
# With server and wrk on the same cores, http.sh cannot tell other work from theirs, so the
# disturbance check is off (DISTURBED=1); run it on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
export SERVER_CPU=${SERVER_CPU:-0,1}
export LOAD_CPU=${LOAD_CPU:-0,1}
export DISTURBED=${DISTURBED:-1}
export CONNS=${CONNS:-50 256}
export IDLE=${IDLE:-0}
export SERVERS=${SERVERS:-corio-2 nginx-2 go-2 beast-2 corio}
export OUT=${OUT:-build/bench-http/http-cores-results.jsonl}
exec bench/http.sh "$@"
