#!/usr/bin/env bash
# The time `devtrace run` adds to a command that emits nothing: `true` directly against
# `devtrace run --quiet -- true`, with and without a running `devtrace serve`.
#
# Usage: bench/run-overhead.sh        (needs hyperfine: apt-get install hyperfine)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "run-overhead: install hyperfine first (apt-get install hyperfine)" >&2; exit 2; }
[[ -n "${NO_BUILD:-}" ]] || cargo build --release -p devtrace-cli
DEVTRACE=$PWD/target/release/devtrace
WORK=$(mktemp -d "${TMPDIR:-/tmp}/devtrace-overhead.XXXXXX")
trap 'kill "${SERVER:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

echo "== embedded: devtrace run starts its own receivers for each run"
hyperfine -N --warmup 5 --runs 50 --export-json "$WORK/embedded.json" \
    "true" "$DEVTRACE --data $WORK/embedded run --quiet -- true"

echo "== with a running devtrace serve on the same data directory"
"$DEVTRACE" serve --data "$WORK/served" --grpc-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --api-listen 127.0.0.1:0 2>/dev/null &
SERVER=$!
for _ in $(seq 100); do [[ -f "$WORK/served/serve.json" ]] && break; sleep 0.05; done
hyperfine -N --warmup 5 --runs 50 --export-json "$WORK/served.json" \
    "true" "$DEVTRACE --data $WORK/served run --quiet -- true"

python3 - "$WORK" <<'PY'
import json, sys
for name in ("embedded", "served"):
    results = json.load(open(f"{sys.argv[1]}/{name}.json"))["results"]
    base, run = results[0]["median"], results[1]["median"]
    print(f"{name}: median added {1000 * (run - base):.1f} ms (true {1000 * base:.1f} ms, under devtrace run {1000 * run:.1f} ms)")
PY
