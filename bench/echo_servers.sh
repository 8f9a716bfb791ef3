# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# What echo.sh and syscalls.sh share, sourced by both after they set BIN (the built bench/
# directory): the command line of each echo server, and stopping the one started last.

# name -> command line
server_cmd() {
    case $1 in
    uring) echo "$BIN/echo_uring" ;;
    uring-wait1) echo "$BIN/echo_uring --wait-one" ;;
    corio) echo "$BIN/echo_corio" ;;
    corio-epoll) echo "env CORIO_BACKEND=epoll $BIN/echo_corio" ;;
    asio) echo "$BIN/echo_asio" ;;
    *) echo "$(basename "$0"): unknown server $1" >&2; exit 2 ;;
    esac
}

# Stops the server whose pid is in server_pid (started in the background), if any.
server_pid=
stop_server() {
    if [[ -n $server_pid ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=
    fi
}
trap stop_server EXIT
