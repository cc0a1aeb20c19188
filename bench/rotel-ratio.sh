#!/usr/bin/env bash
# devtrace against Rotel, side by side (issue 46: "ingest at the collector's speed").
#
# Rotel (github.com/streamfold/rotel) is an OpenTelemetry collector in Rust; with
# `--exporter blackhole` it receives OTLP over gRPC and HTTP, decodes every request,
# acknowledges it and drops it: the cost of receiving, with nothing stored. This script drives
# it and then `devtrace serve` (release, a fresh data directory) with the same load from
# devtrace-loadgen (same seed, spans, connections, transports), one after the other on the same
# ports, and prints one table:
#
#   Rotel      spans per second until the last request was acknowledged;
#   devtrace   spans per second until every accepted span is queryable (GET /api/v1/stats,
#              as bench/run-ingest.sh measures), then bytes per span on disk after SIGTERM;
#
# the ratio devtrace / Rotel, the CPU each server spent per span (on a shared 2-core machine
# the wall-clock figures move with the other load, CPU per span much less), and the load
# average (/proc/loadavg) before and after.
#
# Usage: bench/rotel-ratio.sh [extra devtrace-loadgen flags...]
#   bench/rotel-ratio.sh                          # 1,000,000 spans over gRPC + HTTP, 4 connections each
#   TRANSPORTS=grpc bench/rotel-ratio.sh --total-spans 200000
#   bench/rotel-ratio.sh --in-flight 4            # extra flags go to both load-generator runs
#
# Environment:
#   ROTEL_BIN    Rotel's binary (default ../rotel/target/release/rotel, beside this checkout).
#                To build it, from the directory above this checkout:
#                  git clone https://github.com/streamfold/rotel && cd rotel
#                  cargo build --release --no-default-features --bin rotel   # needs protoc and cmake
#                (no default features: no Kafka, AWS or file receiver; OTLP in and the
#                blackhole exporter are always built)
#                Where github.com is not reachable (Cargo fetches three of Rotel's dependencies
#                from it), build Rotel 0.2.1 against crates.io's opentelemetry,
#                opentelemetry_sdk and opentelemetry-proto 0.31.0 and daemonize 0.5.0 instead
#                (whose error kind is private: main.rs then returns daemonize's error as is);
#                with RUSTUP_TOOLCHAIN set to an installed toolchain if its pinned one is not.
#   TRANSPORTS   grpc | http | both (default both)
#   TOTAL_SPANS  spans per run unless the extra flags say otherwise (default 1000000)
#   CONNECTIONS  connections per transport (default 4)
#   GRPC_ADDR, HTTP_ADDR, API_ADDR   listen addresses (default 127.0.0.1:4317/4318/4319);
#                Rotel gets the first two, then devtrace all three
#   KEEP_DATA=1  keep the work directory (data directory, server logs, both JSON reports)
#   NO_BUILD=1   skip building devtrace (use target/release/devtrace and devtrace-loadgen)
#
# Exit status: 0 when both runs accepted every span (and devtrace made them all queryable and
# shut down cleanly), 1 when a run fell short, 2 on setup errors.
set -euo pipefail

cd "$(dirname "$0")/.."
if [[ "${1:-}" == --help || "${1:-}" == -h ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    exit 0
fi
TRANSPORTS=${TRANSPORTS:-both}
TOTAL_SPANS=${TOTAL_SPANS:-1000000}
CONNECTIONS=${CONNECTIONS:-4}
GRPC_ADDR=${GRPC_ADDR:-127.0.0.1:4317}
HTTP_ADDR=${HTTP_ADDR:-127.0.0.1:4318}
API_ADDR=${API_ADDR:-127.0.0.1:4319}
ROTEL_BIN=${ROTEL_BIN:-$(cd .. && pwd)/rotel/target/release/rotel}
DEVTRACE=target/release/devtrace
LOADGEN=target/release/devtrace-loadgen

fail_setup() { echo "rotel-ratio: $*" >&2; exit 2; }

if [[ ! -x "$ROTEL_BIN" ]]; then
    fail_setup "Rotel's binary is not at ROTEL_BIN=$ROTEL_BIN.
  Set ROTEL_BIN to a built rotel, or build one:
    git clone https://github.com/streamfold/rotel && cd rotel
    cargo build --release --no-default-features --bin rotel    # needs protoc and cmake (apt-get install protobuf-compiler cmake)
  then ROTEL_BIN=\$PWD/target/release/rotel bench/rotel-ratio.sh"
fi
case "$TRANSPORTS" in
    grpc) ROTEL_TARGETS=(--grpc "$GRPC_ADDR") ;;
    http) ROTEL_TARGETS=(--http "$HTTP_ADDR") ;;
    both) ROTEL_TARGETS=(--grpc "$GRPC_ADDR" --http "$HTTP_ADDR") ;;
    *) fail_setup "TRANSPORTS must be grpc, http or both (got '$TRANSPORTS')" ;;
esac
command -v python3 >/dev/null || fail_setup "needs python3 (to read the load generator's JSON reports)"

# Cargo rebuilds only what changed; -j1 and nice: the 2-core machine is shared.
if [[ -z "${NO_BUILD:-}" ]]; then
    nice -n 19 cargo build --release -p devtrace-cli -p devtrace-loadgen -j1
fi
for bin in "$DEVTRACE" "$LOADGEN"; do
    [[ -x "$bin" ]] || fail_setup "$bin was not built (run without NO_BUILD=1)"
done

# Refuse to measure against something that already listens on the ports.
port_open() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
for addr in "$GRPC_ADDR" "$HTTP_ADDR" "$API_ADDR"; do
    if port_open "$addr"; then
        fail_setup "something already listens on $addr; stop it first (or set GRPC_ADDR/HTTP_ADDR/API_ADDR)"
    fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/devtrace-rotel.XXXXXX")
DATA="$WORK/data"
mkdir -p "$DATA"
SERVER_PID=

stop_server() { # SIGTERM, 60 s to exit; prints nothing, returns the server's exit status
    local pid=$SERVER_PID status=0
    SERVER_PID=
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 600); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "rotel-ratio: pid $pid did not exit within 60 s of SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || status=$?
    return "$status"
}
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        stop_server || true
    fi
    if [[ -n "${KEEP_DATA:-}" ]]; then echo "rotel-ratio: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

wait_listening() { # NAME LOG ADDR...: 30 s for every ADDR to accept connections
    local name=$1 log=$2
    shift 2
    for _ in $(seq 300); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            SERVER_PID=
            echo "rotel-ratio: $name exited before listening; its log:" >&2
            cat "$log" >&2
            exit 2
        fi
        local all=1 addr
        for addr in "$@"; do port_open "$addr" || all=; done
        if [[ -n "$all" ]]; then return 0; fi
        sleep 0.1
    done
    echo "rotel-ratio: $name did not listen on $* within 30 s; its log:" >&2
    cat "$log" >&2
    exit 2
}

# The default size applies unless the extra flags set --total-spans or --duration; other extra
# flags come last and override the ones given here.
SIZE=(--total-spans "$TOTAL_SPANS")
for arg in "$@"; do
    case "$arg" in --total-spans* | --duration*) SIZE=() ;; esac
done
run_loadgen() { # NAME REPORT [flags...]: the same load for both receivers (same seed)
    local name=$1 report=$2 status=0
    shift 2
    local command=("$LOADGEN" "${ROTEL_TARGETS[@]}" --connections "$CONNECTIONS"
        --server-pid "$SERVER_PID" --quiet "${SIZE[@]}" --json-out "$report" "$@")
    echo "rotel-ratio: $name: ${command[*]}" >&2
    "${command[@]}" >"$WORK/$name-loadgen.txt" || status=$?
    if [[ $status -ge 2 ]]; then
        echo "rotel-ratio: the load generator failed against $name (exit $status)" >&2
        exit 2
    fi
    return "$status"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
status=0

# 1. Rotel, receiving and dropping.
"$ROTEL_BIN" start --exporter blackhole \
    --otlp-grpc-endpoint "$GRPC_ADDR" --otlp-http-endpoint "$HTTP_ADDR" \
    >"$WORK/rotel.log" 2>&1 &
SERVER_PID=$!
wait_listening Rotel "$WORK/rotel.log" "$GRPC_ADDR" "$HTTP_ADDR"
run_loadgen rotel "$WORK/rotel.json" "$@" || status=1
stop_server || true # Rotel's exit status on SIGTERM is not part of the comparison

# 2. devtrace, storing on a fresh data directory.
"$DEVTRACE" serve --data "$DATA" \
    --grpc-listen "$GRPC_ADDR" --http-listen "$HTTP_ADDR" --api-listen "$API_ADDR" \
    >"$WORK/devtrace.log" 2>&1 &
SERVER_PID=$!
wait_listening "devtrace serve" "$WORK/devtrace.log" "$GRPC_ADDR" "$HTTP_ADDR" "$API_ADDR"
run_loadgen devtrace "$WORK/devtrace.json" --api "$API_ADDR" "$@" || status=1
if ! stop_server; then
    echo "rotel-ratio: devtrace serve did not exit cleanly on SIGTERM; last lines of its log:" >&2
    tail -n 20 "$WORK/devtrace.log" >&2
    status=1
fi
DISK_BYTES=$(find "$DATA" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$WORK/rotel.json" "$WORK/devtrace.json" "$DISK_BYTES" "$LOAD_BEFORE" "$LOAD_AFTER" \
    "$TRANSPORTS" "$CONNECTIONS" "$(nproc)" <<'PY'
import json, sys

rotel_path, devtrace_path, disk, load_before, load_after, transports, connections, cores = sys.argv[1:]
rotel, devtrace = json.load(open(rotel_path)), json.load(open(devtrace_path))


def row(name, r, until):
    """One receiver's figures; `until` names what its clock waited for."""
    queryable = r.get("queryable")
    wall = queryable["wall_s"] if queryable else r["send_wall_s"]
    rate = queryable["spans_per_s"] if queryable else r["send_spans_per_s"]
    server = r.get("server") or {}
    cpu = server.get("cpu_until_queryable_s") if queryable else server.get("cpu_send_s")
    accepted = r["spans_accepted"]
    return {
        "name": name, "until": until, "accepted": accepted, "wall": wall, "rate": rate,
        "p50": r["latency_ms"]["p50"], "p99": r["latency_ms"]["p99"],
        "cpu": cpu, "cpu_us_per_span": cpu * 1e6 / accepted if cpu is not None and accepted else None,
        "rss_mib": server.get("max_rss_bytes", 0) / 1048576, "client_cpu": r["client_cpu_send_s"],
    }


rows = [row("Rotel (blackhole)", rotel, "acknowledged"), row("devtrace serve", devtrace, "queryable")]
print(f"\nspans {rotel['spans_sent']:,} per receiver, {transports} ({connections} connection(s) per transport, "
      f"{rotel['in_flight_per_connection']} in flight each), seed {rotel['seed']}, {cores} cores")
print("| receiver | spans/s (until) | wall | accepted | latency p50 / p99 | server CPU | CPU/span | max RSS | loadgen CPU |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
for x in rows:
    cpu = f"{x['cpu']:.2f} s" if x["cpu"] is not None else "n/a"
    per_span = f"{x['cpu_us_per_span']:.2f} µs" if x["cpu_us_per_span"] is not None else "n/a"
    print(f"| {x['name']} | {x['rate']:,.0f} ({x['until']}) | {x['wall']:.2f} s | {x['accepted']:,} "
          f"| {x['p50']:.1f} / {x['p99']:.1f} ms | {cpu} | {per_span} | {x['rss_mib']:.1f} MiB | {x['client_cpu']:.2f} s |")
r, d = rows
ratio = f"{d['rate'] / r['rate']:.3f}" if r["rate"] else "n/a (Rotel accepted nothing)"
print(f"ratio devtrace / Rotel   {ratio} (spans/s, wall clock)")
if r["cpu_us_per_span"] and d["cpu_us_per_span"]:
    print(f"server CPU per span      x{d['cpu_us_per_span'] / r['cpu_us_per_span']:.2f} (devtrace / Rotel)")
accepted = devtrace["spans_accepted"]
print(f"devtrace on disk         {int(disk):,} bytes, "
      + (f"{int(disk) / accepted:.1f} bytes per span" if accepted else "no span accepted"))
print(f"load average             before {load_before}, after {load_after} (1, 5, 15 min)")
PY
exit "$status"
