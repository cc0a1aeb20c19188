#!/usr/bin/env bash
# Ingest profile (issue 46): counts the instructions `devtrace serve` spends per span on the
# embedded store's ingest path, by stage, under callgrind. Instruction counts do not depend on
# the machine's load, so runs on a busy machine compare (wall time does not).
#
# Builds release binaries with line tables into target/perf, starts `devtrace serve` on a fresh
# data directory and free loopback ports under `valgrind --tool=callgrind`, zeroes the counters
# once it listens (start-up is not counted), drives it with devtrace-loadgen over OTLP/HTTP
# protobuf and then OTLP/gRPC, dumping the counters after each transport, stops the server with
# SIGTERM (the last dump: the shutdown, with its WAL checkpoint) and prints, for each dump, the
# instructions per accepted span by stage and the top functions.
#
# Usage: bench/ingest-profile.sh            # 200,000 spans per transport
#   SPANS=50000 bench/ingest-profile.sh      # a quicker run
#   About 3 minutes per 200,000 spans under callgrind on the 2-core machine, plus the build.
# Environment:
#   SPANS        spans per transport (default 200000)
#   TRANSPORTS   "http grpc" (default), or one of them
#   CONNECTIONS  connections per transport, one request in flight each (default 4)
#   TOP          functions listed per dump (default 25)
#   KEEP_DATA=1  keep the work directory (callgrind.out.*, server log, loadgen reports)
#   NO_BUILD=1   use the binaries already in $CARGO_TARGET_DIR/release
#   CARGO_TARGET_DIR  default target/perf (apart from target/, so no lock is shared)
# Re-read a kept profile: bench/ingest-profile.sh --analyse WORK_DIR
set -euo pipefail

cd "$(dirname "$0")/.."
SPANS=${SPANS:-200000}
TRANSPORTS=${TRANSPORTS:-http grpc}
CONNECTIONS=${CONNECTIONS:-4}
TOP=${TOP:-25}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/perf}
DEVTRACE=$CARGO_TARGET_DIR/release/devtrace
LOADGEN=$CARGO_TARGET_DIR/release/devtrace-loadgen

analyse() { # WORK_DIR: the per-stage table and top functions of every dump in it
    TOP=$TOP python3 - "$1" <<'PY'
import collections, glob, json, os, re, sys

work, top = sys.argv[1], int(os.environ.get("TOP", "25"))


def parse(path):
    """Self and call costs (Ir) by function name, from a callgrind.out file."""
    names, selfc, calls = {}, collections.Counter(), collections.Counter()
    ncalls = collections.Counter()  # calls made to each function
    fn = callee = pending = None
    label, total = "end", 0

    def name(token):
        m = re.match(r"\((\d+)\)(?: (.*))?$", token)
        if not m:
            return token
        if m.group(2) is not None:
            names[m.group(1)] = m.group(2)
        return names[m.group(1)]

    for line in open(path, errors="replace"):
        if line[0].isdigit() or line[0] in "+-*":
            cost = line.split()[1:]
            ir = int(cost[0]) if cost else 0
            if pending is not None:
                if pending != fn:
                    calls[(fn, pending)] += ir
                pending = None
            else:
                selfc[fn] += ir
        elif line.startswith("fn="):
            fn = name(line[3:].strip())
        elif line.startswith("cfn="):
            callee = name(line[4:].strip())
        elif line.startswith("calls="):
            pending = callee
            ncalls[callee] += int(line[6:].split()[0])
        elif line.startswith("desc: Trigger: "):
            label = line[len("desc: Trigger: "):].strip()
        elif line.startswith("totals:"):
            total = int(line.split()[1])
    inclusive = collections.Counter(selfc)
    for (caller, _), ir in calls.items():
        inclusive[caller] += ir
    return label, total, selfc, inclusive, calls, ncalls


def cost(inclusive, pattern):
    """Inclusive Ir of the functions named by `pattern` (none of them calls another)."""
    return sum(ir for f, ir in inclusive.items() if f and re.search(pattern, f))


def callees(calls, caller, pattern):
    """Ir of the calls from `caller` to functions matching `pattern`."""
    return sum(ir for (a, b), ir in calls.items() if a and b and re.search(caller, a) and re.search(pattern, b))


INGEST = r"^devtrace_intake::otlp::Ingestor::ingest::\{\{closure\}\}$"
# What Ingestor::ingest calls, directly or through Ingestor::prepare (decode, convert, redact).
REQUEST = r"^devtrace_intake::otlp::Ingestor::(ingest::\{\{closure\}\}|prepare)$"
PREPARE = r"^devtrace_store::prepare::prepare_spans$"
CHUNK = r"^devtrace_store::chunk::encode_spans$"
WRITER = r"^devtrace_store::writer::run$"
TRANSACTION = r"^devtrace_store::sqlite::SqliteWriter::write_transaction$"

for dump in sorted(glob.glob(os.path.join(work, "callgrind.out.*")), key=lambda p: int(p.rsplit(".", 1)[1])) + [os.path.join(work, "callgrind.out")]:
    label, total, selfc, inc, calls, ncalls = parse(dump)
    transport = label.split()[-1] if label.startswith("dump after") else None
    report = os.path.join(work, f"loadgen-{transport}.json")
    spans = json.load(open(report))["spans_accepted"] if transport and os.path.exists(report) else 0
    print(f"\n== {os.path.basename(dump)} ({label}): {total:,} instructions"
          + (f" for {spans:,} spans accepted" if spans else ""))
    if not spans:  # the shutdown: no span arrives, only the top functions say anything
        for f, ir in selfc.most_common(min(top, 10)):
            print(f"  {ir:13,}  {100 * ir / max(total, 1):5.1f} %  {f[:110]}")
        continue
    per, unit = spans, "per span"
    ingest, prepare, chunk = cost(inc, INGEST), cost(inc, PREPARE), cost(inc, CHUNK)
    decode = callees(calls, REQUEST, r"prost|decode_trace_request|ExportTraceServiceRequest")
    convert = callees(calls, REQUEST, r"spans_from_proto")
    redact = callees(calls, REQUEST, r"redact_spans")
    writer, transaction = cost(inc, WRITER), cost(inc, TRANSACTION)
    commit = callees(calls, TRANSACTION, r"Transaction.*commit|sqlite3_step|^sqlite3_exec")
    rows = [
        ("protobuf decode (prost, into the OTLP structs)", decode),
        ("conversion to the model, ids and limits (spans_from_proto)", convert),
        ("redaction (Redactor::redact_spans)", redact),
        ("chunk encoding: postcard + zstd (chunk::encode_spans)", chunk),
        ("summaries, operations, session facts, split by trace (prepare_spans, rest)", prepare - chunk),
        ("Ingestor::ingest, rest (drops, queue submit, await)", ingest - decode - convert - redact - prepare),
        ("writer: SQLite transaction (write_transaction)", transaction),
        ("writer: rest (queue, waking, dropping batches)", writer - transaction),
        ("receive: HTTP/gRPC, tokio, bodies, replies (the rest)", total - ingest - writer),
    ]
    print(f"| stage | instructions {unit} | share |\n|---|---:|---:|")
    for stage, ir in rows:
        print(f"| {stage} | {ir / per:,.0f} | {100 * ir / max(total, 1):.1f} % |")
    print(f"| **total** | **{total / per:,.0f}** | 100 % |")
    # Kernel time is not counted; what SQLite asks of the kernel is (calls, not their cost).
    print(f"SQLite: {ncalls['devtrace_store::sqlite::SqliteWriter::write_transaction']:,} transactions,"
          f" {ncalls['walWriteOneFrame.isra.0'] + ncalls['walWriteOneFrame']:,} WAL frames written,"
          f" {ncalls['walCheckpoint']:,} checkpoints, {ncalls['fsync'] + ncalls['fdatasync']:,} fsyncs,"
          f" {ncalls['pwrite'] + ncalls['pwrite64']:,} pwrites")
    print(f"top {top} functions by exclusive instructions ({unit}):")
    for f, ir in selfc.most_common(top):
        print(f"  {ir / per:9,.0f}  {100 * ir / max(total, 1):5.1f} %  {f[:110]}")
PY
}

if [[ "${1:-}" == --analyse ]]; then
    analyse "$2"
    exit 0
fi

command -v valgrind >/dev/null || { echo "ingest-profile: needs valgrind (apt-get install valgrind)" >&2; exit 2; }
if [[ -z "${NO_BUILD:-}" ]]; then
    CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
        cargo build --release -p devtrace-cli -p devtrace-loadgen
fi
for bin in "$DEVTRACE" "$LOADGEN"; do
    [[ -x "$bin" ]] || { echo "ingest-profile: $bin was not built" >&2; exit 2; }
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/devtrace-profile.XXXXXX")
SERVER_PID=
cleanup() {
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ -n "${KEEP_DATA:-}" ]]; then echo "ingest-profile: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
GRPC_ADDR=127.0.0.1:$(free_port)
HTTP_ADDR=127.0.0.1:$(free_port)
API_ADDR=127.0.0.1:$(free_port)
port_open() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }

valgrind --tool=callgrind --collect-systime=nsec \
    --callgrind-out-file="$WORK/callgrind.out" \
    "$DEVTRACE" serve --data "$WORK/data" \
    --grpc-listen "$GRPC_ADDR" --http-listen "$HTTP_ADDR" --api-listen "$API_ADDR" \
    >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
echo "ingest-profile: devtrace serve under callgrind (pid $SERVER_PID), work directory $WORK"
for _ in $(seq 1200); do
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; SERVER_PID=; exit 1; }
    if port_open "$GRPC_ADDR" && port_open "$HTTP_ADDR" && port_open "$API_ADDR"; then break; fi
    sleep 0.25
done
target_of() {
    case "$1" in
        http) echo --http "$HTTP_ADDR" ;;
        grpc) echo --grpc "$GRPC_ADDR" ;;
        *) echo "ingest-profile: TRANSPORTS holds http and/or grpc" >&2; return 2 ;;
    esac
}
# Warm up (a request per transport: connections, the redaction rules compiled on first use,
# SQLite's caches), then count from zero. Each run has its own seed, hence its own trace ids:
# no span is a re-sent one.
seed=100
for transport in $TRANSPORTS; do
    "$LOADGEN" $(target_of "$transport") --connections 1 --total-spans 520 --pool-requests 1 \
        --seed $((seed++)) --quiet >/dev/null
done
sleep 2 # start-up work on other threads (the MCP tools' vocabulary) is over
callgrind_control --zero "$SERVER_PID" >/dev/null
seed=0
for transport in $TRANSPORTS; do
    seed=$((seed + 1)) # not inside the pipeline below: that runs in a subshell
    echo "ingest-profile: $SPANS spans over $transport"
    "$LOADGEN" $(target_of "$transport") --connections "$CONNECTIONS" --total-spans "$SPANS" \
        --seed "$seed" --quiet --json-out "$WORK/loadgen-$transport.json" | sed 's/^/  /'
    callgrind_control --dump="after $transport" "$SERVER_PID" >/dev/null
done

kill -TERM "$SERVER_PID"
status=0
wait "$SERVER_PID" || status=$?
SERVER_PID=
[[ $status -eq 0 ]] || { echo "ingest-profile: serve exited with $status" >&2; tail -n 20 "$WORK/server.log" >&2; }
analyse "$WORK"
exit "$status"
