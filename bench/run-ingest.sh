#!/usr/bin/env bash
# Ingest benchmark: builds release binaries, starts `devtrace serve` on a
# fresh data directory, drives it with devtrace-loadgen until every accepted
# span is queryable (watching the server's memory and CPU), stops the server
# with SIGTERM and prints the bytes on disk per span.
#
# Usage: bench/run-ingest.sh [extra devtrace-loadgen flags...]
#   e.g. bench/run-ingest.sh --total-spans 500000
#        bench/run-ingest.sh --rate 400000 --duration 30      # overload test
#
# Environment:
#   TRANSPORTS   grpc | http | both (default both)
#   TOTAL_SPANS  spans to send unless the extra flags say otherwise (default 2000000)
#   CONNECTIONS  connections per transport (default 4)
#   GRPC_ADDR, HTTP_ADDR, API_ADDR   listen addresses (default 127.0.0.1:4317/4318/4319)
#   KEEP_DATA=1  keep the data directory and logs afterwards
#   NO_BUILD=1   skip `cargo build` (use the binaries in target/release)
set -euo pipefail

cd "$(dirname "$0")/.."
TRANSPORTS=${TRANSPORTS:-both}
TOTAL_SPANS=${TOTAL_SPANS:-2000000}
CONNECTIONS=${CONNECTIONS:-4}
GRPC_ADDR=${GRPC_ADDR:-127.0.0.1:4317}
HTTP_ADDR=${HTTP_ADDR:-127.0.0.1:4318}
API_ADDR=${API_ADDR:-127.0.0.1:4319}
DEVTRACE=target/release/devtrace
LOADGEN=target/release/devtrace-loadgen

if [[ -z "${NO_BUILD:-}" ]]; then
    cargo build --release -p devtrace-cli -p devtrace-loadgen
fi
for bin in "$DEVTRACE" "$LOADGEN"; do
    [[ -x "$bin" ]] || { echo "run-ingest: $bin was not built" >&2; exit 1; }
done

# Refuse to measure against a server that is already running.
port_open() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
for addr in "$GRPC_ADDR" "$HTTP_ADDR" "$API_ADDR"; do
    if port_open "$addr"; then
        echo "run-ingest: something already listens on $addr; stop it first" >&2
        exit 1
    fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/devtrace-ingest.XXXXXX")
DATA="$WORK/data"
LOG="$WORK/server.log"
REPORT="$WORK/report.json"
mkdir -p "$DATA"
SERVER_PID=

cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ -n "${KEEP_DATA:-}" ]]; then
        echo "run-ingest: kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

"$DEVTRACE" serve --data "$DATA" \
    --grpc-listen "$GRPC_ADDR" --http-listen "$HTTP_ADDR" --api-listen "$API_ADDR" \
    >"$LOG" 2>&1 &
SERVER_PID=$!
echo "run-ingest: devtrace serve (pid $SERVER_PID) on $DATA"

# Wait until all three listeners accept connections (30 s at most).
for _ in $(seq 300); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "run-ingest: the server exited early; its log:" >&2
        cat "$LOG" >&2
        SERVER_PID=
        exit 1
    fi
    if port_open "$GRPC_ADDR" && port_open "$HTTP_ADDR" && port_open "$API_ADDR"; then
        break
    fi
    sleep 0.1
done
if ! (port_open "$GRPC_ADDR" && port_open "$HTTP_ADDR" && port_open "$API_ADDR"); then
    echo "run-ingest: the server did not start listening within 30 s; its log:" >&2
    cat "$LOG" >&2
    exit 1
fi

case "$TRANSPORTS" in
    grpc) TARGETS=(--grpc "$GRPC_ADDR") ;;
    http) TARGETS=(--http "$HTTP_ADDR") ;;
    both) TARGETS=(--grpc "$GRPC_ADDR" --http "$HTTP_ADDR") ;;
    *) echo "run-ingest: TRANSPORTS must be grpc, http or both" >&2; exit 2 ;;
esac

# The default size applies unless the extra flags set --total-spans or
# --duration; other extra flags come last and override the ones given here.
SIZE=(--total-spans "$TOTAL_SPANS")
for arg in "$@"; do
    case "$arg" in --total-spans* | --duration*) SIZE=() ;; esac
done
status=0
"$LOADGEN" "${TARGETS[@]}" --connections "$CONNECTIONS" \
    --api "$API_ADDR" --server-pid "$SERVER_PID" \
    "${SIZE[@]}" --json-out "$REPORT" "$@" || status=$?
if [[ $status -ge 2 ]]; then
    echo "run-ingest: the load generator failed (exit $status); server log:" >&2
    tail -n 50 "$LOG" >&2
    exit "$status"
fi

# Stop the server the way a user would, and time its shutdown.
stop_start=$(date +%s.%N)
kill -TERM "$SERVER_PID"
for _ in $(seq 600); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "run-ingest: the server did not exit within 60 s of SIGTERM; killing it" >&2
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    status=1
fi
server_status=0
wait "$SERVER_PID" || server_status=$?
SERVER_PID=
stop_end=$(date +%s.%N)
if [[ $server_status -ne 0 ]]; then
    echo "run-ingest: the server exited with status $server_status; last lines of its log:" >&2
    tail -n 20 "$LOG" >&2
    status=1
fi

# Bytes on disk: the apparent sizes of every file the server left behind.
bytes=$(find "$DATA" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
files=$(find "$DATA" -type f | wc -l)
accepted=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["spans_accepted"])' "$REPORT" 2>/dev/null ||
    sed -n 's/.*"spans_accepted":\([0-9]*\),"spans_dropped_client".*/\1/p' "$REPORT")
awk -v b="$bytes" -v f="$files" -v s="${accepted:-0}" -v t0="$stop_start" -v t1="$stop_end" 'BEGIN {
    printf "server shutdown    %.2f s after SIGTERM\n", t1 - t0
    printf "on disk            %d bytes in %d files (%.1f MiB)\n", b, f, b / 1048576
    if (s > 0) printf "bytes per span     %.1f (%d spans accepted)\n", b / s, s
    else print "bytes per span     n/a (no span accepted)"
}'
echo "files:"
find "$DATA" -type f -printf '  %10s  %P\n' | sort -k2
exit "$status"
