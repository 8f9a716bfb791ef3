#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The HTTP server benchmarks of issue 5: wrk against GET /hello on corio's server and, in the
# same rounds, a raw liburing server (the practical limit), nginx (one process), Boost.Beast
# (C++20 coroutines), Go's net/http (GOMAXPROCS=1), uvicorn+FastAPI and aiohttp (both on
# uvloop), each where installed. Then the memory per idle keep-alive connection: 10,000
# connections opened by bench/http_idle, each after one request, and the server's VmRSS before
# and after. Prints the medians over the rounds as tables with the ratios of the issue's targets
# (http_report.py; bench/README.md, "HTTP server (issue 5)").
# Run from anywhere, as a user who may raise `ulimit -n` to 65536 (root does):  bench/http.sh
#
# Each run starts the server afresh pinned to SERVER_CPU (taskset), warms it up with wrk for
# WARMUP seconds, then measures with `taskset -c LOAD_CPU wrk -t1 -cN -dDURATION --latency`.
# The server's CPU time is its processes' utime+stime (/proc/<pid>/stat, every thread and
# child process included) over the measured run: req/s per server-CPU-second = requests / CPU
# seconds, and its busy fraction = CPU seconds / wall seconds. The cores' busy fractions come
# from /proc/stat (on loopback, some of the network stack's work runs on the other side's core).
#
# Environment knobs:
#   ROUNDS=3  DURATION=10  WARMUP=2      rounds; seconds measured and warmed up per run
#   CONNS="1 50 256"                     wrk's connection counts
#   SERVERS="corio uring nginx beast go fastapi aiohttp"   (the absent ones are skipped; also
#                                         corio-epoll: http_corio with CORIO_BACKEND=epoll; and
#                                         corio-N, nginx-N, go-N, beast-N: N loops, worker
#                                         processes, GOMAXPROCS, threads, see http_cores.sh)
#   IDLE=1  IDLE_CONNS=10000             the idle-connection memory part (IDLE=0: skip it)
#   IDLE_SERVERS="$SERVERS"              servers measured there
#   SERVER_CPU=0  LOAD_CPU=1             the cores (either may be a list, "0,1": the cores'
#                                        busy fractions are then their average)
#   PORT=8300                            the first port; every server start takes a new one
#   QUIET=0.10  QUIET_WAIT=120           before each run, wait (up to QUIET_WAIT seconds) until
#                                        both cores are idle but for QUIET
#   DISTURBED=0.05  RETRIES=2            a run is "disturbed" when other work took more than
#                                        DISTURBED of either core's time during it (the core's
#                                        busy fraction from /proc/stat minus that of the server,
#                                        or of wrk); it is then repeated, up to RETRIES times.
#                                        The report takes the medians of the undisturbed runs
#   OTHERS='echo_load|bench/echo\.sh|tls_bulk'   before each run, wait while a process whose
#                                        command line matches runs (the other benchmarks of
#                                        bench/; OTHERS= turns it off)
#   BUILD_DIR=build/bench-http  OUT=$BUILD_DIR/http-results.jsonl
#   PYTHON=/usr/bin/python3 (when it has uvloop, else python3)   NGINX=/usr/sbin/nginx  GO=go
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNS=${CONNS:-1 50 256}
SERVERS=${SERVERS:-corio uring nginx beast go fastapi aiohttp}
IDLE=${IDLE:-1}
IDLE_CONNS=${IDLE_CONNS:-10000}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PORT=${PORT:-8300}
QUIET=${QUIET:-0.10}
QUIET_WAIT=${QUIET_WAIT:-120}
DISTURBED=${DISTURBED:-0.05}
RETRIES=${RETRIES:-2}
OTHERS=${OTHERS-echo_load|bench/echo\.sh|tls_bulk}
BUILD_DIR=${BUILD_DIR:-build/bench-http}
OUT=${OUT:-$BUILD_DIR/http-results.jsonl}
NGINX=${NGINX:-/usr/sbin/nginx}
GO=${GO:-go}
if [[ -z ${PYTHON:-} ]]; then
    PYTHON=python3
    if /usr/bin/python3 -c 'import uvloop' 2>/dev/null; then
        PYTHON=/usr/bin/python3 # Debian's python3-* packages live there, not in a pyenv
    fi
fi

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
command -v wrk >/dev/null || { echo "http.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }

# --- build ----------------------------------------------------------------------------------
cmake --preset release -B "$BUILD_DIR" -DCORIO_BUILD_TESTS=OFF -DCORIO_BUILD_EXAMPLES=OFF >/dev/null
targets="http_corio http_uring http_idle"
have_target() { cmake --build "$BUILD_DIR" --target help | grep -w "$1" >/dev/null; }
if have_target http_beast; then targets+=" http_beast"; fi
# shellcheck disable=SC2086
cmake --build "$BUILD_DIR" --target $targets -j"$(nproc)"
BIN=$BUILD_DIR/bench
if command -v "$GO" >/dev/null; then
    (cd bench && GOFLAGS=-mod=mod "$GO" build -o "../$BIN/http_go" http_go.go)
fi

available() { # name -> exit status: can it run here?
    case $1 in
    corio-[0-9]* | beast-[0-9]* | go-[0-9]*) [[ -x $BIN/http_${1%-*} ]] ;;
    nginx-[0-9]*) [[ -x $NGINX ]] ;;
    corio | uring | beast | go) [[ -x $BIN/http_$1 ]] ;;
    corio-epoll) [[ -x $BIN/http_corio ]] ;;
    nginx) [[ -x $NGINX ]] ;;
    fastapi) "$PYTHON" -c 'import fastapi, uvicorn, uvloop, httptools' 2>/dev/null ;;
    aiohttp) "$PYTHON" -c 'import aiohttp, uvloop' 2>/dev/null ;;
    *) echo "http.sh: unknown server $1" >&2; exit 2 ;;
    esac
}
keep_available() { # list -> the available ones
    local s out=()
    for s in $1; do
        if available "$s"; then out+=("$s"); else echo "http.sh: $s is not installed, skipped" >&2; fi
    done
    echo "${out[*]}"
}
SERVERS=$(keep_available "$SERVERS")
IDLE_SERVERS=$(keep_available "${IDLE_SERVERS:-$SERVERS}")

TMP=$(mktemp -d /tmp/corio-http-bench.XXXXXX)
LOG=$BUILD_DIR/http-servers.log
: >"$LOG"

nginx_conf() { # port [workers] -> path of a config for nginx on 127.0.0.1:port
    local dir=$TMP/nginx-$1 workers=${2:-1} master=off
    ((workers == 1)) || master=on # (without a master, nginx runs one worker)
    mkdir -p "$dir"
    cat >"$dir/nginx.conf" <<EOF
worker_processes $workers;
daemon off;
master_process $master;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
worker_rlimit_nofile 65536;
events { worker_connections 20000; }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 65s;
    tcp_nodelay on;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    server {
        listen 127.0.0.1:$1;
        location = /hello {
            default_type "text/plain; charset=utf-8";
            return 200 "Hello, World!";
        }
    }
}
EOF
    echo "$dir/nginx.conf"
}

server_pid=
start_server() { # name port; sets server_pid
    local cmd
    case $1 in
    corio | uring | beast) cmd=("$BIN/http_$1" --port "$2") ;;
    corio-epoll) cmd=(env CORIO_BACKEND=epoll "$BIN/http_corio" --port "$2") ;;
    go) cmd=(env GOMAXPROCS=1 "$BIN/http_go" --port "$2") ;;
    nginx) cmd=("$NGINX" -e "$TMP/nginx-error.log" -c "$(nginx_conf "$2")") ;;
    corio-[0-9]* | beast-[0-9]*) cmd=("$BIN/http_${1%-*}" --port "$2" --threads "${1##*-}") ;;
    go-[0-9]*) cmd=(env GOMAXPROCS="${1##*-}" "$BIN/http_go" --port "$2") ;;
    nginx-[0-9]*) cmd=("$NGINX" -e "$TMP/nginx-error.log" -c "$(nginx_conf "$2" "${1##*-}")") ;;
    fastapi | aiohttp) cmd=("$PYTHON" "bench/http_$1.py" --port "$2") ;;
    esac
    taskset -c "$SERVER_CPU" "${cmd[@]}" 2>>"$LOG" &
    server_pid=$!
    local i
    for ((i = 0; i < 200; i++)); do
        if curl -s -o /dev/null "http://127.0.0.1:$2/hello"; then return 0; fi
        if ! kill -0 "$server_pid" 2>/dev/null; then break; fi
        sleep 0.05
    done
    echo "http.sh: $1 did not start on port $2 (see $LOG)" >&2
    return 1
}
stop_server() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
cleanup() {
    stop_server
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

pids_of() { # pid -> the pid and all its descendants
    local p=$1 c
    echo "$p"
    for c in $(pgrep -P "$p" 2>/dev/null || true); do pids_of "$c"; done
}
cpu_ticks() { # pid -> utime+stime of it and its descendants, in clock ticks
    local total=0 p t
    for p in $(pids_of "$1"); do
        t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null || echo 0)
        total=$((total + t))
    done
    echo "$total"
}
rss_kib() { # pid -> VmRSS of it and its descendants, KiB
    local total=0 p r
    for p in $(pids_of "$1"); do
        r=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)
        total=$((total + ${r:-0}))
    done
    echo "$total"
}
cpu_jiffies() { # cpu or list of cpus -> "busy total" (busy: all but idle, iowait, steal)
    awk -v list="$1" 'BEGIN { n = split(list, cs, ","); for (i = 1; i <= n; i++) want["cpu" cs[i]] = 1 }
        want[$1] { t = 0; for (i = 2; i <= 9; i++) t += $i; busy += t - $5 - $6 - $9; all += t }
        END { print busy, all }' /proc/stat
}
wait_quiet() { # waits until both cores are (nearly) idle; prints the seconds waited
    local start=$SECONDS b0 t0 b1 t1 b0x t0x b1x t1x
    if [[ -n $OTHERS ]] && pgrep -f "$OTHERS" >/dev/null; then
        echo "http.sh: waiting for other benchmarks to finish ($OTHERS)" >&2
        while pgrep -f "$OTHERS" >/dev/null; do sleep 5; done
    fi
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
            echo "http.sh: the cores stayed busy for ${QUIET_WAIT}s; running anyway" >&2
            break
        fi
    done
    echo $((SECONDS - start))
}

# wrk's output -> JSON fields (latencies in µs).
parse_wrk() {
    awk '
    function us(v) {
        if (v ~ /us$/) return v + 0;
        if (v ~ /ms$/) return (v + 0) * 1000;
        if (v ~ /m$/) return (v + 0) * 60e6;
        if (v ~ /s$/) return (v + 0) * 1e6;
        return v + 0;
    }
    /^ +Latency / && $2 !~ /Distribution/ { avg = us($2) }
    /^ +50%/ { p50 = us($2) }
    /^ +90%/ { p90 = us($2) }
    /^ +99%/ { p99 = us($2) }
    / requests in / { requests = $1; secs = $4; sub(/s,?$/, "", secs) }
    /^Requests\/sec:/ { rps = $2 }
    /Socket errors:/ { gsub(/,/, ""); errors = $4 + $6 + $8 + $10 }
    /Non-2xx or 3xx responses:/ { non2xx = $5 }
    END {
        printf "\"rps\":%s,\"requests\":%d,\"wrk_s\":%s,\"lat_avg_us\":%s,\"p50_us\":%s,", rps + 0, requests, secs + 0, avg + 0, p50 + 0
        printf "\"p90_us\":%s,\"p99_us\":%s,\"socket_errors\":%d,\"non2xx\":%d", p90 + 0, p99 + 0, errors, non2xx
    }'
}

echo "== machine"
lscpu | grep -m1 'Model name' || true
echo "kernel $(uname -r), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(wrk --version 2>&1 | head -1 || true)"
echo "servers: $SERVERS; connections: $CONNS; $ROUNDS rounds of ${DURATION}s (+${WARMUP}s warm-up)"
echo "server on CPU $SERVER_CPU, wrk on CPU $LOAD_CPU"
: >"$OUT"
HZ=$(getconf CLK_TCK)

read -r -a server_list <<<"$SERVERS"
port=$PORT
# The response each server sends (head + body bytes), for the record.
for server in "${server_list[@]}"; do
    port=$((port + 1))
    if start_server "$server" "$port"; then
        sizes=$(curl -s -o /dev/null -w '%{size_header} %{size_download}' "http://127.0.0.1:$port/hello")
        echo "{\"kind\":\"response\",\"server\":\"$server\",\"head_bytes\":${sizes% *},\"body_bytes\":${sizes#* }}" | tee -a "$OUT"
    fi
    stop_server
done

# One measured run: server conns round attempt. Appends a JSON line to $OUT; fails when the run
# should be repeated (disturbed by other work).
measure() {
    local server=$1 conns=$2 round=$3 attempt=$4 waited url report rc=0
    port=$((port + 1))
    waited=$(wait_quiet)
    if ! start_server "$server" "$port"; then
        stop_server
        return 0 # not worth repeating
    fi
    url="http://127.0.0.1:$port/hello"
    if ((WARMUP > 0)); then
        taskset -c "$LOAD_CPU" wrk -t1 -c"$conns" -d"${WARMUP}s" "$url" >/dev/null 2>&1 || true
    fi
    local c0 c1 sb0 st0 sb1 st1 lb0 lt0 lb1 lt1 w0 w1 wrk_cpu fields extra line
    c0=$(cpu_ticks "$server_pid")
    read -r sb0 st0 <<<"$(cpu_jiffies "$SERVER_CPU")"
    read -r lb0 lt0 <<<"$(cpu_jiffies "$LOAD_CPU")"
    times >"$TMP/times0" # in this shell, no fork: the CPU time of its waited-for children
    w0=$(date +%s.%N)
    if report=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$conns" -d"${DURATION}s" --latency "$url" 2>&1); then
        w1=$(date +%s.%N)
        times >"$TMP/times1"
        c1=$(cpu_ticks "$server_pid")
        read -r sb1 st1 <<<"$(cpu_jiffies "$SERVER_CPU")"
        read -r lb1 lt1 <<<"$(cpu_jiffies "$LOAD_CPU")"
        wrk_cpu=$(awk 'function s(t) { split(t, a, "m"); return a[1] * 60 + a[2] }
            FNR == 2 { v = s($1) + s($2); if (NR == FNR) x = v; else y = v }
            END { printf "%.3f", y - x }' "$TMP/times0" "$TMP/times1")
        fields=$(parse_wrk <<<"$report")
        extra=$(awk -v c=$((c1 - c0)) -v hz="$HZ" -v w0="$w0" -v w1="$w1" -v wc="$wrk_cpu" \
            -v sb=$((sb1 - sb0)) -v st=$((st1 - st0)) -v lb=$((lb1 - lb0)) -v lt=$((lt1 - lt0)) \
            -v limit="$DISTURBED" 'BEGIN {
                w = w1 - w0; fs = sb / st - c / hz / w; fl = lb / lt - wc / w
                printf "\"cpu_s\":%.3f,\"wall_s\":%.3f,\"wrk_cpu_s\":%.3f,", c / hz, w, wc
                printf "\"server_core_busy\":%.4f,\"load_core_busy\":%.4f,", sb / st, lb / lt
                printf "\"foreign_server_core\":%.4f,\"foreign_load_core\":%.4f,", fs, fl
                printf "\"disturbed\":%s", (fs > limit || fl > limit) ? "true" : "false" }')
        line="{\"kind\":\"load\",\"server\":\"$server\",\"conns\":$conns,\"round\":$round,\"attempt\":$attempt,$fields,$extra,\"quiet_wait_s\":$waited}"
        echo "$line" | tee -a "$OUT"
        [[ $line != *'"disturbed":true'* ]] || rc=1
    else
        echo "http.sh: wrk failed against $server with $conns connections: $report" >&2
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "http.sh: $server died during the run with $conns connections (see $LOG)" >&2
    fi
    stop_server
    return $rc
}

for round in $(seq "$ROUNDS"); do
    echo "== round $round/$ROUNDS"
    for conns in $CONNS; do
        n=${#server_list[@]}
        for ((k = 0; k < n; k++)); do
            server=${server_list[$(((k + round - 1) % n))]}
            for ((attempt = 1; attempt <= 1 + RETRIES; attempt++)); do
                if measure "$server" "$conns" "$round" "$attempt"; then break; fi
            done
        done
    done
done

# --- memory per idle keep-alive connection -----------------------------------------------------
if [[ $IDLE == 1 ]]; then
    echo "== idle connections: $IDLE_CONNS per server"
    for server in $IDLE_SERVERS; do
        port=$((port + 1))
        wait_quiet >/dev/null
        if ! start_server "$server" "$port"; then
            stop_server
            continue
        fi
        sleep 0.5
        before=$(rss_kib "$server_pid")
        mkfifo "$TMP/idle-in"
        taskset -c "$LOAD_CPU" "$BIN/http_idle" --port "$port" --conns "$IDLE_CONNS" \
            <"$TMP/idle-in" >"$TMP/idle-out" 2>>"$LOG" &
        idle_pid=$!
        exec {hold}>"$TMP/idle-in" # the client's stdin stays open until this closes
        start=$SECONDS
        until grep -q '^ready' "$TMP/idle-out" 2>/dev/null; do
            if ! kill -0 "$idle_pid" 2>/dev/null || ((SECONDS - start > 300)); then break; fi
            sleep 0.2
        done
        sleep 1 # let the server settle (connections it has not yet seen idle)
        after=$(rss_kib "$server_pid")
        exec {hold}>&-
        wait "$idle_pid" 2>/dev/null || true
        read -r _ opened failed <<<"$(grep '^ready' "$TMP/idle-out" || echo 'ready 0 0')"
        still=$(awk '/^still_open/ { print $2 }' "$TMP/idle-out")
        rm -f "$TMP/idle-in" "$TMP/idle-out"
        echo "{\"kind\":\"idle\",\"server\":\"$server\",\"conns\":${opened:-0},\"failed\":${failed:-0},\"still_open\":${still:-0},\"rss_before_kib\":$before,\"rss_after_kib\":$after}" | tee -a "$OUT"
        stop_server
    done
fi

echo
python3 bench/http_report.py "$OUT" | tee "${OUT%.jsonl}.md"
