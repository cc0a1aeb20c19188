#!/usr/bin/env bash
# Web UI benchmarks in headless Chromium (see docs/PERFORMANCE.md):
#
#   bench/web/run-ui.sh trace [SPANS]     a SPANS-span trace (default 50001) opened to an
#                                          interactive waterfall (SHAPE=flat: one parent, all
#                                          other spans its children)
#   bench/web/run-ui.sh list DATA_DIR     the traces list of an existing store, e.g. one filled
#                                          by KEEP_DATA=1 TOTAL_SPANS=5000000 bench/run-ingest.sh
#   bench/web/run-ui.sh sessions [DIR]    the sessions list, and the timeline of its session
#                                          fe5e1c67 (or SESSION=ID), after importing the Claude
#                                          Code transcripts under DIR (default: the sample
#                                          project under $DEVTRACE_EXTERNAL_FIXTURES)
#
# Builds the release binary (NO_BUILD=1 to skip; DEVTRACE=BIN times another binary, e.g. a
# build from before a change), starts `devtrace serve` on free loopback
# ports, runs bench/web/measure.mjs (RUNS times, default 5) and stops the server. Needs
# /usr/bin/chromium and `npm ci` in tests/web (scripts/test does both).
set -euo pipefail
cd "$(dirname "$0")/../.."
USAGE="usage: bench/web/run-ui.sh trace [SPANS] | list DATA_DIR | sessions [TRANSCRIPTS_DIR]"
what=${1:?$USAGE}
RUNS=${RUNS:-5}
DEVTRACE=${DEVTRACE:-target/release/devtrace}
[[ -n "${NO_BUILD:-}" ]] || cargo build --release -p devtrace-cli
[[ -d tests/web/node_modules/playwright-core ]] || (cd tests/web && npm ci --no-audit --no-fund)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/devtrace-ui-bench.XXXXXX")
SERVER_PID=
cleanup() {
    [[ -z "$SERVER_PID" ]] || { kill -TERM "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; }
    rm -rf "$WORK"
}
trap cleanup EXIT

case "$what" in
    trace)
        DATA="$WORK/data"
        node bench/web/make-trace.mjs "${2:-50001}" "$WORK/trace.json"
        "$DEVTRACE" --data "$DATA" import "$WORK/trace.json" >/dev/null
        ;;
    list)
        DATA=${2:?give the data directory of a store}
        ;;
    sessions)
        DATA="$WORK/data"
        "$DEVTRACE" --data "$DATA" import claude-code "${2:-${DEVTRACE_EXTERNAL_FIXTURES:?give a transcripts directory or set DEVTRACE_EXTERNAL_FIXTURES}/claude-code/sample-project}" --json
        ;;
    *) echo "$USAGE" >&2; exit 2 ;;
esac

"$DEVTRACE" --data "$DATA" serve --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
    --api-listen 127.0.0.1:0 --log-level warn 2>"$WORK/server.log" &
SERVER_PID=$!
for _ in $(seq 200); do [[ -s "$DATA/serve.json" ]] && break; sleep 0.05; done
API=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['api'])" "$DATA/serve.json")
curl -s "http://$API/api/v1/stats"; echo

if [[ "$what" == sessions ]]; then
    SESSION=${SESSION:-fe5e1c6753e7486281aed0e013e3270b}
    node bench/web/measure.mjs sessions "http://$API" "$RUNS"
    node bench/web/measure.mjs session "http://$API" "$SESSION" "$RUNS"
    echo "sessions JSON: $(curl -s -o /dev/null -w '%{size_download} bytes in %{time_total} s' "http://$API/api/v1/sessions?limit=200")"
    echo "overview JSON: $(curl -s -o /dev/null -w '%{size_download} bytes in %{time_total} s' "http://$API/api/v1/sessions/$SESSION/overview")"
elif [[ "$what" == trace ]]; then
    node bench/web/measure.mjs trace "http://$API" b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1 "$RUNS"
    echo "waterfall JSON: $(curl -s -o /dev/null -w '%{size_download} bytes in %{time_total} s' "http://$API/api/v1/traces/b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1/waterfall")"
    # The trace page's findings: the pages opened above read them (the detectors over the
    # window) once, so this is the server's cached answer.
    echo "findings JSON (cached): $(curl -s -o /dev/null -w '%{size_download} bytes in %{time_total} s' "http://$API/api/v1/traces/b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1/findings")"
else
    node bench/web/measure.mjs list "http://$API" "$RUNS"
    echo "first page JSON: $(curl -s -o /dev/null -w '%{size_download} bytes in %{time_total} s' "http://$API/api/v1/traces?limit=50")"
fi
