#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The HTTP client benchmarks of issue 6: REQUESTS GETs of /hello at concurrency CONCURRENCY with
# keep-alive against one local nginx (one worker process, `return 200 "Hello, World!"`, pinned
# to SERVER_CPU), from corio's client and, in the same rounds, libcurl's multi interface, a
# Boost.Beast C++20-coroutine client and Python's aiohttp with and without uvloop (each where
# installed), every client pinned to CLIENT_CPU. Then corio's memory per idle pooled connection:
# IDLE_CONNS connections opened by one client and left idle in its pool. Prints the medians over
# the rounds and the ratios of the issue's targets (client_report.py; bench/README.md, "HTTP
# client (issue 6)").
# Run from anywhere, as a user who may raise `ulimit -n` to 65536 (root does):  bench/client.sh
#
# Each run is one client process, started afresh; it reports the wall and CPU time of its
# request phase (first request to last response) and its peak RSS (VmHWM), and the runner
# (client_report.py run) adds its whole process's CPU time (wait4), nginx's CPU time over the run
# (/proc/<pid>/schedstat) and each core's busy fraction. Before each run the script waits until
# no other benchmark is running (bench/http.sh, echo.sh, tls_bulk, wrk; polled every 30 s) and
# both cores are idle but for QUIET (up to QUIET_WAIT seconds); a run during which other
# processes (kernel threads aside) used more CPU time than DISTURBED of its wall time is repeated
# (up to RETRIES times) and left out of the medians.
#
# Environment knobs:
#   ROUNDS=3  REQUESTS=20000  CONCURRENCY=100
#   CLIENTS="corio beast curl aiohttp aiohttp-uvloop"   (the absent ones are skipped)
#   IDLE=1  IDLE_CONNS=1000                 the idle-connection part (IDLE=0: skip it)
#   SERVER_CPU=0  CLIENT_CPU=1              the cores
#   PORT=8380                               nginx's port
#   QUIET=0.10  QUIET_WAIT=120  DISTURBED=0.05  RETRIES=2
#   BUILD_DIR=build/bench-client  OUT=$BUILD_DIR/client-results.jsonl (appended to; removed
#   at the start unless KEEP=1)
#   PYTHON=/usr/bin/python3 (when it has aiohttp, else python3)   NGINX=/usr/sbin/nginx
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-20000}
CONCURRENCY=${CONCURRENCY:-100}
CLIENTS=${CLIENTS:-corio beast curl aiohttp aiohttp-uvloop}
IDLE=${IDLE:-1}
IDLE_CONNS=${IDLE_CONNS:-1000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PORT=${PORT:-8380}
QUIET=${QUIET:-0.10}
QUIET_WAIT=${QUIET_WAIT:-120}
DISTURBED=${DISTURBED:-0.05}
RETRIES=${RETRIES:-2}
BUILD_DIR=${BUILD_DIR:-build/bench-client}
OUT=${OUT:-$BUILD_DIR/client-results.jsonl}
NGINX=${NGINX:-/usr/sbin/nginx}
if [[ -z ${PYTHON:-} ]]; then
    PYTHON=python3
    if /usr/bin/python3 -c 'import aiohttp' 2>/dev/null; then
        PYTHON=/usr/bin/python3 # Debian's python3-* packages live there, not in a pyenv
    fi
fi

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[[ -x $NGINX ]] || { echo "client.sh: $NGINX is not installed (apt-get install nginx)" >&2; exit 1; }

# --- build ----------------------------------------------------------------------------------
cmake --preset release -B "$BUILD_DIR" -DCORIO_BUILD_TESTS=OFF -DCORIO_BUILD_EXAMPLES=OFF >/dev/null
have_target() { cmake --build "$BUILD_DIR" --target help | grep -w "$1" >/dev/null; }
targets="client_corio"
for t in client_curl client_beast; do
    if have_target "$t"; then targets+=" $t"; fi
done
# shellcheck disable=SC2086
cmake --build "$BUILD_DIR" --target $targets -j"$(nproc)"
BIN=$BUILD_DIR/bench

available() { # name -> exit status: can it run here?
    case $1 in
    corio | beast | curl) [[ -x $BIN/client_$1 ]] ;;
    aiohttp) "$PYTHON" -c 'import aiohttp' 2>/dev/null ;;
    aiohttp-uvloop) "$PYTHON" -c 'import aiohttp, uvloop' 2>/dev/null ;;
    *) echo "client.sh: unknown client $1" >&2; exit 2 ;;
    esac
}
list=()
for c in $CLIENTS; do
    if available "$c"; then list+=("$c"); else echo "client.sh: $c is not available, skipped" >&2; fi
done

TMP=$(mktemp -d /tmp/corio-client-bench.XXXXXX)
mkdir -p "$BUILD_DIR"
[[ ${KEEP:-0} == 1 ]] || rm -f "$OUT"
URL="http://127.0.0.1:$PORT/hello"

cat >"$TMP/nginx.conf" <<EOF
worker_processes 1;
daemon off;
master_process off;
pid $TMP/nginx.pid;
error_log $TMP/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 20000; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 65s;
    tcp_nodelay on;
    client_body_temp_path $TMP/body;
    proxy_temp_path $TMP/proxy;
    fastcgi_temp_path $TMP/fastcgi;
    uwsgi_temp_path $TMP/uwsgi;
    scgi_temp_path $TMP/scgi;
    server {
        listen 127.0.0.1:$PORT;
        location = /hello {
            default_type "text/plain";
            return 200 "Hello, World!";
        }
    }
}
EOF

nginx_pid=
cleanup() {
    if [[ -n $nginx_pid ]]; then kill "$nginx_pid" 2>/dev/null || true; wait "$nginx_pid" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT

taskset -c "$SERVER_CPU" "$NGINX" -e "$TMP/error.log" -c "$TMP/nginx.conf" &
nginx_pid=$!
for ((i = 0; i < 100; i++)); do
    if curl -s -o /dev/null "$URL"; then break; fi
    kill -0 "$nginx_pid" 2>/dev/null || { echo "client.sh: nginx did not start" >&2; cat "$TMP/error.log" >&2; exit 1; }
    sleep 0.05
done

# --- waiting for a quiet machine -----------------------------------------------------------
# The other benchmarks of bench/ (their scripts and programs) and wrk, as running commands: the
# patterns are anchored at the start of the command line, so that a shell that only waits for
# them (`bash -c 'while pgrep ...; done; bench/http.sh'`) does not count.
other_benchmarks() {
    pgrep -f '^((/usr)?/bin/)?(env )?(ba)?sh (\S*/)?(http|echo|tls_bulk)[.]sh|^(\S*/)?(http|echo|tls_bulk)[.]sh|^(\S*/)?(tls_bulk|echo_load|wrk)( |$)' || true
}
busy_fractions() { # both cores' busy fraction over half a second, "0.03 0.01"
    local a b
    a=$(grep -E "^cpu($SERVER_CPU|$CLIENT_CPU) " /proc/stat)
    sleep 0.5
    b=$(grep -E "^cpu($SERVER_CPU|$CLIENT_CPU) " /proc/stat)
    paste <(echo "$a") <(echo "$b") | awk '{
        n = (NF - 2) / 2; busy0 = 0; all0 = 0; busy1 = 0; all1 = 0
        for (i = 2; i <= 1 + n; i++) { all0 += $i; if (i != 5 && i != 6) busy0 += $i }
        for (i = 3 + n; i <= NF; i++) { all1 += $i; if (i != 6 + n && i != 7 + n) busy1 += $i }
        printf "%.2f ", (busy1 - busy0) / (all1 - all0) }'
}
wait_quiet() {
    local pids waited=0
    while pids=$(other_benchmarks) && [[ -n $pids ]]; do
        echo "client.sh: other benchmarks are running ($(tr "\n" " " <<<"$pids")), waiting 30 s" >&2
        sleep 30
    done
    local start=$SECONDS f
    while ((SECONDS - start < QUIET_WAIT)); do
        f=$(busy_fractions)
        if awk -v q="$QUIET" -v f="$f" 'BEGIN { split(f, x, " "); exit !(x[1] <= q && x[2] <= q) }'; then
            return 0
        fi
        waited=1
    done
    ((waited)) && echo "client.sh: cores still busy ($f) after ${QUIET_WAIT}s, running anyway" >&2
    return 0
}

client_cmd() { # name -> the command line
    case $1 in
    corio | beast | curl)
        echo "$BIN/client_$1 --url $URL --requests $REQUESTS --concurrency $CONCURRENCY" ;;
    aiohttp) echo "$PYTHON bench/client_aiohttp.py --url $URL --requests $REQUESTS --concurrency $CONCURRENCY" ;;
    aiohttp-uvloop) echo "$PYTHON bench/client_aiohttp.py --uvloop --url $URL --requests $REQUESTS --concurrency $CONCURRENCY" ;;
    esac
}

measure() { # name round command... -> appends to $OUT; repeats a disturbed run
    local name=$1 round=$2 attempt rc
    shift 2
    for ((attempt = 0; attempt <= RETRIES; attempt++)); do
        wait_quiet
        rc=0
        # shellcheck disable=SC2048,SC2086
        taskset -c "$CLIENT_CPU" "$PYTHON" bench/client_report.py run --out "$OUT" --name "$name" \
            --round "$round" --server-pid "$nginx_pid" \
            --disturbed "$DISTURBED" -- "$@" || rc=$?
        [[ $rc == 3 ]] || break
    done
    if [[ $rc != 0 && $rc != 3 ]]; then echo "client.sh: $name failed (exit $rc)" >&2; fi
}

echo "client.sh: $REQUESTS GETs at concurrency $CONCURRENCY to $URL, $ROUNDS rounds: ${list[*]}" >&2
for ((round = 1; round <= ROUNDS; round++)); do
    n=${#list[@]}
    for ((k = 0; k < n; k++)); do
        name=${list[$(((k + round - 1) % n))]} # the order rotates from round to round
        # shellcheck disable=SC2046
        measure "$name" "$round" $(client_cmd "$name")
    done
done

if [[ $IDLE == 1 ]]; then
    echo "client.sh: idle pooled connections, $IDLE_CONNS per client" >&2
    for ((round = 1; round <= ROUNDS; round++)); do
        measure corio-idle "$round" "$BIN/client_corio" --idle "$IDLE_CONNS" --url "$URL"
    done
fi

echo
echo "Machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) CPUs, kernel $(uname -r);" \
    "$("$NGINX" -v 2>&1 | cut -d' ' -f3); $(curl-config --version 2>/dev/null || echo 'libcurl ?');" \
    "Python $("$PYTHON" -c 'import platform; print(platform.python_version())')"
echo
"$PYTHON" bench/client_report.py report "$OUT"
