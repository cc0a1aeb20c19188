#!/usr/bin/env bash
# devtrace builds ingesting into PostgreSQL, alternated round by round (issue 46: "PostgreSQL
# and ClickHouse each at least 1.5× today's figure through the same pipeline").
#
# Usage: bench/postgres-ingest.sh [--rounds N] [--spans N] [--statements] LABEL=DEVTRACE_BINARY...
#   bench/postgres-ingest.sh before=/tmp/old/devtrace now=target/release/devtrace
#   bench/postgres-ingest.sh --statements now=target/release/devtrace   # where the server's time goes
#
# Starts one PostgreSQL 15 (scripts/postgres-test-server, in a temporary directory), then for
# each round and each build: a fresh schema, `devtrace serve --store URL?options=-csearch_path…`,
# devtrace-loadgen over gRPC and HTTP (4 connections and 4 requests in flight per transport, the
# round's seed) until every span is queryable, and the schema's size. Prints a line a run and,
# at the end, each build's mean rate and its ratio to the first build's.
#
#   --rounds N      rounds (default 3)
#   --spans N       spans a run (default 500000)
#   --statements    load pg_stat_statements and print the server's ten costliest statements
#                   after each run (their time is the server's own, excluding devtrace's)
#
# Environment: LOADGEN (default target/release/devtrace-loadgen), PG_BIN (as for
# scripts/postgres-test-server), KEEP_DATA=1 keeps the work directory.
# Exit status: 0 when every run made all its spans queryable, 1 otherwise, 2 on setup errors.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() {
    printf 'postgres-ingest: %s\n' "$*" >&2
    exit 2
}

ROUNDS=3
SPANS=500000
STATEMENTS=
BUILDS=()
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) ROUNDS=${2:?--rounds needs a number}; shift 2 ;;
    --spans) SPANS=${2:?--spans needs a number}; shift 2 ;;
    --statements) STATEMENTS=1; shift ;;
    -h | --help) sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *=*) BUILDS+=("$1"); shift ;;
    *) die "unknown argument '$1' (see --help)" ;;
    esac
done
[ ${#BUILDS[@]} -gt 0 ] || die "name at least one build as LABEL=DEVTRACE_BINARY (see --help)"
for build in "${BUILDS[@]}"; do
    [ -x "${build#*=}" ] || die "${build#*=} (build ${build%%=*}) is not an executable"
done
LOADGEN=${LOADGEN:-target/release/devtrace-loadgen}
[ -x "$LOADGEN" ] || die "$LOADGEN not found: cargo build --release -p devtrace-loadgen"
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
export PG_BIN

WORK=$(mktemp -d /tmp/devtrace-pg-ingest.XXXXXX)
chmod 755 "$WORK" # PostgreSQL's own user (as root) must reach its directory
cleanup() {
    scripts/postgres-test-server stop "$WORK/cluster" >/dev/null 2>&1 || true
    if [ -n "${KEEP_DATA:-}" ]; then echo "postgres-ingest: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
URL=$(scripts/postgres-test-server start "$WORK/cluster") || die "starting PostgreSQL failed"
PORT=${URL##*:}
PORT=${PORT%%/*}
psql_as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$PG_BIN/psql" -h "$WORK/cluster" -p "$PORT" -U postgres -qAt "$@"
    else
        "$PG_BIN/psql" -h "$WORK/cluster" -p "$PORT" -U postgres -qAt "$@"
    fi
}
if [ -n "$STATEMENTS" ]; then
    psql_as_owner -d postgres -c "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$WORK/cluster/data" -w restart >/dev/null
    else
        "$PG_BIN/pg_ctl" -D "$WORK/cluster/data" -w restart >/dev/null
    fi
    psql_as_owner -d devtrace -c "CREATE EXTENSION pg_stat_statements"
fi

free_ports() {
    python3 -c 'import socket
ss = [socket.socket() for _ in range(3)]
for s in ss: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))'
}

# One run: prints "rate cpu bytes" (spans/s until queryable, devtrace's CPU seconds, the schema's bytes).
run() {
    local label=$1 binary=$2 round=$3
    local schema="b_${label//[^A-Za-z0-9]/_}_$round" data="$WORK/data-$label-$round"
    psql_as_owner -d devtrace -c "CREATE SCHEMA $schema AUTHORIZATION devtrace"
    mkdir "$data"
    read -r grpc http api < <(free_ports)
    "$binary" serve --store "$URL?options=-csearch_path%3D$schema" --data "$data" --insecure-no-auth \
        --grpc-listen "127.0.0.1:$grpc" --http-listen "127.0.0.1:$http" --api-listen "127.0.0.1:$api" \
        >"$data/serve.log" 2>&1 &
    local pid=$!
    for _ in $(seq 600); do [ -e "$data/serve.json" ] && break; sleep 0.1; done
    [ -e "$data/serve.json" ] || { kill "$pid" 2>/dev/null; die "serve ($label) did not start: $(tail -3 "$data/serve.log")"; }
    [ -z "$STATEMENTS" ] || psql_as_owner -d devtrace -c "SELECT pg_stat_statements_reset()" >/dev/null
    "$LOADGEN" --grpc "127.0.0.1:$grpc" --http "127.0.0.1:$http" --api "127.0.0.1:$api" \
        --connections 4 --in-flight 4 --total-spans "$SPANS" --seed "$round" --server-pid "$pid" \
        --quiet --json-out "$data/loadgen.json" >/dev/null 2>"$data/loadgen.err" || true
    kill -TERM "$pid"
    wait "$pid" || true
    local bytes
    bytes=$(psql_as_owner -d devtrace -c "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = '$schema' AND c.relkind IN ('r', 'm')")
    if [ -n "$STATEMENTS" ]; then
        psql_as_owner -d devtrace -F ' | ' -c "SELECT round(total_exec_time::numeric), calls, rows,
            left(regexp_replace(query, '\s+', ' ', 'g'), 100) FROM pg_stat_statements
            WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'devtrace')
            ORDER BY total_exec_time DESC LIMIT 10" | sed '1i\    server ms | calls | rows | statement' | sed '2,$s/^/    /' >"$data/statements.txt"
    fi
    python3 - "$data/loadgen.json" "$bytes" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
queryable = report["queryable"]
if not queryable.get("reached"):
    print("unreached 0 0")
else:
    print(f'{queryable["spans_per_s"]:.0f} {report["server"]["cpu_until_queryable_s"]:.2f} {sys.argv[2]}')
PY
}

printf '%-12s %5s %10s %14s %12s %14s\n' build round load spans/s cpu schema_bytes
declare -A SUM COUNT
status=0
for round in $(seq "$ROUNDS"); do
    for build in "${BUILDS[@]}"; do
        label=${build%%=*}
        read -r rate cpu bytes < <(run "$label" "${build#*=}" "$round")
        printf '%-12s %5s %10s %14s %12s %14s\n' "$label" "$round" "$(cut -d' ' -f1 /proc/loadavg)" "$rate" "$cpu s" "$bytes"
        [ -z "$STATEMENTS" ] || cat "$WORK/data-$label-$round/statements.txt"
        if [ "$rate" = unreached ]; then status=1; continue; fi
        SUM[$label]=$((${SUM[$label]:-0} + rate))
        COUNT[$label]=$((${COUNT[$label]:-0} + 1))
    done
done
first=${BUILDS[0]%%=*}
for build in "${BUILDS[@]}"; do
    label=${build%%=*}
    [ "${COUNT[$label]:-0}" -gt 0 ] || continue
    mean=$((SUM[$label] / COUNT[$label]))
    if [ "${COUNT[$first]:-0}" -gt 0 ]; then
        ratio=$(python3 -c "print(f'{$mean / (${SUM[$first]} / ${COUNT[$first]}):.2f}')")
    else
        ratio=-
    fi
    printf 'mean %-12s %10s spans/s   ×%s the first build\n' "$label" "$mean" "$ratio"
done
exit $status
