#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The PostgreSQL benchmarks of issue 15: corio::pg against asyncpg (the anchor), psycopg 3 and
# pgbench (PostgreSQL's own C client on libpq: the floor for client CPU), against one local
# PostgreSQL 15 (scripts/pg-server: a throw-away cluster, fsync off) pinned to SERVER_CPU, every
# client pinned to CLIENT_CPU, over TCP on 127.0.0.1:
#   select  50,000 `SELECT id, name, email, score FROM users WHERE id = $1` (100,000 users,
#           random ids) through a pool of 10 with 100 in flight: queries/s, client CPU per query
#   fetch   1,000,000 rows of 4 columns on one connection, whole and streamed: rows/s, client
#           CPU, peak RSS over the baseline
#   insert  100,000 INSERTs on one connection: one by one, and pipelined (corio::pg's
#           pipeline, asyncpg's executemany)
# Builds pg_corio in Release, starts the server and fills its tables, then for each round, each
# case and each run of it (their order rotating from round to round), waits for a quiet machine
# and runs one client process through pg_report.py run, which appends one JSON line (the
# client's own, or pgbench's report) with the server's CPU time and the CPU that other
# processes took meanwhile; a disturbed run is repeated. Prints the medians, the ratios of the
# same rounds and the targets (pg_report.py report; bench/README.md, "PostgreSQL (issue 15)").
# About four minutes with the defaults.
# Run from anywhere:  bench/pg.sh
#
# Environment knobs:
#   ROUNDS=3                       rounds
#   CASES="select fetch insert"
#   SELECT_RUNS="corio:pool-unnamed corio:pool-prepared corio:held-prepared pgbench:extended
#                pgbench:prepared asyncpg:pool asyncpg:held psycopg:pool"
#                                  IMPL:VARIANT; also corio:held-unnamed, asyncpg-uvloop:pool,
#                                  asyncpg-uvloop:held (python3-uvloop)
#   FETCH_RUNS="corio:whole corio:stream asyncpg:whole asyncpg:stream psycopg:whole"
#                                  also psycopg:stream (~12 s a run), asyncpg-uvloop:*
#   INSERT_RUNS="corio:one corio:pipeline-1000 corio:pipeline-100000 asyncpg:many"
#                                  corio:pipeline-N: N statements per pipeline; also asyncpg:one,
#                                  psycopg:one, psycopg:many (10-25 s a run)
#                                  (runs whose client is missing are skipped: asyncpg and
#                                  psycopg are Debian's python3-asyncpg, python3-psycopg and
#                                  python3-psycopg-pool, pgbench is in postgresql-contrib)
#   QUERIES=50000  POOL=10  INFLIGHT=100  IDS=100000   select: queries, pool size (pgbench: -c),
#                                  tasks in flight, users (ids drawn from 1..IDS)
#   ROWS=1000000  INSERTS=100000   fetch: the table's rows; insert: inserts per run
#   SERVER_CPU=0  CLIENT_CPU=1     the cores (taskset): every server process, and the client
#   SOCKET=0                       1: the Unix socket instead of TCP on 127.0.0.1
#   TIMEOUT=120                    seconds a run may take before it is killed
#   DISTURBED=0.10  RETRIES=2      a run is "disturbed" when processes other than the client
#                                  and the server took more than DISTURBED cores on average
#                                  during it (all CPUs' user, nice, system, irq and softirq
#                                  time from /proc/stat, less the client's and the server's
#                                  own); it is repeated then, up to RETRIES times, and the
#                                  report takes each round's undisturbed attempt
#   QUIET=0.10  QUIET_WAIT=60      before each run, wait (up to QUIET_WAIT seconds) until the
#                                  machine is idle but for QUIET (busy fraction of all CPUs
#                                  over half a second)
#   BUILD_DIR=build/bench-pg  OUT=$BUILD_DIR/pg-results.jsonl
#   PYTHON=/usr/bin/python3 (when it has asyncpg, else python3)
set -euo pipefail

cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-3}
CASES=${CASES:-select fetch insert}
SELECT_RUNS=${SELECT_RUNS:-corio:pool-unnamed corio:pool-prepared corio:held-prepared \
pgbench:extended pgbench:prepared asyncpg:pool asyncpg:held psycopg:pool}
FETCH_RUNS=${FETCH_RUNS:-corio:whole corio:stream asyncpg:whole asyncpg:stream psycopg:whole}
INSERT_RUNS=${INSERT_RUNS:-corio:one corio:pipeline-1000 corio:pipeline-100000 asyncpg:many}
QUERIES=${QUERIES:-50000}
POOL=${POOL:-10}
INFLIGHT=${INFLIGHT:-100}
IDS=${IDS:-100000}
ROWS=${ROWS:-1000000}
INSERTS=${INSERTS:-100000}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
SOCKET=${SOCKET:-0}
TIMEOUT=${TIMEOUT:-120}
DISTURBED=${DISTURBED:-0.10}
RETRIES=${RETRIES:-2}
QUIET=${QUIET:-0.10}
QUIET_WAIT=${QUIET_WAIT:-60}
BUILD_DIR=${BUILD_DIR:-build/bench-pg}
OUT=${OUT:-$BUILD_DIR/pg-results.jsonl}
if [[ -z ${PYTHON:-} ]]; then
    PYTHON=python3
    if /usr/bin/python3 -c 'import asyncpg' 2>/dev/null; then
        PYTHON=/usr/bin/python3 # Debian's python3-* packages live there, not in a pyenv
    fi
fi
PGBENCH=$(command -v pgbench || echo /usr/lib/postgresql/15/bin/pgbench)

# --- build ----------------------------------------------------------------------------------
# The release preset (Release, -O3) in a directory of its own.
cmake --preset release -B "$BUILD_DIR" -DCORIO_BUILD_TESTS=OFF -DCORIO_BUILD_EXAMPLES=OFF \
    >/dev/null
if ! cmake --build "$BUILD_DIR" --target help | grep -w pg_corio >/dev/null; then
    echo "pg.sh: corio::pg is not built here (libpq-dev missing?)" >&2
    exit 1
fi
cmake --build "$BUILD_DIR" --target pg_corio -j"$(nproc)"
BIN=$BUILD_DIR/bench

# --- which clients are here -----------------------------------------------------------------
available() { # impl -> exit status
    case $1 in
    corio) [[ -x $BIN/pg_corio ]] ;;
    pgbench) [[ -x $PGBENCH ]] ;;
    asyncpg) "$PYTHON" -c 'import asyncpg' 2>/dev/null ;;
    asyncpg-uvloop) "$PYTHON" -c 'import asyncpg, uvloop' 2>/dev/null ;;
    psycopg) "$PYTHON" -c 'import psycopg, psycopg_pool' 2>/dev/null ;;
    *) return 1 ;;
    esac
}
filter_runs() { # runs... -> those whose client is here (the others named on stderr)
    local r out=()
    for r in "$@"; do
        if available "${r%%:*}"; then
            out+=("$r")
        else
            echo "pg.sh: ${r%%:*} is not installed, no $r (scripts/ensure-deps" \
                "python3-asyncpg python3-psycopg python3-psycopg-pool postgresql-contrib)" >&2
        fi
    done
    echo "${out[*]}"
}
# shellcheck disable=SC2086
{
    SELECT_RUNS=$(filter_runs $SELECT_RUNS)
    FETCH_RUNS=$(filter_runs $FETCH_RUNS)
    INSERT_RUNS=$(filter_runs $INSERT_RUNS)
}

# --- the server -----------------------------------------------------------------------------
TMP=$(mktemp -d /tmp/corio-pg-bench.XXXXXX)
server_dir=''
cleanup() {
    if [[ -n $server_dir ]]; then scripts/pg-server --stop "$server_dir" || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Started under taskset: the postmaster and every process it forks stay on SERVER_CPU.
taskset -c "$SERVER_CPU" scripts/pg-server --background >"$TMP/server.txt"
server_dir=$(sed -n 's/^# stop it with: .* --stop //p' "$TMP/server.txt")
CONNINFO=$(head -1 "$TMP/server.txt")
if [[ $SOCKET != 1 ]]; then
    CONNINFO=${CONNINFO/host=$server_dir/host=127.0.0.1}
fi
POSTMASTER=$(head -1 "$server_dir/data/postmaster.pid")
psql_app() { psql -X -q -v ON_ERROR_STOP=1 "$CONNINFO" "$@"; }

echo "pg.sh: filling the tables ($IDS users, $ROWS rows)" >&2
psql_app >/dev/null <<EOF
CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL,
                    score int NOT NULL);
INSERT INTO users SELECT i, 'user ' || i, 'user' || i || '@example.com',
                         (i::bigint * 7919 % 1000)::int FROM generate_series(1, $IDS) i;
CREATE TABLE rows_1m (id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL,
                      score int NOT NULL);
INSERT INTO rows_1m SELECT i, 'user ' || i, 'user' || i || '@example.com',
                           (i::bigint * 7919 % 1000)::int FROM generate_series(1, $ROWS) i;
CREATE TABLE inserts (id bigint PRIMARY KEY, name text NOT NULL, email text NOT NULL,
                      score int NOT NULL) WITH (autovacuum_enabled = false);
VACUUM ANALYZE users;
VACUUM ANALYZE rows_1m;
CREATE EXTENSION IF NOT EXISTS pg_prewarm;
SELECT pg_prewarm('users'), pg_prewarm('users_pkey'), pg_prewarm('rows_1m');
CHECKPOINT;
EOF
printf '\\set id random(1, %d)\nSELECT id, name, email, score FROM users WHERE id = :id;\n' \
    "$IDS" >"$TMP/select.sql"

# --- runs -----------------------------------------------------------------------------------
cpu_jiffies() { # -> "busy total" jiffies of all CPUs (busy: user, nice, system)
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
            echo "pg.sh: the machine stayed busy for ${QUIET_WAIT}s; running anyway" >&2
            return
        fi
    done
}

# pgbench's start and its POOL connections (SCRAM authentication: ~8 ms of client CPU each
# here), measured apart: the median CPU time of three runs of one transaction per client.
CONNECT_CPU=0
if available pgbench && [[ " $CASES " == *" select "* ]]; then
    CONNECT_CPU=$(for _ in 1 2 3; do
        taskset -c "$CLIENT_CPU" "$PYTHON" bench/pg_report.py cpu -- "$PGBENCH" -n -c "$POOL" \
            -j 1 -t 1 -M prepared -f "$TMP/select.sql" "$CONNINFO"
    done | sort -n | sed -n 2p)
fi

# case run -> the client's command line
run_cmd() {
    local impl=${2%%:*} variant=${2#*:} py=""
    case $impl in
    asyncpg) py="$PYTHON bench/pg_asyncpg.py" ;;
    asyncpg-uvloop) py="$PYTHON bench/pg_asyncpg.py --uvloop" ;;
    psycopg) py="$PYTHON bench/pg_psycopg.py" ;;
    esac
    case $1:$impl in
    select:corio)
        echo "$BIN/pg_corio --case select --via ${variant%-*} --statement ${variant#*-}" \
            "--queries $QUERIES --pool $POOL --inflight $INFLIGHT --ids $IDS" ;;
    select:pgbench)
        echo "$PGBENCH -n -c $POOL -j 1 -t $((QUERIES / POOL)) -M $variant -f $TMP/select.sql" ;;
    select:*)
        echo "$py --case select --via $variant --queries $QUERIES --pool $POOL" \
            "--inflight $INFLIGHT --ids $IDS" ;;
    fetch:corio) echo "$BIN/pg_corio --case fetch --mode $variant --rows $ROWS" ;;
    fetch:*) echo "$py --case fetch --mode $variant --rows $ROWS" ;;
    insert:corio)
        if [[ $variant == pipeline-* ]]; then
            echo "$BIN/pg_corio --case insert --mode pipeline --batch ${variant#pipeline-}" \
                "--inserts $INSERTS"
        else
            echo "$BIN/pg_corio --case insert --mode $variant --inserts $INSERTS"
        fi ;;
    insert:*) echo "$py --case insert --mode $variant --inserts $INSERTS" ;;
    esac
}
# One run: case run round. Repeats a disturbed run up to RETRIES times.
measure() {
    local attempt rc cmd extra=()
    read -r -a cmd <<<"$(run_cmd "$1" "$2")"
    if [[ $2 == pgbench:* ]]; then
        cmd+=("$CONNINFO")
        extra=(--pgbench --connect-cpu "$CONNECT_CPU")
    else
        cmd+=(--conninfo "$CONNINFO")
    fi
    for ((attempt = 1; attempt <= 1 + RETRIES; attempt++)); do
        wait_quiet
        rc=0
        taskset -c "$CLIENT_CPU" "$PYTHON" bench/pg_report.py run --out "$OUT" --case "$1" \
            --name "$2" --round "$3" --attempt "$attempt" --server-pid "$POSTMASTER" \
            --disturbed "$DISTURBED" --timeout "$TIMEOUT" "${extra[@]}" -- "${cmd[@]}" || rc=$?
        # the WAL of the inserts is checkpointed now rather than during a later run
        if [[ $1 == insert ]]; then psql_app -c CHECKPOINT; fi
        [[ $rc == 3 ]] || break
    done
    if [[ $rc != 0 && $rc != 3 ]]; then echo "pg.sh: $1 $2 failed (exit $rc)" >&2; fi
}

echo "== machine"
lscpu | grep -m1 'Model name' || true
echo "kernel $(uname -r), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "$(postgres_version=$(psql_app -At -c 'SHOW server_version'); echo "PostgreSQL $postgres_version");" \
    "$("$PGBENCH" --version 2>/dev/null || echo 'no pgbench');" \
    "Python $("$PYTHON" -c 'import platform; print(platform.python_version())')," \
    "asyncpg $("$PYTHON" -c 'import asyncpg; print(asyncpg.__version__)' 2>/dev/null || echo -)," \
    "psycopg $("$PYTHON" -c 'import psycopg; print(psycopg.__version__, psycopg.pq.__impl__)' 2>/dev/null || echo -)"
echo "$ROUNDS rounds; server on CPU $SERVER_CPU, clients on CPU $CLIENT_CPU;" \
    "$(if [[ $SOCKET == 1 ]]; then echo 'Unix socket'; else echo 'TCP 127.0.0.1'; fi);" \
    "pgbench's connection CPU: ${CONNECT_CPU} s"
mkdir -p "$(dirname "$OUT")"
: >"$OUT"

for round in $(seq "$ROUNDS"); do
    echo "== round $round/$ROUNDS"
    for case in $CASES; do
        case $case in
        select) read -r -a runs <<<"$SELECT_RUNS" ;;
        fetch) read -r -a runs <<<"$FETCH_RUNS" ;;
        insert) read -r -a runs <<<"$INSERT_RUNS" ;;
        *) echo "pg.sh: unknown case $case" >&2; exit 2 ;;
        esac
        n=${#runs[@]}
        for ((k = 0; k < n; k++)); do
            measure "$case" "${runs[$(((k + round - 1) % n))]}" "$round"
        done
    done
done

echo
"$PYTHON" bench/pg_report.py report "$OUT" | tee "${OUT%.jsonl}.md"
