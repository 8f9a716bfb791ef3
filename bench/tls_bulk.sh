#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# TLS bulk throughput: 1 GiB over one TLS 1.3 connection on 127.0.0.1 with
# TLS_AES_128_GCM_SHA256, sender pinned to core 0 and receiver to core 1, for each pairing of
# openssl s_server / s_client (the reference) and corio's bench/tls_bulk serve / fetch.
# Prints MB/s per pairing (median of ROUNDS) and corio's ratio to the reference.
# Run from anywhere:  bench/tls_bulk.sh      Knobs: ROUNDS=5 BYTES=1073741824 BUILD_DIR=build/release
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
BYTES=${BYTES:-1073741824}
BUILD_DIR=${BUILD_DIR:-build/release}
CIPHER=TLS_AES_128_GCM_SHA256

cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=Release -DCORIO_BUILD_BENCH=ON \
    -DCORIO_BUILD_TESTS=OFF -DCORIO_BUILD_EXAMPLES=OFF >/dev/null
cmake --build "$BUILD_DIR" --target tls_bulk -j"$(nproc)" >/dev/null
BIN=$BUILD_DIR/bench/tls_bulk

work=$(mktemp -d)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$work/key.pem" \
    -out "$work/cert.pem" -days 1 -subj /CN=localhost \
    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" 2>/dev/null
head -c "$BYTES" /dev/zero >"$work/payload" # s_server -WWW serves it as a file

port=$((20000 + RANDOM % 20000))

# Starts a sender on $port (in the background, pinned to core 0) and waits until it listens.
start_sender() { # kind
    port=$((port + 1))
    rm -f "$work/server.out"
    if [ "$1" = openssl ]; then
        (cd "$work" && exec taskset -c 0 openssl s_server -accept "127.0.0.1:$port" \
            -cert cert.pem -key key.pem -tls1_3 -ciphersuites "$CIPHER" -naccept 1 -WWW \
            >server.out 2>&1) &
    else
        taskset -c 0 "$BIN" serve --port "$port" --cert "$work/cert.pem" --key "$work/key.pem" \
            --bytes "$BYTES" >"$work/server.out" 2>&1 &
    fi
    pids+=($!)
    for _ in $(seq 200); do
        grep -qE 'ACCEPT|listening' "$work/server.out" 2>/dev/null && return
        sleep 0.01
    done
    echo "sender did not start:" >&2
    cat "$work/server.out" >&2
    exit 1
}

# Receives everything with the given kind of receiver (pinned to core 1); prints MB/s.
receive() { # kind
    local start end
    start=$(date +%s.%N)
    local got
    if [ "$1" = openssl ]; then
        printf 'GET /payload HTTP/1.0\r\n\r\n' |
            taskset -c 1 openssl s_client -connect "127.0.0.1:$port" -CAfile "$work/cert.pem" \
                -tls1_3 -ciphersuites "$CIPHER" -quiet >"$work/received" 2>/dev/null || true
        got=$(stat -c %s "$work/received")
    else
        local out
        out=$(taskset -c 1 "$BIN" fetch --port "$port" --ca "$work/cert.pem")
        got=${out%% *}
    fi
    # s_server -WWW adds a short HTTP head to the payload.
    [ "$got" -ge "$BYTES" ] || { echo "$1 received $got of $BYTES bytes" >&2; exit 1; }
    end=$(date +%s.%N)
    wait "${pids[-1]}" 2>/dev/null || true
    python3 -c "print(f'{$got / ($end - $start) / 1e6:.0f}')"
}

declare -A results
pairs=("openssl openssl" "corio corio" "corio openssl" "openssl corio")
for ((r = 1; r <= ROUNDS; r++)); do
    for pair in "${pairs[@]}"; do
        read -r sender receiver <<<"$pair"
        start_sender "$sender"
        results[$pair]+="$(receive "$receiver") "
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ref=$(echo "${results[openssl openssl]}" | median)
printf '%-34s %10s %8s\n' "sender -> receiver ($CIPHER)" "MB/s" "vs ref"
for pair in "${pairs[@]}"; do
    read -r sender receiver <<<"$pair"
    m=$(echo "${results[$pair]}" | median)
    printf '%-34s %10s %8s\n' "$sender -> $receiver" "$m" \
        "$(python3 -c "print(f'{$m / $ref:.2f}x')")"
done
echo "(median of $ROUNDS rounds; all rounds: $(for p in "${pairs[@]}"; do printf '[%s: %s] ' "$p" "${results[$p]}"; done))"
